/*
 * test_msg.c — serialized server messages (src/msg.c): the exact text of
 * the envelope (DESIGN section 2 "Envelope"), the lws padding, and the
 * reference counting that lets all recipients share one copy (misuse shows
 * under the ASan build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "clock.h"
#include "msg.h"

#define TS_LEN 24 /* "2026-11-25T12:00:00.123Z" */

static const char *text(struct pav_msg *m)
{
	return (const char *)pav_msg_text(m);
}

/* The message's "timestamp" value: RFC 3339 UTC with milliseconds, within
 * [before, after] (ms); copied to ts. */
static void timestamp_of(struct pav_msg *m, int64_t before, int64_t after,
			 char *ts)
{
	json_object *o = json_tokener_parse(text(m)), *v;
	regex_t re;
	int64_t ms;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "timestamp", &v));
	assert_true(json_object_is_type(v, json_type_string));
	snprintf(ts, PAV_TIME_LEN, "%s", json_object_get_string(v));
	json_object_put(o);
	assert_int_equal(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
				 ":[0-9]{2}\\.[0-9]{3}Z$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	if (regexec(&re, ts, 0, NULL, 0))
		fail_msg("timestamp \"%s\" is not YYYY-MM-DDTHH:MM:SS.mmmZ", ts);
	regfree(&re);
	assert_int_equal(pav_parse_time(ts, &ms), 0);
	assert_true(ms >= before && ms <= after);
}

/* Builds and checks the whole text: want_head + "timestamp":"<now>"}. */
static void builds_exactly(const char *type, const char *id,
			   const char *channel, const char *payload_json,
			   const char *want_head)
{
	json_object *p = payload_json ? json_tokener_parse(payload_json) : NULL;
	int64_t before = pav_now_ms(), after;
	struct pav_msg *m = pav_msg_build(type, id, channel, p);
	char ts[PAV_TIME_LEN], want[1024];

	after = pav_now_ms();
	assert_non_null(m);
	assert_int_equal(m->refs, 1);
	timestamp_of(m, before, after, ts);
	assert_int_equal(strlen(ts), TS_LEN);
	snprintf(want, sizeof(want), "%s\"timestamp\":\"%s\"}", want_head, ts);
	assert_string_equal(text(m), want);
	assert_int_equal(m->len, strlen(want));
	pav_msg_unref(m);
	json_object_put(p);
}

static void type_and_timestamp_only(void **state)
{
	(void)state;
	builds_exactly("heartbeat", NULL, NULL, NULL, "{\"type\":\"heartbeat\",");
}

static void payload_follows_type(void **state)
{
	(void)state;
	builds_exactly("presence", NULL, NULL, "{\"status\":\"online\"}",
		       "{\"type\":\"presence\",\"payload\":{\"status\":"
		       "\"online\"},");
}

static void id_follows_type(void **state)
{
	(void)state;
	builds_exactly("ack", "req-1", NULL, "{\"for\":\"subscribe\"}",
		       "{\"type\":\"ack\",\"id\":\"req-1\",\"payload\":"
		       "{\"for\":\"subscribe\"},");
}

static void channel_follows_id(void **state)
{
	(void)state;
	builds_exactly("notification", NULL, "user:u1", "{\"id\":\"n1\"}",
		       "{\"type\":\"notification\",\"channel\":\"user:u1\","
		       "\"payload\":{\"id\":\"n1\"},");
	builds_exactly("x", "r9", "zone:z1", "{}",
		       "{\"type\":\"x\",\"id\":\"r9\",\"channel\":\"zone:z1\","
		       "\"payload\":{},");
}

static void text_has_no_white_space_and_no_slash_escapes(void **state)
{
	(void)state;
	builds_exactly("x", NULL, NULL,
		       "{ \"url\" : \"https://a/b\", \"n\" : [ 1, 2 ] }",
		       "{\"type\":\"x\",\"payload\":{\"url\":\"https://a/b\","
		       "\"n\":[1,2]},");
}

static void strings_are_json_escaped(void **state)
{
	(void)state;
	builds_exactly("a\"b", "q\\", "zone:z1", "{\"t\":\"line\\nnext\\u0001\"}",
		       "{\"type\":\"a\\\"b\",\"id\":\"q\\\\\",\"channel\":"
		       "\"zone:z1\",\"payload\":{\"t\":\"line\\nnext\\u0001\"},");
}

static void utf8_passes_through(void **state)
{
	(void)state;
	builds_exactly("x", NULL, NULL, "{\"t\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
		       "{\"type\":\"x\",\"payload\":{\"t\":\"caf\xc3\xa9 "
		       "\xf0\x9f\x98\x80\"},");
}

