/*
 * test_plugin_notification.c — the notification plugin
 * (plugins/notification/notification.c) with a fake host (plugin_host.c):
 * what it registers, the published "notification" shape (moved here from
 * test_api.c), POST /v1/notifications (store, then publish keyed by id),
 * GET /v1/users/{id}/notifications, mark_read, and the inbox replay on a
 * subscribe to the user's own channel with "since" (hold, list, send,
 * release without what was sent), in pages when it does not fit in what
 * the connection may hold (replay_incomplete).
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

#define GET_INBOX "/v1/users/{id}/notifications"

static void *inst;
static pav_conn *c;

static int setup(void **state)
{
	(void)state;
	return ph_start(&pavilion_plugin, "{}", NULL, NULL, &inst, &c);
}

/* ---- creation ---- */

static void registers_mark_read_its_routes_and_its_check(void **state)
{
	void *i2;
	char err[128];

	(void)state;
	ph_forget_registrations();
	assert_int_equal(ph_create(&pavilion_plugin, "{}", &i2, err,
				   sizeof(err)),
			 0);
	assert_non_null(ph_handler("mark_read"));
	assert_non_null(ph_route("POST", "/v1/notifications"));
	assert_non_null(ph_route("GET", GET_INBOX));
	assert_non_null(ph_check("notification"));
	assert_non_null(pavilion_plugin.on_subscribed);
	assert_non_null(pavilion_plugin.check_parameters);
	assert_string_equal(pavilion_plugin.name, "notification");
	ph_destroy(&pavilion_plugin, i2);
}

static void any_option_is_refused(void **state)
{
	void *i2;
	char err[128];

	(void)state;
	assert_int_equal(ph_create(&pavilion_plugin, "{\"size\":5}", &i2, err,
				   sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "size: unknown option");
}

/* ---- the published shape (POST /v1/publish of "notification") ---- */

static void payload_ok(const char *payload)
{
	ph_payload_ok(inst, "notification", "user:u1", payload);
}

static void payload_refused(const char *payload)
{
	ph_payload_refused(inst, "notification", "user:u1", payload);
}

#define N_MIN "\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\"," \
	      "\"isRead\":false,\"createdAt\":\"2024-03-15T12:00:00Z\""
#define SENDER "{\"id\":\"u2\",\"username\":\"bob\",\"profilePhoto\":\"p.png\"}"

static void notification_of_spec_shape_passes(void **state)
{
	(void)state;
	payload_ok("{" N_MIN "}");
	payload_ok("{" N_MIN ",\"sender\":" SENDER
		   ",\"reference\":{\"type\":\"post\",\"id\":\"p9\"}}");
	payload_ok("{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
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
		payload_refused(cases[i]);
}

static void notification_field_of_wrong_type_is_refused(void **state)
{
	(void)state;
	payload_refused("{\"id\":1,\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":false,\"createdAt\":\"t\"}");
	payload_refused("{\"id\":\"n1\",\"type\":\"like\",\"content\":{},"
			"\"isRead\":false,\"createdAt\":\"t\"}");
	payload_refused("{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":\"false\",\"createdAt\":\"t\"}");
	payload_refused("{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":0,\"createdAt\":\"t\"}");
	payload_refused("{\"id\":\"n1\",\"type\":null,\"content\":\"hi\","
			"\"isRead\":false,\"createdAt\":\"t\"}");
	payload_refused("{\"id\":\"n1\",\"type\":\"like\",\"content\":\"hi\","
			"\"isRead\":false,\"createdAt\":0}");
}

static void notification_sender_must_be_complete(void **state)
{
	(void)state;
	payload_refused("{" N_MIN ",\"sender\":{\"id\":\"u2\","
			"\"username\":\"b\"}}");
	payload_refused("{" N_MIN ",\"sender\":{\"id\":2,\"username\":\"b\","
			"\"profilePhoto\":\"p\"}}");
	payload_refused("{" N_MIN ",\"sender\":\"u2\"}");
	payload_refused("{" N_MIN ",\"sender\":null}");
}

static void notification_reference_must_be_complete(void **state)
{
	(void)state;
	payload_refused("{" N_MIN ",\"reference\":{\"type\":\"post\"}}");
	payload_refused("{" N_MIN ",\"reference\":{\"id\":\"p9\"}}");
	payload_refused("{" N_MIN ",\"reference\":[\"post\",\"p9\"]}");
}

static void notification_payload_must_be_an_object(void **state)
{
	(void)state;
	payload_refused("[]");
	payload_refused("\"x\"");
	payload_refused("1");
	payload_refused("true");
	payload_refused("null");
}

/* ---- POST /v1/notifications ---- */

static void post(const char *body)
{
	ph_call_route(inst, "POST", "/v1/notifications", NULL, NULL, body);
}

static void posted_notification_is_stored_then_published_to_the_user(
	void **state)
{
	(void)state;
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"like\","
	     "\"content\":\"hi\",\"reference\":{\"type\":\"post\",\"id\":\"p\"}}}");
	assert_int_equal(ph_nlog, 3);
	assert_string_equal(ph_at(0),
			    "inbox_add u1 {\"type\":\"like\",\"content\":\"hi\","
			    "\"reference\":{\"type\":\"post\",\"id\":\"p\"}}");
	/* the stored copy (id, createdAt, isRead), keyed by its id */
	assert_string_equal(ph_at(1),
			    "publish [user:u1] notification "
			    "key=n0000000000000001 except=- transient=0 "
			    "{\"type\":\"like\",\"content\":\"hi\","
			    "\"reference\":{\"type\":\"post\",\"id\":\"p\"},"
			    "\"id\":\"n0000000000000001\",\"createdAt\":\""
			    PH_T0_TEXT "\",\"isRead\":false}");
	assert_string_equal(ph_at(2),
			    "api_answer 201 {\"id\":\"n0000000000000001\"}");
}

static void post_is_answered_after_the_publication(void **state)
{
	(void)state;
	ph.async = 1;
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\","
	     "\"content\":\"c\"}}");
	assert_int_equal(ph_count("api_"), 0);
	ph_run();
	assert_true(ph_find("publish ", 0) < ph_find("api_answer 201", 0));
}

