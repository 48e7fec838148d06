/*
 * test_envelope.c — the client message envelope (src/envelope.c), one test
 * per rule of DESIGN section 2 "Envelope" and "Limits" (nesting depth).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "pavilion/plugin.h"

#define DEPTH 8 /* PAV_DEF_JSON_DEPTH, the default json_depth */

/* Parses text with the default depth; the caller frees env. */
static int parse(const char *text, struct pav_envelope *env,
		 const char **why)
{
	*why = NULL;
	return pav_envelope_parse(text, strlen(text), DEPTH, env, why);
}

static void accepted(const char *text)
{
	struct pav_envelope env;
	const char *why;

	if (parse(text, &env, &why) != 0)
		fail_msg("rejected %s: %s", text, why ? why : "(no reason)");
	assert_non_null(env.type);
	pav_envelope_free(&env);
}

/* A 1002 with a reason; returns env->id as it was set (copied). */
static void rejected_id(const char *text, const char *want_id)
{
	struct pav_envelope env;
	const char *why;
	int rc = parse(text, &env, &why);

	if (rc != PAV_ERR_FORMAT)
		fail_msg("%s: got %d, want 1002", text, rc);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	if (want_id) {
		assert_non_null(env.id);
		assert_string_equal(env.id, want_id);
	} else {
		assert_null(env.id);
	}
	pav_envelope_free(&env);
}

static void rejected(const char *text)
{
	rejected_id(text, NULL);
}

static void minimal_message_is_accepted(void **state)
{
	struct pav_envelope env;
	const char *why;

	(void)state;
	assert_int_equal(parse("{\"type\":\"heartbeat_ack\"}", &env, &why), 0);
	assert_string_equal(env.type, "heartbeat_ack");
	assert_null(env.id);
	assert_null(env.payload);
	assert_non_null(env.root);
	pav_envelope_free(&env);
	assert_null(env.root);
}

static void full_message_is_accepted(void **state)
{
	struct pav_envelope env;
	const char *why;
	json_object *ch;

	(void)state;
	assert_int_equal(parse("{\"type\":\"subscribe\",\"id\":\"req-1\","
			       "\"payload\":{\"channel\":\"zone:z1\"},"
			       "\"timestamp\":\"2024-03-15T12:00:00Z\"}",
			       &env, &why),
			 0);
	assert_string_equal(env.type, "subscribe");
	assert_string_equal(env.id, "req-1");
	assert_non_null(env.payload);
	assert_true(json_object_object_get_ex(env.payload, "channel", &ch));
	assert_string_equal(json_object_get_string(ch), "zone:z1");
	pav_envelope_free(&env);
}

static void member_order_does_not_matter(void **state)
{
	(void)state;
	accepted("{\"payload\":{},\"timestamp\":\"t\",\"id\":\"x\","
		 "\"type\":\"presence\"}");
}

static void empty_payload_object_is_accepted(void **state)
{
	(void)state;
	accepted("{\"type\":\"x\",\"payload\":{}}");
}

static void timestamp_content_is_not_checked(void **state)
{
	/* the spec only asks for a string; the server stamps its own time */
	(void)state;
	accepted("{\"type\":\"x\",\"timestamp\":\"\"}");
	accepted("{\"type\":\"x\",\"timestamp\":\"yesterday\"}");
}

static void not_json_is_rejected(void **state)
{
	(void)state;
	rejected("hello");
	rejected("{type:\"x\"}");
	rejected("{\"type\":'x'}");
	rejected("{\"type\":\"x\",}");
	rejected("{\"type\":\"x\"");
	rejected("");
	rejected("   ");
}

static void top_level_non_objects_are_rejected(void **state)
{
	(void)state;
	rejected("[{\"type\":\"x\"}]");
	rejected("[]");
	rejected("\"type\"");
	rejected("42");
	rejected("-1.5e3");
	rejected("true");
	rejected("null");
}

static void trailing_garbage_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"x\"} {}");
	rejected("{\"type\":\"x\"}{\"type\":\"y\"}");
	rejected("{\"type\":\"x\"}x");
	rejected("{\"type\":\"x\"} ,");
	rejected("{\"type\":\"x\"}\v");
}

static void trailing_whitespace_is_accepted(void **state)
{
	(void)state;
	accepted("{\"type\":\"x\"} ");
	accepted("{\"type\":\"x\"}\n");
	accepted("{\"type\":\"x\"} \t\r\n ");
	accepted(" \n{\"type\":\"x\"}");
}

static void nul_after_the_object_is_rejected(void **state)
{
	struct pav_envelope env;
	const char *why = NULL;
	static const char text[] = "{\"type\":\"x\"}\0";

	(void)state;
	/* the frame carries the NUL byte: it is not white space */
	assert_int_equal(pav_envelope_parse(text, sizeof(text) - 1, DEPTH, &env,
					    &why),
			 PAV_ERR_FORMAT);
	assert_non_null(why);
	pav_envelope_free(&env);
}