static void payload_is_borrowed(void **state)
{
	json_object *p = json_tokener_parse("{\"a\":[1,2,3]}");
	struct pav_msg *m;

	(void)state;
	m = pav_msg_build("x", NULL, NULL, p);
	assert_non_null(m);
	/* still ours, unchanged: one put frees it (ASan sees a double free
	 * or a leak otherwise) */
	assert_string_equal(json_object_to_json_string_ext(
				    p, JSON_C_TO_STRING_PLAIN),
			    "{\"a\":[1,2,3]}");
	pav_msg_unref(m);
	assert_int_equal(json_object_put(p), 1);
}

static void text_sits_after_lws_padding(void **state)
{
	struct pav_msg *m = pav_msg_new("hello", 5, NULL);

	(void)state;
	assert_non_null(m);
	assert_ptr_equal(pav_msg_text(m), m->buf + LWS_PRE);
	assert_int_equal(m->len, 5);
	assert_memory_equal(pav_msg_text(m), "hello", 5);
	/* NUL-terminated for logging, not counted */
	assert_int_equal(pav_msg_text(m)[5], '\0');
	/* lws_write may write its frame header into the padding */
	memset(m->buf, 0xa5, LWS_PRE);
	assert_memory_equal(pav_msg_text(m), "hello", 5);
	pav_msg_unref(m);
}

static void new_copies_the_text(void **state)
{
	char src[] = "abc\0def";
	struct pav_msg *m = pav_msg_new(src, sizeof(src) - 1, NULL);

	(void)state;
	assert_non_null(m);
	memset(src, 'x', sizeof(src) - 1);
	assert_int_equal(m->len, 7);
	assert_memory_equal(pav_msg_text(m), "abc\0def", 7);
	pav_msg_unref(m);
}

static void empty_text_is_allowed(void **state)
{
	struct pav_msg *m = pav_msg_new("", 0, NULL);

	(void)state;
	assert_non_null(m);
	assert_int_equal(m->len, 0);
	assert_int_equal(pav_msg_text(m)[0], '\0');
	pav_msg_unref(m);
}

static void refs_start_at_one_and_count(void **state)
{
	struct pav_msg *m = pav_msg_new("x", 1, NULL), *r;

	(void)state;
	assert_int_equal(m->refs, 1);
	r = pav_msg_ref(m);
	assert_ptr_equal(r, m);
	assert_int_equal(m->refs, 2);
	pav_msg_ref(m);
	assert_int_equal(m->refs, 3);
	pav_msg_unref(m);
	assert_int_equal(m->refs, 2);
	pav_msg_unref(m);
	/* still alive with one reference: readable (ASan checks) */
	assert_int_equal(m->refs, 1);
	assert_memory_equal(pav_msg_text(m), "x", 1);
	pav_msg_unref(m); /* freed: LeakSanitizer would report it otherwise */
}

static void many_recipients_share_one_copy(void **state)
{
	struct pav_msg *m = pav_msg_build("x", NULL, "zone:z1", NULL);
	struct pav_msg *held[1000];

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 1000; i++)
		held[i] = pav_msg_ref(m);
	pav_msg_unref(m); /* the publisher lets go first */
	for (int i = 0; i < 999; i++) {
		pav_msg_unref(held[i]);
		assert_ptr_equal(pav_msg_text(held[999]),
				 held[999]->buf + LWS_PRE);
	}
	assert_int_equal(held[999]->refs, 1);
	pav_msg_unref(held[999]);
}

static void unref_of_null_is_a_no_op(void **state)
{
	(void)state;
	pav_msg_unref(NULL);
}

static void error_has_code_and_message(void **state)
{
	json_object *o, *p, *v;
	struct pav_msg *m = pav_msg_error(1002, "type is required", NULL);
	char ts[PAV_TIME_LEN], want[256];

	(void)state;
	assert_non_null(m);
	timestamp_of(m, 0, INT64_MAX, ts);
	snprintf(want, sizeof(want),
		 "{\"type\":\"error\",\"payload\":{\"code\":1002,\"message\":"
		 "\"type is required\"},\"timestamp\":\"%s\"}",
		 ts);
	assert_string_equal(text(m), want);
	o = json_tokener_parse(text(m));
	assert_false(json_object_object_get_ex(o, "id", &v));
	assert_true(json_object_object_get_ex(o, "payload", &p));
	assert_true(json_object_object_get_ex(p, "code", &v));
	assert_true(json_object_is_type(v, json_type_int));
	json_object_put(o);
	pav_msg_unref(m);
}

static void error_echoes_the_id(void **state)
{
	struct pav_msg *m = pav_msg_error(1004, "permission denied", "r-7");
	char ts[PAV_TIME_LEN], want[256];

	(void)state;
	assert_non_null(m);
	timestamp_of(m, 0, INT64_MAX, ts);
	snprintf(want, sizeof(want),
		 "{\"type\":\"error\",\"id\":\"r-7\",\"payload\":{\"code\":1004,"
		 "\"message\":\"permission denied\"},\"timestamp\":\"%s\"}",
		 ts);
	assert_string_equal(text(m), want);
	pav_msg_unref(m);
}

