/* config_schema.c — what the configuration may say (DESIGN section 3).
 *
 * One table per JSON object (limits, tls, websocket, auth, api, history,
 * vhost, log, store, the top level), walked by config_walk.c; the parsers
 * of values no field type covers (listen, plugins, store url, include,
 * vhosts); the rules between fields, run once an object's keys are read;
 * and the defaults each object starts from.  Limits and default values
 * themselves are named in pav_limits.h.
 */
#include "config_walk.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iface.h"
#include "pav_limits.h"
#include "proxy.h"
#include "redis.h"
#include "pavilion/plugin.h"

#define NAME_MAX_LEN 64     /* vhost, namespace and plugin names */
#define HOST_MAX_LEN 253

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"

/* ---------------------------------------------------------- checks */

static const char *check_name(const char *s)
{
	if (strlen(s) > NAME_MAX_LEN || !pav_cfg_in_set(s, ALNUM "_.-"))
		return "must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
	return NULL;
}

/* Keys of "plugins", not strings: the walker has not refused "" yet. */
static const char *check_plugin_name(const char *s)
{
	if (!*s || strlen(s) > NAME_MAX_LEN ||
	    !pav_cfg_in_set(s, LOWER_ALNUM "_-"))
		return "plugin names are 1 to 64 characters of a-z 0-9 _ -";
	return NULL;
}

static const char *check_hostname(const char *s)
{
	if (!strncmp(s, "*.", 2))
		s += 2;
	if (!*s || strlen(s) > HOST_MAX_LEN || !pav_cfg_in_set(s, ALNUM ".-"))
		return "must be a host name (A-Z a-z 0-9 . -, optionally "
		       "starting with \"*.\")";
	return NULL;
}

static const char *check_ws_path(const char *s)
{
	if (s[0] != '/' || strpbrk(s, "?# \t\r\n"))
		return "must start with \"/\" and contain no spaces, \"?\" or "
		       "\"#\"";
	return NULL;
}

/* A browser's Origin is scheme://host[:port]: no path, no trailing '/'. */
static const char *check_origin(const char *s)
{
	const char *sep = strstr(s, "://");

	if (!sep || sep == s || !sep[3] || strchr(sep + 3, '/'))
		return "must be an origin like \"https://example.com\" "
		       "(scheme://host[:port], no path)";
	return NULL;
}

static const char *check_redis_url(const char *s)
{
	if (strncmp(s, "redis://", 8) && strncmp(s, "rediss://", 9))
		return "must start with \"redis://\" (or \"rediss://\", TLS)";
	return NULL;
}

static const char *check_sentinel_address(const char *s)
{
	static char why[200]; /* the walk is single-threaded */
	struct pav_redis_sentinel one;
	char err[120];

	if (!pav_redis_parse_sentinel(s, &one, err, sizeof(err)))
		return NULL;
	snprintf(why, sizeof(why), "must be \"host:port\" (or \"host\", port "
		 "%d; \"[v6]:port\"): %s", PAV_REDIS_SENTINEL_DEF_PORT, err);
	return why;
}

static const char *check_master_name(const char *s)
{
	if (pav_redis_master_name_ok(s))
		return NULL;
	return "must be 1 to 64 letters, digits, '.', '-' or '_'";
}

static const char *check_user_name(const char *s)
{
	if (pav_redis_user_ok(s))
		return NULL;
	return "must be an ACL user name of 1 to 127 bytes";
}

static const char *const algorithm_names[] = {
	"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"ES256", "ES384", NULL,
};

static const char *check_algorithm(const char *s)
{
	for (size_t i = 0; algorithm_names[i]; i++)
		if (!strcmp(s, algorithm_names[i]))
			return NULL;
	return "must be one of HS256, HS384, HS512, RS256, RS384, RS512, "
	       "ES256, ES384";
}

/* The first of keys (NULL-terminated) that obj holds is refused, at its
 * own path, for why: keys that another key's value rules out. */
static int refuse_keys(struct pav_cfg_ctx *c, json_object *obj,
		       const char *const *keys, const char *path,
		       const char *why)
{
	char sub[PAV_CFG_KEYPATH];

	for (size_t i = 0; keys[i]; i++) {
		if (!pav_cfg_has(obj, keys[i]))
			continue;
		pav_cfg_join(sub, path, keys[i]);
		return pav_cfg_fail(c, -EINVAL, sub, "%s", why);
	}
	return 0;
}

/* ---------------------------------------------------------- vhost parts */

#define VH(m) offsetof(struct pav_vhost_config, m)
#define CF(m) offsetof(struct pav_config, m)
#define MSG_MIN 64
#define MSG_MAX 16777216

static const struct pav_cfg_field limits_fields[] = {
	PAV_CFG_SIZE("max_message_bytes", VH(limits.max_message_bytes),
		     MSG_MIN, MSG_MAX),
	PAV_CFG_INT("json_depth", VH(limits.json_depth), 1, 64),
	PAV_CFG_INT("messages_per_s", VH(limits.messages_per_s), 1, 100000),
	PAV_CFG_INT("burst", VH(limits.burst), 1, 100000),
	PAV_CFG_INT("abuse_close_after", VH(limits.abuse_close_after), 1,
		    1000000),
	PAV_CFG_INT("max_subscriptions", VH(limits.max_subscriptions), 1,
		    100000),
	PAV_CFG_INT("max_connections_per_ip",
		    VH(limits.max_connections_per_ip), 1, 1000000),
	PAV_CFG_INT("handshakes_per_s_per_ip",
		    VH(limits.handshakes_per_s_per_ip), 1, 1000000),
	PAV_CFG_INT("max_connections_per_user",
		    VH(limits.max_connections_per_user), 1, 100000),
	PAV_CFG_SIZE("outbound_queue_bytes", VH(limits.outbound_queue_bytes),
		     4096, 1073741824),
	PAV_CFG_INT("handshake_timeout_s", VH(limits.handshake_timeout_s), 1,
		    3600),
	{0},
};
static const struct pav_cfg_section limits_sec = {.fields = limits_fields};