static void length_not_nul_bounds_the_frame(void **state)
{
	struct pav_envelope env;
	const char *why = NULL;
	static const char text[] = "{\"type\":\"x\"}{\"type\":\"y\"}";

	(void)state;
	/* only the first 12 bytes are the frame */
	assert_int_equal(pav_envelope_parse(text, 12, DEPTH, &env, &why), 0);
	assert_string_equal(env.type, "x");
	pav_envelope_free(&env);
}

static void missing_type_is_rejected(void **state)
{
	(void)state;
	rejected("{}");
	rejected("{\"payload\":{}}");
	rejected_id("{\"id\":\"a1\",\"payload\":{}}", "a1");
}

static void empty_type_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"\"}");
}

static void non_string_type_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":1}");
	rejected("{\"type\":null}");
	rejected("{\"type\":true}");
	rejected("{\"type\":[\"x\"]}");
	rejected("{\"type\":{\"x\":1}}");
}

static void type_with_embedded_nul_is_rejected(void **state)
{
	/* "subscribe\u0000x" must not reach the dispatcher as "subscribe" */
	static const char *const cases[] = {
		"{\"type\":\"subscribe\\u0000x\"}",
		"{\"type\":\"\\u0000\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		rejected(cases[i]);
}

static void payload_not_object_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"x\",\"payload\":[]}");
	rejected("{\"type\":\"x\",\"payload\":\"{}\"}");
	rejected("{\"type\":\"x\",\"payload\":1}");
	rejected("{\"type\":\"x\",\"payload\":null}");
	rejected("{\"type\":\"x\",\"payload\":false}");
}

static void timestamp_not_string_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"x\",\"timestamp\":1710504000}");
	rejected("{\"type\":\"x\",\"timestamp\":null}");
	rejected("{\"type\":\"x\",\"timestamp\":{}}");
}

static void unknown_top_level_member_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"x\",\"extra\":1}");
	rejected("{\"type\":\"x\",\"channel\":\"zone:z1\"}");
	rejected("{\"type\":\"x\",\"Type\":\"x\"}");
	rejected("{\"type\":\"x\",\"\":1}");
}

static void id_not_string_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"x\",\"id\":1}");
	rejected("{\"type\":\"x\",\"id\":null}");
	rejected("{\"type\":\"x\",\"id\":[\"a\"]}");
}

static void id_empty_is_accepted(void **state)
{
	struct pav_envelope env;
	const char *why;

	(void)state;
	assert_int_equal(parse("{\"type\":\"x\",\"id\":\"\"}", &env, &why), 0);
	assert_non_null(env.id);
	assert_string_equal(env.id, "");
	pav_envelope_free(&env);
}

static void id_length_limit_is_64(void **state)
{
	char text[256], id[PAV_ENVELOPE_ID_MAX + 2];
	struct pav_envelope env;
	const char *why;

	(void)state;
	memset(id, 'a', sizeof(id) - 1);
	id[PAV_ENVELOPE_ID_MAX] = '\0';
	snprintf(text, sizeof(text), "{\"type\":\"x\",\"id\":\"%s\"}", id);
	assert_int_equal(parse(text, &env, &why), 0);
	assert_int_equal(strlen(env.id), 64);
	pav_envelope_free(&env);

	id[PAV_ENVELOPE_ID_MAX] = 'a';
	id[PAV_ENVELOPE_ID_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "{\"type\":\"x\",\"id\":\"%s\"}", id);
	rejected(text);
}

static void id_of_one_char_is_accepted(void **state)
{
	struct pav_envelope env;
	const char *why;

	(void)state;
	assert_int_equal(parse("{\"type\":\"x\",\"id\":\"1\"}", &env, &why), 0);
	assert_string_equal(env.id, "1");
	pav_envelope_free(&env);
}

static void id_with_embedded_nul_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"x\",\"id\":\"a\\u0000b\"}");
}

static void valid_id_is_echoed_on_later_errors(void **state)
{
	(void)state;
	rejected_id("{\"type\":\"x\",\"id\":\"r1\",\"payload\":[]}", "r1");
	/* id after the offending member still gets echoed */
	rejected_id("{\"payload\":1,\"type\":\"x\",\"id\":\"r2\"}", "r2");
	rejected_id("{\"id\":\"r3\",\"type\":\"\"}", "r3");
	rejected_id("{\"id\":\"r4\",\"type\":\"x\",\"timestamp\":0}", "r4");
	rejected_id("{\"id\":\"r5\",\"type\":\"x\",\"bogus\":0}", "r5");
}

#define ID65 "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"