static void posted_notification_needs_a_valid_user_id(void **state)
{
	static const char *const bodies[] = {
		"{\"notification\":{\"type\":\"t\",\"content\":\"c\"}}",
		"{\"userId\":7,\"notification\":{\"type\":\"t\",\"content\":\"c\"}}",
		"{\"userId\":\"\",\"notification\":{\"type\":\"t\",\"content\":\"c\"}}",
		"{\"userId\":\"u 1\",\"notification\":{\"type\":\"t\",\"content\":\"c\"}}",
		"{\"userId\":\"u1:x\",\"notification\":{\"type\":\"t\",\"content\":\"c\"}}",
		/* 65 characters */
		("{\"userId\":\"0123456789012345678901234567890123456789012345678"
		 "9012345678901234\",\"notification\":{\"type\":\"t\","
		 "\"content\":\"c\"}}"),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ph_log_clear();
		post(bodies[i]);
		assert_int_equal(ph_nlog, 1);
		assert_string_equal(ph_at(0), "api_error 400 userId must be 1-64 "
					      "of [A-Za-z0-9_-]");
	}
}

static void posted_notification_must_have_the_spec_shape(void **state)
{
	(void)state;
	post("{\"userId\":\"u1\"}");
	assert_string_equal(ph_at(0),
			    "api_error 400 notification must be an object");
	post("{\"userId\":\"u1\",\"notification\":\"hi\"}");
	assert_string_equal(ph_at(1),
			    "api_error 400 notification must be an object");
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\"}}");
	assert_string_equal(ph_at(2), "api_error 400 notification needs "
				      "string type and content");
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\","
	     "\"content\":\"c\",\"sender\":{\"id\":\"x\"}}}");
	assert_int_equal(strncmp(ph_at(3), "api_error 400 ", 14), 0);
	assert_int_equal(ph_count("inbox_add"), 0);
}

static void store_failure_is_503_or_500_and_nothing_published(void **state)
{
	(void)state;
	ph.inbox_err = -EIO;
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\","
	     "\"content\":\"c\"}}");
	assert_string_equal(ph_at(1), "api_error 503 session store unavailable");
	ph.inbox_err = -ENOMEM;
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\","
	     "\"content\":\"c\"}}");
	assert_string_equal(ph_at(3), "api_error 500 session store error");
	assert_int_equal(ph_count("publish"), 0);
}

static void publish_failure_is_503_or_500(void **state)
{
	(void)state;
	ph.publish_err = -EIO;
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\","
	     "\"content\":\"c\"}}");
	assert_string_equal(ph_at(2), "api_error 503 session store unavailable");
	ph.publish_err = -ENOMEM;
	post("{\"userId\":\"u1\",\"notification\":{\"type\":\"t\","
	     "\"content\":\"c\"}}");
	assert_string_equal(ph_at(5), "api_error 500 delivery failed");
}

