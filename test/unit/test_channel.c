/*
 * test_channel.c — ids and the channel grammar (src/channel.c), as DESIGN
 * section 2 "Channels" states them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "pav_limits.h"

static int id_ok(const char *s)
{
	return pav_id_valid(s, strlen(s));
}

/* A string of n copies of c (n < 200). */
static const char *repeat(char c, size_t n)
{
	static char buf[200];

	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* pav_channel_parse for user "u1" into a roomy buffer. */
static int parse(const char *in, char *out)
{
	return pav_channel_parse("u1", in, out, PAV_MAX_CHANNEL_LEN);
}

static void parses_to(const char *in, const char *want)
{
	char out[PAV_MAX_CHANNEL_LEN];

	memset(out, 'X', sizeof(out));
	if (parse(in, out) != 0)
		fail_msg("\"%s\" refused", in);
	assert_string_equal(out, want);
}

static void refused(const char *in)
{
	char out[PAV_MAX_CHANNEL_LEN];
	int rc = parse(in, out);

	if (rc != -EINVAL)
		fail_msg("\"%s\": got %d, want -EINVAL", in, rc);
}

static void id_of_one_char_is_valid(void **state)
{
	(void)state;
	assert_true(id_ok("a"));
	assert_true(id_ok("Z"));
	assert_true(id_ok("0"));
	assert_true(id_ok("_"));
	assert_true(id_ok("-"));
}

static void id_of_64_chars_is_valid(void **state)
{
	(void)state;
	assert_true(id_ok(repeat('a', 64)));
	assert_true(pav_id_valid(repeat('x', 100), 64));
}

static void id_of_65_chars_is_invalid(void **state)
{
	(void)state;
	assert_false(id_ok(repeat('a', 65)));
	assert_false(id_ok(repeat('a', 199)));
}

static void empty_id_is_invalid(void **state)
{
	(void)state;
	assert_false(id_ok(""));
	assert_false(pav_id_valid("abc", 0));
}

static void id_of_every_allowed_class_is_valid(void **state)
{
	(void)state;
	assert_true(id_ok("abcdefghijklmnopqrstuvwxyz"));
	assert_true(id_ok("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
	assert_true(id_ok("0123456789_-"));
	assert_true(id_ok("user_42-A"));
}

static void id_with_any_other_char_is_invalid(void **state)
{
	char s[4];

	(void)state;
	for (int c = 1; c < 256; c++) {
		int allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_' || c == '-';

		snprintf(s, sizeof(s), "a%cb", c);
		if (pav_id_valid(s, 3) != allowed)
			fail_msg("char 0x%02x: valid=%d", c, !allowed);
	}
}

static void id_with_named_bad_chars_is_invalid(void **state)
{
	static const char *const bad[] = {
		"a b",   "a:b",  "a/b",  "../x", "a.b",    "a+b",  "a@b",
		"a\tb",  "a\nb", "a%20", "a*",   "caf\xc3\xa9", "a\\b",
		"a\"b", "a,b",  "a;b",  "[a]",  "{a}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (id_ok(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
}

static void id_with_nul_is_invalid(void **state)
{
	(void)state;
	/* the length covers the NUL: it is a character, not the end */
	assert_false(pav_id_valid("ab\0cd", 5));
	assert_false(pav_id_valid("\0", 1));
	/* only len bytes count */
	assert_true(pav_id_valid("ab\0cd", 2));
}

static void user_becomes_own_user_channel(void **state)
{
	(void)state;
	parses_to("user", "user:u1");
}

static void own_user_channel_is_kept(void **state)
{
	(void)state;
	parses_to("user:u1", "user:u1");
}

static void other_user_channel_is_kept_for_the_caller_to_deny(void **state)
{
	(void)state;
	parses_to("user:u2", "user:u2");
	parses_to("user:U1", "user:U1");
}

static void zone_channel_and_chat_are_valid(void **state)
{
	(void)state;
	parses_to("zone:z1", "zone:z1");
	parses_to("channel:general", "channel:general");
	parses_to("chat:room_42-a", "chat:room_42-a");
	parses_to("zone:-", "zone:-");
}

static void kind_with_empty_id_is_invalid(void **state)
{
	(void)state;
	refused("zone:");
	refused("channel:");
	refused("chat:");
	refused("user:");
}

static void kind_with_bad_id_is_invalid(void **state)
{
	(void)state;
	refused("zone:../x");
	refused("zone:a b");
	refused("zone:a:b");
	refused("chat:room/1");
	refused("channel:caf\xc3\xa9");
	refused("user:u1 ");
	refused("zone:z1\n");
}

static void kind_without_colon_is_invalid(void **state)
{
	(void)state;
	refused("zone");
	refused("channel");
	refused("chat");
	refused("zonez1");
	refused("");
}

static void unknown_kind_is_invalid(void **state)
{
	(void)state;
	refused("unknown:1");
	refused("room:1");
	refused("zones:1");
	refused(":1");
	refused("users");
	refused(" user");
	refused("user ");
}

static void kinds_are_case_sensitive(void **state)
{
	(void)state;
	refused("Zone:1");
	refused("ZONE:1");
	refused("Channel:1");
	refused("CHAT:1");
	refused("User");
	refused("USER:u1");
}

static void over_long_id_is_invalid(void **state)
{
	char in[256];

	(void)state;
	snprintf(in, sizeof(in), "channel:%s", repeat('c', 64));
	parses_to(in, in);
	snprintf(in, sizeof(in), "channel:%s", repeat('c', 65));
	refused(in);
	snprintf(in, sizeof(in), "user:%s", repeat('u', 65));
	refused(in);
}

static void longest_channel_fits_the_channel_limit(void **state)
{
	char in[256];

	(void)state;
	/* "channel:" is the longest kind: 8 + 64 + NUL */
	snprintf(in, sizeof(in), "channel:%s", repeat('c', 64));
	assert_true(strlen(in) + 1 <= PAV_MAX_CHANNEL_LEN);
}

static void small_buffer_is_enametoolong(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(pav_channel_parse("u1", "zone:z1", out, 8), 0);
	assert_string_equal(out, "zone:z1");
	assert_int_equal(pav_channel_parse("u1", "zone:z1", out, 7),
			 -ENAMETOOLONG);
	assert_int_equal(pav_channel_parse("u1", "user", out, 8), 0);
	assert_string_equal(out, "user:u1");
	assert_int_equal(pav_channel_parse("u1", "user", out, 7),
			 -ENAMETOOLONG);
	assert_int_equal(pav_channel_parse("u1", "chat:abcdefghijkl", out,
					   sizeof(out)),
			 -ENAMETOOLONG);
}

static void grammar_is_checked_before_the_buffer(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(pav_channel_parse("u1", "Zone:1", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(pav_channel_parse("u1", "zone:a b", out, sizeof(out)),
			 -EINVAL);
}

static void user_alias_uses_the_given_user(void **state)
{
	char out[PAV_MAX_CHANNEL_LEN];

	(void)state;
	assert_int_equal(pav_channel_parse(repeat('u', 64), "user", out,
					   sizeof(out)),
			 0);
	assert_int_equal(strlen(out), 5 + 64);
	assert_int_equal(pav_channel_parse("abc", "user:abc", out, sizeof(out)),
			 0);
	assert_string_equal(out, "user:abc");
}

static void shared_kinds_are_zone_channel_chat(void **state)
{
	(void)state;
	assert_true(pav_channel_is_shared("zone:z1"));
	assert_true(pav_channel_is_shared("channel:c"));
	assert_true(pav_channel_is_shared("chat:r"));
	assert_false(pav_channel_is_shared("user:u1"));
	assert_false(pav_channel_is_shared("user"));
	assert_false(pav_channel_is_shared("zone"));
	assert_false(pav_channel_is_shared("Zone:z1"));
	assert_false(pav_channel_is_shared(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(id_of_one_char_is_valid),
		cmocka_unit_test(id_of_64_chars_is_valid),
		cmocka_unit_test(id_of_65_chars_is_invalid),
		cmocka_unit_test(empty_id_is_invalid),
		cmocka_unit_test(id_of_every_allowed_class_is_valid),
		cmocka_unit_test(id_with_any_other_char_is_invalid),
		cmocka_unit_test(id_with_named_bad_chars_is_invalid),
		cmocka_unit_test(id_with_nul_is_invalid),
		cmocka_unit_test(user_becomes_own_user_channel),
		cmocka_unit_test(own_user_channel_is_kept),
		cmocka_unit_test(other_user_channel_is_kept_for_the_caller_to_deny),
		cmocka_unit_test(zone_channel_and_chat_are_valid),
		cmocka_unit_test(kind_with_empty_id_is_invalid),
		cmocka_unit_test(kind_with_bad_id_is_invalid),
		cmocka_unit_test(kind_without_colon_is_invalid),
		cmocka_unit_test(unknown_kind_is_invalid),
		cmocka_unit_test(kinds_are_case_sensitive),
		cmocka_unit_test(over_long_id_is_invalid),
		cmocka_unit_test(longest_channel_fits_the_channel_limit),
		cmocka_unit_test(small_buffer_is_enametoolong),
		cmocka_unit_test(grammar_is_checked_before_the_buffer),
		cmocka_unit_test(user_alias_uses_the_given_user),
		cmocka_unit_test(shared_kinds_are_zone_channel_chat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
