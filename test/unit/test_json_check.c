/* test_json_check.c — the strict JSON scan (src/json_check.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

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

/* pav_json_parse_object_at(): NULL and *why; where the repeated key is. */
static size_t refused_at(const char *s, const char *want_why)
{
	const char *why = NULL;
	size_t at = 12345;

	assert_null(pav_json_parse_object_at(s, strlen(s), 8, "no object",
					     &why, &at));
	assert_string_equal(why, want_why);
	return at;
}

static void a_repeated_key_is_refused_with_where(void **state)
{
	const char *why = NULL;
	json_object *o;

	(void)state;
	/* the scan alone accepts it: RFC 8259 grammar allows it */
	OK("{\"a\":1,\"a\":2}");
	assert_int_equal(refused_at("{\"a\":1,\"a\":2}",
				    "duplicate key in an object"), 7);
	/* inside a nested object, and one whose value was an object */
	assert_int_equal(refused_at("{\"o\":{\"k\":1,\"x\":2,\"k\":3}}",
				    "duplicate key in an object"), 18);
	assert_int_equal(refused_at("{\"o\":{\"a\":{\"b\":1}},\"o\":2}",
				    "duplicate key in an object"), 19);
	/* in an object inside an array */
	assert_int_equal(refused_at("{\"l\":[{\"x\":1},{\"y\":1,\"y\":1}]}",
				    "duplicate key in an object"), 21);
	/* the same key spelled with an escape: refused, no position */
	assert_int_equal(refused_at("{\"a\":1,\"\\u0061\":2}",
				    "duplicate key in an object"), 0);
	/* and without the position asked for */
	assert_null(pav_json_parse_object("{\"a\":1,\"a\":1}", 13, 8, "x",
					  &why));
	assert_string_equal(why, "duplicate key in an object");
	/* the same key in two objects is no repeat; a prefix is not either */
	o = pav_json_parse_object_at("{\"a\":{\"a\":1},\"b\":[{\"a\":1},"
				     "{\"a\":2}],\"ab\":1,\"abc\":{}}",
				     51, 8, "x", &why, NULL);
	assert_non_null(o);
	json_object_put(o);
}

static void many_distinct_keys_are_accepted(void **state)
{
	static char buf[200000];
	const char *why = NULL;
	size_t n = 0;
	json_object *o;

	(void)state;
	n += (size_t)sprintf(buf, "{");
	for (int i = 0; i < 10000; i++)
		n += (size_t)sprintf(buf + n, "%s\"k%d\":%d", i ? "," : "", i,
				     i);
	n += (size_t)sprintf(buf + n, "}");
	o = pav_json_parse_object_at(buf, n, 8, "x", &why, NULL);
	assert_non_null(o);
	assert_int_equal(json_object_object_length(o), 10000);
	json_object_put(o);
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
		cmocka_unit_test(a_repeated_key_is_refused_with_where),
		cmocka_unit_test(many_distinct_keys_are_accepted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
