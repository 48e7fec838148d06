/*
 * test_api.c — the internal API's pure parts (src/api.c): request bodies,
 * the published payload shapes (DESIGN section 4, spec "Server-to-Client
 * Messages") and the API key check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "gateway.h"

/* Defined by main.c in the binary; api.c's routing needs it, not these
 * tests.  Weak, so a core library that defines it wins. */
__attribute__((weak)) struct pav_gateway *pav_gw;

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

/* ---- payload shapes -------------------------------------------------- */

static json_object *json(const char *text)
{
	json_object *o = json_tokener_parse(text);

	if (!o)
		fail_msg("test JSON does not parse: %s", text);
	return o;
}

static int check(const char *type, const char *channel, const char *payload)
{
	json_object *p = json(payload);
	const char *why = NULL;
	int rc = pav_api_check_payload(type, channel, p, &why);

	if (rc != 0)
		assert_non_null(why);
	json_object_put(p);
	return rc;
}

static void payload_ok(const char *type, const char *channel,
		       const char *payload)
{
	if (check(type, channel, payload) != 0)
		fail_msg("%s on %s refused: %s", type, channel, payload);
}

static void payload_refused(const char *type, const char *channel,
			    const char *payload)
{
	int rc = check(type, channel, payload);

	if (rc != -EINVAL)
		fail_msg("%s on %s: got %d, want -EINVAL: %s", type, channel,
			 rc, payload);
}

#define N_MIN "\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\"," \
	      "\"isRead\":false,\"createdAt\":\"2024-03-15T12:00:00Z\""
#define SENDER "{\"id\":\"u2\",\"username\":\"bob\",\"profilePhoto\":\"p.png\"}"

static void notification_of_spec_shape_passes(void **state)
{
	(void)state;
	payload_ok("notification", "user:u1", "{" N_MIN "}");
	payload_ok("notification", "user:u1",
		   "{" N_MIN ",\"sender\":" SENDER
		   ",\"reference\":{\"type\":\"post\",\"id\":\"p9\"}}");
	payload_ok("notification", "user:u1",
		   "{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
		   "\"isRead\":true,\"createdAt\":\"2024-03-15T12:00:00Z\"}");
}

static void notification_missing_a_field_is_refused(void **state)
{
	static const char *const cases[] = {
		"{\"type\":\"like\",\"content\":\"hi\",\"isRead\":false,"
		"\"createdAt\":\"t\"}",
		"{\"id\":\"n1\",\"content\":\"hi\",\"isRead\":false,"
		"\"createdAt\":\"t\"}",
		"{\"id\":\"n1\",\"type\":\"like\",\"isRead\":false,"
		"\"createdAt\":\"t\"}",
		"{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
		"\"createdAt\":\"t\"}",
		"{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
		"\"isRead\":false}",
		"{}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		payload_refused("notification", "user:u1", cases[i]);
}

static void notification_field_of_wrong_type_is_refused(void **state)
{
	(void)state;
	payload_refused("notification", "user:u1",
			"{\"id\":1,\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":false,\"createdAt\":\"t\"}");
	payload_refused("notification", "user:u1",
			"{\"id\":\"n1\",\"type\":\"like\",\"content\":{},"
			"\"isRead\":false,\"createdAt\":\"t\"}");
	payload_refused("notification", "user:u1",
			"{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":\"false\",\"createdAt\":\"t\"}");
	payload_refused("notification", "user:u1",
			"{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":0,\"createdAt\":\"t\"}");
	payload_refused("notification", "user:u1",
			"{\"id\":\"n1\",\"type\":null,\"content\":\"hi\","
			"\"isRead\":false,\"createdAt\":\"t\"}");
	payload_refused("notification", "user:u1",
			"{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":false,\"createdAt\":0}");
}

static void notification_sender_must_be_complete(void **state)
{
	(void)state;
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"sender\":{\"id\":\"u2\",\"username\":\"b\"}}");
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"sender\":{\"id\":2,\"username\":\"b\","
			"\"profilePhoto\":\"p\"}}");
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"sender\":\"u2\"}");
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"sender\":null}");
}

static void notification_reference_must_be_complete(void **state)
{
	(void)state;
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"reference\":{\"type\":\"post\"}}");
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"reference\":{\"id\":\"p9\"}}");
	payload_refused("notification", "user:u1",
			"{" N_MIN ",\"reference\":[\"post\",\"p9\"]}");
}

#define S_OK(status) \
	"{\"userId\":\"u1\",\"status\":\"" status "\"," \
	"\"lastActive\":\"2024-03-15T12:00:00Z\"}"

static void status_update_of_spec_shape_passes(void **state)
{
	(void)state;
	payload_ok("status_update", "zone:z1", S_OK("online"));
	payload_ok("status_update", "zone:z1", S_OK("offline"));
	payload_ok("status_update", "zone:z1", S_OK("busy"));
	payload_ok("status_update", "zone:z1", S_OK("away"));
	payload_ok("status_update", "zone:z1",
		   "{\"userId\":\"u1\",\"status\":\"away\","
		   "\"lastActive\":\"2024-03-15T12:00:00.123+02:00\"}");
}

static void status_outside_the_enum_is_refused(void **state)
{
	(void)state;
	payload_refused("status_update", "zone:z1", S_OK("Online"));
	payload_refused("status_update", "zone:z1", S_OK("idle"));
	payload_refused("status_update", "zone:z1", S_OK(""));
	payload_refused("status_update", "zone:z1", S_OK("online "));
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u1\",\"status\":1,"
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
}

