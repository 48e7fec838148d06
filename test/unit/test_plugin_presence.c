/*
 * test_plugin_presence.c — the presence plugin
 * (plugins/presence/presence.c) with a fake host (plugin_host.c): the
 * published "status_update" shape (moved here from test_api.c), the
 * "presence" message, the max_broadcast option, automatic online/offline
 * from on_open(first) / on_close(last) through channel_counts to
 * presence_set, the join announcement, snapshots, and
 * GET /v1/users/{id}/presence.
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
	static const char *const chans[] = {"user:u1", "zone:a", "chat:b",
					    NULL};

	return ph_start(&pavilion_plugin, options, NULL, chans, &inst, &c);
}

static int setup(void **state)
{
	(void)state;
	return create("{}");
}

static int setup_max0(void **state)
{
	(void)state;
	return create("{\"max_broadcast\":0}");
}

/* ---- creation ---- */

static void registers_presence_its_route_its_check_and_hooks(void **state)
{
	(void)state;
	assert_non_null(ph_handler("presence"));
	assert_non_null(ph_route("GET", "/v1/users/{id}/presence"));
	assert_non_null(ph_check("status_update"));
	assert_non_null(pavilion_plugin.on_open);
	assert_non_null(pavilion_plugin.on_close);
	assert_non_null(pavilion_plugin.on_subscribed);
	assert_non_null(pavilion_plugin.check_parameters);
}