static int tls_finish(struct pav_cfg_ctx *c, json_object *obj, void *base,
		      const char *path)
{
	struct pav_vhost_config *vc = base;
	char sub[PAV_CFG_KEYPATH];

	(void)obj;
	if (vc->tls_cert && vc->tls_terminated_upstream) {
		pav_cfg_join(sub, path, "terminated_upstream");
		return pav_cfg_fail(c, -EINVAL, sub, "not with tls.cert and "
				    "tls.key: either a proxy in front serves "
				    "TLS or the gateway does");
	}
	if (!!vc->tls_cert == !!vc->tls_key) {
		vc->tls = vc->tls_cert != NULL;
		return 0;
	}
	pav_cfg_join(sub, path, vc->tls_cert ? "key" : "cert");
	return pav_cfg_fail(c, -EINVAL, sub, "required with tls.%s",
			    vc->tls_cert ? "cert" : "key");
}

static const struct pav_cfg_field tls_fields[] = {
	PAV_CFG_FILE("cert", VH(tls_cert)),
	PAV_CFG_FILE("key", VH(tls_key)),
	PAV_CFG_BOOL("terminated_upstream", VH(tls_terminated_upstream)),
	{0},
};
static const struct pav_cfg_section tls_sec = {.fields = tls_fields,
					       .finish = tls_finish};

static const struct pav_cfg_field websocket_fields[] = {
	PAV_CFG_STR("path", VH(ws_path), check_ws_path),
	PAV_CFG_STRV("allowed_origins", VH(allowed_origins),
		     VH(nallowed_origins), 1, check_origin),
	PAV_CFG_BOOL("allow_missing_origin", VH(allow_missing_origin)),
	PAV_CFG_INT("heartbeat_interval_s", VH(heartbeat_interval_s), 1, 3600),
	PAV_CFG_INT("idle_timeout_s", VH(idle_timeout_s), 1, 86400),
	PAV_CFG_SIZE("max_message_bytes", VH(limits.max_message_bytes),
		     MSG_MIN, MSG_MAX),
	PAV_CFG_BOOL("permessage_deflate", VH(permessage_deflate)),
	{0},
};
static const struct pav_cfg_section websocket_sec = {
	.fields = websocket_fields,
};

/* One key file serves every algorithm: HS* want a secret, RS/ES a PEM key. */
static int auth_finish(struct pav_cfg_ctx *c, json_object *obj, void *base,
		       const char *path)
{
	struct pav_vhost_config *vc = base;
	char sub[PAV_CFG_KEYPATH], alg[PAV_CFG_KEYPATH];
	int hs0 = vc->algorithms[0][0] == 'H';

	(void)obj;
	pav_cfg_join(alg, path, "algorithms");
	for (size_t i = 1; i < vc->nalgorithms; i++) {
		pav_cfg_join_index(sub, alg, i);
		if ((vc->algorithms[i][0] == 'H') != hs0)
			return pav_cfg_fail(c, -EINVAL, alg, "must be all HS*, "
					    "or all RS*/ES* (one key_file "
					    "serves them all)");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(vc->algorithms[i], vc->algorithms[j]))
				return pav_cfg_fail(c, -EINVAL, sub,
						    "duplicate");
	}
	return 0;
}

static const struct pav_cfg_field auth_fields[] = {
	PAV_CFG_STRV("algorithms", VH(algorithms), VH(nalgorithms), 1,
		     check_algorithm),
	PAV_CFG_FILE("key_file", VH(key_file)),
	PAV_CFG_STR("issuer", VH(issuer), NULL),
	PAV_CFG_STR("audience", VH(audience), NULL),
	PAV_CFG_INT("leeway_s", VH(leeway_s), 0, 3600),
	PAV_CFG_INT("max_lifetime_s", VH(max_lifetime_s), 60, 31536000),
	{0},
};
static const char *const auth_required[] = {"algorithms", "key_file", NULL};
static const struct pav_cfg_section auth_sec = {.fields = auth_fields,
						.required = auth_required,
						.finish = auth_finish};

static const struct pav_cfg_field api_fields[] = {
	PAV_CFG_FILE("keys_file", VH(api_keys_file)),
	PAV_CFG_SIZE("max_body_bytes", VH(api_max_body), 1024, 16777216),
	{0},
};
static const char *const api_required[] = {"keys_file", NULL};
static const struct pav_cfg_section api_sec = {.fields = api_fields,
					       .required = api_required};

/* A channel kind's history: {"size": N, "ttl_s": S}. */
#define HIST(k, m) VH(history[k].m)
#define HISTORY_KIND(name, k) \
	static const struct pav_cfg_field name##_fields[] = { \
		PAV_CFG_INT("size", HIST(k, size), 1, PAV_MAX_HISTORY_SIZE), \
		PAV_CFG_INT("ttl_s", HIST(k, ttl_s), 1, 30 * 86400), \
		{0}, \
	}; \
	static const struct pav_cfg_section name##_sec = { \
		.fields = name##_fields, \
		.required = history_required, \
	}
static const char *const history_required[] = {"size", NULL};
HISTORY_KIND(history_zone, PAV_HISTORY_ZONE);
HISTORY_KIND(history_channel, PAV_HISTORY_CHANNEL);
HISTORY_KIND(history_chat, PAV_HISTORY_CHAT);

static int history_finish(struct pav_cfg_ctx *c, json_object *obj, void *base,
			  const char *path)
{
	struct pav_vhost_config *vc = base;

	(void)c;
	(void)obj;
	(void)path;
	vc->history_set = 1;
	for (int k = 0; k < PAV_HISTORY_KINDS; k++)
		if (vc->history[k].size && !vc->history[k].ttl_s)
			vc->history[k].ttl_s = PAV_DEF_HISTORY_TTL_S;
	return 0;
}