/* ---- GET /v1/users/{id}/notifications ---- */

static void get(const char *query)
{
	ph_call_route(inst, "GET", GET_INBOX, "u1", query, NULL);
}

static void inbox_query_is_handed_to_the_store(void **state)
{
	(void)state;
	ph.inbox_list = "[{\"id\":\"n1\"},{\"id\":\"n2\"}]";
	get("unread=1&limit=5");
	assert_string_equal(ph_at(0), "inbox_list u1 since=0 unread=1 limit=5");
	assert_string_equal(ph_at(1),
			    "api_answer 200 {\"userId\":\"u1\",\"notifications\":"
			    "[{\"id\":\"n1\"},{\"id\":\"n2\"}]}");
}

static void inbox_query_defaults_to_everything(void **state)
{
	(void)state;
	get("");
	assert_string_equal(ph_at(0), "inbox_list u1 since=0 unread=0 limit=0");
	get("limit=10000&unread=0&other=x");
	assert_string_equal(ph_at(2),
			    "inbox_list u1 since=0 unread=0 limit=10000");
}

static void malformed_inbox_query_is_400(void **state)
{
	static const char *const queries[] = {
		"unread=2", "unread=yes", "unread=", "limit=-1", "limit=10001",
		"limit=5x", "limit=",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		ph_log_clear();
		get(queries[i]);
		assert_int_equal(ph_nlog, 1);
		if (strncmp(ph_at(0), "api_error 400 ", 14))
			fail_msg("%s: %s", queries[i], ph_at(0));
	}
}

static void inbox_store_failure_is_503_or_500(void **state)
{
	(void)state;
	ph.inbox_err = -EIO;
	get("");
	assert_string_equal(ph_at(1), "api_error 503 session store unavailable");
	ph.inbox_err = -ENOMEM;
	get("");
	assert_string_equal(ph_at(3), "api_error 500 session store error");
}

/* ---- mark_read ---- */

static int mark(const char *payload, const char **why)
{
	return ph_handle(inst, c, "mark_read", "m1", payload, NULL, why);
}

static void mark_read_acks_and_tells_the_users_other_connections(
	void **state)
{
	(void)state;
	assert_int_equal(mark("{\"notificationId\":\"n7\"}", NULL),
			 PAV_PENDING);
	assert_int_equal(ph_nlog, 4);
	assert_string_equal(ph_at(0), "defer c1 mark_read m1");
	assert_string_equal(ph_at(1), "inbox_mark_read u1 n7");
	assert_string_equal(ph_at(2),
			    "reply 1 code=0 msg=- ack={\"notificationId\":\"n7\"}");
	assert_string_equal(ph_at(3),
			    "publish [user:u1] notification_read key=- except=c1 "
			    "transient=1 {\"notificationId\":\"n7\"}");
}

static void mark_read_of_an_id_not_in_the_inbox_is_1004(void **state)
{
	(void)state;
	ph.mark_read_err = -ENOENT;
	assert_int_equal(mark("{\"notificationId\":\"n7\"}", NULL),
			 PAV_PENDING);
	assert_string_equal(ph_at(2), "reply 1 code=1004 "
				      "msg=notification not found ack=-");
	assert_int_equal(ph_count("publish"), 0);
}

static void mark_read_store_failure_is_2000(void **state)
{
	(void)state;
	ph.mark_read_err = -EIO;
	mark("{\"notificationId\":\"n7\"}", NULL);
	assert_int_equal(strncmp(ph_at(2), "reply 1 code=2000 ", 18), 0);
	assert_int_equal(ph_count("publish"), 0);
}

static void mark_read_payload_needs_an_id_of_1_to_64_characters(
	void **state)
{
	static const char *const bad[] = {
		"{}",
		"{\"notificationId\":7}",
		"{\"notificationId\":\"\"}",
		"{\"notificationId\":null}",
		/* 65 characters */
		("{\"notificationId\":\"0123456789012345678901234567890123456789"
		 "0123456789012345678901234\"}"),
	};
	const char *why;

	(void)state;
	assert_int_equal(mark(NULL, &why), PAV_ERR_FORMAT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(mark(bad[i], &why), PAV_ERR_FORMAT);
		assert_non_null(why);
	}
	assert_int_equal(ph_count("defer"), 0);
	/* 64 characters are fine */
	assert_int_equal(mark("{\"notificationId\":\"01234567890123456789012"
			      "34567890123456789012345678901234567890123\"}",
			      NULL),
			 PAV_PENDING);
}

