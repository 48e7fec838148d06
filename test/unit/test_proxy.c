/*
 * test_proxy.c — address ranges, the X-Forwarded-For list and the
 * Forwarded header (proxy.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy.h"

/* ---- ranges ------------------------------------------------------------ */

static void ranges_that_are_accepted(void **state)
{
	static const char *const ok[] = {
		"10.0.0.0/8", "192.0.2.7", "192.0.2.7/32", "0.0.0.0/0",
		"127.0.0.0/8", "::1", "::1/128", "fd00::/8", "::/0",
		"2001:db8::/32", "::ffff:10.0.0.0/104",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		assert_null(pav_cidr_check(ok[i]));
}

static void ranges_that_are_refused(void **state)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/8x",
		"10.0.0.0/-1", "10.0.0", "host.example", "fd00::/129",
		"fd00::1/8", "10.0.0.0 /8", " 10.0.0.0", "10.0.0.0/8/8",
		"[::1]", "10.0.0.0/0008x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_non_null(pav_cidr_check(bad[i]));
	assert_string_equal(pav_cidr_check("10.0.0.1/8"),
			    "the address has bits set past the prefix length");
	assert_string_equal(pav_cidr_check("10.0.0.0/33"),
			    "the prefix length must be 0 to 32");
}

static struct pav_cidr r[4];

static int parse_ranges(void **state)
{
	(void)state;
	return pav_cidr_parse("10.0.0.0/8", &r[0]) ||
	       pav_cidr_parse("192.0.2.7", &r[1]) ||
	       pav_cidr_parse("fd00::/8", &r[2]) ||
	       pav_cidr_parse("172.16.0.0/12", &r[3]);
}

static void addresses_in_and_out_of_ranges(void **state)
{
	(void)state;
	assert_true(pav_cidr_any(r, 4, "10.1.2.3"));
	assert_true(pav_cidr_any(r, 4, "10.255.255.255"));
	assert_false(pav_cidr_any(r, 4, "11.0.0.0"));
	assert_true(pav_cidr_any(r, 4, "192.0.2.7"));
	assert_false(pav_cidr_any(r, 4, "192.0.2.8"));
	assert_true(pav_cidr_any(r, 4, "fd12::1"));
	assert_false(pav_cidr_any(r, 4, "fe00::1"));
	assert_true(pav_cidr_any(r, 4, "172.31.255.1"));
	assert_false(pav_cidr_any(r, 4, "172.32.0.1"));
	/* an IPv4-mapped address is its IPv4 address */
	assert_true(pav_cidr_any(r, 4, "::ffff:10.0.0.1"));
	assert_false(pav_cidr_any(r, 4, "not-an-ip"));
	assert_false(pav_cidr_any(r, 0, "10.1.2.3"));
	assert_false(pav_cidr_any(NULL, 0, "10.1.2.3"));
}

static void everything_and_nothing(void **state)
{
	struct pav_cidr all4, all6;

	(void)state;
	assert_int_equal(pav_cidr_parse("0.0.0.0/0", &all4), 0);
	assert_int_equal(pav_cidr_parse("::/0", &all6), 0);
	assert_true(pav_cidr_any(&all4, 1, "203.0.113.9"));
	assert_false(pav_cidr_any(&all4, 1, "2001:db8::1"));
	assert_true(pav_cidr_any(&all6, 1, "2001:db8::1"));
	assert_true(pav_cidr_any(&all6, 1, "203.0.113.9"));
	assert_int_equal(pav_cidr_parse("10.0.0.1/8", &all4), -EINVAL);
}

/* ---- X-Forwarded-For ---------------------------------------------------- */

static const char *client(const char *xff)
{
	static char out[64];

	if (pav_proxy_client(xff, strlen(xff), r, 4, out, sizeof(out)))
		return "(none)";
	return out;
}

