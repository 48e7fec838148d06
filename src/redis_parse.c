/*
 * redis_parse.c — what the Redis client reads that is not a reply stream:
 * URLs, sentinel addresses and master names (configuration), and the
 * answers of SENTINEL get-master-addr-by-name, ROLE and SUBSCRIBE
 * +switch-master.  No I/O, so that the configuration checks and their
 * tests need no event loop.
 */
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pav_redis_config_defaults(struct pav_redis_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
	cfg->port = PAV_REDIS_DEF_PORT;
	cfg->command_timeout_ms = PAV_REDIS_DEF_COMMAND_TIMEOUT_MS;
	cfg->max_pending = PAV_REDIS_DEF_MAX_PENDING;
	cfg->probe_interval_ms = PAV_REDIS_DEF_PROBE_INTERVAL_MS;
	cfg->max_buffer_bytes = PAV_REDIS_DEF_MAX_BUFFER_BYTES;
}

void pav_redis_config_clear(struct pav_redis_config *cfg)
{
	char **secret[2] = {&cfg->password, &cfg->sentinel_password};

	for (int i = 0; i < 2; i++) {
		if (*secret[i]) {
			explicit_bzero(*secret[i], strlen(*secret[i]));
			free(*secret[i]);
		}
		*secret[i] = NULL;
	}
}

static int url_fail(char *err, size_t errlen, const char *why)
{
	if (errlen)
		snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int pav_redis_unescape(char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			s[o++] = s[i];
			continue;
		}
		if (i + 2 >= n)
			return -EINVAL;
		hi = hexval((unsigned char)s[i + 1]);
		lo = hexval((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0 || (!hi && !lo))
			return -EINVAL;
		s[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	s[o] = '\0';
	return 0;
}

/* %-decodes s[0..n) into a new string; NULL on a bad escape or a NUL. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	memcpy(out, s, n);
	if (pav_redis_unescape(out, n)) {
		free(out);
		return NULL;
	}
	return out;
}

/* A decimal in [lo, hi] spanning exactly s[0..n). */
static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
	long v = 0;

	if (!n || n > 9)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* What a host name (Docker's included: '_') or an address is made of; in
 * brackets, an IPv6 address with an optional "%zone". */
#define HOST_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
		   "0123456789"
#define HOST_NAME_CHARS HOST_ALNUM ".-_"

/* What may stand in brackets: an IPv6 address, then optionally "%" and a
 * zone (an interface name).  Anything else there is no host: not even one
 * the URL could be written back as (without the brackets, a name). */
static int v6_literal_ok(const char *h)
{
	const char *pct = strchr(h, '%');
	char addr[INET6_ADDRSTRLEN];
	struct in6_addr a;
	size_t alen = pct ? (size_t)(pct - h) : strlen(h);

	if (!alen || alen >= sizeof(addr))
		return 0;
	memcpy(addr, h, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET6, addr, &a) != 1)
		return 0;
	return !pct || (pct[1] && strspn(pct + 1, HOST_NAME_CHARS) ==
					  strlen(pct + 1));
}

/* "host[:port]" or "[v6][:port]" in s[0..n). */
static int parse_hostport(const char *s, size_t n,
			  struct pav_redis_config *cfg, const char **why)
{
	const char *host = s, *colon;
	size_t hlen;

	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (!close)
			return *why = "unclosed [ in the host", -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1 < s + n ? close + 1 : NULL;
		if (colon && *colon != ':')
			return *why = "junk after ]", -EINVAL;
	} else {
		colon = memchr(s, ':', n);
		hlen = colon ? (size_t)(colon - s) : n;
	}
	if (!hlen || hlen >= sizeof(cfg->host))
		return *why = "empty or overlong host", -EINVAL;
	memcpy(cfg->host, host, hlen);
	cfg->host[hlen] = '\0';
	if (host != s && !v6_literal_ok(cfg->host))
		return *why = "the host in brackets must be an IPv6 address "
			      "(and a %zone)", -EINVAL;
	if (host == s && strspn(cfg->host, HOST_NAME_CHARS) != hlen)
		return *why = "the host is no host name or address (a space, "
			      "a control character, ...)", -EINVAL;
	if (colon && parse_int(colon + 1, (size_t)(s + n - colon - 1), 1,
			       65535, &cfg->port))
		return *why = "port must be 1..65535", -EINVAL;
	return 0;
}

int pav_redis_parse_sentinel(const char *s, struct pav_redis_sentinel *out,
			     char *err, size_t errlen)
{
	struct pav_redis_config tmp;
	const char *why = "empty";

	memset(&tmp, 0, sizeof(tmp));
	tmp.port = PAV_REDIS_SENTINEL_DEF_PORT;
	if (!s || !*s || parse_hostport(s, strlen(s), &tmp, &why))
		return url_fail(err, errlen, why);
	memcpy(out->host, tmp.host, sizeof(out->host));
	out->port = tmp.port;
	return 0;
}

int pav_redis_master_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n && n <= PAV_REDIS_MASTER_NAME_MAX &&
	       strspn(name, HOST_NAME_CHARS) == n;
}

int pav_redis_user_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n && n <= PAV_REDIS_USER_MAX;
}

static int is_text(const redisReply *e)
{
	return e && (e->type == REDIS_REPLY_STRING ||
		     e->type == REDIS_REPLY_STATUS);
}