static void mark_read_after_the_connection_closed_leaves_nobody_out(
	void **state)
{
	(void)state;
	ph.async = 1;
	mark("{\"notificationId\":\"n7\"}", NULL);
	c->open = 0;
	ph_run();
	assert_true(ph_find("reply 1 code=0", 0) >= 0);
	assert_true(ph_find("publish [user:u1] notification_read key=- "
			    "except=- ",
			    0) >= 0);
}

/* ---- replay on subscribe(user, since) ---- */

static void subscribed(pav_conn *conn, const char *channel,
		       const char *params)
{
	json_object *p = params ? json_tokener_parse(params) : NULL;
	struct pav_subscribed ev = {channel, p, 0, -1};

	pavilion_plugin.on_subscribed(inst, conn, &ev);
	json_object_put(p);
}

#define SINCE "{\"since\":\"2027-01-15T07:00:00Z\"}"
#define SINCE_MS "1799996400000"

static void since_replays_the_inbox_between_hold_and_release(void **state)
{
	(void)state;
	ph.inbox_list = "[{\"id\":\"n1\",\"x\":1},{\"id\":\"n2\",\"x\":2}]";
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_nlog, 5);
	assert_string_equal(ph_at(0), "hold c1 user:u1");
	assert_string_equal(ph_at(1), "inbox_list u1 since=" SINCE_MS
				      " unread=0 limit=0");
	assert_string_equal(ph_at(2), "send c1 user:u1 notification "
				      "{\"id\":\"n1\",\"x\":1}");
	assert_string_equal(ph_at(3), "send c1 user:u1 notification "
				      "{\"id\":\"n2\",\"x\":2}");
	assert_string_equal(ph_at(4), "release c1 user:u1 skip=n1,n2");
}

static void replay_waits_for_the_store(void **state)
{
	(void)state;
	ph.async = 1;
	ph.inbox_list = "[{\"id\":\"n1\"}]";
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_nlog, 2); /* held and asked, nothing sent */
	ph_run();
	assert_string_equal(ph_at(2), "send c1 user:u1 notification "
				      "{\"id\":\"n1\"}");
	assert_string_equal(ph_at(3), "release c1 user:u1 skip=n1");
}

static void replay_to_a_closed_connection_sends_nothing(void **state)
{
	(void)state;
	ph.async = 1;
	ph.inbox_list = "[{\"id\":\"n1\"}]";
	subscribed(c, "user:u1", SINCE);
	c->open = 0;
	ph_run();
	assert_int_equal(ph_count("send"), 0);
	assert_int_equal(ph_count("release"), 0);
}

static void replay_stops_when_the_connection_cannot_take_more(void **state)
{
	(void)state;
	ph.inbox_list = "[{\"id\":\"n1\"},{\"id\":\"n2\"},{\"id\":\"n3\"}]";
	c->send_limit = 1;
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_count("send"), 1);
	/* only what went out is skipped from the held live ones */
	assert_string_equal(ph_at(ph_nlog - 1), "release c1 user:u1 skip=n1");
}

/* ---- a replay larger than the connection may hold: pages ---- */

#define NOTE(id, at) "{\"id\":\"" id "\",\"createdAt\":\"" at "\"}"
#define N1 NOTE("n1", "2027-01-15T07:10:00.000Z")
#define N2 NOTE("n2", "2027-01-15T07:20:00.000Z")
#define N3 NOTE("n3", "2027-01-15T07:30:00.000Z")
#define N4 NOTE("n4", "2027-01-15T07:40:00.000Z")
#define SENT(n) "send c1 user:u1 notification " n
#define PAGE_END(since) \
	"send c1 user:u1 replay_incomplete {\"since\":\"" since "\"}"

/* The connection may still hold `room` replay messages. */
static void replay_room(size_t room)
{
	c->replay_bounded = 1;
	c->replay_room = room;
}