static void one_address_is_the_client(void **state)
{
	(void)state;
	assert_string_equal(client("203.0.113.9"), "203.0.113.9");
	assert_string_equal(client("  203.0.113.9\t"), "203.0.113.9");
	assert_string_equal(client("2001:DB8::1"), "2001:db8::1");
	assert_string_equal(client("::ffff:203.0.113.9"), "203.0.113.9");
}

static void rightmost_untrusted_address_is_the_client(void **state)
{
	(void)state;
	/* what the client wrote itself stays left of its own address */
	assert_string_equal(client("1.1.1.1, 203.0.113.9"), "203.0.113.9");
	assert_string_equal(client("1.1.1.1, 203.0.113.9, 10.0.0.5"),
			    "203.0.113.9");
	assert_string_equal(client("203.0.113.9,10.0.0.5,192.0.2.7"),
			    "203.0.113.9");
	/* left of the client anything goes, even what is no address */
	assert_string_equal(client("junk, 203.0.113.9, 10.0.0.5"),
			    "203.0.113.9");
}

static void all_trusted_gives_the_leftmost(void **state)
{
	(void)state;
	assert_string_equal(client("10.0.0.1, 10.0.0.2"), "10.0.0.1");
	assert_string_equal(client("fd00::7"), "fd00::7");
}

static void unusable_lists_are_refused(void **state)
{
	static const char *const bad[] = {
		"", " ", ",", "203.0.113.9,", ",203.0.113.9",
		"203.0.113.9,,10.0.0.5", "unknown", "203.0.113.9:443",
		"[2001:db8::1]", "203.0.113.9, junk", "203.0.113.9 10.0.0.5",
		"203.0.113.999",
	};
	char many[33 * 10 + 1] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_string_equal(client(bad[i]), "(none)");
	for (int i = 0; i < 33; i++)
		strcat(many, i ? ",10.0.0.1" : "10.0.0.1");
	assert_string_equal(client(many), "(none)");
	many[strlen(many) - strlen(",10.0.0.1")] = '\0'; /* 32: fine */
	assert_string_equal(client(many), "10.0.0.1");
}

static void list_is_read_to_its_length_only(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(pav_proxy_client("203.0.113.9, 10.0.0.5", 11, r, 4,
					  out, sizeof(out)),
			 0);
	assert_string_equal(out, "203.0.113.9");
	/* no room for the text */
	assert_int_equal(pav_proxy_client("203.0.113.9", 11, r, 4, out, 4),
			 -EINVAL);
}

/* ---- Forwarded --------------------------------------------------------- */

static const char *fwd_client(const char *fwd)
{
	static char out[64];

	if (pav_proxy_forwarded(fwd, strlen(fwd), r, 4, out, sizeof(out)))
		return "(none)";
	return out;
}

static void forwarded_ipv4_node_is_the_client(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("for=203.0.113.9"), "203.0.113.9");
	assert_string_equal(fwd_client("  for=203.0.113.9 \t"), "203.0.113.9");
	assert_string_equal(fwd_client("for=\"203.0.113.9\""), "203.0.113.9");
}

static void forwarded_quoted_ipv6_node_is_the_client(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("for=\"[2001:DB8::1]\""), "2001:db8::1");
	assert_string_equal(fwd_client("for=\"[::ffff:203.0.113.9]\""),
			    "203.0.113.9");
}

static void forwarded_port_is_dropped(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("for=\"203.0.113.9:443\""),
			    "203.0.113.9");
	assert_string_equal(fwd_client("for=\"[2001:db8::1]:4711\""),
			    "2001:db8::1");
	assert_string_equal(fwd_client("for=\"[2001:db8::1]:_port-9.x\""),
			    "2001:db8::1");
	assert_string_equal(fwd_client("for=\"203.0.113.9:_p\""),
			    "203.0.113.9");
}

static void forwarded_parameter_names_in_any_case(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("For=203.0.113.9"), "203.0.113.9");
	assert_string_equal(fwd_client("FOR=\"[2001:db8::1]\""), "2001:db8::1");
	assert_string_equal(fwd_client("fOr=203.0.113.9;PROTO=https"),
			    "203.0.113.9");
}