static void error_message_is_escaped(void **state)
{
	struct pav_msg *m = pav_msg_error(2000, "bad \"x\"\n", NULL);
	json_object *o, *p, *v;

	(void)state;
	assert_non_null(m);
	o = json_tokener_parse(text(m));
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "payload", &p));
	assert_true(json_object_object_get_ex(p, "message", &v));
	assert_string_equal(json_object_get_string(v), "bad \"x\"\n");
	json_object_put(o);
	pav_msg_unref(m);
}

/* A revoked subscription's error names its channel and answers no id. */
static void channel_error_names_the_channel(void **state)
{
	struct pav_msg *m = pav_msg_channel_error(1004, "subscription revoked",
						  "zone:z2");
	char ts[PAV_TIME_LEN], want[256];

	(void)state;
	assert_non_null(m);
	timestamp_of(m, 0, INT64_MAX, ts);
	snprintf(want, sizeof(want),
		 "{\"type\":\"error\",\"payload\":{\"code\":1004,"
		 "\"message\":\"subscription revoked\",\"channel\":\"zone:z2\"},"
		 "\"timestamp\":\"%s\"}",
		 ts);
	assert_string_equal(text(m), want);
	pav_msg_unref(m);
}

/* The type is read back from the text, escapes undone. */
static void type_is_read_back(void **state)
{
	const char *types[] = {"tick", "q\"b\\s\nn/x", "\xc3\xa9t\xc3\xa9", ""};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct pav_msg *m = pav_msg_build(types[i], "id\"", "zone:a",
						  NULL);

		assert_non_null(m);
		assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), 0);
		assert_string_equal(buf, types[i]);
		pav_msg_unref(m);
	}
}

static void type_that_is_not_there_or_too_long(void **state)
{
	static const char no_type[] = "{\"id\":\"x\"}";
	struct pav_msg *m = pav_msg_new(no_type, sizeof(no_type) - 1, NULL);
	char buf[8];

	(void)state;
	assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), -1);
	pav_msg_unref(m);
	m = pav_msg_new("{\"type\":\"ab\\\"", 13, NULL); /* cut short */
	assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), -1);
	pav_msg_unref(m);
	m = pav_msg_build("eightchr", NULL, NULL, NULL); /* 8 + NUL > 8 */
	assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), -1);
	pav_msg_unref(m);
	m = pav_msg_build("sevench", NULL, NULL, NULL);
	assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sevench");
	pav_msg_unref(m);
}

/* A type is read straight from the text when it holds no escape, through
 * the tokener when it does: either way it must fit with its NUL, counted
 * as the type (escapes undone), not as its text. */
static void type_fits_by_its_own_length(void **state)
{
	struct pav_msg *m = pav_msg_build("q\"b\\", NULL, NULL, NULL);
	char buf[5];

	(void)state;
	/* 4 characters, 6 in the text */
	assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "q\"b\\");
	assert_int_equal(pav_msg_type(m, buf, 4), -1);
	pav_msg_unref(m);
	m = pav_msg_build("four", NULL, NULL, NULL);
	assert_int_equal(pav_msg_type(m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "four");
	assert_int_equal(pav_msg_type(m, buf, 4), -1);
	pav_msg_unref(m);
	m = pav_msg_build("", NULL, NULL, NULL);
	assert_int_equal(pav_msg_type(m, buf, 1), 0);
	assert_string_equal(buf, "");
	pav_msg_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(type_and_timestamp_only),
		cmocka_unit_test(payload_follows_type),
		cmocka_unit_test(id_follows_type),
		cmocka_unit_test(channel_follows_id),
		cmocka_unit_test(text_has_no_white_space_and_no_slash_escapes),
		cmocka_unit_test(strings_are_json_escaped),
		cmocka_unit_test(utf8_passes_through),
		cmocka_unit_test(payload_is_borrowed),
		cmocka_unit_test(text_sits_after_lws_padding),
		cmocka_unit_test(new_copies_the_text),
		cmocka_unit_test(empty_text_is_allowed),
		cmocka_unit_test(refs_start_at_one_and_count),
		cmocka_unit_test(many_recipients_share_one_copy),
		cmocka_unit_test(unref_of_null_is_a_no_op),
		cmocka_unit_test(error_has_code_and_message),
		cmocka_unit_test(error_echoes_the_id),
		cmocka_unit_test(error_message_is_escaped),
		cmocka_unit_test(channel_error_names_the_channel),
		cmocka_unit_test(type_is_read_back),
		cmocka_unit_test(type_that_is_not_there_or_too_long),
		cmocka_unit_test(type_fits_by_its_own_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