static void invalid_id_is_not_echoed(void **state)
{
	(void)state;
	rejected_id("{\"type\":\"x\",\"id\":7,\"payload\":[]}", NULL);
	rejected_id("{\"type\":\"x\",\"id\":\"" ID65 "\",\"payload\":{}}",
		    NULL);
}

static void empty_id_is_echoed_on_an_error(void **state)
{
	(void)state;
	rejected_id("{\"type\":\"x\",\"id\":\"\",\"payload\":[]}", "");
}

static void duplicate_member_is_refused(void **state)
{
	struct pav_envelope env;
	const char *why;

	/* json-c would keep the last value of a repeated key: which of two
	 * "type"s counts must never depend on the reader */
	(void)state;
	assert_int_equal(parse("{\"type\":1,\"type\":\"b\"}", &env, &why),
			 PAV_ERR_FORMAT);
	assert_string_equal(why, "duplicate key in an object");
	pav_envelope_free(&env);
	rejected("{\"type\":\"a\",\"type\":1}");
	rejected("{\"type\":\"a\",\"payload\":{\"x\":1,\"x\":1}}");
	rejected("{\"type\":\"a\",\"id\":\"1\",\"\\u0069d\":\"2\"}");
}

/* {"type":"x","payload":{"a":{"a":...{}...}}}: `levels` objects nested,
 * the top-level one included, the innermost empty (or holding "b":1). */
static char *nested(int levels, int leaf)
{
	static char buf[512];

	strcpy(buf, "{\"type\":\"x\"");
	if (levels > 1) {
		strcat(buf, ",\"payload\":");
		for (int i = 2; i < levels; i++)
			strcat(buf, "{\"a\":");
		strcat(buf, leaf ? "{\"b\":1}" : "{}");
		for (int i = 2; i < levels; i++)
			strcat(buf, "}");
	} else if (leaf) {
		strcat(buf, ",\"id\":\"b\"");
	}
	strcat(buf, "}");
	return buf;
}

static void depth_8_is_accepted(void **state)
{
	(void)state;
	accepted(nested(DEPTH, 0));
	accepted(nested(DEPTH - 1, 1));
}

static void depth_9_is_rejected(void **state)
{
	struct pav_envelope env;
	const char *why;

	(void)state;
	assert_int_equal(parse(nested(DEPTH + 1, 0), &env, &why),
			 PAV_ERR_FORMAT);
	assert_non_null(why);
	pav_envelope_free(&env);
	rejected(nested(DEPTH + 5, 1));
}

static void depth_counts_containers_only(void **state)
{
	/*
	 * The gateway's own scan (src/json_check.c) sets the rule: arrays and
	 * objects count, the outermost is level 1, scalars add nothing.  So
	 * eight nested containers pass with a scalar inside the eighth; a
	 * ninth container does not.
	 */
	(void)state;
	accepted(nested(DEPTH, 1));
	accepted("{\"type\":\"x\",\"payload\":{\"a\":[[[[[[1]]]]]]}}");
	rejected("{\"type\":\"x\",\"payload\":{\"a\":[[[[[[[1]]]]]]]}}");
}

static void depth_limit_is_the_callers(void **state)
{
	struct pav_envelope env;
	const char *why;
	const char *text = nested(DEPTH + 1, 0);

	(void)state;
	assert_int_equal(pav_envelope_parse(text, strlen(text), DEPTH + 1, &env,
					    &why),
			 0);
	pav_envelope_free(&env);
	text = "{\"type\":\"x\",\"payload\":{}}";
	assert_int_equal(pav_envelope_parse(text, strlen(text), 1, &env, &why),
			 PAV_ERR_FORMAT);
	pav_envelope_free(&env);
}

static void invalid_utf8_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"\xff\"}");
	rejected("{\"type\":\"x\",\"payload\":{\"t\":\"a\xc3\x28\"}}");
	rejected("{\"type\":\"x\",\"payload\":{\"t\":\"\xe2\x82\"}}");
	rejected("{\"type\":\"x\",\"payload\":{\"\x80\":1}}");
	rejected("{\"type\":\"x\",\"payload\":{\"t\":\"\xf8\x88\x80\x80\x80\"}}");
}