static void forwarded_other_parameters_are_not_read(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("for=192.0.2.43;by=203.0.113.60;"
				       "proto=http;host=example.com"),
			    "192.0.2.43");
	assert_string_equal(fwd_client("proto=https;for=203.0.113.9"),
			    "203.0.113.9");
	assert_string_equal(fwd_client("by=\"[2001:db8::9]:80\";"
				       "for=203.0.113.9;ext=\"a,b;c=d\""),
			    "203.0.113.9");
	/* blanks around ';', empty parameters: both read */
	assert_string_equal(fwd_client("for=203.0.113.9 ; proto=https;"),
			    "203.0.113.9");
	assert_string_equal(fwd_client(";;for=203.0.113.9;;"), "203.0.113.9");
}

static void forwarded_quoted_strings_with_escapes(void **state)
{
	(void)state;
	/* an escaped character is itself */
	assert_string_equal(fwd_client("for=\"\\2\\03.0.113.9\""),
			    "203.0.113.9");
	assert_string_equal(fwd_client("for=\"[2001:db8::1]\\:443\""),
			    "2001:db8::1");
	/* a comma, a semicolon or a quote inside a quoted string is no
	 * separator */
	assert_string_equal(fwd_client("for=203.0.113.9;"
				       "host=\"a,for=10.0.0.1\""),
			    "203.0.113.9");
	assert_string_equal(fwd_client("for=203.0.113.9;x=\"a\\\",b\""),
			    "203.0.113.9");
}

static void forwarded_rightmost_untrusted_is_the_client(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("for=198.51.100.1, for=203.0.113.9"),
			    "203.0.113.9");
	assert_string_equal(fwd_client("for=198.51.100.1,for=203.0.113.9,"
				       "for=10.0.0.5;proto=https"),
			    "203.0.113.9");
	assert_string_equal(fwd_client("for=203.0.113.9, for=\"[fd00::1]:80\","
				       " for=192.0.2.7"),
			    "203.0.113.9");
	/* left of the client anything goes that parses */
	assert_string_equal(fwd_client("for=unknown, for=_hidden, proto=http,"
				       " for=203.0.113.9, for=10.0.0.5"),
			    "203.0.113.9");
	/* all trusted: the leftmost */
	assert_string_equal(fwd_client("for=10.0.0.1, for=10.0.0.2"),
			    "10.0.0.1");
}

/* Several header lines are one list, joined with commas (RFC 7230). */
static void forwarded_several_lines_are_one_list(void **state)
{
	(void)state;
	assert_string_equal(fwd_client("for=198.51.100.1,for=203.0.113.9;"
				       "proto=https,for=10.0.0.5"),
			    "203.0.113.9");
	assert_string_equal(fwd_client("for=198.51.100.1;by=10.0.0.5 ,"
				       "for=\"[2001:db8::1]:1\""),
			    "2001:db8::1");
}