static void page_that_stops_before_the_end_is_followed_by_replay_incomplete(
	void **state)
{
	(void)state;
	ph.inbox_list = "[" N1 "," N2 "," N3 "," N4 "]";
	replay_room(2);
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_nlog, 6);
	assert_string_equal(ph_at(0), "hold c1 user:u1");
	assert_string_equal(ph_at(2), SENT(N1));
	assert_string_equal(ph_at(3), SENT(N2));
	/* the first not sent, less 1 ms: since is exclusive */
	assert_string_equal(ph_at(4), PAGE_END("2027-01-15T07:29:59.999Z"));
	/* n3 and n4 come with the next page, not live now */
	assert_string_equal(ph_at(5), "release c1 user:u1 skip=n1,n2,n3,n4");
}

static void page_keeps_room_for_its_replay_incomplete(void **state)
{
	(void)state;
	ph.inbox_list = "[" N1 "]";
	subscribed(c, "user:u1", SINCE);
	assert_true(c->replay_spare >= 200);
}

static void replay_that_fits_has_no_replay_incomplete(void **state)
{
	(void)state;
	ph.inbox_list = "[" N1 "," N2 "," N3 "," N4 "]";
	replay_room(4);
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_count("send c1 user:u1 notification"), 4);
	assert_int_equal(ph_count("send c1 user:u1 replay_incomplete"), 0);
	assert_string_equal(ph_at(ph_nlog - 1),
			    "release c1 user:u1 skip=n1,n2,n3,n4");
}

/* A client that asks page after page and reads none: what it was not
 * sent counts, and the gateway's bound on it (4008) is met through the
 * replay_incomplete, which the gateway counts like the replay. */
static void page_where_nothing_fits_still_says_where_to_start(void **state)
{
	(void)state;
	ph.inbox_list = "[" N1 "," N2 "]";
	replay_room(0);
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_count("send c1 user:u1 notification"), 0);
	assert_string_equal(ph_at(2), PAGE_END("2027-01-15T07:09:59.999Z"));
	assert_string_equal(ph_at(3), "release c1 user:u1 skip=n1,n2");
}

/* A store lists a notification that entered the inbox late before newer
 * ones: the next page starts at the earliest not sent. */
static void next_page_starts_at_the_earliest_not_sent(void **state)
{
	(void)state;
	ph.inbox_list = "[" N1 "," N4 "," N2 "]";
	replay_room(1);
	subscribed(c, "user:u1", SINCE);
	assert_string_equal(ph_at(3), PAGE_END("2027-01-15T07:19:59.999Z"));
}

static void page_of_notes_without_createdat_starts_again_at_since(
	void **state)
{
	(void)state;
	ph.inbox_list = "[{\"id\":\"n1\"},{\"id\":\"n2\"}]";
	replay_room(1);
	subscribed(c, "user:u1", SINCE);
	assert_string_equal(ph_at(3), PAGE_END("2027-01-15T07:00:00.000Z"));
}

static void closing_connection_gets_no_replay_incomplete(void **state)
{
	(void)state;
	ph.inbox_list = "[" N1 "," N2 "]";
	replay_room(2);
	c->send_limit = 1;
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_count("send"), 1);
	assert_string_equal(ph_at(ph_nlog - 1), "release c1 user:u1 skip=n1");
}

/* A gateway before host version 5 has no send_replay_within(): the replay
 * goes whole through send_replay(), whose bound closes the connection. */
static void gateway_before_version_5_gets_the_replay_whole(void **state)
{
	struct pav_host old = ph_host;
	void *old_inst;
	char err[128];
	json_object *p = json_tokener_parse(SINCE);
	struct pav_subscribed ev = {"user:u1", p, 0, -1};

	(void)state;
	old.version = 4;
	old.size = offsetof(struct pav_host, send_replay_within);
	ph_forget_registrations();
	assert_int_equal(ph_create_with(&old, &pavilion_plugin, "{}", &old_inst,
					err, sizeof(err)),
			 0);
	ph.inbox_list = "[" N1 "," N2 "]";
	replay_room(0);
	pavilion_plugin.on_subscribed(old_inst, c, &ev);
	assert_int_equal(ph_count("send c1 user:u1 notification"), 2);
	assert_int_equal(ph_count("send c1 user:u1 replay_incomplete"), 0);
	assert_int_equal(c->replay_spare, 0); /* never asked */
	json_object_put(p);
	ph_destroy(&pavilion_plugin, old_inst);
}

static void replay_store_failure_still_releases_the_hold(void **state)
{
	(void)state;
	ph.inbox_err = -EIO;
	subscribed(c, "user:u1", SINCE);
	assert_int_equal(ph_count("send"), 0);
	assert_string_equal(ph_at(ph_nlog - 1), "release c1 user:u1 skip=-");
}