static const struct pav_cfg_field history_fields[] = {
	PAV_CFG_SECTION("zone", history_zone_sec),
	PAV_CFG_SECTION("channel", history_channel_sec),
	PAV_CFG_SECTION("chat", history_chat_sec),
	{0},
};
static const struct pav_cfg_section history_sec = {.fields = history_fields,
						   .finish = history_finish};

/* ---------------------------------------------------------- listen, plugins */

/* Copies the host part into host: 0 for an IP address, 1 for a name (an
 * interface, see parse_listen()), -1 when it is neither. */
static int listen_host(const char *s, size_t len, int v6, char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!len || len > HOST_MAX_LEN)
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (v6)
		return inet_pton(AF_INET6, host, &a6) == 1 ? 0 : -1;
	if (!pav_cfg_in_set(host, ALNUM ".-"))
		return -1;
	if (!pav_cfg_in_set(host, "0123456789."))
		return 1;
	return inet_pton(AF_INET, host, &a4) == 1 ? 0 : -1;
}

/* Rewrites an IP address as inet_ntop() writes it. */
static void canonical_ip(char *host, int v6)
{
	unsigned char a[sizeof(struct in6_addr)];
	int af = v6 ? AF_INET6 : AF_INET;

	if (inet_pton(af, host, a) == 1)
		inet_ntop(af, a, host, HOST_MAX_LEN + 1);
}

static int parse_port(const char *s)
{
	long port;

	if (!*s || !pav_cfg_in_set(s, "0123456789") || strlen(s) > 5)
		return -1;
	port = strtol(s, NULL, 10);
	return port >= 1 && port <= 65535 ? (int)port : -1;
}

/* "host:port" or "[v6]:port"; the host is kept without brackets.  A host
 * that is no IP address is a network interface ("lo", "eth0"): lws binds
 * interface names and resolves no host names, so "localhost" would pass
 * here and fail at the bind. */
static int parse_listen(struct pav_cfg_ctx *c, json_object *v, void *base,
			const char *path)
{
	struct pav_vhost_config *vc = base;
	char host[HOST_MAX_LEN + 1];
	const char *s, *h, *colon;
	int v6, name, rc = pav_cfg_get_str(c, v, path, &s);

	if (rc)
		return rc;
	v6 = s[0] == '[';
	h = s + v6;
	colon = v6 ? strstr(h, "]:") : strrchr(s, ':');
	if (!colon || (name = listen_host(h, (size_t)(colon - h), v6,
					  host)) < 0)
		goto bad;
	vc->port = parse_port(colon + 1 + v6);
	if (vc->port < 0)
		goto bad;
	if (name && !if_nametoindex(host))
		return pav_cfg_fail(c, -EINVAL, path, "\"%s\" is neither an IP "
				    "address nor a network interface of this "
				    "host (host names are not resolved)", host);
	/* one spelling per address ("::1", not "0:0::1"): lws shares a
	 * listener between vhosts whose addresses read the same */
	if (!name)
		canonical_ip(host, v6);
	return pav_cfg_replace_str(c, &vc->listen_host, host, path);
bad:
	return pav_cfg_fail(c, -EINVAL, path, "must be \"host:port\" or "
			    "\"[ipv6]:port\" with a port from 1 to 65535");
}

/* The options stay JSON: each plugin reads its own at init. */
static int parse_plugins(struct pav_cfg_ctx *c, json_object *v, void *base,
			 const char *path)
{
	struct pav_vhost_config *vc = base;
	char sub[PAV_CFG_KEYPATH];
	const char *why;

	if (!json_object_is_type(v, json_type_object))
		return pav_cfg_fail(c, -EINVAL, path, "must be an object of "
				    "plugin name to options object");
	json_object_object_foreach(v, name, opts) {
		pav_cfg_join(sub, path, name);
		if ((why = check_plugin_name(name)))
			return pav_cfg_fail(c, -EINVAL, sub, "%s", why);
		if (!json_object_is_type(opts, json_type_object))
			return pav_cfg_fail(c, -EINVAL, sub, "must be an "
					    "object (the plugin's options)");
	}
	json_object_put(vc->plugins);
	vc->plugins = json_object_get(v);
	return 0;
}

/* ---------------------------------------------------------- vhost rules */

static int is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcmp(host, "lo"))
		return 1; /* Linux's loopback interface */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* Index of vhost k within the array of the file that declared it. */
static int index_in_file(const struct pav_config *cfg, size_t k)
{
	int n = 0;

	for (size_t i = 0; i < k; i++)
		n += cfg->vhosts[i].file == cfg->vhosts[k].file;
	return n;
}

/* The first of a's hostnames that b has too, or NULL. */
static const char *shared_hostname(const struct pav_vhost_config *a,
				   const struct pav_vhost_config *b)
{
	for (size_t i = 0; i < a->nhostnames; i++)
		for (size_t j = 0; j < b->nhostnames; j++)
			if (!strcasecmp(a->hostnames[i], b->hostnames[j]))
				return a->hostnames[i];
	return NULL;
}

/* A vhost without hostnames answers every Host. */
static int hostnames_overlap(const struct pav_vhost_config *a,
			     const struct pav_vhost_config *b)
{
	return !a->nhostnames || !b->nhostnames || shared_hostname(a, b);
}

static const char *kind_name(const struct pav_vhost_config *vc)
{
	return vc->kind == PAV_VHOST_INTERNAL ? "internal" : "public";
}

/*
 * libwebsockets picks the vhost of a request by its Host header (or SNI)
 * among every vhost with the listener's port, whatever the address: an
 * internal vhost sharing a port with a public one would be reachable
 * through the public address.  So the two kinds share no port and no
 * hostname.
 */