int pav_redis_sentinel_reply(const redisReply *rep, char *host,
			     size_t hostsize, int *port)
{
	const redisReply *h, *p;
	unsigned char a[sizeof(struct in6_addr)];

	if (rep && rep->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
		return -EINVAL;
	h = rep->element[0];
	p = rep->element[1];
	if (!is_text(h) || !is_text(p) || !h->len ||
	    (size_t)h->len >= hostsize || memchr(h->str, '\0', (size_t)h->len))
		return -EINVAL;
	memcpy(host, h->str, (size_t)h->len);
	host[h->len] = '\0';
	/* a name (announce-hostnames) would need a lookup on the loop */
	if ((inet_pton(AF_INET, host, a) != 1 &&
	     inet_pton(AF_INET6, host, a) != 1) ||
	    parse_int(p->str, (size_t)p->len, 1, 65535, port)) {
		host[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

/* s[0..n) as a numeric IPv4 or IPv6 address into host; 0 or -EINVAL. */
static int numeric_host(const char *s, size_t n, char *host, size_t hostsize)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (!n || n >= hostsize || memchr(s, '\0', n))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1)
		return 0;
	host[0] = '\0';
	return -EINVAL;
}

#define SWITCH_FIELDS 5 /* name old-ip old-port new-ip new-port */

int pav_redis_switch_master(const char *msg, size_t len, const char *master,
			    char *host, size_t hostsize, int *port)
{
	const char *f[SWITCH_FIELDS];
	size_t flen[SWITCH_FIELDS], at = 0;

	if (!msg || !master)
		return -EINVAL;
	for (int i = 0; i < SWITCH_FIELDS; i++) {
		const char *sp = memchr(msg + at, ' ', len - at);

		f[i] = msg + at;
		flen[i] = sp ? (size_t)(sp - f[i]) : len - at;
		if (!flen[i] || (i < SWITCH_FIELDS - 1) != !!sp)
			return -EINVAL;
		at += flen[i] + 1;
	}
	if (flen[0] != strlen(master) || memcmp(f[0], master, flen[0]))
		return -ENOENT;
	if (numeric_host(f[3], flen[3], host, hostsize))
		return -EINVAL;
	if (parse_int(f[4], flen[4], 1, 65535, port)) {
		host[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

int pav_redis_role_is_master(const redisReply *rep)
{
	const redisReply *e;

	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		return 0;
	e = rep->element[0];
	return is_text(e) && e->len == 6 && !memcmp(e->str, "master", 6);
}

int pav_redis_switch_subscribed(const redisReply *rep)
{
	const redisReply *const *e;

	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
		return 0;
	e = (const redisReply *const *)rep->element;
	return e[0]->type == REDIS_REPLY_STRING && e[0]->len == 9 &&
	       !memcmp(e[0]->str, "subscribe", 9) &&
	       e[1]->type == REDIS_REPLY_STRING && e[1]->len == 14 &&
	       !memcmp(e[1]->str, "+switch-master", 14) &&
	       e[2]->type == REDIS_REPLY_INTEGER && e[2]->integer == 1;
}

/* "[user][:password]@" at the start of *p (advanced past it). */
static int parse_userinfo(const char **p, struct pav_redis_config *cfg,
			  const char **why)
{
	const char *at = strrchr(*p, '@'); /* the db part has none */
	const char *colon;
	char *user;
	size_t ulen, n;
	int ok;

	if (!at)
		return 0;
	colon = memchr(*p, ':', (size_t)(at - *p));
	ulen = (size_t)((colon ? colon : at) - *p);
	user = pct_decode(*p, ulen);
	if (!user)
		return *why = "bad %-escape in the user name", -EINVAL;
	n = strlen(user);
	ok = !n || pav_redis_user_ok(user); /* "": the default user */
	if (ok)
		memcpy(cfg->user, user, n + 1);
	free(user);
	if (!ok)
		return *why = "the user name is longer than 127 bytes", -EINVAL;
	if (!colon && !ulen)
		return *why = "nothing before @: redis://user:password@host",
		       -EINVAL;
	if (colon) {
		cfg->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
		if (!cfg->password)
			return *why = "bad %-escape in the password", -EINVAL;
	}
	*p = at + 1;
	return 0;
}

int pav_redis_parse_url(const char *url, struct pav_redis_config *cfg,
			char *err, size_t errlen)
{
	const char *p, *slash, *end, *why = NULL;
	int rc;

	pav_redis_config_defaults(cfg);
	if (url && !strncmp(url, "rediss://", 9))
		cfg->tls = 1;
	else if (!url || strncmp(url, "redis://", 8))
		return url_fail(err, errlen, "the URL must start with redis:// "
				"(or rediss://, TLS)");
	p = url + 8 + cfg->tls;
	rc = parse_userinfo(&p, cfg, &why);
	if (!rc && strpbrk(p, "?#"))
		rc = -EINVAL, why = "no query or fragment allowed";
	end = p + strlen(p);
	slash = memchr(p, '/', (size_t)(end - p));
	if (!rc)
		rc = parse_hostport(p, (size_t)((slash ? slash : end) - p),
				    cfg, &why);
	if (!rc && slash && slash + 1 < end &&
	    parse_int(slash + 1, (size_t)(end - slash - 1), 0, 65535,
		      &cfg->db))
		rc = -EINVAL, why = "db must be a number 0..65535";
	if (rc) {
		pav_redis_config_clear(cfg);
		return url_fail(err, errlen, why);
	}
	return 0;
}

void pav_redis_url_forget_password(char *url)
{
	char *p, *at, *colon, *from;
	size_t tail;

	if (!url || (strncmp(url, "redis://", 8) &&
		     strncmp(url, "rediss://", 9)))
		return;
	p = url + 8 + (url[5] == 's');
	at = strrchr(p, '@'); /* as parse_userinfo() finds it */
	colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (!colon)
		return;
	/* "@host..." moved over ":password"; with no user the '@' goes too,
	 * as an empty user info is refused */
	from = colon == p ? at + 1 : at;
	tail = strlen(from);
	memmove(colon, from, tail + 1);
	explicit_bzero(colon + tail + 1, (size_t)(from - colon));
}
