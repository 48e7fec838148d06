/*
 * proxy.h — who the client is behind a trusted proxy: address ranges
 * (CIDR) and the X-Forwarded-For list.  Pure functions: unit-tested
 * (test/unit/test_proxy.c) and fuzzed (test/fuzz/fuzz_proxy.c).
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
int pav_proxy_client(const char *xff, size_t len, const struct pav_cidr *r,
		     size_t n, char *out, size_t outlen);

#endif