static void forwarded_unknown_or_obfuscated_gives_none(void **state)
{
	static const char *const bad[] = {
		"for=unknown", "for=UNKNOWN", "for=\"unknown:443\"",
		"for=_hidden", "for=\"_hidden:_port\"", "for=_x.y-z",
		"for=203.0.113.9, for=unknown", "for=203.0.113.9, for=_hidden",
		/* an element without for= between client and us */
		"for=203.0.113.9, proto=https", "for=203.0.113.9, ;",
		"for=203.0.113.9, by=10.0.0.5",
		/* met under trusted proxies before the client */
		"for=203.0.113.9, for=unknown, for=10.0.0.5",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_string_equal(fwd_client(bad[i]), "(none)");
}

static void forwarded_malformed_headers_give_no_client(void **state)
{
	static const char *const bad[] = {
		"", " ", ",", ";", "for=203.0.113.9,", ",for=203.0.113.9",
		"for=203.0.113.9,,for=10.0.0.5",
		"for=203.0.113.9, ,for=10.0.0.5",
		"for", "for=", "=203.0.113.9", "for =203.0.113.9",
		"for= 203.0.113.9", "for=203.0.113.9 for=10.0.0.5",
		"for=203.0.113.9;for=198.51.100.1", "for=1.2.3.4;FOR=1.2.3.4",
		/* unquoted, a port or an IPv6 address is no token */
		"for=203.0.113.9:443", "for=[2001:db8::1]", "for=2001:db8::1",
		/* quoted strings that do not end, or hold a control byte */
		"for=\"203.0.113.9", "for=\"203.0.113.9\\\"", "for=\"a\x01\"",
		"for=203.0.113.9;x=\"a\x7f\"", "for=\"\"",
		/* nodes that are no address */
		"for=\"2001:db8::1\"", "for=\"[203.0.113.9]\"", "for=\"[::1\"",
		"for=\"[::1]443\"", "for=\"[::1]:\"", "for=\"203.0.113.9:\"",
		"for=\"203.0.113.9:123456\"", "for=\"203.0.113.9:44a\"",
		"for=\"203.0.113.9:_\"", "for=\"203.0.113.9:_a b\"",
		"for=203.0.113.999", "for=\"[fe80::1%eth0]\"",
		"for=\" 203.0.113.9\"", "for=host.example",
		"for=203.0.113.9;proto=a@b", "for=203.0.113.9;(x)=1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_string_equal(fwd_client(bad[i]), "(none)");
}

static void forwarded_header_is_bounded(void **state)
{
	char many[33 * 14 + 1] = "", node[80];

	(void)state;
	for (int i = 0; i < 33; i++)
		strcat(many, i ? ",for=10.0.0.1" : "for=10.0.0.1");
	assert_string_equal(fwd_client(many), "(none)");
	many[strlen(many) - strlen(",for=10.0.0.1")] = '\0'; /* 32: fine */
	assert_string_equal(fwd_client(many), "10.0.0.1");
	/* a node too long to be an address and a port */
	snprintf(node, sizeof(node), "for=\"[2001:db8::1]:_%s\"",
		 "0123456789012345678901234567890123456789012345678901");
	assert_string_equal(fwd_client(node), "(none)");
	/* read to its length only; a NUL byte is no character of it */
	assert_int_equal(pav_proxy_forwarded("for=203.0.113.9, for=x", 15, r, 4,
					     node, sizeof(node)),
			 0);
	assert_string_equal(node, "203.0.113.9");
	assert_int_equal(pav_proxy_forwarded("for=\"1.2.3.4\0\"", 14, r, 4,
					     node, sizeof(node)),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ranges_that_are_accepted),
		cmocka_unit_test(ranges_that_are_refused),
		cmocka_unit_test(addresses_in_and_out_of_ranges),
		cmocka_unit_test(everything_and_nothing),
		cmocka_unit_test(one_address_is_the_client),
		cmocka_unit_test(rightmost_untrusted_address_is_the_client),
		cmocka_unit_test(all_trusted_gives_the_leftmost),
		cmocka_unit_test(unusable_lists_are_refused),
		cmocka_unit_test(list_is_read_to_its_length_only),
		cmocka_unit_test(forwarded_ipv4_node_is_the_client),
		cmocka_unit_test(forwarded_quoted_ipv6_node_is_the_client),
		cmocka_unit_test(forwarded_port_is_dropped),
		cmocka_unit_test(forwarded_parameter_names_in_any_case),
		cmocka_unit_test(forwarded_other_parameters_are_not_read),
		cmocka_unit_test(forwarded_quoted_strings_with_escapes),
		cmocka_unit_test(forwarded_rightmost_untrusted_is_the_client),
		cmocka_unit_test(forwarded_several_lines_are_one_list),
		cmocka_unit_test(forwarded_unknown_or_obfuscated_gives_none),
		cmocka_unit_test(forwarded_malformed_headers_give_no_client),
		cmocka_unit_test(forwarded_header_is_bounded),
	};

	return cmocka_run_group_tests(tests, parse_ranges, NULL);
}
