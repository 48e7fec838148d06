/*
 * test_session.c — a connection's life above its socket (src/session.c)
 * on the memory backend, a hub, a core and a vhost with two recorder
 * plugin instances (session_fixture.c): opening (counted, the automatic
 * user:<id>, the per-user cap, the hook order), subscribing (the ack, the
 * subscription limit, parameters, hooks after the ack), recovery from
 * history, unsubscribing, closing, renewal, revocation and the other
 * calls the backends make.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_clock.h"
#include "hub.h"
#include "memory.h"
#include "metrics.h"
#include "msg.h"
#include "session_fixture.h"

#define NS "default"

static struct fake_conn fc1, fc2, fc3;

static int setup(void **state)
{
	memset(&fc1, 0, sizeof(fc1));
	memset(&fc2, 0, sizeof(fc2));
	memset(&fc3, 0, sizeof(fc3));
	return fx_setup(state);
}

static int teardown(void **state)
{
	int rc = fx_teardown(state);

	fake_conn_free(&fc1);
	fake_conn_free(&fc2);
	fake_conn_free(&fc3);
	return rc;
}

/* ---- store reads ---- */

static int64_t got_count;

static void on_count(void *arg, int err, int64_t count)
{
	(void)arg;
	assert_int_equal(err, 0);
	got_count = count;
}

static int64_t user_conns(const char *user)
{
	got_count = -1;
	pav_memory_state.user_count(fx_core.store.state, NS, user, on_count,
				    NULL);
	return got_count;
}

static int64_t got_counts[4];

static void on_counts(void *arg, int err, const int64_t *counts, size_t n)
{
	(void)arg;
	assert_int_equal(err, 0);
	for (size_t i = 0; i < n && i < 4; i++)
		got_counts[i] = counts[i];
}

static int64_t subscribers(const char *channel)
{
	const char *chans[] = {channel};

	pav_memory_state.channel_counts(fx_core.store.state, NS, chans, 1,
					on_counts, NULL);
	return got_counts[0];
}

/* ---- frames ---- */

/* Frame i is an ack for `id` of a subscribe to channel; returns its
 * payload (a new reference). */
static json_object *ack_of(const struct fake_conn *fc, size_t i,
			   const char *id, const char *channel)
{
	json_object *p = fx_ack_is(fc, i, id, "subscribe"), *v;

	assert_true(json_object_object_get_ex(p, "channel", &v));
	assert_string_equal(json_object_get_string(v), channel);
	return p;
}

static int64_t int_member(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static uint64_t offset_of(const struct fake_conn *fc, size_t i)
{
	json_object *v = fx_member(fc, i, "offset");
	uint64_t off = v ? (uint64_t)json_object_get_int64(v) : 0;

	json_object_put(v);
	return off;
}

/* Frame i of fc is the ack of subscribe "r1" to channel: its epoch. */
static const char *epoch_of_ack(const struct fake_conn *fc, size_t i,
				const char *channel)
{
	static char epoch[32];
	json_object *p = ack_of(fc, i, "r1", channel), *v;

	assert_true(json_object_object_get_ex(p, "epoch", &v));
	snprintf(epoch, sizeof(epoch), "%s", json_object_get_string(v));
	json_object_put(p);
	return epoch;
}

/* u1 subscribes to zone:z1 on fc1 (for the channel's epoch) and n
 * publications follow; then u2 opens on fc2, having seen offset 1: its
 * session, and in params the parameters that ask to recover from there. */
static struct pav_session *missed_after_offset_1(int n, char *params,
						 size_t len)
{
	struct pav_session *a = fx_open(&fc1, "u1", NULL);
	const char *epoch;

	fx_subscribe(a, "zone:z1", NULL, "r1");
	epoch = epoch_of_ack(&fc1, 0, "zone:z1");
	for (int k = 1; k <= n; k++)
		fx_publish("zone:z1", k);
	snprintf(params, len, "{\"recover\":{\"offset\":1,\"epoch\":\"%s\"}}",
		 epoch);
	return fx_open(&fc2, "u2", NULL);
}

/* ---- opening ---- */

static void open_counts_the_connection_and_joins_its_user_channel(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	assert_non_null(s);
	assert_int_equal(s->state, PAV_SESSION_OPEN);
	assert_ptr_equal(pav_session_find(&fx_core, s->id), s);
	assert_int_equal(user_conns("u1"), 1);
	assert_true(pav_hub_is_member(&s->hc, "user:u1"));
	assert_int_equal(pav_hub_count(fx_core.hub, NS, "user:u1"), 1);
	assert_int_equal(subscribers("user:u1"), 1);
	assert_int_equal(fc1.n, 0); /* the client is told nothing */
}

static void open_runs_on_open_then_on_subscribed_of_the_user_channel(
	void **state)
{
	(void)state;
	fx_open(&fc1, "u1", NULL);
	assert_int_equal(fx_nevents, 4);
	/* each event in every instance, in the vhost's plugin order */
	assert_string_equal(fx_events[0].text, "A open u1 first=1");
	assert_string_equal(fx_events[1].text, "B open u1 first=1");
	assert_string_equal(fx_events[2].text,
			    "A subscribed u1 user:u1 first=1 subs=1 params=-");
	assert_string_equal(fx_events[3].text,
			    "B subscribed u1 user:u1 first=1 subs=1 params=-");
}

static void second_connection_of_a_user_is_not_first(void **state)
{
	(void)state;
	fx_open(&fc1, "u1", NULL);
	fx_events_clear();
	fx_open(&fc2, "u1", NULL);
	assert_string_equal(fx_a(0), "open u1 first=0");
	assert_string_equal(fx_a(1),
			    "subscribed u1 user:u1 first=0 subs=2 params=-");
	assert_int_equal(user_conns("u1"), 2);
}

static void connection_past_the_per_user_cap_gets_1005_and_4029(
	void **state)
{
	struct pav_session *s;

	(void)state;
	fx_open(&fc1, "u1", NULL);
	fx_open(&fc2, "u1", NULL);
	fx_events_clear();
	s = fx_open(&fc3, "u1", NULL);
	assert_non_null(s);
	assert_int_equal(fc3.n, 1);
	fx_error_is(&fc3, 0, PAV_ERR_RATE,
		    "too many connections for this user", NULL);
	assert_int_equal(fc3.c.close_code, 4029);
	assert_false(pav_hub_is_member(&s->hc, "user:u1"));
	assert_int_equal(user_conns("u1"), 2);
	assert_int_equal(fx_nevents, 0); /* no hooks for it */
	fx_close(s);
	assert_int_equal(fx_nevents, 0); /* never opened: no on_close */
	assert_int_equal(user_conns("u1"), 2);
	/* another user is not affected */
	fx_close(pav_session_find(&fx_core, 1));
	assert_int_equal(user_conns("u1"), 1);
}

static void connection_the_store_cannot_count_gets_2000_and_1011(
	void **state)
{
	struct pav_session *s;

	(void)state;
	fx_fail_conn_add(-EIO);
	s = fx_open(&fc1, "u1", NULL);
	assert_non_null(s);
	fx_error_is(&fc1, 0, PAV_ERR_INTERNAL, "session store unavailable",
		    NULL);
	assert_int_equal(fc1.c.close_code, 1011);
	assert_int_equal(fx_nevents, 0);
	fx_close(s);
	assert_int_equal(fx_nevents, 0);
}

static void connection_whose_user_channel_fails_gets_1011_and_no_hooks(
	void **state)
{
	struct pav_session *s;

	(void)state;
	fx_fail_member_add(-EIO);
	s = fx_open(&fc1, "u1", NULL);
	assert_non_null(s);
	fx_error_is(&fc1, 0, PAV_ERR_INTERNAL, NULL, NULL);
	assert_int_equal(fc1.c.close_code, 1011);
	assert_false(pav_hub_is_member(&s->hc, "user:u1"));
	assert_int_equal(fx_nevents, 0); /* never opened */
	fx_close(s);
	assert_int_equal(user_conns("u1"), 0);
	/* plugin.h: on_close follows an on_open; this one never opened */
	if (fx_nevents)
		fail_msg("on_close ran for a connection that never opened: %s",
			 fx_events[0].text);
}

static void connection_closed_before_the_store_counted_it_is_uncounted(
	void **state)
{
	struct pav_session *s;

	(void)state;
	fx_hold_conn_add(1);
	s = fx_open(&fc1, "u1", NULL);
	assert_int_equal(s->state, PAV_SESSION_OPENING);
	fx_close(s);
	assert_int_equal(fx_run_conn_add(), 1);
	assert_int_equal(user_conns("u1"), 0);
	assert_int_equal(fx_nevents, 0);
}

static void connection_is_counted_once_its_user_feed_is_live(void **state)
{
	(void)state;
	fx_hold_feeds(1);
	fx_hold_conn_add(1);
	fx_open(&fc1, "u1", NULL);
	/* a revocation reaches the connections the store counted through
	 * their user's feed: none may be counted before that feed is live */
	assert_int_equal(user_conns("u1"), 0);
	assert_int_equal(fx_run_conn_add(), 0);
	assert_int_equal(fx_run_feeds(0), 1);
	assert_int_equal(user_conns("u1"), 1);
	assert_int_equal(fx_run_conn_add(), 1);
	assert_string_equal(fx_a(0), "open u1 first=1");
}

static void input_of_a_new_connection_waits_until_on_open_ran(void **state)
{
	(void)state;
	fx_hold_conn_add(1);
	fx_open(&fc1, "u1", NULL);
	/* a client subscribes as soon as its socket is open; a network store
	 * may not have counted the connection yet: nothing is read until
	 * the hooks of the opening ran */
	assert_int_equal(fc1.rx_paused, 1);
	fx_run_conn_add();
	assert_int_equal(fc1.rx_paused, 0);
	assert_string_equal(fx_a(0), "open u1 first=1");
	assert_string_equal(fx_a(1),
			    "subscribed u1 user:u1 first=1 subs=1 params=-");
}

static void refused_connection_reads_again_to_close(void **state)
{
	(void)state;
	fx_open(&fc1, "u1", NULL);
	fx_open(&fc2, "u1", NULL);
	fx_hold_conn_add(1);
	fx_open(&fc3, "u1", NULL); /* one too many */
	assert_int_equal(fc3.rx_paused, 1);
	fx_run_conn_add();
	assert_int_equal(fc3.c.close_code, 4029);
	assert_int_equal(fc3.rx_paused, 0); /* the close handshake */
}

static void connection_that_failed_to_open_reads_again_to_close(
	void **state)
{
	(void)state;
	fx_fail_conn_add(-EIO);
	fx_open(&fc1, "u1", NULL);
	assert_int_equal(fc1.c.close_code, 1011);
	assert_int_equal(fc1.rx_paused, 0);
	fx_fail_conn_add(0);
	fx_fail_member_add(-EIO);
	fx_open(&fc2, "u2", NULL);
	assert_int_equal(fc2.c.close_code, 1011);
	assert_int_equal(fc2.rx_paused, 0);
}

/* ---- subscribing ---- */

static void subscribe_acks_with_the_channel(void **state)
{
	struct pav_session *s;
	json_object *p;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "channel:c1", NULL, "r1");
	assert_int_equal(fc1.n, 1);
	p = ack_of(&fc1, 0, "r1", "channel:c1");
	assert_int_equal(json_object_object_length(p), 2); /* for, channel */
	json_object_put(p);
	assert_true(pav_hub_is_member(&s->hc, "channel:c1"));
	assert_int_equal(subscribers("channel:c1"), 1);
}

