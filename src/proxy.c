/*
 * proxy.c — who the client is behind a trusted proxy (see proxy.h).
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0,
					     0, 0, 0, 0, 0xff, 0xff};

/* An IPv4 or IPv6 address of len bytes, as 16 bytes (IPv4 mapped);
 * 0, or -EINVAL.  *v4 says which it was written as. */
static int parse_ip(const char *s, size_t len, unsigned char a[16], int *v4)
{
	char buf[INET6_ADDRSTRLEN];

	if (!len || len >= sizeof(buf) || memchr(s, '\0', len))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*v4 = inet_pton(AF_INET, buf, a + 12) == 1;
	if (*v4) {
		memcpy(a, v4_mapped, sizeof(v4_mapped));
		return 0;
	}
	return inet_pton(AF_INET6, buf, a) == 1 ? 0 : -EINVAL;
}

/* The prefix length after '/': digits only, at most max. */
static int parse_bits(const char *s, int max)
{
	int bits = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || (bits = bits * 10 + *s - '0') > max)
			return -1;
	}
	return bits;
}

static int host_bits_clear(const unsigned char a[16], int bits)
{
	for (int i = bits; i < 128; i++)
		if (a[i / 8] & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

static const char *cidr_read(const char *s, struct pav_cidr *out)
{
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	int v4, bits;

	if (parse_ip(s, len, out->addr, &v4))
		return "not an IPv4 or IPv6 address, or a range of them "
		       "(\"10.0.0.0/8\", \"fd00::/8\")";
	if (!slash) {
		out->bits = 128;
		return NULL;
	}
	if ((bits = parse_bits(slash + 1, v4 ? 32 : 128)) < 0)
		return v4 ? "the prefix length must be 0 to 32"
			  : "the prefix length must be 0 to 128";
	out->bits = v4 ? 96 + bits : bits;
	if (!host_bits_clear(out->addr, out->bits))
		return "the address has bits set past the prefix length";
	return NULL;
}

const char *pav_cidr_check(const char *s)
{
	struct pav_cidr c;

	return cidr_read(s, &c);
}

int pav_cidr_parse(const char *s, struct pav_cidr *out)
{
	return cidr_read(s, out) ? -EINVAL : 0;
}

static int in_range(const struct pav_cidr *r, const unsigned char a[16])
{
	int whole = r->bits / 8, rest = r->bits % 8;

	if (memcmp(r->addr, a, (size_t)whole))
		return 0;
	return !rest || !((r->addr[whole] ^ a[whole]) & (0xff00 >> rest));
}

static int any_range(const struct pav_cidr *r, size_t n,
		     const unsigned char a[16])
{
	for (size_t i = 0; i < n; i++)
		if (in_range(&r[i], a))
			return 1;
	return 0;
}

int pav_cidr_any(const struct pav_cidr *r, size_t n, const char *ip)
{
	unsigned char a[16];
	int v4;

	return !parse_ip(ip, strlen(ip), a, &v4) && any_range(r, n, a);
}

/* ---- X-Forwarded-For ------------------------------------------------- */

struct span {
	const char *s;
	size_t len;
};

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Splits the list at commas, each entry without its blanks; the number of
 * entries, or -EINVAL (an empty entry, too many). */
static int split(const char *xff, size_t len, struct span *e)
{
	size_t i = 0;
	int n = 0;

	for (;;) {
		size_t start, end;

		while (i < len && is_ows(xff[i]))
			i++;
		start = i;
		while (i < len && xff[i] != ',')
			i++;
		end = i;
		while (end > start && is_ows(xff[end - 1]))
			end--;
		if (end == start || n == PAV_PROXY_HOPS_MAX)
			return -EINVAL;
		e[n++] = (struct span){xff + start, end - start};
		if (i == len)
			return n;
		i++; /* the comma */
	}
}

static int write_ip(const unsigned char a[16], char *out, size_t outlen)
{
	int v4 = !memcmp(a, v4_mapped, sizeof(v4_mapped));

	return inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a + 12 : a, out,
			 (socklen_t)outlen)
		       ? 0
		       : -EINVAL;
}

int pav_proxy_client(const char *xff, size_t len, const struct pav_cidr *r,
		     size_t n, char *out, size_t outlen)
{
	struct span e[PAV_PROXY_HOPS_MAX];
	unsigned char a[16];
	int count = split(xff, len, e), v4;

	if (count < 0)
		return -EINVAL;
	for (int i = count - 1; i >= 0; i--) {
		if (parse_ip(e[i].s, e[i].len, a, &v4))
			return -EINVAL;
		if (!i || !any_range(r, n, a))
			return write_ip(a, out, outlen);
	}
	return -EINVAL; /* not reached: count >= 1 */
}

/* ---- Forwarded (RFC 7239) -------------------------------------------- */

/* An element's for= value as written: a token, or a quoted string with its
 * quotes; s is NULL when the element has none. */
struct fwd_elem {
	const char *s;
	size_t len;
};

struct cursor {
	const char *s;
	size_t len, i;
};

/* the longest node read: "[" IPv6 "]:" port, with room to spare */
#define NODE_MAX 64

static int is_alnum(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') ||
	       ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
}

static int is_tchar(unsigned char ch)
{
	return is_alnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void skip_ows(struct cursor *c)
{
	while (c->i < c->len && is_ows(c->s[c->i]))
		c->i++;
}

static size_t token_len(const struct cursor *c)
{
	size_t j = c->i;

	while (j < c->len && is_tchar((unsigned char)c->s[j]))
		j++;
	return j - c->i;
}

/* The quoted string at c->i, its quotes included: its length, or 0 when
 * it does not end or holds a control character (escaped or not). */
static size_t quoted_len(const struct cursor *c)
{
	for (size_t j = c->i + 1; j < c->len; j++) {
		unsigned char ch = (unsigned char)c->s[j];

		if (ch == '"')
			return j + 1 - c->i;
		if (ch == '\\' && ++j < c->len)
			ch = (unsigned char)c->s[j];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	return 0;
}

/* One parameter, name=value; the value of "for" (any case) goes to *e,
 * whose second one in an element is refused.  0, or -EINVAL. */
static int read_pair(struct cursor *c, struct fwd_elem *e)
{
	size_t name = token_len(c), value;
	int is_for = name == 3 && !strncasecmp(c->s + c->i, "for", 3);

	if (!name)
		return -EINVAL;
	c->i += name;
	if (c->i == c->len || c->s[c->i] != '=')
		return -EINVAL;
	c->i++;
	value = c->i < c->len && c->s[c->i] == '"' ? quoted_len(c)
						   : token_len(c);
	if (!value || (is_for && e->s))
		return -EINVAL;
	if (is_for)
		*e = (struct fwd_elem){c->s + c->i, value};
	c->i += value;
	return 0;
}

/* One element, up to the comma after it or the end: parameters separated
 * by ';' (empty ones allowed, as the grammar has them; blanks around
 * ';' too).  0, or -EINVAL. */
static int read_element(struct cursor *c, struct fwd_elem *e)
{
	*e = (struct fwd_elem){NULL, 0};
	for (;;) {
		skip_ows(c);
		if (c->i < c->len && c->s[c->i] != ';' && c->s[c->i] != ',' &&
		    read_pair(c, e))
			return -EINVAL;
		skip_ows(c);
		if (c->i == c->len || c->s[c->i] == ',')
			return 0;
		if (c->s[c->i] != ';')
			return -EINVAL;
		c->i++;
	}
}

/* The elements of the whole header, each checked; their number, or
 * -EINVAL (an empty element, too many, one that does not parse). */
static int fwd_split(const char *fwd, size_t len, struct fwd_elem *e)
{
	struct cursor c = {fwd, len, 0};
	int n = 0;

	for (;;) {
		skip_ows(&c);
		if (c.i == len || fwd[c.i] == ',' || n == PAV_PROXY_HOPS_MAX)
			return -EINVAL;
		if (read_element(&c, &e[n++]))
			return -EINVAL;
		if (c.i == len)
			return n;
		c.i++; /* the comma */
	}
}

/* The node of a for= value, its quotes and escapes undone (fwd_split
 * checked them): its length, or -EINVAL when too long for an address. */
static int unquote(const struct fwd_elem *e, char buf[NODE_MAX])
{
	size_t n = 0;

	if (e->s[0] != '"') {
		if (e->len >= NODE_MAX)
			return -EINVAL;
		memcpy(buf, e->s, e->len);
		return (int)e->len;
	}
	for (size_t j = 1; j + 1 < e->len; j++) {
		if (e->s[j] == '\\')
			j++;
		if (n == NODE_MAX)
			return -EINVAL;
		buf[n++] = e->s[j];
	}
	return (int)n;
}

/* A node's port: 1 to 5 digits, or obfuscated ("_" then letters, digits,
 * '.', '_', '-'); it is not kept. */
static int port_ok(const char *s, size_t len)
{
	int obf = len > 1 && s[0] == '_';

	if (!len || (!obf && len > 5))
		return 0;
	for (size_t i = obf; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (obf ? !is_alnum(ch) && !strchr("._-", ch)
			: ch < '0' || ch > '9')
			return 0;
	}
	return 1;
}

/* A node, "192.0.2.1" or "[2001:db8::1]", either with ":port": 0 and its
 * address, or -EINVAL ("unknown", an obfuscated "_name", anything else). */
static int node_ip(const char *s, size_t len, unsigned char a[16])
{
	const char *end = s + len, *ip = s, *after;
	int v6 = len && s[0] == '[', v4;

	if (v6) {
		if (!(after = memchr(s, ']', len)))
			return -EINVAL;
		ip = s + 1;
		after++;
	} else if (!(after = memchr(s, ':', len))) {
		after = end;
	}
	if (after != end &&
	    (*after != ':' || !port_ok(after + 1, (size_t)(end - after - 1))))
		return -EINVAL;
	if (parse_ip(ip, (size_t)(after - ip - v6), a, &v4) || v4 == v6)
		return -EINVAL;
	return 0;
}

int pav_proxy_forwarded(const char *fwd, size_t len, const struct pav_cidr *r,
			size_t n, char *out, size_t outlen)
{
	struct fwd_elem e[PAV_PROXY_HOPS_MAX];
	char node[NODE_MAX];
	unsigned char a[16];
	int count = fwd_split(fwd, len, e), nlen;

	if (count < 0)
		return -EINVAL;
	for (int i = count - 1; i >= 0; i--) {
		if (!e[i].s || (nlen = unquote(&e[i], node)) < 0 ||
		    node_ip(node, (size_t)nlen, a))
			return -EINVAL;
		if (!i || !any_range(r, n, a))
			return write_ip(a, out, outlen);
	}
	return -EINVAL; /* not reached: count >= 1 */
}
