/*
 * fuzz_proxy.c — libFuzzer target for trusted_proxies ranges, the
 * X-Forwarded-For list and the Forwarded header (proxy.c).  The input, up
 * to its first NUL, is a range; the whole input (NULs included) is a list
 * and a Forwarded header.  Checked:
 *
 * - pav_cidr_check() and pav_cidr_parse() agree, and a parsed range has
 *   0..128 bits;
 * - a client read from a list is an address whose text, read again as a
 *   list of one, gives itself (the text is the normal form);
 * - a list with a NUL byte in an entry that is read gives no client;
 * - a client read from a Forwarded header, written again as a for= node
 *   (bracketed and quoted when IPv6), gives itself.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "proxy.h"

#define RANGE_MAX 128

static struct pav_cidr trusted[3];
static int ready;

static void setup(void)
{
	CHECK(!pav_cidr_parse("10.0.0.0/8", &trusted[0]));
	CHECK(!pav_cidr_parse("fd00::/8", &trusted[1]));
	CHECK(!pav_cidr_parse("192.0.2.7", &trusted[2]));
	ready = 1;
}

static void range(const uint8_t *data, size_t size)
{
	char s[RANGE_MAX + 1];
	size_t len = strnlen((const char *)data, size);
	struct pav_cidr c;

	if (len > RANGE_MAX)
		return;
	memcpy(s, data, len);
	s[len] = '\0';
	CHECK(!pav_cidr_check(s) == !pav_cidr_parse(s, &c));
	if (!pav_cidr_check(s))
		CHECK(c.bits >= 0 && c.bits <= 128);
}

static void list(const uint8_t *data, size_t size)
{
	char out[64], again[64];

	if (pav_proxy_client((const char *)data, size, trusted, 3, out,
			     sizeof(out)))
		return;
	CHECK(!pav_proxy_client(out, strlen(out), trusted, 3, again,
				sizeof(again)));
	CHECK(!strcmp(out, again));
}

static void forwarded(const uint8_t *data, size_t size)
{
	char out[64], node[80], again[64];

	if (pav_proxy_forwarded((const char *)data, size, trusted, 3, out,
				sizeof(out)))
		return;
	snprintf(node, sizeof(node),
		 strchr(out, ':') ? "for=\"[%s]\"" : "for=%s", out);
	CHECK(!pav_proxy_forwarded(node, strlen(node), trusted, 3, again,
				   sizeof(again)));
	CHECK(!strcmp(out, again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	range(data, size);
	list(data, size);
	forwarded(data, size);
	return 0;
}
