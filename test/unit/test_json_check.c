/* test_json_check.c — the strict JSON scan (src/json_check.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "json_check.h"

static int check(const char *s, int depth)
{
	const char *why = NULL;
	int rc = pav_json_check(s, strlen(s), depth, &why);

	if (rc)
		assert_non_null(why);
	return rc;
}

#define OK(s) assert_int_equal(check((s), 8), 0)
#define BAD(s) assert_int_not_equal(check((s), 8), 0)

static void scalars_and_containers_are_accepted(void **state)
{
	(void)state;
	OK("{}");
	OK("[]");
	OK(" {\"a\" : [1, -2.5e+3, 0, true, false, null, \"x\"]} \n");
	OK("\"just a string\"");
	OK("0");
	OK("-0.0E-1");
}

static void numbers_follow_the_grammar(void **state)
{
	(void)state;
	BAD("[01]");
	BAD("[1.]");
	BAD("[.5]");
	BAD("[+1]");
	BAD("[1e]");
	BAD("[-]");
	BAD("[NaN]");
	BAD("[Infinity]");
	BAD("[-Infinity]");
	BAD("[0x10]");
}

static void structure_errors_are_rejected(void **state)
{
	(void)state;
	BAD("");
	BAD("   ");
	BAD("{");
	BAD("{\"a\":}");
	BAD("{\"a\" 1}");
	BAD("{a:1}");
	BAD("{'a':1}");
	BAD("[1,]");
	BAD("{\"a\":1,}");
	BAD("[1 2]");
	BAD("{} {}");
	BAD("{}x");
	BAD("tru");
	BAD("nul");
	BAD("[true false]");
}

static void strings_are_checked(void **state)
{
	(void)state;
	OK("[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9\"]");
	BAD("[\"a\tb\"]");       /* raw control character */
	BAD("[\"a\nb\"]");
	BAD("[\"\\x41\"]");      /* not a JSON escape */
	BAD("[\"\\u12\"]");
	BAD("[\"\\u00zz\"]");
	BAD("[\"\\u0000\"]");    /* would cut a C string short */
	BAD("[\"unterminated]");
}

static void surrogate_escapes_must_pair(void **state)
{
	(void)state;
	OK("[\"\\ud83d\\ude00\"]");
	BAD("[\"\\ud83d\"]");
	BAD("[\"\\ude00\"]");
	BAD("[\"\\ud83d\\u0041\"]");
	BAD("[\"\\ud83dx\"]");
}

static void utf8_is_checked_fully(void **state)
{
	(void)state;
	OK("[\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]");
	BAD("[\"\x80\"]");             /* lone continuation byte */
	BAD("[\"\xc0\xaf\"]");         /* overlong */
	BAD("[\"\xe0\x80\xaf\"]");     /* overlong */
	BAD("[\"\xed\xa0\x80\"]");     /* UTF-16 surrogate */
	BAD("[\"\xf4\x90\x80\x80\"]"); /* past U+10FFFF */
	BAD("[\"\xf5\x80\x80\x80\"]");
	BAD("[\"\xe2\x82\"]");         /* truncated */
	BAD("{\"\xff\":1}");           /* in a key too */
}

static void depth_counts_containers(void **state)
{
	(void)state;
	assert_int_equal(check("[[[[1]]]]", 4), 0);
	assert_int_not_equal(check("[[[[[1]]]]]", 4), 0);
	assert_int_equal(check("{\"a\":{\"b\":[{}]}}", 4), 0);
	assert_int_not_equal(check("{\"a\":{\"b\":[{\"c\":[]}]}}", 4), 0);
	assert_int_equal(check("1", 0), 0);
	assert_int_not_equal(check("[]", 0), 0);
}

static void deep_nesting_does_not_recurse_past_the_limit(void **state)
{
	static char deep[200001];

	(void)state;
	memset(deep, '[', 100000);
	memset(deep + 100000, ']', 100000);
	assert_int_not_equal(check(deep, 64), 0);
}

static void embedded_nul_byte_is_rejected(void **state)
{
	const char s[] = "{\"a\":\"x\0y\"}";
	const char *why;

	(void)state;
	assert_int_not_equal(pav_json_check(s, sizeof(s) - 1, 8, &why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scalars_and_containers_are_accepted),
		cmocka_unit_test(numbers_follow_the_grammar),
		cmocka_unit_test(structure_errors_are_rejected),
		cmocka_unit_test(strings_are_checked),
		cmocka_unit_test(surrogate_escapes_must_pair),
		cmocka_unit_test(utf8_is_checked_fully),
		cmocka_unit_test(depth_counts_containers),
		cmocka_unit_test(deep_nesting_does_not_recurse_past_the_limit),
		cmocka_unit_test(embedded_nul_byte_is_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