static void subscribe_to_a_history_channel_acks_its_offset_and_epoch(
	void **state)
{
	struct pav_session *s;
	json_object *p, *v;

	(void)state;
	fx_publish("zone:z1", 1);
	fx_publish("zone:z1", 2);
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	p = ack_of(&fc1, 0, "r1", "zone:z1");
	assert_int_equal(int_member(p, "offset"), 2);
	assert_true(json_object_object_get_ex(p, "epoch", &v));
	assert_int_equal(json_object_get_string_len(v), 16);
	assert_false(json_object_object_get_ex(p, "recovered", NULL));
	json_object_put(p);
	assert_int_equal(fc1.n, 1); /* no replay without "recover" */
}

static void subscribed_hooks_run_after_the_ack(void **state)
{
	struct pav_session *s;
	int i;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_events_clear();
	fx_subscribe(s, "zone:z1", "{\"x\":1}", "r1");
	i = fx_event_find("A subscribed u1 zone:z1 first=1 subs=1 "
			  "params={\"x\":1}",
			  0);
	assert_true(i >= 0);
	assert_int_equal(fx_events[i].frames, 1); /* the ack went first */
	assert_int_equal(fx_nevents, 2);
}

static void user_first_tells_the_users_first_connection_in_a_channel(
	void **state)
{
	struct pav_session *a1, *a2, *b;

	(void)state;
	a1 = fx_open(&fc1, "u1", NULL);
	a2 = fx_open(&fc2, "u1", NULL);
	b = fx_open(&fc3, "u2", NULL);
	fx_events_clear();
	fx_subscribe(a1, "zone:z1", NULL, "r1");
	fx_subscribe(a2, "zone:z1", NULL, "r1");
	fx_subscribe(b, "zone:z1", NULL, "r1");
	assert_int_equal(fx_a_count(), 3);
	assert_string_equal(fx_a(0),
			    "subscribed u1 zone:z1 first=1 subs=1 params=-");
	assert_string_equal(fx_a(1),
			    "subscribed u1 zone:z1 first=0 subs=2 params=-");
	assert_string_equal(fx_a(2),
			    "subscribed u2 zone:z1 first=1 subs=3 params=-");
}

static void repeated_subscribe_acks_again_with_user_first_zero(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_events_clear();
	fx_subscribe(s, "zone:z1", NULL, "r2");
	assert_int_equal(fc1.n, 2);
	json_object_put(ack_of(&fc1, 1, "r2", "zone:z1"));
	assert_string_equal(fx_a(0),
			    "subscribed u1 zone:z1 first=0 subs=-1 params=-");
	assert_int_equal(subscribers("zone:z1"), 1); /* counted once */
}

static void subscribe_past_max_subscriptions_is_1003(void **state)
{
	struct pav_session *s;
	char ch[32];

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	/* the automatic user channel does not count */
	for (int i = 0; i < FX_MAX_SUBS; i++) {
		snprintf(ch, sizeof(ch), "channel:c%d", i);
		fx_subscribe(s, ch, NULL, "r1");
	}
	assert_int_equal(fake_count_type(&fc1, "ack"), FX_MAX_SUBS);
	fx_events_clear();
	fx_subscribe(s, "channel:over", NULL, "r9");
	fx_error_is(&fc1, FX_MAX_SUBS, PAV_ERR_SUBSCRIPTION,
		    "too many subscriptions", "r9");
	assert_false(pav_hub_is_member(&s->hc, "channel:over"));
	assert_int_equal(subscribers("channel:over"), 0);
	assert_int_equal(fx_nevents, 0);
}

