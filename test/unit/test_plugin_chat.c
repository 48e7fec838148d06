/*
 * test_plugin_chat.c — the chat plugin (plugins/chat/chat.c) with a fake
 * host (plugin_host.c): the published "chat_message" shape and its room
 * (moved here from test_api.c), the client_send option, and the
 * chat_message handler (checks, the message the server builds, the
 * deferred ack with the new id).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_host.h"

extern const struct pav_plugin pavilion_plugin;

static void *inst;
static pav_conn *c;

static int create(const char *options)
{
	static const char *const rooms[] = {"chat:r1", "zone:z1", NULL};

	return ph_start(&pavilion_plugin, options,
			"{\"username\":\"alice\","
			"\"picture\":\"https://p/a.png\"}",
			rooms, &inst, &c);
}

static int setup(void **state)
{
	(void)state;
	return create("{}");
}

static int setup_send(void **state)
{
	(void)state;
	return create("{\"client_send\":true}");
}

/* ---- creation ---- */

static void without_client_send_only_the_check_is_registered(void **state)
{
	(void)state;
	assert_null(ph_handler("chat_message"));
	assert_non_null(ph_check("chat_message"));
	assert_int_equal(ph_count("register_route"), 0);
}

static void client_send_registers_the_chat_message_handler(void **state)
{
	(void)state;
	assert_non_null(ph_handler("chat_message"));
	assert_non_null(ph_check("chat_message"));
}