static void status_update_user_id_must_be_an_id(void **state)
{
	(void)state;
	payload_refused("status_update", "zone:z1",
			"{\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"\",\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u 1\",\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":42,\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
}

static void status_update_last_active_must_be_rfc3339(void **state)
{
	(void)state;
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u1\",\"status\":\"online\"}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":\"yesterday\"}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":\"2024-13-15T12:00:00Z\"}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":1710504000}");
	payload_refused("status_update", "zone:z1",
			"{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":null}");
}

#define CHAT(room, extra)                                                \
	"{\"id\":\"m1\",\"roomId\":\"" room "\",\"sender\":" SENDER       \
	",\"content\":\"hello\",\"createdAt\":\"2024-03-15T12:00:00Z\"" \
	extra "}"

static void chat_message_of_spec_shape_passes(void **state)
{
	(void)state;
	payload_ok("chat_message", "chat:r1", CHAT("r1", ",\"attachments\":[]"));
	payload_ok("chat_message", "chat:r1",
		   CHAT("r1", ",\"attachments\":[{\"url\":\"a.png\"}]"));
	payload_ok("chat_message", "chat:r1", CHAT("r1", ""));
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
		payload_refused("chat_message", "chat:r1", cases[i]);
}

static void chat_message_sender_must_be_complete(void **state)
{
	(void)state;
	payload_refused("chat_message", "chat:r1",
			"{\"id\":\"m1\",\"roomId\":\"r1\",\"sender\":{\"id\":\"u\"},"
			"\"content\":\"c\",\"createdAt\":\"t\"}");
	payload_refused("chat_message", "chat:r1",
			"{\"id\":\"m1\",\"roomId\":\"r1\",\"sender\":\"u\","
			"\"content\":\"c\",\"createdAt\":\"t\"}");
}

static void chat_attachments_must_be_an_array(void **state)
{
	(void)state;
	payload_refused("chat_message", "chat:r1",
			CHAT("r1", ",\"attachments\":{}"));
	payload_refused("chat_message", "chat:r1",
			CHAT("r1", ",\"attachments\":\"a.png\""));
	payload_refused("chat_message", "chat:r1",
			CHAT("r1", ",\"attachments\":null"));
}

static void chat_room_must_match_the_channel(void **state)
{
	(void)state;
	payload_refused("chat_message", "chat:r2", CHAT("r1", ""));
	payload_refused("chat_message", "chat:r", CHAT("r1", ""));
	payload_refused("chat_message", "chat:r1x", CHAT("r1", ""));
	payload_refused("chat_message", "chat:R1", CHAT("r1", ""));
}

static void chat_message_only_to_chat_channels(void **state)
{
	(void)state;
	payload_refused("chat_message", "zone:r1", CHAT("r1", ""));
	payload_refused("chat_message", "channel:r1", CHAT("r1", ""));
	payload_refused("chat_message", "user:r1", CHAT("r1", ""));
}

static void other_types_accept_any_object(void **state)
{
	(void)state;
	payload_ok("announcement", "zone:z1", "{}");
	payload_ok("announcement", "zone:z1", "{\"text\":\"hi\",\"n\":[1,2]}");
	payload_ok("x", "user:u1", "{\"id\":7}");
	/* names are case-sensitive: not the checked types */
	payload_ok("Notification", "user:u1", "{}");
	payload_ok("chat_message2", "zone:z1", "{}");
}

static void payload_must_be_an_object_for_every_type(void **state)
{
	static const char *const types[] = {"notification", "status_update",
					    "chat_message", "announcement"};
	static const char *const bad[] = {"[]", "\"x\"", "1", "true"};

	(void)state;
	for (size_t t = 0; t < 4; t++)
		for (size_t b = 0; b < 4; b++)
			payload_refused(types[t], "chat:r1", bad[b]);
}

static void null_payload_is_refused(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(pav_api_check_payload("x", "zone:z1", NULL, &why),
			 -EINVAL);
	assert_non_null(why);
}

/* ---- API keys -------------------------------------------------------- */

static char k1[] = "k3y-0ne-0123456789abcdef";
static char k2[] = "second-key";
static char *const keys[] = {k1, k2};

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
		cmocka_unit_test(notification_of_spec_shape_passes),
		cmocka_unit_test(notification_missing_a_field_is_refused),
		cmocka_unit_test(notification_field_of_wrong_type_is_refused),
		cmocka_unit_test(notification_sender_must_be_complete),
		cmocka_unit_test(notification_reference_must_be_complete),
		cmocka_unit_test(status_update_of_spec_shape_passes),
		cmocka_unit_test(status_outside_the_enum_is_refused),
		cmocka_unit_test(status_update_user_id_must_be_an_id),
		cmocka_unit_test(status_update_last_active_must_be_rfc3339),
		cmocka_unit_test(chat_message_of_spec_shape_passes),
		cmocka_unit_test(chat_message_missing_a_field_is_refused),
		cmocka_unit_test(chat_message_sender_must_be_complete),
		cmocka_unit_test(chat_attachments_must_be_an_array),
		cmocka_unit_test(chat_room_must_match_the_channel),
		cmocka_unit_test(chat_message_only_to_chat_channels),
		cmocka_unit_test(other_types_accept_any_object),
		cmocka_unit_test(payload_must_be_an_object_for_every_type),
		cmocka_unit_test(null_payload_is_refused),
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

	return cmocka_run_group_tests(tests, NULL, NULL);
}