static void parameters_a_plugin_refuses_are_1002_and_nothing_joined(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_events_clear();
	fx_subscribe(s, "zone:z1", "{\"bad\":true}", "r1");
	fx_error_is(&fc1, 0, PAV_ERR_FORMAT, "bad parameter", "r1");
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_int_equal(fx_nevents, 0);
}

static void malformed_recover_is_1002(void **state)
{
	static const char *const bad[] = {
		"{\"recover\":5}",
		"{\"recover\":{\"epoch\":\"e\"}}",
		"{\"recover\":{\"offset\":-1,\"epoch\":\"e\"}}",
		"{\"recover\":{\"offset\":\"1\",\"epoch\":\"e\"}}",
		"{\"recover\":{\"offset\":1}}",
		"{\"recover\":{\"offset\":1,\"epoch\":7}}",
	};
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx_subscribe(s, "zone:z1", bad[i], "r1");
		fx_error_is(&fc1, i, PAV_ERR_FORMAT, NULL, "r1");
	}
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
}

static void subscribe_without_an_id_is_silent_but_runs_the_hooks(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_events_clear();
	fx_subscribe(s, "zone:z1", NULL, NULL);
	assert_int_equal(fc1.n, 0);
	assert_true(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_string_equal(fx_a(0),
			    "subscribed u1 zone:z1 first=1 subs=1 params=-");
}

/* The channel it joined is left as an unsubscribe leaves it: no
 * on_subscribed, but on_unsubscribed, so that what a plugin noted at the
 * subscribe (the subscription plugin's token grant) goes with it. */
static void store_failure_during_subscribe_is_2000_and_nothing_joined(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_events_clear();
	fx_fail_member_add(-EIO);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_error_is(&fc1, 0, PAV_ERR_INTERNAL, "session store unavailable",
		    "r1");
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_int_equal(fx_nevents, 2);
	assert_int_equal(fx_event_find("A unsubscribed u1 zone:z1", 0), 0);
	assert_int_equal(fx_event_find("B unsubscribed u1 zone:z1", 0), 1);
	assert_int_equal(fc1.c.close_code, 0); /* the connection stays */
}

/* The same when the store fails it later, on its way (a network store's
 * timeout): the hooks run before the client hears of it. */
static void store_failure_on_its_way_leaves_the_channel_with_its_hooks(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_member_add(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_events_clear();
	assert_int_equal(fx_run_member_add_err(-EIO), 1);
	assert_int_equal(fx_a_count(), 1);
	assert_string_equal(fx_a(0), "unsubscribed u1 zone:z1");
	assert_int_equal(fx_events[0].frames, 0);
	assert_int_equal(fc1.n, 1);
	fx_error_is(&fc1, 0, PAV_ERR_INTERNAL, NULL, "r1");
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
}

static void store_failure_during_subscribe_leaves_the_counts_as_they_were(
	void **state)
{
	struct pav_session *a, *b;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u1", NULL);
	fx_subscribe(a, "zone:z1", NULL, "r1");
	fx_fail_member_add(-EIO); /* not applied: the store was unreachable */
	fx_subscribe(b, "zone:z1", NULL, "r1");
	fx_error_is(&fc2, 0, PAV_ERR_INTERNAL, NULL, "r1");
	fx_fail_member_add(0);
	/* u1's other connection is still in the channel */
	assert_int_equal(subscribers("zone:z1"), 1);
}

static void publication_reaches_the_subscribers(void **state)
{
	struct pav_session *a, *b;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u2", NULL);
	fx_subscribe(a, "zone:z1", NULL, "r1");
	fx_subscribe(b, "chat:other", NULL, "r1");
	assert_int_equal(fx_publish("zone:z1", 7), 1);
	assert_int_equal(fc1.n, 2);
	assert_string_equal(fake_type(&fc1, 1), "msg");
	assert_int_equal(offset_of(&fc1, 1), 1);
	assert_string_equal(fx_payload_str(&fc1, 1, "n"), "7");
	assert_int_equal(fc2.n, 1);
}

/* ---- recovery ---- */

static void recovery_with_the_right_epoch_replays_what_was_missed(
	void **state)
{
	struct pav_session *b;
	const char *epoch;
	char params[128];
	json_object *p, *v;

	(void)state;
	/* b saw offset 1 before it lost its connection */
	b = missed_after_offset_1(3, params, sizeof(params));
	epoch = epoch_of_ack(&fc1, 0, "zone:z1");
	fx_events_clear();
	fx_subscribe(b, "zone:z1", params, "r1");
	assert_int_equal(fc2.n, 3);
	p = ack_of(&fc2, 0, "r1", "zone:z1");
	assert_int_equal(int_member(p, "offset"), 3);
	assert_true(json_object_object_get_ex(p, "epoch", &v));
	assert_string_equal(json_object_get_string(v), epoch);
	assert_true(json_object_object_get_ex(p, "recovered", &v));
	assert_true(json_object_get_boolean(v));
	json_object_put(p);
	assert_int_equal(offset_of(&fc2, 1), 2);
	assert_string_equal(fx_payload_str(&fc2, 1, "n"), "2");
	assert_int_equal(offset_of(&fc2, 2), 3);
	/* the hooks after the replay; live publications after that */
	assert_int_equal(fx_a_count(), 1);
	assert_non_null(strstr(fx_a(0), "subscribed u2 zone:z1 first=1 "
				     "subs=2 params={\"recover\""));
	assert_int_equal(fx_events[0].frames, 3);
	fx_publish("zone:z1", 4);
	assert_int_equal(fc2.n, 4);
	assert_int_equal(offset_of(&fc2, 3), 4);
}

static void recovery_with_another_epoch_is_not_recovered(void **state)
{
	struct pav_session *b;
	json_object *p, *v;

	(void)state;
	for (int n = 1; n <= 3; n++)
		fx_publish("zone:z1", n);
	b = fx_open(&fc2, "u2", NULL);
	fx_subscribe(b, "zone:z1",
		     "{\"recover\":{\"offset\":1,\"epoch\":\"0000000000000000\"}}",
		     "r1");
	assert_int_equal(fc2.n, 1);
	p = ack_of(&fc2, 0, "r1", "zone:z1");
	assert_int_equal(int_member(p, "offset"), 3);
	assert_true(json_object_object_get_ex(p, "recovered", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(p);
}

static void recovery_from_further_back_than_the_history_is_not_recovered(
	void **state)
{
	struct pav_session *b;
	char params[128];
	json_object *p, *v;

	(void)state;
	b = missed_after_offset_1(12, params, sizeof(params)); /* history: 10 */
	fx_subscribe(b, "zone:z1", params, "r1");
	assert_int_equal(fc2.n, 1);
	p = ack_of(&fc2, 0, "r1", "zone:z1");
	assert_true(json_object_object_get_ex(p, "recovered", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(p);
}

/* A replay the connection could not hold unsent would close it 4008 at
 * every reconnect: refused as a recovery, the connection stays. */
static void recovery_larger_than_the_connection_may_hold_is_not_recovered(
	void **state)
{
	struct pav_session *b;
	char params[128];
	json_object *p, *v;

	(void)state;
	b = missed_after_offset_1(3, params, sizeof(params));
	fc2.replay_max = 1;
	fx_subscribe(b, "zone:z1", params, "r1");
	assert_int_equal(fc2.n, 1);
	p = ack_of(&fc2, 0, "r1", "zone:z1");
	assert_int_equal(int_member(p, "offset"), 3);
	assert_true(json_object_object_get_ex(p, "recovered", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(p);
	assert_int_equal(fc2.overflows, 0);
	assert_int_equal(fc2.closes, 0);
	/* live publications still come */
	fx_publish("zone:z1", 4);
	assert_int_equal(fc2.n, 2);
	assert_int_equal(offset_of(&fc2, 1), 4);
}

static void recovery_of_a_channel_without_history_is_not_recovered(
	void **state)
{
	struct pav_session *s;
	json_object *p, *v;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "channel:c1",
		     "{\"recover\":{\"offset\":0,\"epoch\":\"e\"}}", "r1");
	p = ack_of(&fc1, 0, "r1", "channel:c1");
	assert_false(json_object_object_get_ex(p, "offset", NULL));
	assert_true(json_object_object_get_ex(p, "recovered", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(p);
}

static void recovery_while_the_store_is_slow_sends_each_publication_once(
	void **state)
{
	struct pav_session *b;
	char params[128];

	(void)state;
	b = missed_after_offset_1(2, params, sizeof(params));
	fx_hold_history(1);
	fx_subscribe(b, "zone:z1", params, "r1");
	assert_int_equal(fc2.n, 0); /* waiting for the store */
	fx_publish("zone:z1", 3);   /* live, while the history is read */
	assert_int_equal(fc2.n, 0); /* held */
	assert_int_equal(fx_run_history(), 1);
	/* ack, then 2 and 3 once each, in order */
	assert_int_equal(fc2.n, 3);
	json_object_put(ack_of(&fc2, 0, "r1", "zone:z1"));
	assert_int_equal(offset_of(&fc2, 1), 2);
	assert_int_equal(offset_of(&fc2, 2), 3);
	fx_publish("zone:z1", 4);
	assert_int_equal(fc2.n, 4);
	assert_int_equal(offset_of(&fc2, 3), 4);
}

static void publication_during_a_slow_subscribe_comes_after_the_ack(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_history(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_publish("zone:z1", 1);
	assert_int_equal(fc1.n, 0);
	fx_run_history();
	assert_int_equal(fc1.n, 2);
	assert_string_equal(fake_type(&fc1, 0), "ack");
	assert_int_equal(offset_of(&fc1, 1), 1);
}

static void connection_closed_while_its_membership_is_counted_leaves_none(
	void **state)
{
	struct pav_session *a, *b;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u1", NULL);
	fx_subscribe(a, "zone:z1", NULL, "r1");
	fx_hold_member_add(1);
	fx_subscribe(b, "zone:z1", NULL, "r1");
	assert_int_equal(subscribers("zone:z1"), 2); /* applied, unanswered */
	fx_close(b);
	fx_events_clear();
	assert_int_equal(fx_run_member_add(), 1);
	assert_int_equal(subscribers("zone:z1"), 1);
	assert_int_equal(fx_nevents, 0);
	assert_int_equal(fc2.n, 0);
}

/* A repeat of a subscribe the store has not answered yet waits for it:
 * acked at once, it would be a lie if the first then failed. */
static void repeated_subscribe_fails_with_a_first_that_fails(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fake_conn_clear(&fc1);
	fx_hold_member_add(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "zone:z1", NULL, "r2");
	fx_subscribe(s, "zone:z1", NULL, "r3");
	assert_int_equal(fc1.n, 0); /* nothing answered before the first */
	assert_int_equal(fx_run_member_add_err(-EIO), 1);
	assert_int_equal(fc1.n, 3);
	fx_error_is(&fc1, 0, PAV_ERR_INTERNAL, NULL, "r1");
	fx_error_is(&fc1, 1, PAV_ERR_INTERNAL, NULL, "r2");
	fx_error_is(&fc1, 2, PAV_ERR_INTERNAL, NULL, "r3");
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
}

static void repeated_subscribe_is_acked_after_the_first(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fake_conn_clear(&fc1);
	fx_hold_member_add(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "zone:z1", NULL, "r2");
	fx_subscribe(s, "zone:z2", NULL, "r3"); /* another channel: its own */
	assert_int_equal(fc1.n, 0);
	assert_int_equal(fx_run_member_add(), 2);
	assert_int_equal(fc1.n, 3);
	json_object_put(ack_of(&fc1, 0, "r1", "zone:z1"));
	json_object_put(ack_of(&fc1, 1, "r2", "zone:z1"));
	json_object_put(ack_of(&fc1, 2, "r3", "zone:z2"));
	assert_int_equal(subscribers("zone:z1"), 1); /* counted once */
	/* a repeat of a standing subscription is acked at once */
	fx_subscribe(s, "zone:z1", NULL, "r4");
	assert_int_equal(fc1.n, 4);
	json_object_put(ack_of(&fc1, 3, "r4", "zone:z1"));
}

static void repeats_of_a_pending_subscribe_are_answered_when_it_is_left(
	void **state)
{
	struct pav_session *s, *t;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	t = fx_open(&fc2, "u2", NULL);
	fake_conn_clear(&fc1);
	fake_conn_clear(&fc2);
	fx_hold_member_add(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "zone:z1", NULL, "r2");
	pav_session_unsubscribe(s, "zone:z1");
	assert_int_equal(fc1.n, 1); /* the repeat: answered as its first */
	json_object_put(ack_of(&fc1, 0, "r2", "zone:z1"));
	fx_subscribe(t, "zone:z1", NULL, "r1");
	fx_subscribe(t, "zone:z1", NULL, "r2");
	fx_close(t); /* the repeat goes with the connection, not leaked */
	fx_run_member_add();
	assert_int_equal(fc1.n, 2);
	json_object_put(ack_of(&fc1, 1, "r1", "zone:z1"));
	assert_int_equal(fc2.n, 0);
}

/* subscribe, unsubscribe, subscribe before the store answered the first:
 * the first's answer belongs to a membership that is gone, and must not
 * pass for the second's (its hooks once, its ack after its own answer). */
static void subscribe_left_and_joined_again_runs_the_hooks_once(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fake_conn_clear(&fc1);
	fx_hold_member_add(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	pav_session_unsubscribe(s, "zone:z1");
	fx_subscribe(s, "zone:z1", NULL, "r2");
	fx_events_clear();
	fx_run_member_add();
	assert_int_equal(fc1.n, 2);
	json_object_put(ack_of(&fc1, 0, "r1", "zone:z1"));
	json_object_put(ack_of(&fc1, 1, "r2", "zone:z1"));
	assert_int_equal(fx_a_count(), 1);
	assert_true(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_int_equal(subscribers("zone:z1"), 1);
}

static void subscribe_answered_after_an_unsubscribe_still_names_its_channel(
	void **state)
{
	struct pav_session *s;
	json_object *p, *v;
	int has;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_history(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	/* the client changed its mind before the store answered */
	pav_session_unsubscribe(s, "zone:z1");
	fx_run_history();
	assert_int_equal(fc1.n, 1);
	assert_string_equal(fake_type(&fc1, 0), "ack");
	assert_int_equal(subscribers("zone:z1"), 0);
	p = fx_member(&fc1, 0, "payload");
	has = json_object_object_get_ex(p, "channel", &v);
	json_object_put(p);
	/* plugin.h: the ack of a subscribe carries {"channel"} */
	if (!has)
		fail_msg("ack without \"channel\": %s", fake_text(&fc1, 0));
}

static void connection_closed_during_a_slow_subscribe_gets_no_hooks(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_history(1);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_close(s);
	fx_events_clear();
	assert_int_equal(fx_run_history(), 1);
	assert_int_equal(fx_nevents, 0);
	assert_int_equal(fc1.n, 0);
	assert_int_equal(subscribers("zone:z1"), 0);
}

/* ---- the broker's feed ---- */

static void joiners_of_one_channel_wait_on_one_feed_request(void **state)
{
	struct pav_session *a, *b;
	int before;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u2", NULL);
	before = fx_feed_requests;
	fx_hold_feeds(1);
	fx_subscribe(a, "zone:z1", NULL, "r1");
	fx_subscribe(b, "zone:z1", NULL, "r1");
	assert_int_equal(fx_feed_requests - before, 1);
	assert_int_equal(fc1.n + fc2.n, 0); /* not live yet */
	assert_int_equal(fx_run_feeds(0), 1);
	json_object_put(ack_of(&fc1, 0, "r1", "zone:z1"));
	json_object_put(ack_of(&fc2, 0, "r1", "zone:z1"));
	assert_int_equal(subscribers("zone:z1"), 2);
	/* a live feed needs no new request */
	fx_open(&fc3, "u3", NULL);
	fx_subscribe(pav_session_find(&fx_core, 3), "zone:z1", NULL, "r1");
	assert_int_equal(fx_feed_requests - before, 2); /* its user: only */
}

static void last_member_leaving_stops_the_feed(void **state)
{
	struct pav_session *a, *b;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u2", NULL);
	fx_subscribe(a, "zone:z1", NULL, NULL);
	fx_subscribe(b, "zone:z1", NULL, NULL);
	fx_feed_stops = 0;
	pav_session_unsubscribe(a, "zone:z1");
	assert_int_equal(fx_feed_stops, 0);
	pav_session_unsubscribe(b, "zone:z1");
	assert_int_equal(fx_feed_stops, 1);
}

static void joiner_after_the_last_member_left_asks_the_broker_again(
	void **state)
{
	struct pav_session *a, *b;
	int before;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u2", NULL);
	before = fx_feed_requests;
	fx_hold_feeds(1);
	fx_subscribe(a, "zone:z1", NULL, "r1");
	pav_session_unsubscribe(a, "zone:z1"); /* the feed is stopped */
	fx_subscribe(b, "zone:z1", NULL, "r1");
	assert_int_equal(fx_feed_requests - before, 2);
	fx_run_feeds(0);
	json_object_put(ack_of(&fc2, 0, "r1", "zone:z1"));
	assert_true(pav_hub_is_member(&b->hc, "zone:z1"));
	assert_int_equal(subscribers("zone:z1"), 1);
}

static void feed_that_fails_answers_every_waiting_subscribe_2000(
	void **state)
{
	struct pav_session *a, *b;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u2", NULL);
	fx_hold_feeds(1);
	fx_subscribe(a, "zone:z1", NULL, "r1");
	fx_subscribe(b, "zone:z1", NULL, "r2");
	fx_events_clear();
	fx_run_feeds(-EIO);
	fx_error_is(&fc1, 0, PAV_ERR_INTERNAL, "session store unavailable",
		    "r1");
	fx_error_is(&fc2, 0, PAV_ERR_INTERNAL, "session store unavailable",
		    "r2");
	assert_false(pav_hub_is_member(&a->hc, "zone:z1"));
	assert_false(pav_hub_is_member(&b->hc, "zone:z1"));
	assert_int_equal(pav_hub_count(fx_core.hub, NS, "zone:z1"), 0);
	assert_int_equal(subscribers("zone:z1"), 0);
	/* each left what it joined: on_unsubscribed, never on_subscribed */
	assert_int_equal(fx_nevents, 4);
	assert_true(fx_event_find("A unsubscribed u1 zone:z1", 0) >= 0);
	assert_true(fx_event_find("A unsubscribed u2 zone:z1", 0) >= 0);
}

/* ---- unsubscribing ---- */

static void unsubscribe_leaves_and_runs_the_hooks(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_events_clear();
	assert_int_equal(pav_session_unsubscribe(s, "zone:z1"), 0);
	assert_int_equal(fx_nevents, 2);
	assert_string_equal(fx_events[0].text, "A unsubscribed u1 zone:z1");
	assert_string_equal(fx_events[1].text, "B unsubscribed u1 zone:z1");
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_int_equal(subscribers("zone:z1"), 0);
	fx_publish("zone:z1", 1);
	assert_int_equal(fc1.n, 1); /* just the ack */
}

static void unsubscribe_from_a_channel_not_joined_runs_no_hook(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_events_clear();
	assert_int_equal(pav_session_unsubscribe(s, "zone:z1"), 0);
	assert_int_equal(fx_nevents, 0);
}

/* ---- closing ---- */

static void close_runs_on_close_with_last_and_the_channels_it_was_in(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "chat:c1", NULL, "r2");
	fx_events_clear();
	fake_clock_advance(5);
	fx_close(s);
	assert_int_equal(fx_nevents, 2);
	assert_string_equal(fx_events[0].text,
			    "A close u1 last=1 at=5 "
			    "channels=chat:c1,user:u1,zone:z1");
	assert_string_equal(fx_events[1].text,
			    "B close u1 last=1 at=5 "
			    "channels=chat:c1,user:u1,zone:z1");
	assert_int_equal(user_conns("u1"), 0);
	assert_int_equal(subscribers("zone:z1"), 0);
	assert_int_equal(pav_hub_count(fx_core.hub, NS, "user:u1"), 0);
	assert_int_equal(pav_map_count(fx_core.sessions), 0);
}

static void closing_one_of_two_connections_is_not_last(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_open(&fc2, "u1", NULL);
	fx_events_clear();
	fx_close(s);
	assert_string_equal(fx_a(0), "close u1 last=0 at=0 channels=user:u1");
	assert_int_equal(user_conns("u1"), 1);
}

static void closed_session_is_not_found_and_late_replies_do_nothing(
	void **state)
{
	struct pav_session *s;
	struct pav_reply *r;
	uint64_t id;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	id = s->id;
	r = pav_session_defer(s, "x", "r1");
	fx_close(s);
	assert_null(pav_session_find(&fx_core, id));
	pav_session_reply(r, 0, NULL, json_object_new_object());
	assert_int_equal(fc1.n, 0);
}

static void dead_nodes_user_goes_through_the_close_hooks(void **state)
{
	const char *chans[] = {"zone:z1", "user:u9"};

	(void)state;
	pav_session_user_gone(&fx_core, NS, "u9", chans, 2, FX_T0 - 3000);
	assert_int_equal(fx_nevents, 2);
	assert_string_equal(fx_events[0].text,
			    "A close u9 last=1 at=-3000 "
			    "channels=user:u9,zone:z1");
	pav_session_user_gone(&fx_core, "no-such-ns", "u9", chans, 2, FX_T0);
	assert_int_equal(fx_nevents, 2);
}

/* ---- renewal ---- */

static void renewal_with_the_same_users_token_replaces_its_claims(
	void **state)
{
	struct pav_session *s;
	const char *why = NULL;
	char *tok;
	json_object *v;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	tok = fx_token("{\"sub\":\"u1\",\"role\":\"admin\","
		       "\"exp\":1800007200}");
	assert_int_equal(pav_session_renew(s, tok, NULL, &why), 0);
	free(tok);
	assert_true(json_object_object_get_ex(pav_session_claims(s), "role",
					      &v));
	assert_string_equal(json_object_get_string(v), "admin");
	assert_true(fc1.exp_ms == 1800007200000LL);
	pav_sessions_turn_over(&fx_core);
	assert_null(s->claims);
	assert_true(json_object_object_get_ex(pav_session_claims(s), "role",
					      &v));
	assert_string_equal(json_object_get_string(v), "admin");
}

/* ---- what a renewal revokes ---- */

/* An accepted renewal of s with a fresh token of its user (no answer
 * asked for: reply NULL). */
static void renew(struct pav_session *s)
{
	char claims[128], *tok;
	const char *why = NULL;

	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\"}", s->user);
	tok = fx_token(claims);
	assert_int_equal(pav_session_renew(s, tok, NULL, &why), 0);
	free(tok);
}

/* Every channel but the user's own is asked about again, by each instance
 * until one refuses; a refused one is left as an unsubscribe leaves it
 * (hooks, hub, store, the node's broker feed), and then the client is
 * told, with one 1004 naming it and answering no message. */
static void renewed_session_leaves_what_a_plugin_refuses(void **state)
{
	struct pav_session *s;
	int stops;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "chat:c1", NULL, "r2");
	fx_events_clear();
	stops = fx_feed_stops;
	fx_renew_refused[0] = "chat:c1";
	renew(s);
	assert_true(fx_event_find("A renewed u1 zone:z1", 0) >= 0);
	assert_true(fx_event_find("B renewed u1 zone:z1", 0) >= 0);
	assert_true(fx_event_find("A renewed u1 chat:c1", 0) >= 0);
	assert_int_equal(fx_event_find("B renewed u1 chat:c1", 0), -1);
	assert_true(fx_event_find("A unsubscribed u1 chat:c1", 0) >= 0);
	assert_true(fx_event_find("B unsubscribed u1 chat:c1", 0) >= 0);
	assert_int_equal(fx_nevents, 5); /* user:u1 was not asked */
	assert_false(pav_hub_is_member(&s->hc, "chat:c1"));
	assert_true(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_true(pav_hub_is_member(&s->hc, "user:u1"));
	assert_int_equal(subscribers("chat:c1"), 0);
	assert_int_equal(subscribers("zone:z1"), 1);
	assert_int_equal(fx_feed_stops, stops + 1);
	assert_int_equal(fc1.n, 3);
	/* left before the client is told */
	assert_int_equal(
		fx_events[fx_event_find("B unsubscribed u1 chat:c1", 0)].frames,
		2);
	fx_error_is(&fc1, 2, PAV_ERR_PERMISSION, "subscription revoked", NULL);
	assert_string_equal(fx_payload_str(&fc1, 2, "channel"), "chat:c1");
	fx_publish("chat:c1", 1);
	fx_publish("zone:z1", 2);
	assert_int_equal(fc1.n, 4); /* zone:z1's only */
}

static void renewed_session_keeps_what_every_plugin_allows(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "channel:c1", NULL, "r2");
	fx_events_clear();
	fx_renew_refused[0] = "zone:z9";
	renew(s);
	assert_int_equal(fx_nevents, 4);
	assert_int_equal(fx_event_find("A renewed u1 user:u1", 0), -1);
	assert_int_equal(fc1.n, 2);
	assert_true(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_true(pav_hub_is_member(&s->hc, "channel:c1"));
}

/* Only the renewing connection leaves: another one's subscription, its
 * count in the store and the node's feed of the channel stay. */
static void renewal_revokes_only_the_renewing_connections_subscription(
	void **state)
{
	struct pav_session *a, *b;
	int stops;

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u2", NULL);
	fx_subscribe(a, "chat:c1", NULL, "r1");
	fx_subscribe(b, "chat:c1", NULL, "r1");
	stops = fx_feed_stops;
	fx_renew_refused[0] = "chat:c1";
	renew(a);
	assert_false(pav_hub_is_member(&a->hc, "chat:c1"));
	assert_true(pav_hub_is_member(&b->hc, "chat:c1"));
	assert_int_equal(subscribers("chat:c1"), 1);
	assert_int_equal(fx_feed_stops, stops);
	fx_publish("chat:c1", 1);
	assert_int_equal(fc1.n, 2); /* the ack and the revocation */
	assert_int_equal(fc2.n, 2); /* the ack and the publication */
}

/* A subscribe still on its way when the renewal comes is asked about too:
 * revoked, it is left at once (no on_subscribed hook, not counted in the
 * store), and its answer, when the store gives it, is 1004 "subscription
 * revoked", not an ack: the client is not told it holds what the new
 * claims refuse.  Its repeats are answered so at once; one without an id
 * gets nothing more than the revocation's error. */
static void renewal_revokes_a_subscribe_still_on_its_way(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_member_add(1);
	fx_subscribe(s, "chat:c1", NULL, "r1");
	fx_subscribe(s, "chat:c1", NULL, "r2");
	fx_subscribe(s, "chat:c1", NULL, NULL);
	fx_events_clear();
	fx_renew_refused[0] = "chat:c1";
	renew(s);
	assert_false(pav_hub_is_member(&s->hc, "chat:c1"));
	assert_int_equal(fc1.n, 2);
	fx_error_is(&fc1, 0, PAV_ERR_PERMISSION, "subscription revoked", NULL);
	assert_string_equal(fx_payload_str(&fc1, 0, "channel"), "chat:c1");
	fx_error_is(&fc1, 1, PAV_ERR_PERMISSION, "subscription revoked", "r2");
	assert_int_equal(fx_run_member_add(), 1);
	assert_int_equal(fc1.n, 3);
	fx_error_is(&fc1, 2, PAV_ERR_PERMISSION, "subscription revoked", "r1");
	assert_string_equal(fx_payload_str(&fc1, 2, "channel"), "");
	assert_int_equal(fx_event_find("A subscribed u1 chat:c1 first=1 "
				       "subs=1 params=-", 0),
			 -1);
	assert_int_equal(subscribers("chat:c1"), 0);
	assert_false(pav_hub_is_member(&s->hc, "chat:c1"));
	/* granted again, a new subscribe of it is acked as any */
	fx_renew_refused[0] = NULL;
	fx_subscribe(s, "chat:c1", NULL, "r3");
	assert_int_equal(fx_run_member_add(), 1);
	json_object_put(ack_of(&fc1, 3, "r3", "chat:c1"));
	assert_true(pav_hub_is_member(&s->hc, "chat:c1"));
}

/* Revoked on its way, then failed by the store: still the one 1004. */
static void subscribe_revoked_on_its_way_that_the_store_fails_is_1004(
	void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_member_add(1);
	fx_subscribe(s, "chat:c1", NULL, "r1");
	fx_renew_refused[0] = "chat:c1";
	renew(s);
	assert_int_equal(fc1.n, 1);
	assert_int_equal(fx_run_member_add_err(-EIO), 1);
	assert_int_equal(fc1.n, 2);
	fx_error_is(&fc1, 1, PAV_ERR_PERMISSION, "subscription revoked", "r1");
}

/* A subscribe the store has not answered when the connection closes:
 * the revocation's record goes with the session. */
static void subscribe_revoked_on_its_way_of_a_closed_connection(void **state)
{
	struct pav_session *s;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_hold_member_add(1);
	fx_subscribe(s, "chat:c1", NULL, "r1");
	fx_renew_refused[0] = "chat:c1";
	renew(s);
	fx_close(s);
	assert_int_equal(fx_run_member_add(), 1);
	assert_int_equal(fc1.n, 1); /* the revocation only */
}

/* ---- claims ---- */

/* Kept as text; parsed on demand, and the parse let go when the loop turn
 * is over: an idle connection holds no json-c object.  Sessions leave the
 * turn's list in any order (one closes while the others' parses stand). */
static void claims_are_parsed_on_demand_and_let_go_at_the_turns_end(
	void **state)
{
	struct pav_session *a, *b, *c;
	json_object *first, *v;

	(void)state;
	a = fx_open(&fc1, "u1", "{\"username\":\"alice\",\"n\":[1,2.5,"
			       "\"\\u00e9/x\"]}");
	b = fx_open(&fc2, "u2", "{\"username\":\"bob\"}");
	c = fx_open(&fc3, "u3", NULL);
	first = pav_session_claims(a);
	assert_non_null(first);
	assert_ptr_equal(pav_session_claims(a), first); /* one parse a turn */
	assert_ptr_equal(fx_core.claims_turn, c);
	pav_sessions_turn_over(&fx_core);
	assert_null(fx_core.claims_turn);
	assert_null(a->claims);
	assert_null(b->claims);
	assert_null(c->claims);
	assert_true(json_object_object_get_ex(pav_session_claims(b),
					      "username", &v));
	assert_string_equal(json_object_get_string(v), "bob");
	assert_non_null(pav_session_claims(c));
	assert_true(json_object_object_get_ex(pav_session_claims(a), "n", &v));
	assert_string_equal(json_object_to_json_string_ext(
				    v, JSON_C_TO_STRING_PLAIN |
					       JSON_C_TO_STRING_NOSLASHESCAPE),
			    "[1,2.5,\"\xc3\xa9/x\"]");
	fx_close(b); /* in the middle of the list */
	assert_ptr_equal(fx_core.claims_turn, a);
	assert_ptr_equal(a->claims_next, c);
	pav_sessions_turn_over(&fx_core);
	assert_null(fx_core.claims_turn);
	assert_null(a->claims);
	fx_close(a);
	fx_close(c);
}

static void renewal_with_another_users_token_is_refused(void **state)
{
	struct pav_session *s;
	const char *why = NULL;
	char *tok;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	tok = fx_token("{\"sub\":\"u2\"}");
	assert_int_equal(pav_session_renew(s, tok, NULL, &why), -EACCES);
	free(tok);
	assert_string_equal(why, "token is for another user");
	assert_false(json_object_object_get_ex(s->claims, "exp", NULL));
	assert_true(fc1.exp_ms == 0);
}

static void renewal_with_a_subscription_token_is_refused(void **state)
{
	struct pav_session *s;
	const char *why = NULL;
	char *tok;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	tok = fx_token("{\"sub\":\"u1\",\"channel\":\"zone:z1\"}");
	assert_int_equal(pav_session_renew(s, tok, NULL, &why), -EACCES);
	free(tok);
	assert_non_null(why);
}

static void renewal_with_an_expired_or_forged_token_is_refused(void **state)
{
	struct pav_session *s;
	const char *why = NULL;
	char *tok;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	tok = fx_token("{\"sub\":\"u1\",\"exp\":1799990000}");
	assert_int_equal(pav_session_renew(s, tok, NULL, &why), -EACCES);
	assert_string_equal(why, "token expired");
	tok[strlen(tok) - 2] ^= 1; /* the signature */
	assert_int_equal(pav_session_renew(s, tok, NULL, &why), -EACCES);
	free(tok);
	assert_int_equal(pav_session_renew(s, "not.a.token", NULL, &why), -EACCES);
}

/* ---- token revocation ---- */

static void revoke_tokens(const char *user, int64_t at_ms)
{
	pav_memory_state.tokens_revoke(fx_core.store.state, NS, user, at_ms,
				       60, NULL, NULL);
}

/* A counter's value in the metrics text. */
static long long metric_value(const char *name)
{
	size_t len, n = strlen(name);
	char *t = pav_metrics_render(&len);
	long long v = -1;

	assert_non_null(t);
	for (const char *p = t; p && *p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (!strncmp(p, name, n) && p[n] == ' ')
			v = strtoll(p + n + 1, NULL, 10);
	}
	free(t);
	return v;
}

/* As a token that does not verify: 1001, close 4001, no hooks, nothing
 * counted, an authentication failure and no accepted connection. */
static void connection_with_a_revoked_token_gets_1001_and_4001(void **state)
{
	char claims[64];
	struct pav_session *s;

	(void)state;
	pav_metrics_reset();
	revoke_tokens("u1", FX_T0);
	snprintf(claims, sizeof(claims), "{\"iat\":%lld}",
		 (long long)(FX_T0 / 1000));
	s = fx_open(&fc1, "u1", claims);
	assert_non_null(s);
	fx_error_is(&fc1, 0, PAV_ERR_AUTH, "token revoked", NULL);
	assert_int_equal(fc1.c.close_code, 4001);
	assert_false(pav_hub_is_member(&s->hc, "user:u1"));
	fx_close(s);
	s = fx_open(&fc2, "u1", NULL); /* no iat: refused too */
	fx_error_is(&fc2, 0, PAV_ERR_AUTH, "token revoked", NULL);
	assert_int_equal(fc2.c.close_code, 4001);
	fx_close(s);
	assert_int_equal(fx_nevents, 0);
	assert_int_equal(user_conns("u1"), 0);
	assert_int_equal(metric_value("pavilion_auth_failures_total"), 2);
	assert_int_equal(metric_value("pavilion_connections_total"), 0);
	/* issued after the revocation: opened */
	snprintf(claims, sizeof(claims), "{\"iat\":%lld}",
		 (long long)(FX_T0 / 1000 + 1));
	fx_open(&fc3, "u1", claims);
	assert_int_equal(fc3.c.close_code, 0);
	assert_int_equal(user_conns("u1"), 1);
	assert_int_equal(metric_value("pavilion_connections_total"), 1);
}

/* Refused as a renewal with a bad token is: 1001, and the connection
 * and its old token stay. */
static void renewal_with_a_revoked_token_is_refused_and_the_old_stays(
	void **state)
{
	struct pav_session *s;
	const char *why = NULL;
	char claims[96];
	char *tok;

	(void)state;
	snprintf(claims, sizeof(claims), "{\"iat\":%lld}",
		 (long long)(FX_T0 / 1000 + 1));
	s = fx_open(&fc1, "u1", claims);
	revoke_tokens("u1", FX_T0 + 5000);
	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"u1\",\"role\":\"admin\",\"iat\":%lld}",
		 (long long)(FX_T0 / 1000 + 5));
	tok = fx_token(claims);
	assert_int_equal(pav_session_renew(s, tok,
					   pav_session_defer(s, "auth", "r1"),
					   &why),
			 0);
	free(tok);
	fx_error_is(&fc1, 0, PAV_ERR_AUTH, "token revoked", "r1");
	assert_int_equal(fc1.c.close_code, 0);
	assert_int_equal(fc1.rx_paused, 0); /* held during the check only */
	assert_true(fc1.exp_ms == 0);
	assert_false(json_object_object_get_ex(pav_session_claims(s), "role",
					       NULL));
	/* a token issued after it renews */
	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"u1\",\"role\":\"admin\",\"iat\":%lld}",
		 (long long)(FX_T0 / 1000 + 6));
	tok = fx_token(claims);
	assert_int_equal(pav_session_renew(s, tok,
					   pav_session_defer(s, "auth", "r2"),
					   &why),
			 0);
	free(tok);
	assert_string_equal(fake_type(&fc1, 1), "ack");
	assert_true(json_object_object_get_ex(pav_session_claims(s), "role",
					      NULL));
	assert_true(fc1.exp_ms == FX_T0 + 3600 * 1000);
}

static void verify_answers_the_user_and_expiry_of_a_session_token(
	void **state)
{
	json_object *claims = NULL;
	char user[PAV_ID_MAX + 1];
	int64_t exp_ms = 0;
	const char *why = NULL;
	char *tok;

	(void)state;
	tok = fx_token("{\"sub\":\"u7\"}");
	assert_int_equal(pav_session_verify(&fx_vh, tok, &claims, user,
					    &exp_ms, &why),
			 0);
	free(tok);
	assert_string_equal(user, "u7");
	assert_true(exp_ms == FX_T0 + 3600 * 1000);
	assert_non_null(claims);
	json_object_put(claims);
	tok = fx_token("{\"sub\":\"u7\",\"channel\":\"zone:z1\"}");
	assert_int_equal(pav_session_verify(&fx_vh, tok, &claims, user,
					    &exp_ms, &why),
			 -EACCES);
	free(tok);
	assert_string_equal(why, "subscription token cannot open a session");
}

/* ---- revocation, resync, shutdown ---- */

static void on_revoked(void *arg, int err, int64_t count)
{
	int64_t *n = arg;

	assert_int_equal(err, 0);
	*n = count;
}

static void revocation_closes_every_connection_of_the_user_with_4001(
	void **state)
{
	int64_t n = -1;

	(void)state;
	fx_open(&fc1, "u1", NULL);
	fx_open(&fc2, "u1", NULL);
	fx_open(&fc3, "u2", NULL);
	pav_memory_broker.revoke(fx_core.store.broker, NS, "u1", on_revoked,
				 &n);
	assert_int_equal(n, 2);
	fx_error_is(&fc1, 0, PAV_ERR_AUTH, "connection revoked", NULL);
	assert_int_equal(fc1.c.close_code, 4001);
	assert_int_equal(fc2.c.close_code, 4001);
	assert_int_equal(fc3.c.close_code, 0);
	assert_int_equal(fc3.n, 0);
}

static void resync_is_sent_to_every_open_connection(void **state)
{
	(void)state;
	fx_open(&fc1, "u1", NULL);
	fx_open(&fc2, "u2", NULL);
	pav_conn_close(&fc2.c, 1000, "bye");
	pav_session_resync(&fx_core);
	assert_int_equal(fc1.n, 1);
	assert_string_equal(fake_type(&fc1, 0), "resync");
	assert_int_equal(fc2.n, 0);
}

static void shutdown_closes_every_session(void **state)
{
	(void)state;
	fx_open(&fc1, "u1", NULL);
	fx_open(&fc2, "u2", NULL);
	pav_sessions_close_all(&fx_core, 1001, "going away");
	assert_int_equal(fc1.c.close_code, 1001);
	assert_int_equal(fc2.c.close_code, 1001);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(open_counts_the_connection_and_joins_its_user_channel),
		T(open_runs_on_open_then_on_subscribed_of_the_user_channel),
		T(second_connection_of_a_user_is_not_first),
		T(connection_past_the_per_user_cap_gets_1005_and_4029),
		T(connection_the_store_cannot_count_gets_2000_and_1011),
		T(connection_whose_user_channel_fails_gets_1011_and_no_hooks),
		T(connection_closed_before_the_store_counted_it_is_uncounted),
		T(connection_is_counted_once_its_user_feed_is_live),
		T(input_of_a_new_connection_waits_until_on_open_ran),
		T(refused_connection_reads_again_to_close),
		T(connection_that_failed_to_open_reads_again_to_close),
		T(subscribe_acks_with_the_channel),
		T(subscribe_to_a_history_channel_acks_its_offset_and_epoch),
		T(subscribed_hooks_run_after_the_ack),
		T(user_first_tells_the_users_first_connection_in_a_channel),
		T(repeated_subscribe_acks_again_with_user_first_zero),
		T(subscribe_past_max_subscriptions_is_1003),
		T(parameters_a_plugin_refuses_are_1002_and_nothing_joined),
		T(malformed_recover_is_1002),
		T(subscribe_without_an_id_is_silent_but_runs_the_hooks),
		T(store_failure_during_subscribe_is_2000_and_nothing_joined),
		T(store_failure_on_its_way_leaves_the_channel_with_its_hooks),
		T(store_failure_during_subscribe_leaves_the_counts_as_they_were),
		T(publication_reaches_the_subscribers),
		T(recovery_with_the_right_epoch_replays_what_was_missed),
		T(recovery_with_another_epoch_is_not_recovered),
		T(recovery_from_further_back_than_the_history_is_not_recovered),
		T(recovery_larger_than_the_connection_may_hold_is_not_recovered),
		T(recovery_of_a_channel_without_history_is_not_recovered),
		T(recovery_while_the_store_is_slow_sends_each_publication_once),
		T(publication_during_a_slow_subscribe_comes_after_the_ack),
		T(connection_closed_while_its_membership_is_counted_leaves_none),
		T(repeated_subscribe_fails_with_a_first_that_fails),
		T(repeated_subscribe_is_acked_after_the_first),
		T(repeats_of_a_pending_subscribe_are_answered_when_it_is_left),
		T(subscribe_left_and_joined_again_runs_the_hooks_once),
		T(subscribe_answered_after_an_unsubscribe_still_names_its_channel),
		T(connection_closed_during_a_slow_subscribe_gets_no_hooks),
		T(joiners_of_one_channel_wait_on_one_feed_request),
		T(last_member_leaving_stops_the_feed),
		T(joiner_after_the_last_member_left_asks_the_broker_again),
		T(feed_that_fails_answers_every_waiting_subscribe_2000),
		T(unsubscribe_leaves_and_runs_the_hooks),
		T(unsubscribe_from_a_channel_not_joined_runs_no_hook),
		T(close_runs_on_close_with_last_and_the_channels_it_was_in),
		T(closing_one_of_two_connections_is_not_last),
		T(closed_session_is_not_found_and_late_replies_do_nothing),
		T(dead_nodes_user_goes_through_the_close_hooks),
		T(renewal_with_the_same_users_token_replaces_its_claims),
		T(claims_are_parsed_on_demand_and_let_go_at_the_turns_end),
		T(renewal_with_another_users_token_is_refused),
		T(renewal_with_a_subscription_token_is_refused),
		T(renewal_with_an_expired_or_forged_token_is_refused),
		T(renewed_session_leaves_what_a_plugin_refuses),
		T(renewed_session_keeps_what_every_plugin_allows),
		T(renewal_revokes_only_the_renewing_connections_subscription),
		T(renewal_revokes_a_subscribe_still_on_its_way),
		T(subscribe_revoked_on_its_way_that_the_store_fails_is_1004),
		T(subscribe_revoked_on_its_way_of_a_closed_connection),
		T(verify_answers_the_user_and_expiry_of_a_session_token),
		T(connection_with_a_revoked_token_gets_1001_and_4001),
		T(renewal_with_a_revoked_token_is_refused_and_the_old_stays),
		T(revocation_closes_every_connection_of_the_user_with_4001),
		T(resync_is_sent_to_every_open_connection),
		T(shutdown_closes_every_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
