/*
 * proxy.h — who the client is behind a trusted proxy: address ranges
 * (CIDR), the X-Forwarded-For list and the Forwarded header (RFC 7239).
 * Pure functions: unit-tested (test/unit/test_proxy.c) and fuzzed
 * (test/fuzz/fuzz_proxy.c).
 */
#ifndef PAV_PROXY_H
#define PAV_PROXY_H

#include <stddef.h>

#include <netinet/in.h>

/* An address range: an IPv4 one is kept as its IPv4-mapped IPv6 form. */
struct pav_cidr {
	unsigned char addr[16];
	int bits; /* of the 128 */
};

/* "10.0.0.0/8", "192.0.2.7" (/32), "fd00::/8", "::1" (/128): NULL when s
 * is one, else why not (a config check: pav_cfg_check_fn). */
const char *pav_cidr_check(const char *s);
/* Parses s (checked by pav_cidr_check()): 0, or -EINVAL. */
int pav_cidr_parse(const char *s, struct pav_cidr *out);
/* Is the address text ip (IPv4 or IPv6) within one of the n ranges? */
int pav_cidr_any(const struct pav_cidr *r, size_t n, const char *ip);

/*
 * The client of a request that came through trusted proxies, from its
 * X-Forwarded-For list (len bytes, not NUL-terminated): the rightmost
 * address that is not one of the trusted ranges (each proxy appends the
 * address it got the request from, so what lies left of an untrusted one
 * is that client's to write), or the leftmost when all of them are.  The
 * address goes to out as text, IPv4-mapped IPv6 as IPv4.  Returns 0, or
 * -EINVAL when an entry is not an IP address, the list is empty or longer
 * than PAV_PROXY_HOPS_MAX entries: the request then counts as the proxy's.
 */
#define PAV_PROXY_HOPS_MAX 32
/* the longest X-Forwarded-For or Forwarded value read (a longer one is
 * not read: the request counts as the proxy's) */
#define PAV_PROXY_HEADER_MAX 1023
int pav_proxy_client(const char *xff, size_t len, const struct pav_cidr *r,
		     size_t n, char *out, size_t outlen);

/*
 * The same walk on a Forwarded header (RFC 7239; len bytes, not
 * NUL-terminated; several header lines joined with commas): its elements,
 * at most PAV_PROXY_HOPS_MAX, are read from the right, each by its "for="
 * node: an IPv4 address, or a quoted "[IPv6]", either with a port
 * ("\"192.0.2.1:443\"", "\"[2001:db8::1]:443\""), which is dropped.
 * Parameter names are matched in any case; values are tokens or quoted
 * strings (with backslash escapes); other parameters are not read.
 * Returns 0, or -EINVAL when the header does not parse (an empty element,
 * "for=" twice in one element, a bad quoted string...), or when the
 * walk meets, before the client, an element without "for=" or whose node
 * is "unknown", obfuscated ("_hidden") or not an address: the request
 * then counts as the proxy's.  Nodes left of the client are not read.
 */
int pav_proxy_forwarded(const char *fwd, size_t len, const struct pav_cidr *r,
			size_t n, char *out, size_t outlen);

#endif