static void no_replay_without_since_or_on_other_channels(void **state)
{
	(void)state;
	subscribed(c, "user:u1", NULL); /* the automatic subscription */
	subscribed(c, "user:u1", "{\"presence\":true}");
	subscribed(c, "zone:z1", SINCE);
	subscribed(c, "user:u2", SINCE);
	assert_int_equal(ph_nlog, 0);
}

static int check_params(const char *params, const char **why)
{
	json_object *p = json_tokener_parse(params);
	int rc = pavilion_plugin.check_parameters(inst, c, "user:u1", p, why);

	json_object_put(p);
	return rc;
}

static void since_must_be_an_rfc3339_time(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(check_params(SINCE, &why), 0);
	assert_int_equal(check_params("{\"since\":\"2027-01-15T07:00:00.5+02:00\"}",
				      &why),
			 0);
	assert_int_equal(check_params("{}", &why), 0);
	assert_int_equal(check_params("{\"since\":\"yesterday\"}", &why),
			 PAV_ERR_FORMAT);
	assert_non_null(why);
	assert_int_equal(check_params("{\"since\":1799996400}", &why),
			 PAV_ERR_FORMAT);
}

/* The replay is read after the ack: with the store down, a since on the
 * own user channel is answered 2000 before anything is subscribed. */
static void since_on_the_own_channel_with_the_store_down_is_2000(void **state)
{
	const char *why = NULL;
	json_object *p = json_tokener_parse(SINCE);

	(void)state;
	ph.store_down = 1;
	assert_int_equal(check_params(SINCE, &why), PAV_ERR_INTERNAL);
	assert_string_equal(why, "session store unavailable");
	assert_int_equal(check_params("{}", &why), 0);
	assert_int_equal(pavilion_plugin.check_parameters(inst, c, "user:u2",
							  p, &why),
			 0);
	assert_int_equal(pavilion_plugin.check_parameters(inst, c, "zone:z1",
							  p, &why),
			 0);
	json_object_put(p);
	ph.store_down = 0;
	assert_int_equal(check_params(SINCE, &why), 0);
	assert_int_equal(ph_nlog, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, ph_end)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(registers_mark_read_its_routes_and_its_check),
		T(any_option_is_refused),
		T(notification_of_spec_shape_passes),
		T(notification_missing_a_field_is_refused),
		T(notification_field_of_wrong_type_is_refused),
		T(notification_sender_must_be_complete),
		T(notification_reference_must_be_complete),
		T(notification_payload_must_be_an_object),
		T(posted_notification_is_stored_then_published_to_the_user),
		T(post_is_answered_after_the_publication),
		T(posted_notification_needs_a_valid_user_id),
		T(posted_notification_must_have_the_spec_shape),
		T(store_failure_is_503_or_500_and_nothing_published),
		T(publish_failure_is_503_or_500),
		T(inbox_query_is_handed_to_the_store),
		T(inbox_query_defaults_to_everything),
		T(malformed_inbox_query_is_400),
		T(inbox_store_failure_is_503_or_500),
		T(mark_read_acks_and_tells_the_users_other_connections),
		T(mark_read_of_an_id_not_in_the_inbox_is_1004),
		T(mark_read_store_failure_is_2000),
		T(mark_read_payload_needs_an_id_of_1_to_64_characters),
		T(mark_read_after_the_connection_closed_leaves_nobody_out),
		T(since_replays_the_inbox_between_hold_and_release),
		T(replay_waits_for_the_store),
		T(replay_to_a_closed_connection_sends_nothing),
		T(replay_stops_when_the_connection_cannot_take_more),
		T(page_that_stops_before_the_end_is_followed_by_replay_incomplete),
		T(page_keeps_room_for_its_replay_incomplete),
		T(replay_that_fits_has_no_replay_incomplete),
		T(page_where_nothing_fits_still_says_where_to_start),
		T(next_page_starts_at_the_earliest_not_sent),
		T(page_of_notes_without_createdat_starts_again_at_since),
		T(closing_connection_gets_no_replay_incomplete),
		T(gateway_before_version_5_gets_the_replay_whole),
		T(replay_store_failure_still_releases_the_hold),
		T(no_replay_without_since_or_on_other_channels),
		T(since_must_be_an_rfc3339_time),
		T(since_on_the_own_channel_with_the_store_down_is_2000),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