static void client_send_must_be_a_boolean(void **state)
{
	void *i2;
	char err[128];

	(void)state;
	assert_int_equal(ph_create(&pavilion_plugin, "{\"client_send\":1}",
				   &i2, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "client_send: must be true or false");
	assert_int_equal(ph_create(&pavilion_plugin, "{\"send\":true}", &i2,
				   err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "send: unknown option");
}

/* ---- the published shape (POST /v1/publish of "chat_message") ---- */

static void payload_ok(const char *channel, const char *payload)
{
	ph_payload_ok(inst, "chat_message", channel, payload);
}

static void payload_refused(const char *channel, const char *payload)
{
	ph_payload_refused(inst, "chat_message", channel, payload);
}

#define SENDER "{\"id\":\"u2\",\"username\":\"bob\",\"profilePhoto\":\"p.png\"}"
#define CHAT(room, extra)                                                \
	"{\"id\":\"m1\",\"roomId\":\"" room "\",\"sender\":" SENDER       \
	",\"content\":\"hello\",\"createdAt\":\"2024-03-15T12:00:00Z\"" \
	extra "}"

static void chat_message_of_spec_shape_passes(void **state)
{
	(void)state;
	payload_ok("chat:r1", CHAT("r1", ",\"attachments\":[]"));
	payload_ok("chat:r1", CHAT("r1", ",\"attachments\":[{\"url\":\"a\"}]"));
	payload_ok("chat:r1", CHAT("r1", ""));
}

/* The check completes the payload it passes: attachments, when left out,
 * is an empty array; one the backend gave stays as it was. */
static void published_without_attachments_gets_an_empty_array(void **state)
{
	pav_payload_check_fn check = ph_check("chat_message");
	json_object *p = json_tokener_parse(CHAT("r1", ""));
	json_object *q = json_tokener_parse(CHAT("r1", ",\"attachments\":[1]"));
	json_object *a;
	const char *why = NULL;

	(void)state;
	assert_int_equal(check(inst, "chat:r1", p, &why), 0);
	assert_true(json_object_object_get_ex(p, "attachments", &a));
	assert_true(json_object_is_type(a, json_type_array));
	assert_int_equal(json_object_array_length(a), 0);
	assert_int_equal(check(inst, "chat:r1", q, &why), 0);
	assert_true(json_object_object_get_ex(q, "attachments", &a));
	assert_string_equal(json_object_to_json_string(a), "[ 1 ]");
	json_object_put(p);
	json_object_put(q);
}

static void chat_message_missing_a_field_is_refused(void **state)
{
	static const char *const cases[] = {
		"{\"roomId\":\"r1\",\"sender\":" SENDER ",\"content\":\"c\","
		"\"createdAt\":\"t\"}",
		"{\"id\":\"m1\",\"sender\":" SENDER ",\"content\":\"c\","
		"\"createdAt\":\"t\"}",
		"{\"id\":\"m1\",\"roomId\":\"r1\",\"content\":\"c\","
		"\"createdAt\":\"t\"}",
		"{\"id\":\"m1\",\"roomId\":\"r1\",\"sender\":" SENDER
		",\"createdAt\":\"t\"}",
		"{\"id\":\"m1\",\"roomId\":\"r1\",\"sender\":" SENDER
		",\"content\":\"c\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		payload_refused("chat:r1", cases[i]);
}

static void chat_message_sender_must_be_complete(void **state)
{
	(void)state;
	payload_refused("chat:r1",
			"{\"id\":\"m1\",\"roomId\":\"r1\",\"sender\":{\"id\":\"u\"},"
			"\"content\":\"c\",\"createdAt\":\"t\"}");
	payload_refused("chat:r1",
			"{\"id\":\"m1\",\"roomId\":\"r1\",\"sender\":\"u\","
			"\"content\":\"c\",\"createdAt\":\"t\"}");
}

static void chat_attachments_must_be_an_array(void **state)
{
	(void)state;
	payload_refused("chat:r1", CHAT("r1", ",\"attachments\":{}"));
	payload_refused("chat:r1", CHAT("r1", ",\"attachments\":\"a.png\""));
	payload_refused("chat:r1", CHAT("r1", ",\"attachments\":null"));
}

static void chat_room_must_match_the_channel(void **state)
{
	(void)state;
	payload_refused("chat:r2", CHAT("r1", ""));
	payload_refused("chat:r", CHAT("r1", ""));
	payload_refused("chat:r1x", CHAT("r1", ""));
	payload_refused("chat:R1", CHAT("r1", ""));
}

static void chat_message_only_to_chat_channels(void **state)
{
	(void)state;
	payload_refused("zone:r1", CHAT("r1", ""));
	payload_refused("channel:r1", CHAT("r1", ""));
	payload_refused("user:r1", CHAT("r1", ""));
}

static void chat_message_payload_must_be_an_object(void **state)
{
	(void)state;
	payload_refused("chat:r1", "[]");
	payload_refused("chat:r1", "\"x\"");
	payload_refused("chat:r1", "1");
	payload_refused("chat:r1", "null");
}

/* ---- client-sent chat_message ---- */

static int say(const char *payload, const char **why)
{
	return ph_handle(inst, c, "chat_message", "k1", payload, NULL, why);
}

static void refused(const char *payload, int code)
{
	const char *why = NULL;
	int rc = say(payload, &why);

	if (rc != code)
		fail_msg("%s: got %d, want %d", payload, rc, code);
	assert_non_null(why);
	assert_int_equal(ph_count("publish"), 0);
	assert_int_equal(ph_count("defer"), 0);
}

static void message_is_published_to_the_room_and_acked_with_its_id(
	void **state)
{
	(void)state;
	assert_int_equal(say("{\"roomId\":\"r1\",\"content\":\"hi\"}", NULL),
			 PAV_PENDING);
	assert_int_equal(ph_nlog, 3);
	assert_string_equal(ph_at(0), "defer c1 chat_message k1");
	assert_string_equal(ph_at(1),
			    "publish [chat:r1] chat_message key=- except=- "
			    "transient=0 {\"id\":\"m0000000000000001\","
			    "\"roomId\":\"r1\",\"sender\":{\"id\":\"u1\","
			    "\"username\":\"alice\","
			    "\"profilePhoto\":\"https://p/a.png\"},"
			    "\"content\":\"hi\",\"createdAt\":\"" PH_T0_TEXT
			    "\",\"attachments\":[]}");
	assert_string_equal(ph_at(2), "reply 1 code=0 msg=- "
				      "ack={\"id\":\"m0000000000000001\"}");
}

static void message_keeps_its_attachments(void **state)
{
	(void)state;
	say("{\"roomId\":\"r1\",\"content\":\"hi\","
	    "\"attachments\":[{\"url\":\"a.png\"}]}",
	    NULL);
	assert_non_null(strstr(ph_at(1),
			       "\"attachments\":[{\"url\":\"a.png\"}]}"));
}

static void sender_without_name_claims_gets_empty_strings(void **state)
{
	static const char *const rooms[] = {"chat:r1", NULL};

	(void)state;
	c = ph_conn(2, "u2", NULL, rooms);
	ph_handle(inst, c, "chat_message", NULL,
		  "{\"roomId\":\"r1\",\"content\":\"x\"}", NULL, NULL);
	assert_non_null(strstr(ph_at(1),
			       "\"sender\":{\"id\":\"u2\",\"username\":\"\","
			       "\"profilePhoto\":\"\"}"));
}

static void room_the_connection_is_not_in_is_1004(void **state)
{
	(void)state;
	refused("{\"roomId\":\"r2\",\"content\":\"hi\"}", PAV_ERR_PERMISSION);
	/* zone:z1 is not chat:z1 */
	refused("{\"roomId\":\"z1\",\"content\":\"hi\"}", PAV_ERR_PERMISSION);
}

static void malformed_chat_message_is_1002(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(say(NULL, &why), PAV_ERR_FORMAT);
	refused("{\"content\":\"hi\"}", PAV_ERR_FORMAT);
	refused("{\"roomId\":1,\"content\":\"hi\"}", PAV_ERR_FORMAT);
	refused("{\"roomId\":\"r 1\",\"content\":\"hi\"}", PAV_ERR_FORMAT);
	refused("{\"roomId\":\"chat:r1\",\"content\":\"hi\"}", PAV_ERR_FORMAT);
	refused("{\"roomId\":\"r1\"}", PAV_ERR_FORMAT);
	refused("{\"roomId\":\"r1\",\"content\":{}}", PAV_ERR_FORMAT);
	refused("{\"roomId\":\"r1\",\"content\":\"hi\",\"attachments\":{}}",
		PAV_ERR_FORMAT);
}

static void client_sent_sender_is_1002(void **state)
{
	(void)state;
	refused("{\"roomId\":\"r1\",\"content\":\"hi\",\"sender\":" SENDER "}",
		PAV_ERR_FORMAT);
}

static void publish_failure_is_answered_2000(void **state)
{
	(void)state;
	ph.publish_err = -EIO;
	assert_int_equal(say("{\"roomId\":\"r1\",\"content\":\"hi\"}", NULL),
			 PAV_PENDING);
	assert_string_equal(ph_at(2), "reply 1 code=2000 msg=- ack=-");
}

static void ack_waits_for_the_publication(void **state)
{
	(void)state;
	ph.async = 1;
	say("{\"roomId\":\"r1\",\"content\":\"hi\"}", NULL);
	assert_int_equal(ph_count("reply"), 0);
	ph_run();
	assert_int_equal(ph_count("reply 1 code=0"), 1);
}

static void deferral_failure_is_2000(void **state)
{
	(void)state;
	ph.defer_fails = 1;
	assert_int_equal(say("{\"roomId\":\"r1\",\"content\":\"hi\"}", NULL),
			 PAV_ERR_INTERNAL);
	assert_int_equal(ph_count("publish"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, ph_end)
#define TC(f) cmocka_unit_test_setup_teardown(f, setup_send, ph_end)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(without_client_send_only_the_check_is_registered),
		TC(client_send_registers_the_chat_message_handler),
		T(client_send_must_be_a_boolean),
		T(chat_message_of_spec_shape_passes),
		T(published_without_attachments_gets_an_empty_array),
		T(chat_message_missing_a_field_is_refused),
		T(chat_message_sender_must_be_complete),
		T(chat_attachments_must_be_an_array),
		T(chat_room_must_match_the_channel),
		T(chat_message_only_to_chat_channels),
		T(chat_message_payload_must_be_an_object),
		TC(message_is_published_to_the_room_and_acked_with_its_id),
		TC(message_keeps_its_attachments),
		TC(sender_without_name_claims_gets_empty_strings),
		TC(room_the_connection_is_not_in_is_1004),
		TC(malformed_chat_message_is_1002),
		TC(client_sent_sender_is_1002),
		TC(publish_failure_is_answered_2000),
		TC(ack_waits_for_the_publication),
		TC(deferral_failure_is_2000),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