static int vhost_kinds_apart(struct pav_cfg_ctx *c,
			     const struct pav_vhost_config *vc,
			     const struct pav_vhost_config *o,
			     const char *path)
{
	char sub[PAV_CFG_KEYPATH];
	const char *host;

	if (vc->kind == o->kind)
		return 0;
	if (vc->port == o->port) {
		pav_cfg_join(sub, path, "listen");
		return pav_cfg_fail(c, -EINVAL, sub, "port %d is also used by "
				    "%s vhost \"%s\" (%s); internal and public "
				    "vhosts may not share a port, on any "
				    "address", vc->port, kind_name(o), o->name,
				    o->file);
	}
	host = shared_hostname(vc, o);
	if (!host)
		return 0;
	pav_cfg_join(sub, path, "hostnames");
	return pav_cfg_fail(c, -EINVAL, sub, "\"%s\" is also a hostname of "
			    "%s vhost \"%s\" (%s); internal and public vhosts "
			    "may not share a hostname", host, kind_name(o),
			    o->name, o->file);
}

/* The vhosts of a namespace share its channels, so they keep them alike.
 * vc's own namespace default ("default") is set only after the rules. */
static int vhost_history_agrees(struct pav_cfg_ctx *c,
				const struct pav_vhost_config *vc,
				const struct pav_vhost_config *o,
				const char *path)
{
	char sub[PAV_CFG_KEYPATH];

	if (!vc->history_set || !o->history_set ||
	    strcmp(o->ns ? o->ns : "default", vc->ns ? vc->ns : "default") ||
	    !memcmp(o->history, vc->history, sizeof(vc->history)))
		return 0;
	pav_cfg_join(sub, path, "history");
	return pav_cfg_fail(c, -EINVAL, sub, "differs from vhost \"%s\" (%s) "
			    "of the same namespace: its vhosts share channels",
			    o->name, o->file);
}

static int vhost_name_unique(struct pav_cfg_ctx *c,
			     const struct pav_vhost_config *vc,
			     const struct pav_vhost_config *o,
			     const char *path)
{
	char sub[PAV_CFG_KEYPATH];

	if (strcmp(o->name, vc->name))
		return 0;
	pav_cfg_join(sub, path, "name");
	return pav_cfg_fail(c, -EINVAL, sub, "\"%s\" is already the name of "
			    "vhosts[%d] in %s", vc->name, o->file_index,
			    o->file);
}

/* A stored listen host that is no IP address is an interface name. */
static int listen_is_name(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) != 1 &&
	       inet_pton(AF_INET6, host, a) != 1;
}