static void non_utf8_that_json_c_lets_through_is_rejected(void **state)
{
	/*
	 * json-c's VALIDATE_UTF8 checks only the byte-count structure:
	 * overlong forms, UTF-16 surrogates and code points past U+10FFFF
	 * pass it (the gateway's own scan refuses them).  On a WebSocket,
	 * lws' check closes with 1007 first; the envelope promises "strings
	 * valid UTF-8" regardless.
	 */
	static const char *const cases[] = {
		"{\"type\":\"x\",\"payload\":{\"t\":\"\xc0\xaf\"}}",
		"{\"type\":\"x\",\"payload\":{\"t\":\"\xe0\x80\xaf\"}}",
		"{\"type\":\"x\",\"payload\":{\"t\":\"\xed\xa0\x80\"}}",
		"{\"type\":\"x\",\"payload\":{\"t\":\"\xf4\x90\x80\x80\"}}",
		"{\"type\":\"x\",\"payload\":{\"t\":\"\xf5\x80\x80\x80\"}}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		rejected(cases[i]);
}

static void json_that_json_c_strict_lets_through_is_rejected(void **state)
{
	/*
	 * json-c 0.16 in STRICT mode still takes these (the gateway's own
	 * scan refuses them).  Numbers keep their source text and are
	 * re-emitted verbatim, so a payload forwarded to others (chat
	 * attachments) would carry Infinity or 1. to clients as invalid
	 * JSON.
	 */
	static const char *const cases[] = {
		"{\"type\":\"x\",\"payload\":{\"a\":Infinity}}",
		"{\"type\":\"x\",\"payload\":{\"a\":-Infinity}}",
		"{\"type\":\"x\",\"payload\":{\"a\":NaN}}",
		"{\"type\":\"x\",\"payload\":{\"a\":[1.]}}",
		"{'type':\"x\"}",
		"{\"type\":\"x\\ty\",\"payload\":{\"t\":\"a\tb\"}}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		rejected(cases[i]);
}

static void escaped_lone_surrogate_is_rejected(void **state)
{
	(void)state;
	rejected("{\"type\":\"a\\ud800\"}");
	rejected("{\"type\":\"a\\udc00\"}");
	rejected("{\"type\":\"a\\ud800\\u0041\"}");
	accepted("{\"type\":\"a\\ud83d\\ude00\"}");
}

static void valid_utf8_is_accepted(void **state)
{
	struct pav_envelope env;
	const char *why;

	(void)state;
	assert_int_equal(parse("{\"type\":\"caf\xc3\xa9\","
			       "\"payload\":{\"t\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}}",
			       &env, &why),
			 0);
	assert_string_equal(env.type, "caf\xc3\xa9");
	pav_envelope_free(&env);
}

static void free_is_safe_after_failure_and_twice(void **state)
{
	struct pav_envelope env;
	const char *why;

	(void)state;
	assert_int_equal(parse("not json", &env, &why), PAV_ERR_FORMAT);
	assert_null(env.root);
	pav_envelope_free(&env);
	pav_envelope_free(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_message_is_accepted),
		cmocka_unit_test(full_message_is_accepted),
		cmocka_unit_test(member_order_does_not_matter),
		cmocka_unit_test(empty_payload_object_is_accepted),
		cmocka_unit_test(timestamp_content_is_not_checked),
		cmocka_unit_test(not_json_is_rejected),
		cmocka_unit_test(top_level_non_objects_are_rejected),
		cmocka_unit_test(trailing_garbage_is_rejected),
		cmocka_unit_test(trailing_whitespace_is_accepted),
		cmocka_unit_test(nul_after_the_object_is_rejected),
		cmocka_unit_test(length_not_nul_bounds_the_frame),
		cmocka_unit_test(missing_type_is_rejected),
		cmocka_unit_test(empty_type_is_rejected),
		cmocka_unit_test(non_string_type_is_rejected),
		cmocka_unit_test(type_with_embedded_nul_is_rejected),
		cmocka_unit_test(payload_not_object_is_rejected),
		cmocka_unit_test(timestamp_not_string_is_rejected),
		cmocka_unit_test(unknown_top_level_member_is_rejected),
		cmocka_unit_test(id_not_string_is_rejected),
		cmocka_unit_test(id_empty_is_accepted),
		cmocka_unit_test(id_length_limit_is_64),
		cmocka_unit_test(id_of_one_char_is_accepted),
		cmocka_unit_test(id_with_embedded_nul_is_rejected),
		cmocka_unit_test(valid_id_is_echoed_on_later_errors),
		cmocka_unit_test(invalid_id_is_not_echoed),
		cmocka_unit_test(empty_id_is_echoed_on_an_error),
		cmocka_unit_test(duplicate_member_is_refused),
		cmocka_unit_test(depth_8_is_accepted),
		cmocka_unit_test(depth_9_is_rejected),
		cmocka_unit_test(depth_counts_containers_only),
		cmocka_unit_test(depth_limit_is_the_callers),
		cmocka_unit_test(invalid_utf8_is_rejected),
		cmocka_unit_test(non_utf8_that_json_c_lets_through_is_rejected),
		cmocka_unit_test(json_that_json_c_strict_lets_through_is_rejected),
		cmocka_unit_test(escaped_lone_surrogate_is_rejected),
		cmocka_unit_test(valid_utf8_is_accepted),
		cmocka_unit_test(free_is_safe_after_failure_and_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
