/*
 * test_api.c — the internal API's pure parts (src/api_check.c): request
 * bodies and the API key check.  The published payload shapes are the
 * plugins' now (test_plugin_notification.c, test_plugin_chat.c,
 * test_plugin_presence.c); routes are test_vhost_routes.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "api.h"

/* ---- bodies ---------------------------------------------------------- */

static json_object *body(const char *text, const char **why)
{
	*why = NULL;
	return pav_api_parse_body(text, strlen(text), why);
}

static void body_ok(const char *text)
{
	const char *why;
	json_object *o = body(text, &why);

	if (!o)
		fail_msg("refused %s: %s", text, why ? why : "(no reason)");
	assert_true(json_object_is_type(o, json_type_object));
	json_object_put(o);
}

static void body_refused(const char *text)
{
	const char *why;
	json_object *o = body(text, &why);

	if (o) {
		json_object_put(o);
		fail_msg("accepted %s", text);
	}
	assert_non_null(why);
}

/* `levels` nested objects, the innermost empty. */
static const char *nested(int levels)
{
	static char buf[1024]; /* levels <= 100 */

	buf[0] = '\0';
	for (int i = 1; i < levels; i++)
		strcat(buf, "{\"a\":");
	strcat(buf, "{}");
	for (int i = 1; i < levels; i++)
		strcat(buf, "}");
	return buf;
}

static void object_body_is_parsed(void **state)
{
	const char *why;
	json_object *o, *v;

	(void)state;
	o = body("{\"channel\":\"zone:z1\",\"type\":\"x\",\"payload\":{}}", &why);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "channel", &v));
	assert_string_equal(json_object_get_string(v), "zone:z1");
	json_object_put(o);
	body_ok("{}");
	body_ok(" {\"a\":[1,2,{\"b\":null}]}\r\n");
}

static void non_object_body_is_refused(void **state)
{
	(void)state;
	body_refused("[]");
	body_refused("[{\"channel\":\"zone:z1\"}]");
	body_refused("\"x\"");
	body_refused("1");
	body_refused("null");
}

static void empty_or_broken_body_is_refused(void **state)
{
	(void)state;
	body_refused("");
	body_refused("  ");
	body_refused("{");
	body_refused("{\"a\":}");
	body_refused("{\"a\":1,}");
}

static void trailing_garbage_is_refused(void **state)
{
	(void)state;
	body_refused("{} {}");
	body_refused("{\"a\":1}x");
	body_refused("{\"a\":1}]");
	body_ok("{\"a\":1} \n\t");
}

static void nul_byte_after_body_is_refused(void **state)
{
	static const char text[] = "{}\0";
	const char *why = NULL;
	json_object *o = pav_api_parse_body(text, sizeof(text) - 1, &why);

	(void)state;
	if (o) {
		json_object_put(o);
		fail_msg("accepted {} followed by a NUL byte");
	}
	assert_non_null(why);
}

static void depth_16_is_accepted_17_refused(void **state)
{
	(void)state;
	body_ok(nested(16));
	body_refused(nested(17));
	body_refused(nested(100));
}

static void depth_counts_containers_not_scalars(void **state)
{
	(void)state;
	/* 16 containers with a scalar inside the innermost */
	body_ok("{\"a\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}");
	body_refused("{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}");
}

static void nul_escape_and_lone_surrogates_are_refused(void **state)
{
	(void)state;
	/* a C string would be cut short at \u0000 */
	body_refused("{\"a\":\"x\\u0000y\"}");
	body_refused("{\"a\\u0000\":1}");
	body_refused("{\"a\":\"\\ud800\"}");
	body_refused("{\"a\":\"\\udc00\"}");
	body_ok("{\"a\":\"\\ud83d\\ude00 \\u00e9 \\u0001\"}");
}

static void non_json_numbers_are_refused(void **state)
{
	(void)state;
	body_refused("{\"a\":01}");
	body_refused("{\"a\":.5}");
	body_refused("{\"a\":+1}");
	body_refused("{\"a\":1e}");
	body_refused("{\"a\":0x10}");
	body_ok("{\"a\":[0,-0,1.5,-2e10,3E+2,4e-2,123456789012345678901234]}");
}