static void max_broadcast_is_an_integer_from_0_to_a_billion(void **state)
{
	static const char *const bad[] = {
		"{\"max_broadcast\":-1}", "{\"max_broadcast\":1000000001}",
		"{\"max_broadcast\":\"5\"}", "{\"max_broadcast\":1.5}",
		"{\"max_broadcast\":null}",
	};
	void *i2;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ph_forget_registrations();
		assert_int_equal(ph_create(&pavilion_plugin, bad[i], &i2, err,
					   sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "max_broadcast: must be an integer "
					 "from 0 to 1000000000");
	}
	ph_forget_registrations();
	assert_int_equal(ph_create(&pavilion_plugin,
				   "{\"max_broadcast\":1000000000}", &i2, err,
				   sizeof(err)),
			 0);
	ph_destroy(&pavilion_plugin, i2);
	ph_forget_registrations();
	assert_int_equal(ph_create(&pavilion_plugin, "{\"max\":1}", &i2, err,
				   sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "max: unknown option");
}

/* ---- the published shape (POST /v1/publish of "status_update") ---- */

static void payload_ok(const char *payload)
{
	ph_payload_ok(inst, "status_update", "zone:z1", payload);
}

static void payload_refused(const char *payload)
{
	ph_payload_refused(inst, "status_update", "zone:z1", payload);
}

#define S_OK(status) \
	"{\"userId\":\"u1\",\"status\":\"" status "\"," \
	"\"lastActive\":\"2024-03-15T12:00:00Z\"}"

static void status_update_of_spec_shape_passes(void **state)
{
	(void)state;
	payload_ok(S_OK("online"));
	payload_ok(S_OK("offline"));
	payload_ok(S_OK("busy"));
	payload_ok(S_OK("away"));
	payload_ok("{\"userId\":\"u1\",\"status\":\"away\","
		   "\"lastActive\":\"2024-03-15T12:00:00.123+02:00\"}");
}

static void status_outside_the_enum_is_refused(void **state)
{
	(void)state;
	payload_refused(S_OK("Online"));
	payload_refused(S_OK("idle"));
	payload_refused(S_OK(""));
	payload_refused(S_OK("online "));
	payload_refused("{\"userId\":\"u1\",\"status\":1,"
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
}

static void status_update_user_id_must_be_an_id(void **state)
{
	(void)state;
	payload_refused("{\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
	payload_refused("{\"userId\":\"\",\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
	payload_refused("{\"userId\":\"u 1\",\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
	payload_refused("{\"userId\":42,\"status\":\"online\","
			"\"lastActive\":\"2024-03-15T12:00:00Z\"}");
}

static void status_update_last_active_must_be_rfc3339(void **state)
{
	(void)state;
	payload_refused("{\"userId\":\"u1\",\"status\":\"online\"}");
	payload_refused("{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":\"yesterday\"}");
	payload_refused("{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":\"2024-13-15T12:00:00Z\"}");
	payload_refused("{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":1710504000}");
	payload_refused("{\"userId\":\"u1\",\"status\":\"online\","
			"\"lastActive\":null}");
}

static void status_update_payload_must_be_an_object(void **state)
{
	(void)state;
	payload_refused("[]");
	payload_refused("\"online\"");
	payload_refused("null");
}

/* ---- the presence message ---- */

static int presence(const char *payload, const char **why)
{
	return ph_handle(inst, c, "presence", "p1", payload, NULL, why);
}

static void status_change_is_stored_and_announced_in_one_step(void **state)
{
	(void)state;
	ph.user_channels[0] = "zone:a";
	ph.user_channels[1] = "chat:other";
	assert_int_equal(presence("{\"status\":\"busy\"}", NULL), PAV_PENDING);
	assert_int_equal(ph_nlog, 5);
	assert_string_equal(ph_at(0), "defer c1 presence p1");
	/* all the user's connections' channels on this node */
	assert_string_equal(ph_at(1), "user_channels u1");
	assert_string_equal(ph_at(2),
			    "channel_counts [zone:a,chat:other]");
	/* the store stamps lastActive; the acting connection is left out */
	assert_string_equal(ph_at(3),
			    "presence_set u1 busy when=0 at=0 stamp=lastActive "
			    "announce=[user:u1,zone:a,chat:other] status_update "
			    "except=c1 transient=1 "
			    "{\"userId\":\"u1\",\"status\":\"busy\"}");
	assert_string_equal(ph_at(4), "reply 1 code=0 msg=- ack=-");
}

static void unchanged_status_is_still_a_success(void **state)
{
	(void)state;
	ph.presence_set_err = -EALREADY;
	presence("{\"status\":\"online\"}", NULL);
	assert_string_equal(ph_at(ph_nlog - 1), "reply 1 code=0 msg=- ack=-");
}

static void store_failure_is_answered_2000(void **state)
{
	(void)state;
	ph.presence_set_err = -EIO;
	presence("{\"status\":\"online\"}", NULL);
	assert_string_equal(ph_at(ph_nlog - 1),
			    "reply 1 code=2000 msg=internal server error ack=-");
}

static void status_outside_the_four_is_1002(void **state)
{
	static const char *const bad[] = {
		"{}", "{\"status\":1}", "{\"status\":\"idle\"}",
		"{\"status\":\"Online\"}", "{\"status\":null}",
	};
	const char *why;

	(void)state;
	assert_int_equal(presence(NULL, &why), PAV_ERR_FORMAT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(presence(bad[i], &why), PAV_ERR_FORMAT);
		assert_string_equal(why, "status must be one of online, "
					 "offline, busy, away");
	}
	assert_int_equal(ph_nlog, 0);
}

static void channels_not_shared_are_not_announced_to(void **state)
{
	(void)state;
	ph.user_channels[0] = "user:u9"; /* not a shared channel */
	ph.user_channels[1] = "zone:a";
	presence("{\"status\":\"away\"}", NULL);
	assert_string_equal(ph_at(2), "channel_counts [zone:a]");
}

static void every_shared_channel_is_announced_to(void **state)
{
	static const char *const zones[] = {"zone:a", "zone:b", "zone:c",
					    "zone:d", "zone:e", "zone:f",
					    "zone:g", "zone:h", "zone:i",
					    "zone:j", "zone:k", "zone:l"};
	const char *all = "[user:u1,zone:a,zone:b,zone:c,zone:d,zone:e,"
			  "zone:f,zone:g,zone:h,zone:i,zone:j,zone:k,zone:l]";
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		ph.user_channels[i] = zones[i];
	presence("{\"status\":\"away\"}", NULL);
	/* the shared channels are weighed, "user:u1" is not */
	snprintf(want, sizeof(want), "channel_counts [%s",
		 all + strlen("[user:u1,"));
	assert_string_equal(ph_at(2), want);
	snprintf(want, sizeof(want), "presence_set u1 away when=0 at=0 "
		 "stamp=lastActive announce=%s status_update", all);
	assert_int_equal(strncmp(ph_at(3), want, strlen(want)), 0);
}

/* ---- automatic online / offline ---- */

static void first_connection_sets_online_if_connected(void **state)
{
	(void)state;
	ph.user_channels[0] = "zone:a";
	pavilion_plugin.on_open(inst, c, 1);
	assert_int_equal(ph_nlog, 3);
	assert_string_equal(ph_at(0), "user_channels u1");
	assert_string_equal(ph_at(1), "channel_counts [zone:a]");
	assert_string_equal(ph_at(2),
			    "presence_set u1 online when=1 at=0 "
			    "stamp=lastActive announce=[zone:a] "
			    "status_update except=c1 transient=1 "
			    "{\"userId\":\"u1\",\"status\":\"online\"}");
}

/* and no message: "user:u1" has no other connection of u1 to tell */
static void a_user_sharing_no_channel_costs_no_count(void **state)
{
	(void)state;
	ph.user_channels[0] = "user:u9"; /* not a shared channel */
	pavilion_plugin.on_open(inst, c, 1);
	assert_int_equal(ph_nlog, 2);
	assert_string_equal(ph_at(0), "user_channels u1");
	assert_string_equal(ph_at(1),
			    "presence_set u1 online when=1 at=0 "
			    "stamp=lastActive announce=[] "
			    "status_update except=c1 transient=1 -");
}

static void other_connections_change_nothing_on_open(void **state)
{
	(void)state;
	pavilion_plugin.on_open(inst, c, 0);
	assert_int_equal(ph_nlog, 0);
}

static void last_connection_sets_offline_at_its_close_time(void **state)
{
	(void)state;
	c->open = 0;
	c->closed_ms = PH_T0 - 2500;
	pavilion_plugin.on_close(inst, c, 1);
	assert_int_equal(ph_nlog, 3);
	/* the closed connection's own channels: the user has no other, so
	 * "user:u1" has no one to tell */
	assert_string_equal(ph_at(0), "conn_channels c1");
	assert_string_equal(ph_at(1),
			    "channel_counts [zone:a,chat:b]");
	assert_string_equal(ph_at(2),
			    "presence_set u1 offline when=2 at=1799999997500 "
			    "stamp=lastActive announce=[zone:a,chat:b] "
			    "status_update except=- transient=1 "
			    "{\"userId\":\"u1\",\"status\":\"offline\"}");
}

/* A user who shared no channel: the status is stored, and no message is
 * built for anyone (the user's own channel has no connection left). */
static void last_close_of_a_user_sharing_nothing_only_stores(void **state)
{
	(void)state;
	c->open = 0;
	c->closed_ms = PH_T0 - 2500;
	while (c->nchannels > 1) /* "user:u1" alone */
		free(c->channels[--c->nchannels]);
	pavilion_plugin.on_close(inst, c, 1);
	assert_int_equal(ph_nlog, 2);
	assert_string_equal(ph_at(0), "conn_channels c1");
	assert_string_equal(ph_at(1),
			    "presence_set u1 offline when=2 at=1799999997500 "
			    "stamp=lastActive announce=[] status_update "
			    "except=- transient=1 -");
}

static void other_connections_change_nothing_on_close(void **state)
{
	(void)state;
	c->open = 0;
	pavilion_plugin.on_close(inst, c, 0);
	assert_int_equal(ph_nlog, 0);
}

static void channels_over_max_broadcast_are_dropped_but_the_user_kept(
	void **state)
{
	(void)state;
	ph.user_channels[0] = "zone:a";
	ph.user_channels[1] = "zone:big";
	ph.user_channels[2] = "zone:unknown";
	/* user:u1 is not weighed: always kept */
	ph.counts[0] = 1000;
	ph.counts[1] = 1001;
	ph.counts[2] = -1;
	ph.ncounts_set = 3;
	presence("{\"status\":\"busy\"}", NULL);
	assert_non_null(strstr(ph_at(3), " announce=[user:u1,zone:a] "));
}

static void max_broadcast_zero_announces_to_the_user_only(void **state)
{
	(void)state;
	ph.user_channels[0] = "zone:a";
	ph.user_channels[1] = "zone:empty";
	ph.counts[0] = 1;
	ph.counts[1] = 0;
	ph.ncounts_set = 2;
	presence("{\"status\":\"busy\"}", NULL);
	assert_non_null(strstr(ph_at(3), " announce=[user:u1,zone:empty] "));
}

static void counts_failure_announces_to_the_user_only(void **state)
{
	(void)state;
	ph.user_channels[0] = "zone:a";
	ph.counts_err = -EIO;
	presence("{\"status\":\"busy\"}", NULL);
	assert_non_null(strstr(ph_at(3), " announce=[user:u1] "));
}

static void change_waits_for_the_counts(void **state)
{
	(void)state;
	ph.async = 1;
	ph.user_channels[0] = "zone:a";
	pavilion_plugin.on_open(inst, c, 1);
	assert_int_equal(ph_count("presence_set"), 0);
	/* the connection went meanwhile: nobody is left out */
	c->open = 0;
	ph_run();
	assert_non_null(strstr(ph_at(2), " except=- "));
}

/* ---- joining a channel ---- */

static void subscribed(const char *channel, int user_first,
		       int64_t subscribers, const char *params)
{
	json_object *p = params ? json_tokener_parse(params) : NULL;
	struct pav_subscribed ev = {channel, p, user_first, subscribers};

	pavilion_plugin.on_subscribed(inst, c, &ev);
	json_object_put(p);
}

static void users_first_join_sends_its_status_to_the_channel(void **state)
{
	(void)state;
	ph.presence_status = "busy";
	ph.presence_last_active = PH_T0 - 1000;
	subscribed("zone:a", 1, 1000, NULL);
	assert_int_equal(ph_nlog, 2);
	assert_string_equal(ph_at(0), "presence_get u1");
	assert_string_equal(ph_at(1),
			    "publish [zone:a] status_update key=- except=c1 "
			    "transient=1 {\"userId\":\"u1\",\"status\":\"busy\","
			    "\"lastActive\":\"2027-01-15T07:59:59.000Z\"}");
}

static void status_never_stored_is_stamped_now(void **state)
{
	(void)state;
	subscribed("zone:a", 1, 3, NULL);
	assert_non_null(strstr(ph_at(1), "\"status\":\"offline\","
					 "\"lastActive\":\"" PH_T0_TEXT "\"}"));
}

static void no_join_announcement_unless_first_and_small_enough(void **state)
{
	(void)state;
	subscribed("zone:a", 0, 3, NULL);        /* not the user's first */
	subscribed("zone:a", 1, 1001, NULL);     /* over max_broadcast */
	subscribed("zone:a", 1, -1, NULL);       /* size unknown */
	subscribed("user:u1", 1, 1, NULL);       /* not shared */
	assert_int_equal(ph_nlog, 0);
}

static void join_announcement_needs_the_stored_presence(void **state)
{
	(void)state;
	ph.presence_get_err = -EIO;
	subscribed("zone:a", 1, 3, NULL);
	assert_int_equal(ph_count("publish"), 0);
}

static void snapshot_sends_each_users_status_to_the_subscriber(void **state)
{
	(void)state;
	ph.nusers = 2;
	ph.presence_status = "away";
	ph.presence_last_active = PH_T0;
	subscribed("chat:b", 0, 3, "{\"presence\":true}");
	assert_string_equal(ph_at(0), "channel_users chat:b max=1000");
	assert_string_equal(ph_at(1), "presence_get p0");
	assert_string_equal(ph_at(2),
			    "send c1 chat:b status_update {\"userId\":\"p0\","
			    "\"status\":\"away\",\"lastActive\":\"" PH_T0_TEXT
			    "\"}");
	assert_string_equal(ph_at(3), "presence_get p1");
	assert_int_equal(ph_count("send c1 chat:b status_update"), 2);
}

static void snapshot_is_bounded_to_1000_users(void **state)
{
	(void)state;
	subscribed("zone:huge", 0, 1000000, "{\"presence\":true}");
	assert_string_equal(ph_at(0), "channel_users zone:huge max=1000");
}

static void snapshot_only_when_asked(void **state)
{
	(void)state;
	subscribed("zone:a", 0, 3, "{\"presence\":false}");
	subscribed("zone:a", 0, 3, "{\"other\":true}");
	assert_int_equal(ph_nlog, 0);
}

static void snapshot_to_a_closed_connection_sends_nothing(void **state)
{
	(void)state;
	ph.async = 1;
	ph.nusers = 3;
	subscribed("zone:a", 0, 3, "{\"presence\":true}");
	c->open = 0;
	ph_run();
	assert_int_equal(ph_count("presence_get"), 3);
	assert_int_equal(ph_count("send"), 0);
}

static int check_params(const char *params, const char **why)
{
	json_object *p = json_tokener_parse(params);
	int rc = pavilion_plugin.check_parameters(inst, c, "zone:a", p, why);

	json_object_put(p);
	return rc;
}

static void presence_parameter_must_be_a_boolean(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(check_params("{\"presence\":true}", &why), 0);
	assert_int_equal(check_params("{\"presence\":false}", &why), 0);
	assert_int_equal(check_params("{}", &why), 0);
	assert_int_equal(check_params("{\"presence\":1}", &why),
			 PAV_ERR_FORMAT);
	assert_string_equal(why, "payload.parameters.presence must be true "
				 "or false");
	assert_int_equal(check_params("{\"presence\":\"true\"}", &why),
			 PAV_ERR_FORMAT);
}

/* ---- GET /v1/users/{id}/presence ---- */

static void presence_route_answers_the_stored_presence(void **state)
{
	(void)state;
	ph.presence_status = "busy";
	ph.presence_last_active = PH_T0;
	ph.presence_connections = 2;
	ph_call_route(inst, "GET", "/v1/users/{id}/presence", "u7", NULL,
		      NULL);
	assert_string_equal(ph_at(0), "presence_get u7");
	assert_string_equal(ph_at(1),
			    "api_answer 200 {\"userId\":\"u7\",\"status\":"
			    "\"busy\",\"lastActive\":\"" PH_T0_TEXT "\","
			    "\"connections\":2}");
}

static void presence_route_of_a_user_never_seen_has_null_last_active(
	void **state)
{
	(void)state;
	ph_call_route(inst, "GET", "/v1/users/{id}/presence", "u7", NULL,
		      NULL);
	assert_string_equal(ph_at(1),
			    "api_answer 200 {\"userId\":\"u7\",\"status\":"
			    "\"offline\",\"lastActive\":null,"
			    "\"connections\":0}");
}

static void presence_route_store_failure_is_503_or_500(void **state)
{
	(void)state;
	ph.presence_get_err = -EIO;
	ph_call_route(inst, "GET", "/v1/users/{id}/presence", "u7", NULL,
		      NULL);
	assert_string_equal(ph_at(1), "api_error 503 session store unavailable");
	ph.presence_get_err = -ENOMEM;
	ph_call_route(inst, "GET", "/v1/users/{id}/presence", "u7", NULL,
		      NULL);
	assert_string_equal(ph_at(3), "api_error 500 session store error");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, ph_end)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(registers_presence_its_route_its_check_and_hooks),
		T(max_broadcast_is_an_integer_from_0_to_a_billion),
		T(status_update_of_spec_shape_passes),
		T(status_outside_the_enum_is_refused),
		T(status_update_user_id_must_be_an_id),
		T(status_update_last_active_must_be_rfc3339),
		T(status_update_payload_must_be_an_object),
		T(status_change_is_stored_and_announced_in_one_step),
		T(unchanged_status_is_still_a_success),
		T(store_failure_is_answered_2000),
		T(status_outside_the_four_is_1002),
		T(channels_not_shared_are_not_announced_to),
		T(every_shared_channel_is_announced_to),
		T(first_connection_sets_online_if_connected),
		T(a_user_sharing_no_channel_costs_no_count),
		T(other_connections_change_nothing_on_open),
		T(last_connection_sets_offline_at_its_close_time),
		T(last_close_of_a_user_sharing_nothing_only_stores),
		T(other_connections_change_nothing_on_close),
		T(channels_over_max_broadcast_are_dropped_but_the_user_kept),
		cmocka_unit_test_setup_teardown(
			max_broadcast_zero_announces_to_the_user_only,
			setup_max0, ph_end),
		T(counts_failure_announces_to_the_user_only),
		T(change_waits_for_the_counts),
		T(users_first_join_sends_its_status_to_the_channel),
		T(status_never_stored_is_stamped_now),
		T(no_join_announcement_unless_first_and_small_enough),
		T(join_announcement_needs_the_stored_presence),
		T(snapshot_sends_each_users_status_to_the_subscriber),
		T(snapshot_is_bounded_to_1000_users),
		T(snapshot_only_when_asked),
		T(snapshot_to_a_closed_connection_sends_nothing),
		T(presence_parameter_must_be_a_boolean),
		T(presence_route_answers_the_stored_presence),
		T(presence_route_of_a_user_never_seen_has_null_last_active),
		T(presence_route_store_failure_is_503_or_500),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