static int is_wildcard(const char *host)
{
	return !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

static int same_text(const char *ip, void *want)
{
	return !strcmp(ip, want);
}

/* Whether interface iface has address ip. */
static int iface_has(const char *ip, void *iface)
{
	return pav_iface_any_addr(iface, same_text, (void *)ip);
}

/*
 * Whether two different listen hosts could bind an address in common on
 * one port: a wildcard beside anything, an interface beside one of its
 * addresses, or two interfaces with an address in common.  The second bind
 * would fail at start, after --check had passed.
 */
static int listen_hosts_overlap(const char *a, const char *b)
{
	int ia = listen_is_name(a), ib = listen_is_name(b);

	if (is_wildcard(a) || is_wildcard(b))
		return 1;
	if (ia && ib)
		return pav_iface_any_addr(a, iface_has, (void *)b);
	if (ia)
		return pav_iface_any_addr(a, same_text, (void *)b);
	if (ib)
		return pav_iface_any_addr(b, same_text, (void *)a);
	return 0; /* two IP addresses, and not the same one */
}

/* Listens on one port that are not the same must not overlap (the second
 * bind would fail at start, after --check had passed), and vhosts on one
 * listen agree on reuse_port (lws' socket would not share the port with
 * the gateway's own SO_REUSEPORT one). */
static int vhost_binds_apart(struct pav_cfg_ctx *c,
			     const struct pav_vhost_config *vc,
			     const struct pav_vhost_config *o,
			     const char *path)
{
	char sub[PAV_CFG_KEYPATH];
	int same = !strcmp(o->listen_host, vc->listen_host);

	if (o->port != vc->port)
		return 0;
	pav_cfg_join(sub, path, "listen");
	if (!same && listen_hosts_overlap(o->listen_host, vc->listen_host))
		return pav_cfg_fail(c, -EINVAL, sub, "\"%s\" and vhost "
				    "\"%s\"'s \"%s\" (%s) can bind the same "
				    "address on port %d; vhosts on one port "
				    "share it only with the same \"listen\"",
				    vc->listen_host, o->name, o->listen_host,
				    o->file, vc->port);
	if (same && o->reuse_port != vc->reuse_port)
		return pav_cfg_fail(c, -EINVAL, sub, "also used by vhost "
				    "\"%s\" (%s), %s \"reuse_port\"; vhosts on "
				    "one listen address agree on it", o->name,
				    o->file, o->reuse_port ? "with" : "without");
	return 0;
}

int pav_cfg_one_lws_port(const struct pav_vhost_config *a,
			 const struct pav_vhost_config *b)
{
	if (a->reuse_port || b->reuse_port)
		return a->reuse_port && b->reuse_port;
	return a->port == b->port;
}

const char *pav_hostname_lws(const char *hostname)
{
	return strncmp(hostname, "*.", 2) ? hostname : hostname + 2;
}

/*
 * lws (4.1.6, lws_select_vhost()) tries a port's names in order and
 * compares each with the Host only up to the Host's length: the Host
 * "rt.test" goes to the first vhost with "rt.test.example" or "rt.test".
 * So a vhost listed after o has no name that one of o's names starts
 * with; and "*.x", which is "x" to lws (it takes x, and x's subdomains
 * that no name of the port is), is not on one vhost with "x" on another.
 */
static int vhost_names_lws_apart(struct pav_cfg_ctx *c,
				 const struct pav_vhost_config *vc,
				 const struct pav_vhost_config *o,
				 const char *path)
{
	char sub[PAV_CFG_KEYPATH];

	for (size_t i = 0; i < vc->nhostnames; i++)
		for (size_t j = 0; j < o->nhostnames; j++) {
			const char *h = pav_hostname_lws(vc->hostnames[i]);
			const char *g = pav_hostname_lws(o->hostnames[j]);
			size_t n = strlen(h);

			if (strncasecmp(g, h, n))
				continue;
			pav_cfg_join(sub, path, "hostnames");
			if (!g[n])
				return pav_cfg_fail(c, -EINVAL, sub, "\"%s\" "
					"and vhost \"%s\"'s \"%s\" (%s) are "
					"one name to lws, which serves \"*.x\" "
					"as \"x\" and its subdomains",
					vc->hostnames[i], o->name,
					o->hostnames[j], o->file);
			return pav_cfg_fail(c, -EINVAL, sub, "a Host \"%s\" "
				"would go to vhost \"%s\" (%s), listed "
				"before: lws compares its \"%s\" with a Host "
				"only up to the Host's length; list vhost "
				"\"%s\" first", h, o->name, o->file,
				o->hostnames[j], vc->name);
		}
	return 0;
}

/*
 * lws hands a request to the vhost of its port whose name matches the Host
 * (or SNI), else to the port's first vhost, whatever listener it came
 * through; and every reuse_port vhost is one port to it (the gateway
 * listens for them itself).  So vhosts it takes for one port, on one
 * listen or not, need distinct hostnames: without, every request of the
 * second would go to the first, and be refused as another listener's.
 */
static int vhost_hostnames_apart(struct pav_cfg_ctx *c,
				 const struct pav_vhost_config *vc,
				 const struct pav_vhost_config *o,
				 const char *path)
{
	char sub[PAV_CFG_KEYPATH], where[HOST_MAX_LEN + 64];
	int reuse = o->reuse_port && vc->reuse_port;

	if (!pav_cfg_one_lws_port(o, vc))
		return 0;
	if (!hostnames_overlap(o, vc))
		return vhost_names_lws_apart(c, vc, o, path);
	if (!reuse && !strcmp(o->listen_host, vc->listen_host)) {
		pav_cfg_join(sub, path, "listen");
		return pav_cfg_fail(c, -EINVAL, sub, "also used by vhost "
				    "\"%s\" (%s); vhosts may share a listen "
				    "address only with distinct, non-empty "
				    "\"hostnames\"", o->name, o->file);
	}
	if (reuse)
		snprintf(where, sizeof(where), "is \"reuse_port\" too, which "
			 "lws takes for one port");
	else
		snprintf(where, sizeof(where), "listens on port %d too, at "
			 "\"%s\"", vc->port, o->listen_host);
	pav_cfg_join(sub, path, "hostnames");
	return pav_cfg_fail(c, -EINVAL, sub, "vhost \"%s\" (%s) %s: lws "
			    "hands a request to the vhost of its port whose "
			    "hostname matches its Host, else to the port's "
			    "first, whatever the address; give both distinct, "
			    "non-empty \"hostnames\"", o->name, o->file,
			    where);
}

/* vc against every vhost before it, in this file and the earlier ones. */
static int vhost_unique(struct pav_cfg_ctx *c, struct pav_vhost_config *vc,
			const char *path)
{
	int rc = 0;

	for (size_t k = 0; k < (size_t)vc->index && !rc; k++) {
		const struct pav_vhost_config *o = &c->cfg->vhosts[k];

		rc = vhost_history_agrees(c, vc, o, path);
		if (!rc)
			rc = vhost_name_unique(c, vc, o, path);
		if (!rc)
			rc = vhost_kinds_apart(c, vc, o, path);
		if (!rc)
			rc = vhost_binds_apart(c, vc, o, path);
		if (!rc)
			rc = vhost_hostnames_apart(c, vc, o, path);
	}
	return rc;
}

/* Of "limits", an internal vhost uses only the handshake timeout: the
 * others bound WebSocket clients, and it has none. */
static int internal_limits(struct pav_cfg_ctx *c, json_object *obj,
			   const char *path)
{
	char lim[PAV_CFG_KEYPATH], sub[PAV_CFG_KEYPATH];
	json_object *v;

	if (!json_object_object_get_ex(obj, "limits", &v))
		return 0;
	pav_cfg_join(lim, path, "limits");
	json_object_object_foreach(v, key, val) {
		(void)val;
		if (!strcmp(key, "handshake_timeout_s"))
			continue;
		pav_cfg_join(sub, lim, key);
		return pav_cfg_fail(c, -EINVAL, sub, "only for a public vhost "
				    "(an internal one, with \"api\", uses only "
				    "limits.handshake_timeout_s)");
	}
	return 0;
}

static int vhost_kind(struct pav_cfg_ctx *c, json_object *obj,
		      struct pav_vhost_config *vc, const char *path)
{
	static const char *const not_internal[] = {"websocket", "auth",
						   "plugins", "trusted_proxies",
						   "trusted_proxies_header",
						   NULL};
	char sub[PAV_CFG_KEYPATH];
	int rc;

	vc->kind = pav_cfg_has(obj, "api") ? PAV_VHOST_INTERNAL
					   : PAV_VHOST_PUBLIC;
	if (vc->kind == PAV_VHOST_PUBLIC && !pav_cfg_has(obj, "auth")) {
		pav_cfg_join(sub, path, "auth");
		return pav_cfg_fail(c, -EINVAL, sub, "required on a public "
				    "vhost (one without \"api\")");
	}
	if (vc->kind != PAV_VHOST_INTERNAL)
		return 0;
	rc = refuse_keys(c, obj, not_internal, path, "not allowed on an "
			 "internal vhost (one with \"api\")");
	return rc ? rc : internal_limits(c, obj, path);
}

/* Clear text (ws, or the internal API's HTTP) only on loopback or behind
 * a TLS proxy that says so. */
static int vhost_tls(struct pav_cfg_ctx *c, const struct pav_vhost_config *vc,
		     const char *path)
{
	char sub[PAV_CFG_KEYPATH];

	if (vc->tls || vc->tls_terminated_upstream ||
	    is_loopback(vc->listen_host))
		return 0;
	pav_cfg_join(sub, path, "tls");
	return pav_cfg_fail(c, -EINVAL, sub, "plain %s is allowed only on a "
			    "loopback address or with \"terminated_upstream\": "
			    "true",
			    vc->kind == PAV_VHOST_INTERNAL ? "HTTP" : "ws");
}

/* max_message_bytes may be set under websocket or limits, not both apart. */
static int vhost_message_size(struct pav_cfg_ctx *c, json_object *obj,
			      const char *path)
{
	json_object *ws, *lim, *a, *b;
	char sub[PAV_CFG_KEYPATH];

	if (!json_object_object_get_ex(obj, "websocket", &ws) ||
	    !json_object_object_get_ex(obj, "limits", &lim) ||
	    !json_object_object_get_ex(ws, "max_message_bytes", &a) ||
	    !json_object_object_get_ex(lim, "max_message_bytes", &b) ||
	    json_object_get_int64(a) == json_object_get_int64(b))
		return 0;
	pav_cfg_join(sub, path, "websocket.max_message_bytes");
	return pav_cfg_fail(c, -EINVAL, sub, "differs from "
			    "limits.max_message_bytes; set it in one place");
}

static int vhost_finish(struct pav_cfg_ctx *c, json_object *obj, void *base,
			const char *path)
{
	struct pav_vhost_config *vc = base;
	int rc;

	rc = vhost_kind(c, obj, vc, path);
	if (!rc)
		rc = vhost_tls(c, vc, path);
	if (!rc)
		rc = vhost_message_size(c, obj, path);
	if (!rc)
		rc = vhost_unique(c, vc, path);
	/* DNS names are one in any case; lws compares them as bytes, and
	 * clients send them in lower case */
	for (size_t i = 0; !rc && i < vc->nhostnames; i++)
		for (char *p = vc->hostnames[i]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	if (!rc && !vc->ws_path)
		rc = pav_cfg_replace_str(c, &vc->ws_path, PAV_DEF_WS_PATH,
					 path);
	if (!rc && !vc->ns)
		rc = pav_cfg_replace_str(c, &vc->ns, "default", path);
	return rc;
}

/* ---------------------------------------------------------- vhosts */

void pav_limits_default(struct pav_limits *l)
{
	l->max_message_bytes = PAV_DEF_MAX_MESSAGE_BYTES;
	l->json_depth = PAV_DEF_JSON_DEPTH;
	l->messages_per_s = PAV_DEF_MESSAGES_PER_S;
	l->burst = PAV_DEF_BURST;
	l->abuse_close_after = PAV_DEF_ABUSE_CLOSE_AFTER;
	l->max_subscriptions = PAV_DEF_MAX_SUBSCRIPTIONS;
	l->max_connections_per_ip = PAV_DEF_MAX_CONNECTIONS_PER_IP;
	l->handshakes_per_s_per_ip = PAV_DEF_HANDSHAKES_PER_S_PER_IP;
	l->max_connections_per_user = PAV_DEF_MAX_CONNECTIONS_PER_USER;
	l->outbound_queue_bytes = PAV_DEF_OUTBOUND_QUEUE_BYTES;
	l->handshake_timeout_s = PAV_DEF_HANDSHAKE_TIMEOUT_S;
}

/* The vhost is zeroed by add_vhost; these are the non-zero defaults. */
static void vhost_reset(void *base)
{
	struct pav_vhost_config *vc = base;

	pav_limits_default(&vc->limits);
	vc->heartbeat_interval_s = PAV_DEF_HEARTBEAT_INTERVAL_S;
	vc->idle_timeout_s = PAV_DEF_IDLE_TIMEOUT_S;
	vc->leeway_s = PAV_DEF_LEEWAY_S;
	vc->api_max_body = PAV_DEF_API_MAX_BODY;
}

/* the header a trusted proxy names its client in, lower case as HTTP
 * header names are written; index = pav_vhost_config.proxy_forwarded */
static const char *const proxy_headers[] = {"x-forwarded-for", "forwarded",
					    NULL};

static const struct pav_cfg_field vhost_fields[] = {
	PAV_CFG_STR("name", VH(name), check_name),
	PAV_CFG_CUSTOM("listen", parse_listen),
	PAV_CFG_STRV("hostnames", VH(hostnames), VH(nhostnames), 0,
		     check_hostname),
	PAV_CFG_STR("namespace", VH(ns), check_name),
	PAV_CFG_SECTION("tls", tls_sec),
	PAV_CFG_SECTION("websocket", websocket_sec),
	PAV_CFG_SECTION("auth", auth_sec),
	PAV_CFG_SECTION("limits", limits_sec),
	PAV_CFG_CUSTOM("plugins", parse_plugins),
	PAV_CFG_SECTION("api", api_sec),
	PAV_CFG_SECTION("history", history_sec),
	PAV_CFG_BOOL("reuse_port", VH(reuse_port)),
	PAV_CFG_STRV("trusted_proxies", VH(trusted_proxies),
		     VH(ntrusted_proxies), 1, pav_cidr_check),
	PAV_CFG_ENUM("trusted_proxies_header", VH(proxy_forwarded),
		     proxy_headers),
	{0},
};
static const char *const vhost_required[] = {"name", "listen", NULL};
static const struct pav_cfg_section vhost_sec = {.fields = vhost_fields,
						 .required = vhost_required,
						 .reset = vhost_reset,
						 .finish = vhost_finish};

/* Counted before it is walked, so a failed load frees what it holds. */
static int add_vhost(struct pav_cfg_ctx *c, json_object *v, const char *path)
{
	struct pav_config *cfg = c->cfg;
	struct pav_vhost_config *vhosts, *vc;

	vhosts = realloc(cfg->vhosts, (cfg->nvhosts + 1) * sizeof(*vhosts));
	if (!vhosts)
		return pav_cfg_oom(c, path);
	cfg->vhosts = vhosts;
	vc = &vhosts[cfg->nvhosts];
	memset(vc, 0, sizeof(*vc));
	vc->file = c->file;
	vc->index = (int)cfg->nvhosts++;
	vc->file_index = index_in_file(cfg, (size_t)vc->index);
	return pav_cfg_walk(c, v, &vhost_sec, vc, path);
}

/* Appends: each file adds its vhosts to the earlier files'. */
static int parse_vhosts(struct pav_cfg_ctx *c, json_object *v, void *base,
			const char *path)
{
	char sub[PAV_CFG_KEYPATH];
	size_t n;
	int rc = 0;

	(void)base;
	if (!json_object_is_type(v, json_type_array))
		return pav_cfg_fail(c, -EINVAL, path,
				    "must be an array of objects");
	n = json_object_array_length(v);
	for (size_t i = 0; i < n && !rc; i++) {
		pav_cfg_join_index(sub, path, i);
		rc = add_vhost(c, json_object_array_get_idx(v, i), sub);
	}
	return rc;
}

/* ---------------------------------------------------------- log, store */

static const char *const log_levels[] = {"error", "warn", "info", "debug",
					 NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const store_backends[] = {"memory", "redis", NULL};
static const char *const redis_only[] = {"url", "shards", "sentinel",
					 "password_file",
					 "node_ttl_s", "command_timeout_ms",
					 "tls_ca_file", "tls_cert_file",
					 "tls_key_file", NULL};
static const char *const memory_only[] = {"history_max_bytes", NULL};
static const char *const tls_keys[] = {"tls_ca_file", "tls_cert_file",
				       "tls_key_file", NULL};
static const char *const event_loops[] = {"ev", "poll", "uv", NULL};

void pav_cfg_log_reset(void *base)
{
	struct pav_config *cfg = base;

	cfg->log_level = PAV_LOG_INFO;
	cfg->log_json = 1;
}

static const struct pav_cfg_field log_fields[] = {
	PAV_CFG_ENUM("level", CF(log_level), log_levels),
	PAV_CFG_ENUM("format", CF(log_json), log_formats), /* text 0, json 1 */
	{0},
};
static const struct pav_cfg_section log_sec = {.fields = log_fields,
					       .reset = pav_cfg_log_reset};

static void sentinel_free(struct pav_store_config *st)
{
	pav_cfg_free_strv(st->sentinels, st->nsentinels);
	free(st->sentinel_master);
	free(st->sentinel_master_user);
	free(st->sentinel_user);
	free(st->sentinel_password_file);
	st->sentinels = NULL;
	st->nsentinels = 0;
	st->sentinel_master = NULL;
	st->sentinel_master_user = NULL;
	st->sentinel_user = NULL;
	st->sentinel_password_file = NULL;
	st->sentinel_tls = 0;
}

/* A URL may hold a password: wiped before it is freed. */
static void urls_free(struct pav_store_config *st)
{
	for (size_t i = 0; i < st->nurls; i++)
		explicit_bzero(st->urls[i], strlen(st->urls[i]));
	pav_cfg_free_strv(st->urls, st->nurls);
	st->urls = NULL;
	st->nurls = 0;
}

void pav_config_forget_store_passwords(struct pav_config *cfg)
{
	for (size_t i = 0; i < cfg->store.nurls; i++)
		pav_redis_url_forget_password(cfg->store.urls[i]);
}

void pav_cfg_store_reset(void *base)
{
	struct pav_config *cfg = base;
	struct pav_store_config *st = &cfg->store;

	free(st->backend);
	urls_free(st);
	sentinel_free(st);
	free(st->password_file);
	free(st->tls_ca_file);
	free(st->tls_cert_file);
	free(st->tls_key_file);
	memset(st, 0, sizeof(*st));
	st->inbox_size = PAV_DEF_INBOX_SIZE;
	st->node_ttl_s = PAV_DEF_NODE_TTL_S;
	st->command_timeout_ms = PAV_DEF_COMMAND_TIMEOUT_MS;
	st->history_max_bytes = PAV_DEF_HISTORY_MAX_BYTES;
}

/* "url": one server, kept as the only entry of the shard list. */
static int parse_store_url(struct pav_cfg_ctx *c, json_object *v, void *base,
			   const char *path)
{
	struct pav_store_config *st = &((struct pav_config *)base)->store;
	const char *s;
	int rc = pav_cfg_get_checked_str(c, v, path, check_redis_url, &s);

	if (rc)
		return rc;
	urls_free(st);
	st->urls = calloc(2, sizeof(*st->urls));
	if (!st->urls || !(st->urls[0] = strdup(s)))
		return pav_cfg_oom(c, path);
	st->nurls = 1;
	return 0;
}

static int store_finish(struct pav_cfg_ctx *c, json_object *obj, void *base,
			const char *path)
{
	struct pav_config *cfg = base;
	struct pav_store_config *st = &cfg->store;
	int redis;
	char sub[PAV_CFG_KEYPATH];

	st->file = c->file;
	if (!st->backend &&
	    pav_cfg_replace_str(c, &st->backend, "memory", path))
		return -ENOMEM;
	redis = !strcmp(st->backend, "redis");
	if (pav_cfg_has(obj, "url") + pav_cfg_has(obj, "shards") +
	    pav_cfg_has(obj, "sentinel") > 1) {
		pav_cfg_join(sub, path, pav_cfg_has(obj, "url") ? "url"
							       : "shards");
		return pav_cfg_fail(c, -EINVAL, sub, "give one of \"url\", "
				    "\"shards\" or \"sentinel\"");
	}
	pav_cfg_join(sub, path, pav_cfg_has(obj, "shards") ? "shards" : "url");
	if (redis && !st->nurls && !st->nsentinels)
		return pav_cfg_fail(c, -EINVAL, sub, "required with "
				    "\"backend\": \"redis\"");
	if (!redis)
		return refuse_keys(c, obj, redis_only, path,
				   "only for \"backend\": \"redis\"");
	if (refuse_keys(c, obj, memory_only, path,
			"only for \"backend\": \"memory\" (Redis keeps "
			"each channel's history.<kind>.size)"))
		return -EINVAL;
	if (st->sentinel_master_user && !st->password_file) {
		pav_cfg_join(sub, path, "sentinel.master_user");
		return pav_cfg_fail(c, -EINVAL, sub, "needs \"password_file\" "
				    "(the user's password, in \"store\")");
	}
	if (!st->tls_cert_file != !st->tls_key_file) {
		pav_cfg_join(sub, path, st->tls_cert_file ? "tls_key_file"
							  : "tls_cert_file");
		return pav_cfg_fail(c, -EINVAL, sub, "required with \"%s\"",
				    st->tls_cert_file ? "tls_cert_file"
						      : "tls_key_file");
	}
	for (size_t i = 0; i < st->nurls; i++)
		if (!strncmp(st->urls[i], "rediss://", 9))
			return 0;
	if (st->nsentinels && st->sentinel_tls)
		return 0;
	return refuse_keys(c, obj, tls_keys, path,
			   "only with a rediss:// URL (TLS) or \"sentinel\": "
			   "{\"tls\": true}");
}

#define ST(m) offsetof(struct pav_config, store.m)

static void sentinel_reset(void *base)
{
	struct pav_store_config *st = &((struct pav_config *)base)->store;

	sentinel_free(st);
	st->sentinel_db = 0;
}

static int sentinel_finish(struct pav_cfg_ctx *c, json_object *obj,
			   void *base, const char *path)
{
	const struct pav_store_config *st = &((struct pav_config *)base)->store;
	char sub[PAV_CFG_KEYPATH];

	(void)obj;
	if (st->sentinel_user && !st->sentinel_password_file) {
		pav_cfg_join(sub, path, "sentinel_user");
		return pav_cfg_fail(c, -EINVAL, sub, "needs "
				    "\"sentinel_password_file\" (the user's "
				    "password)");
	}
	if (st->nsentinels <= PAV_REDIS_MAX_SENTINELS)
		return 0;
	pav_cfg_join(sub, path, "addresses");
	return pav_cfg_fail(c, -EINVAL, sub, "at most %d sentinels",
			    PAV_REDIS_MAX_SENTINELS);
}

static const struct pav_cfg_field sentinel_fields[] = {
	PAV_CFG_STRV("addresses", ST(sentinels), ST(nsentinels), 1,
		     check_sentinel_address),
	PAV_CFG_STR("master", ST(sentinel_master), check_master_name),
	PAV_CFG_INT("db", ST(sentinel_db), 0, 65535),
	PAV_CFG_STR("master_user", ST(sentinel_master_user), check_user_name),
	PAV_CFG_STR("sentinel_user", ST(sentinel_user), check_user_name),
	PAV_CFG_FILE("sentinel_password_file", ST(sentinel_password_file)),
	PAV_CFG_BOOL("tls", ST(sentinel_tls)),
	{0},
};
static const char *const sentinel_required[] = {"addresses", "master", NULL};
static const struct pav_cfg_section sentinel_sec = {
	.fields = sentinel_fields,
	.required = sentinel_required,
	.reset = sentinel_reset,
	.finish = sentinel_finish,
};

static const struct pav_cfg_field store_fields[] = {
	PAV_CFG_ENUM_STR("backend", ST(backend), store_backends),
	PAV_CFG_CUSTOM("url", parse_store_url),
	PAV_CFG_STRV("shards", ST(urls), ST(nurls), 1, check_redis_url),
	PAV_CFG_SECTION("sentinel", sentinel_sec),
	PAV_CFG_FILE("password_file", ST(password_file)),
	PAV_CFG_FILE("tls_ca_file", ST(tls_ca_file)),
	PAV_CFG_FILE("tls_cert_file", ST(tls_cert_file)),
	PAV_CFG_FILE("tls_key_file", ST(tls_key_file)),
	PAV_CFG_INT("node_ttl_s", ST(node_ttl_s), 2, 3600),
	PAV_CFG_INT("command_timeout_ms", ST(command_timeout_ms), 50, 60000),
	PAV_CFG_SIZE("inbox_size", ST(inbox_size), 1, 100000),
	PAV_CFG_SIZE("history_max_bytes", ST(history_max_bytes), 65536,
		     (long long)1 << 40),
	{0},
};
static const struct pav_cfg_section store_sec = {
	.fields = store_fields,
	.reset = pav_cfg_store_reset,
	.finish = store_finish,
};

/* ---------------------------------------------------------- top level */

/* Only the main file names the drop-in directory: one level of includes,
 * read in a known order. */
static int parse_include(struct pav_cfg_ctx *c, json_object *v, void *base,
			 const char *path)
{
	struct pav_config *cfg = base;
	const char *s = NULL;
	int rc;

	if (!c->is_main)
		return pav_cfg_fail(c, -EINVAL, path,
				    "allowed only in the main file");
	rc = pav_cfg_get_str(c, v, path, &s);
	if (rc)
		return rc;
	free(cfg->include_dir);
	cfg->include_dir = pav_cfg_resolve(c, s);
	return cfg->include_dir ? 0 : pav_cfg_oom(c, path);
}

static const struct pav_cfg_field top_fields[] = {
	PAV_CFG_CUSTOM("include", parse_include),
	PAV_CFG_PATHV("plugin_dirs", CF(plugin_dirs), CF(nplugin_dirs), 0,
		      NULL),
	PAV_CFG_SECTION("log", log_sec),
	PAV_CFG_SECTION("store", store_sec),
	PAV_CFG_ENUM_STR("event_loop", CF(event_loop), event_loops),
	PAV_CFG_CUSTOM("vhosts", parse_vhosts),
	{0},
};
const struct pav_cfg_section pav_cfg_top_section = {.fields = top_fields};