static void invalid_utf8_body_is_refused(void **state)
{
	(void)state;
	body_refused("{\"a\":\"\xff\"}");
	body_refused("{\"a\":\"\xc3\x28\"}");
	body_refused("{\"\x80\":1}");
	body_ok("{\"a\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
}

static void non_utf8_that_json_c_lets_through_is_refused(void **state)
{
	/*
	 * json-c's VALIDATE_UTF8 checks only the byte-count structure.  No
	 * lws check stands in front of the HTTP body, so these would reach
	 * clients' text frames (and a browser closes on invalid UTF-8); the
	 * gateway's own scan must refuse them.
	 */
	static const char *const cases[] = {
		"{\"a\":\"\xc0\xaf\"}",         /* overlong "/" */
		"{\"a\":\"\xe0\x80\xaf\"}",     /* overlong, 3 bytes */
		"{\"a\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate */
		"{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
		"{\"a\":\"\xf5\x80\x80\x80\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		body_refused(cases[i]);
}

static void json_that_json_c_strict_lets_through_is_refused(void **state)
{
	/*
	 * json-c 0.16 in STRICT mode still takes these (the gateway's own
	 * scan must refuse them); the numbers are kept
	 * as their source text and re-emitted verbatim, so a published
	 * payload {"a":NaN} or {"a":1.} reaches clients as invalid JSON
	 * (JSON.parse throws).
	 */
	static const char *const cases[] = {
		"{\"a\":Infinity}", "{\"a\":-Infinity}", "{\"a\":NaN}",
		"{\"a\":[1.]}",
		"{'a':1}",           "{\"a\":\"\t\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		body_refused(cases[i]);
}

/* ---- members and query numbers ---- */

static void str_answers_string_members_only(void **state)
{
	json_object *o = json_tokener_parse("{\"a\":\"x\",\"b\":1,"
					    "\"c\":null,\"d\":[\"y\"]}");

	(void)state;
	assert_non_null(o);
	assert_string_equal(pav_api_str(o, "a"), "x");
	assert_null(pav_api_str(o, "b"));
	assert_null(pav_api_str(o, "c"));
	assert_null(pav_api_str(o, "d"));
	assert_null(pav_api_str(o, "nope"));
	json_object_put(o);
}

static void query_number_answers_the_value_or_the_default(void **state)
{
	(void)state;
	assert_int_equal(pav_api_query_number("limit=5", "limit", 0, 100), 5);
	assert_int_equal(pav_api_query_number("a=1&limit=07&b=2", "limit", 0,
					      100),
			 7);
	assert_int_equal(pav_api_query_number("", "limit", 9, 100), 9);
	assert_int_equal(pav_api_query_number("limitx=5&xlimit=6", "limit", 9,
					      100),
			 9);
	assert_int_equal(pav_api_query_number("limit=100", "limit", 0, 100),
			 100);
}

static void malformed_or_too_big_query_number_is_minus_one(void **state)
{
	(void)state;
	assert_int_equal(pav_api_query_number("limit=", "limit", 0, 100), -1);
	assert_int_equal(pav_api_query_number("limit=&x=1", "limit", 0, 100),
			 -1);
	assert_int_equal(pav_api_query_number("limit=-1", "limit", 0, 100), -1);
	assert_int_equal(pav_api_query_number("limit=5x", "limit", 0, 100), -1);
	/* a plugin's max may be LONG_MAX: no overflow on the way */
	assert_int_equal(pav_api_query_number("n=9223372036854775807", "n", 0,
					      LONG_MAX), LONG_MAX);
	assert_int_equal(pav_api_query_number("n=9223372036854775808", "n", 0,
					      LONG_MAX), -1);
	assert_int_equal(pav_api_query_number("n=99999999999999999999999", "n",
					      0, LONG_MAX), -1);
	assert_int_equal(pav_api_query_number("limit=101", "limit", 0, 100),
			 -1);
	assert_int_equal(pav_api_query_number("limit=99999999999999999999999",
					      "limit", 0, 100),
			 -1);
}

static void query_once_answers_the_value_or_the_default(void **state)
{
	(void)state;
	assert_int_equal(pav_api_query_once("revoke_s=3600", "revoke_s", -2,
					    2592000),
			 3600);
	assert_int_equal(pav_api_query_once("x=1&revoke_s=2&y", "revoke_s",
					    -2, 2592000),
			 2);
	assert_int_equal(pav_api_query_once("", "revoke_s", -2, 2592000), -2);
	assert_int_equal(pav_api_query_once("revoke_sx=1&xrevoke_s=2",
					    "revoke_s", -2, 2592000),
			 -2);
	assert_int_equal(pav_api_query_once("revoke_s=0", "revoke_s", -2,
					    2592000),
			 0);
}

static void query_once_refuses_a_repeated_or_bare_key(void **state)
{
	(void)state;
	assert_int_equal(pav_api_query_once("revoke_s=5&revoke_s=5",
					    "revoke_s", -2, 2592000),
			 -1);
	assert_int_equal(pav_api_query_once("revoke_s=5&revoke_s",
					    "revoke_s", -2, 2592000),
			 -1);
	assert_int_equal(pav_api_query_once("revoke_s", "revoke_s", -2,
					    2592000),
			 -1);
	assert_int_equal(pav_api_query_once("revoke_s&x=1", "revoke_s", -2,
					    2592000),
			 -1);
	assert_int_equal(pav_api_query_once("revoke_s=", "revoke_s", -2,
					    2592000),
			 -1);
	assert_int_equal(pav_api_query_once("revoke_s=1.5", "revoke_s", -2,
					    2592000),
			 -1);
	assert_int_equal(pav_api_query_once("revoke_s=2592001", "revoke_s",
					    -2, 2592000),
			 -1);
}

/* ---- API keys -------------------------------------------------------- */

static struct pav_api_key keys[2];

static int digest_keys(void **state)
{
	(void)state;
	return pav_api_key_digest("k3y-0ne-0123456789abcdef", &keys[0]) ||
	       pav_api_key_digest("second-key", &keys[1]);
}

static void presented_key_that_matches_is_ok(void **state)
{
	(void)state;
	assert_true(pav_api_key_ok(keys, 2, "k3y-0ne-0123456789abcdef"));
	assert_true(pav_api_key_ok(keys, 2, "second-key"));
	assert_true(pav_api_key_ok(keys, 1, "k3y-0ne-0123456789abcdef"));
}

static void presented_key_that_differs_is_refused(void **state)
{
	(void)state;
	assert_false(pav_api_key_ok(keys, 2, "k3y-0ne-0123456789abcdeF"));
	assert_false(pav_api_key_ok(keys, 2, "Second-key"));
	assert_false(pav_api_key_ok(keys, 2, "nope"));
	/* the second key is not looked at when nkeys says one */
	assert_false(pav_api_key_ok(keys, 1, "second-key"));
}

static void prefix_of_a_key_is_refused(void **state)
{
	(void)state;
	assert_false(pav_api_key_ok(keys, 2, "k3y-0ne-0123456789abcde"));
	assert_false(pav_api_key_ok(keys, 2, "k"));
	assert_false(pav_api_key_ok(keys, 2, "second-ke"));
}

static void key_with_more_is_refused(void **state)
{
	(void)state;
	assert_false(pav_api_key_ok(keys, 2, "k3y-0ne-0123456789abcdef0"));
	assert_false(pav_api_key_ok(keys, 2, "second-key "));
	assert_false(pav_api_key_ok(keys, 2, "second-keysecond-key"));
}

static void empty_key_is_refused(void **state)
{
	(void)state;
	assert_false(pav_api_key_ok(keys, 2, ""));
	assert_false(pav_api_key_ok(keys, 0, ""));
	assert_false(pav_api_key_ok(keys, 0, "second-key"));
	assert_false(pav_api_key_ok(NULL, 0, "second-key"));
}

/* ---- request paths ---------------------------------------------------- */

static int path_refused(const char *p, size_t len)
{
	const char *why = NULL;
	int rc = pav_api_check_path(p, len, &why);

	if (rc)
		assert_non_null(why);
	return rc == -EINVAL;
}

#define PATH_OK(lit) assert_false(path_refused(lit, sizeof(lit) - 1))
#define PATH_BAD(lit) assert_true(path_refused(lit, sizeof(lit) - 1))

static void api_paths_are_accepted(void **state)
{
	(void)state;
	PATH_OK("/");
	PATH_OK("/healthz");
	PATH_OK("/v1/users/a-b_C9/notifications");
	PATH_OK("/v1/channels/zone:lobby");
}

/* What lws hands over after decoding %xx: "/%00" arrives as a NUL inside
 * the path (lws drops only a %00 that does not follow a '/'). */
static void nul_control_and_non_ascii_paths_are_refused(void **state)
{
	(void)state;
	PATH_BAD("/v1/users/\0/notifications");
	PATH_BAD("/healthz\x01");
	PATH_BAD("/healthz\x7f");
	PATH_BAD("/v1/users/\t/presence");
	PATH_BAD("/v1/users/\xc3\xa9/presence");
	PATH_BAD("");
	PATH_BAD("healthz");
}

static void overlong_path_is_refused(void **state)
{
	char p[PAV_API_PATH_MAX + 2];

	(void)state;
	memset(p, 'a', sizeof(p));
	p[0] = '/';
	assert_false(path_refused(p, PAV_API_PATH_MAX));
	assert_true(path_refused(p, PAV_API_PATH_MAX + 1));
}

/* ---- the listener a request came in on -------------------------------- */

static struct sockaddr_storage local4(const char *ip, int port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage local6(const char *ip, int port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	return ss;
}

static int match(struct sockaddr_storage ss, const char *host, int port)
{
	return pav_api_listener_match((struct sockaddr *)&ss, host, port);
}

static void request_on_own_listener_matches(void **state)
{
	(void)state;
	assert_int_equal(match(local4("127.0.0.1", 8081), "127.0.0.1", 8081), 1);
	assert_int_equal(match(local6("::1", 8081), "::1", 8081), 1);
	assert_int_equal(match(local6("::ffff:10.1.2.3", 8081), "10.1.2.3",
			       8081), 1);
	assert_int_equal(match(local4("10.1.2.3", 8081), "::ffff:10.1.2.3",
			       8081), 1);
	/* wildcard listeners: any local address of theirs */
	assert_int_equal(match(local4("10.1.2.3", 8081), "0.0.0.0", 8081), 1);
	assert_int_equal(match(local6("fe80::1", 8081), "::", 8081), 1);
	assert_int_equal(match(local6("::ffff:10.1.2.3", 8081), "::", 8081), 1);
}

/* The case the check exists for: the public vhost's socket (127.0.0.2:P)
 * handed a request to the internal vhost (127.0.0.1:P) by Host header. */
static void request_through_another_listener_does_not_match(void **state)
{
	(void)state;
	assert_int_equal(match(local4("127.0.0.2", 8081), "127.0.0.1", 8081), 0);
	assert_int_equal(match(local4("127.0.0.1", 8443), "127.0.0.1", 8081), 0);
	assert_int_equal(match(local6("::1", 8081), "127.0.0.1", 8081), 0);
	assert_int_equal(match(local4("127.0.0.1", 8081), "::1", 8081), 0);
	assert_int_equal(match(local6("::2", 8081), "::1", 8081), 0);
	assert_int_equal(match(local4("10.1.2.3", 8080), "0.0.0.0", 8081), 0);
}

static void interface_name_is_left_to_the_caller(void **state)
{
	struct sockaddr_storage un = {0};

	(void)state;
	assert_int_equal(match(local4("127.0.0.1", 8081), "lo", 8081), -ENOENT);
	/* a wrong port is known without looking the interface up */
	assert_int_equal(match(local4("127.0.0.1", 8080), "lo", 8081), 0);
	un.ss_family = AF_UNIX;
	assert_int_equal(match(un, "0.0.0.0", 8081), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(object_body_is_parsed),
		cmocka_unit_test(non_object_body_is_refused),
		cmocka_unit_test(empty_or_broken_body_is_refused),
		cmocka_unit_test(trailing_garbage_is_refused),
		cmocka_unit_test(nul_byte_after_body_is_refused),
		cmocka_unit_test(depth_16_is_accepted_17_refused),
		cmocka_unit_test(depth_counts_containers_not_scalars),
		cmocka_unit_test(nul_escape_and_lone_surrogates_are_refused),
		cmocka_unit_test(non_json_numbers_are_refused),
		cmocka_unit_test(invalid_utf8_body_is_refused),
		cmocka_unit_test(non_utf8_that_json_c_lets_through_is_refused),
		cmocka_unit_test(json_that_json_c_strict_lets_through_is_refused),
		cmocka_unit_test(str_answers_string_members_only),
		cmocka_unit_test(query_number_answers_the_value_or_the_default),
		cmocka_unit_test(malformed_or_too_big_query_number_is_minus_one),
		cmocka_unit_test(query_once_answers_the_value_or_the_default),
		cmocka_unit_test(query_once_refuses_a_repeated_or_bare_key),
		cmocka_unit_test(presented_key_that_matches_is_ok),
		cmocka_unit_test(presented_key_that_differs_is_refused),
		cmocka_unit_test(prefix_of_a_key_is_refused),
		cmocka_unit_test(key_with_more_is_refused),
		cmocka_unit_test(empty_key_is_refused),
		cmocka_unit_test(api_paths_are_accepted),
		cmocka_unit_test(nul_control_and_non_ascii_paths_are_refused),
		cmocka_unit_test(overlong_path_is_refused),
		cmocka_unit_test(request_on_own_listener_matches),
		cmocka_unit_test(request_through_another_listener_does_not_match),
		cmocka_unit_test(interface_name_is_left_to_the_caller),
	};

	return cmocka_run_group_tests(tests, digest_keys, NULL);
}
