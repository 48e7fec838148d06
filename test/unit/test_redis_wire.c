/*
 * test_redis_wire.c — the header line of the Redis broker's messages and
 * the token revocation message every node hears (pav_rb_wire_parse,
 * pav_rb_header and pav_rb_revocation_msg in src/redis_broker.c), and a
 * revocation's key as a node reads it back (pav_rb_revoked_parse).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "redis_node.h"

#define NODE "00c0ffee00c0ffee"

/* Parses a copy of line (the parser writes into it). */
static int parse(const char *line, char *buf, size_t len, struct rb_wire *w)
{
	snprintf(buf, len, "%s", line);
	return pav_rb_wire_parse(NODE, buf, strlen(buf), w);
}

static void a_publication_header_parses(void **state)
{
	char buf[512];
	struct rb_wire w;

	(void)state;
	assert_int_equal(parse("P1 1f " NODE ":a F k%20y msg 7", buf,
			       sizeof(buf), &w), 0);
	assert_int_equal(w.pub_id, 0x1f);
	assert_int_equal(w.except, 0xa);
	assert_int_equal(w.kind, 'F');
	assert_string_equal(w.key, "k y");
	assert_string_equal(w.type, "msg");
	assert_int_equal(w.offset, 7);
	/* another node's except is not this one's; no key */
	assert_int_equal(parse("P1 0 ffff:a R - revoke 0", buf, sizeof(buf),
			       &w), 0);
	assert_int_equal(w.except, 0);
	assert_null(w.key);
	assert_int_equal(w.kind, 'R');
}

static void a_revocation_round_trips(void **state)
{
	char buf[512];
	struct rb_wire w;
	char *m = pav_rb_revocation_msg("default", "al ice%-", 1800000000123LL,
					60000);

	(void)state;
	assert_non_null(m);
	assert_string_equal(m, "V1 default al%20ice%25- 1800000000123 60000");
	assert_int_equal(parse(m, buf, sizeof(buf), &w), 0);
	assert_int_equal(w.kind, 'V');
	assert_string_equal(w.type, "default");
	assert_string_equal(w.key, "al ice%-");
	assert_int_equal(w.at_ms, 1800000000123LL);
	assert_int_equal(w.ttl_ms, 60000);
	free(m);
	/* a user "-" is a user, not "no key" */
	m = pav_rb_revocation_msg("n", "-", 0, RB_REVOKE_TTL_MAX_MS);
	assert_non_null(m);
	assert_int_equal(parse(m, buf, sizeof(buf), &w), 0);
	assert_string_equal(w.key, "-");
	assert_int_equal(w.at_ms, 0);
	assert_int_equal(w.ttl_ms, RB_REVOKE_TTL_MAX_MS);
	free(m);
}

