/*
 * proxy.c — who the client is behind a trusted proxy (see proxy.h).
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

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