/* The longest names fit what a node reads (512 bytes with its NUL). */
static void the_longest_revocation_fits_a_read(void **state)
{
	char ns[RB_NS_LEN], user[PAV_MAX_ID_LEN + 1];
	char *m;

	(void)state;
	memset(ns, ' ', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = '\0';
	memset(user, '%', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	m = pav_rb_revocation_msg(ns, user, INT64_MAX, RB_REVOKE_TTL_MAX_MS);
	assert_non_null(m);
	assert_true(strlen(m) < 512);
	free(m);
}

/* Each of the n messages fails to parse with -EINVAL. */
static void assert_each_refused(const char *const *bad, size_t n)
{
	char buf[512];
	struct rb_wire w;

	for (size_t i = 0; i < n; i++) {
		int rc = parse(bad[i], buf, sizeof(buf), &w);

		if (rc != -EINVAL)
			fail_msg("\"%s\" was not refused (%d)", bad[i], rc);
	}
}

static void a_malformed_revocation_is_refused(void **state)
{
	static const char *const bad[] = {
		"V1",
		"V1 ",
		"V1 default alice 1",
		"V1 default alice 1 60000 x",
		"V1 default alice 1 60000 ",
		"V1  alice 1 60000",
		"V1 default alice -1 60000",
		"V1 default alice +1 60000",
		"V1 default alice 1 0",
		"V1 default alice 1 2592000001",
		"V1 default alice 1 6e4",
		"V1 default alice 99999999999999999999 60000",
		"V1 default alice 9223372036854775808 60000",
		"V1 default al%zzice 1 60000",
		"V1 default al%00ice 1 60000",
		"V1 default al%4 1 60000",
		"V1 %2 alice 1 60000",
		"V2 default alice 1 60000",
		"v1 default alice 1 60000",
		/* a user over PAV_MAX_ID_LEN (65 bytes) */
		"V1 default "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		" 1 60000",
		/* a namespace over RB_NS_LEN - 1 (65 bytes) */
		"V1 "
		"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		" alice 1 60000",
	};
	char buf[512];
	struct rb_wire w;

	(void)state;
	assert_each_refused(bad, sizeof(bad) / sizeof(bad[0]));
	/* the longest names and numbers that are allowed */
	assert_int_equal(parse("V1 default "
			       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			       "aaaaaaaaaaaaaaaa 9223372036854775807 2592000000",
			       buf, sizeof(buf), &w), 0);
	assert_int_equal(w.at_ms, INT64_MAX);
}

/* A revocation key read back from Redis, with its value and PTTL. */
static int key_parse(const char *key, const char *val, long long pttl,
		     struct rb_revoked *r)
{
	return pav_rb_revoked_parse(key, strlen(key), val, strlen(val), pttl,
				    r);
}

static void a_revocation_key_parses(void **state)
{
	struct rb_revoked r;

	(void)state;
	assert_int_equal(key_parse("pav:{u:my.ns-1:alice_B-2}:revoked",
				   "1800000000000", 60000, &r), 0);
	assert_string_equal(r.ns, "my.ns-1");
	assert_string_equal(r.user, "alice_B-2");
	assert_int_equal(r.at_ms, 1800000000000LL);
	assert_int_equal(r.ttl_ms, 60000);
	/* the longest names and numbers that are allowed */
	assert_int_equal(key_parse("pav:{u:"
				   "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
				   "nnnnnnnnnnnnnnnnnnnnnn:"
				   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				   "aaaaaaaaaaaaaaaaaaaaaa}:revoked",
				   "9223372036854775807", 2592000000LL, &r), 0);
	assert_int_equal(strlen(r.ns), 64);
	assert_int_equal(strlen(r.user), 64);
	assert_int_equal(r.at_ms, INT64_MAX);
	assert_int_equal(key_parse("pav:{u:d:a}:revoked", "0", 1, &r), 0);
}

static void a_malformed_revocation_key_is_refused(void **state)
{
	static const struct {
		const char *key, *val;
		long long pttl;
	} bad[] = {
		{"pav:{u:default:alice}:revoked", "", 60000},
		{"pav:{u:default:alice}:revoked", "x", 60000},
		{"pav:{u:default:alice}:revoked", "-1", 60000},
		{"pav:{u:default:alice}:revoked", "+1", 60000},
		{"pav:{u:default:alice}:revoked", " 1", 60000},
		{"pav:{u:default:alice}:revoked", "1 ", 60000},
		{"pav:{u:default:alice}:revoked", "1.5", 60000},
		{"pav:{u:default:alice}:revoked", "9223372036854775808", 60000},
		{"pav:{u:default:alice}:revoked", "99999999999999999999999", 1},
		{"pav:{u:default:alice}:revoked", "1", 0},
		{"pav:{u:default:alice}:revoked", "1", -1}, /* no TTL */
		{"pav:{u:default:alice}:revoked", "1", -2}, /* gone */
		{"pav:{u:default:alice}:revoked", "1", 2592000001LL},
		{"pav:{u:default}:revoked", "1", 60000},
		{"pav:{u::alice}:revoked", "1", 60000},
		{"pav:{u:default:}:revoked", "1", 60000},
		{"pav:{u:default:al:ice}:revoked", "1", 60000},
		{"pav:{u:default:al ice}:revoked", "1", 60000},
		{"pav:{u:default:al}ice}:revoked", "1", 60000},
		{"pav:{u:def ault:alice}:revoked", "1", 60000},
		{"pav:{u:default:alice}:revoked:x", "1", 60000},
		{"pav:{u:default:alice}:revokes", "1", 60000},
		{"pav:{c:default:alice}:revoked", "1", 60000},
		{"pav:{u:default:alice}", "1", 60000},
		{"pav:{u:}:revoked", "1", 60000},
		{"pav:{u:", "1", 60000},
		{"", "1", 60000},
		/* a user over PAV_MAX_ID_LEN, a namespace over RB_NS_LEN - 1 */
		{"pav:{u:default:"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "}:revoked", "1", 60000},
		{"pav:{u:"
		 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		 ":alice}:revoked", "1", 60000},
	};
	struct rb_revoked r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = key_parse(bad[i].key, bad[i].val, bad[i].pttl, &r);

		if (rc != -EINVAL)
			fail_msg("\"%s\" = \"%s\" (%lld) was not refused (%d)",
				 bad[i].key, bad[i].val, bad[i].pttl, rc);
	}
	/* a NUL inside the key or the value: the lengths say where they end */
	assert_int_equal(pav_rb_revoked_parse("pav:{u:default:al\0ce}:revoked",
					      29, "1", 1, 60000, &r),
			 -EINVAL);
	assert_int_equal(pav_rb_revoked_parse("pav:{u:default:alice}:revoked",
					      29, "1\0002", 3, 60000, &r),
			 -EINVAL);
	assert_int_equal(pav_rb_revoked_parse("pav:{u:default:alice}:revoked",
					      29, "12", 2, 60000, &r), 0);
}

static void a_malformed_publication_header_is_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"P1",
		"P1 1f - F k msg 7 ",
		"P1 1f - F k msg 7  ",
		"P1 1f - F k msg ",
		"P1 1f - F k msg 7 x",
		"P1 1f  F k msg 7",
		"P1 1f - X k msg 7",
		"P1 1f - F k msg 7x",
		"P2 1f - F k msg 7",
		"P1 1f " NODE " F k msg 7",
		"P1 1f " NODE ":zz F k msg 7",
		"P1 1f - F k%zz msg 7",
	};

	(void)state;
	assert_each_refused(bad, sizeof(bad) / sizeof(bad[0]));
}

/* What nodes send: pav_rb_header's line, the offset after it. */
static void a_written_header_parses_back(void **state)
{
	static struct rb b; /* pav_rb_header reads only its node */
	char buf[512];
	struct rb_wire w;
	char *h;

	(void)state;
	memcpy(b.node, NODE, sizeof(NODE));
	h = pav_rb_header(&b, 0x2a, 0x7, 'F', "k y", "msg");
	assert_non_null(h);
	snprintf(buf, sizeof(buf), "%s%d", h, 12);
	assert_string_equal(buf, "P1 2a " NODE ":7 F k%20y msg 12");
	assert_int_equal(pav_rb_wire_parse(NODE, buf, strlen(buf), &w), 0);
	assert_int_equal(w.pub_id, 0x2a);
	assert_int_equal(w.except, 7);
	assert_int_equal(w.offset, 12);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_publication_header_parses),
		cmocka_unit_test(a_malformed_publication_header_is_refused),
		cmocka_unit_test(a_written_header_parses_back),
		cmocka_unit_test(a_revocation_round_trips),
		cmocka_unit_test(the_longest_revocation_fits_a_read),
		cmocka_unit_test(a_malformed_revocation_is_refused),
		cmocka_unit_test(a_revocation_key_parses),
		cmocka_unit_test(a_malformed_revocation_key_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
