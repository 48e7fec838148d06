/*
 * test_host.c — the host table plugins get (src/host.c), over the session
 * layer, the hub and the memory backend (session_fixture.c): connection
 * facts and conn_find, sending, channel grammar, publishing (history only
 * for one channel and not transient, except, keys with hold/release),
 * presence changes, subscription tokens, ids and timers.
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

#include "fake_api.h"
#include "fake_clock.h"
#include "host.h"
#include "hub.h"
#include "memory.h"
#include "session_fixture.h"

#define NS "default"

static const struct pav_host *h = &pav_host_table;
static struct fake_conn fc1, fc2;

static int setup(void **state)
{
	memset(&fc1, 0, sizeof(fc1));
	memset(&fc2, 0, sizeof(fc2));
	fake_nsuls = 0;
	fake_sul_cancels = 0;
	return fx_setup(state);
}

static int teardown(void **state)
{
	int rc;

	pav_timers_cancel_all(&fx_vh.timers);
	rc = fx_teardown(state);
	fake_conn_free(&fc1);
	fake_conn_free(&fc2);
	return rc;
}

/* What the last publish answered. */
static struct {
	int calls, err;
	uint64_t offset;
	int has_epoch;
	int64_t recipients;
} pr;

static void on_published(void *arg, int err, const struct pav_published *res)
{
	(void)arg;
	pr.calls++;
	pr.err = err;
	pr.offset = res ? res->offset : 0;
	pr.has_epoch = res && res->epoch;
	pr.recipients = res ? res->recipients : 0;
}

static void publish(const char *const *channels, size_t n, const char *key,
		    const pav_conn *except, int transient)
{
	json_object *p = json_object_new_object();
	struct pav_publication pub = {channels, n, "msg", p, except, key,
				      transient};

	json_object_object_add(p, "n", json_object_new_int(1));
	memset(&pr, 0, sizeof(pr));
	h->publish(&fx_vh, &pub, on_published, NULL);
	json_object_put(p);
	assert_int_equal(pr.calls, 1);
}

static size_t history_n;

static void on_history(void *arg, int err, const struct pav_history *hi)
{
	(void)arg;
	assert_int_equal(err, 0);
	history_n = hi->n;
}

static size_t kept(const char *channel)
{
	pav_memory_state.history_read(fx_core.store.state, NS, channel,
				      pav_ns_history(&fx_ns, channel), 0, 100,
				      on_history, NULL);
	return history_n;
}

/* ---- connections ---- */

static void conn_find_answers_open_connections_of_its_vhost(void **state)
{
	struct pav_session *s;
	struct pav_vhost other = fx_vh;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	assert_ptr_equal(h->conn_find(&fx_vh, s->id), s);
	assert_null(h->conn_find(&other, s->id));
	assert_null(h->conn_find(&fx_vh, s->id + 100));
	pav_conn_close(&fc1.c, 1000, "bye"); /* closing: not open */
	assert_null(h->conn_find(&fx_vh, s->id));
}

static void conn_find_forgets_a_closed_connection(void **state)
{
	struct pav_session *s;
	uint64_t id;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	id = s->id;
	fx_close(s);
	assert_null(h->conn_find(&fx_vh, id));
}

static void connection_facts_are_the_sessions(void **state)
{
	struct pav_session *s;
	json_object *v;

	(void)state;
	s = fx_open(&fc1, "u1", "{\"username\":\"alice\"}");
	assert_int_equal(h->conn_id(s), s->id);
	assert_string_equal(h->conn_user(s), "u1");
	assert_ptr_equal(h->conn_vhost(s), &fx_vh);
	assert_true(json_object_object_get_ex(h->conn_claims(s), "username",
					      &v));
	assert_string_equal(json_object_get_string(v), "alice");
	assert_true(h->conn_closed_ms(s) == 0);
	assert_string_equal(h->vhost_name(&fx_vh), "public");
}

static void collect(const char *channel, void *arg)
{
	char *buf = arg;

	strcat(buf, channel);
	strcat(buf, ";");
}

static void conn_channels_lists_the_subscriptions(void **state)
{
	struct pav_session *s;
	char buf[128] = "";

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	fx_subscribe(s, "zone:z1", NULL, NULL);
	h->conn_channels(s, collect, buf);
	assert_true(!strcmp(buf, "user:u1;zone:z1;") ||
		    !strcmp(buf, "zone:z1;user:u1;"));
	assert_true(h->is_subscribed(s, "zone:z1"));
	assert_false(h->is_subscribed(s, "zone:z2"));
}

static void send_reaches_the_connection_until_it_closed(void **state)
{
	struct pav_session *s;
	json_object *p = json_object_new_object();

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	json_object_object_add(p, "k", json_object_new_string("v"));
	assert_int_equal(h->send(s, "zone:z1", "hello", p), 0);
	assert_string_equal(fake_text(&fc1, 0),
			    "{\"type\":\"hello\",\"channel\":\"zone:z1\","
			    "\"payload\":{\"k\":\"v\"},"
			    "\"timestamp\":\"2027-01-15T08:00:00.000Z\"}");
	assert_int_equal(h->send(s, NULL, "bare", NULL), 0);
	assert_string_equal(fake_text(&fc1, 1),
			    "{\"type\":\"bare\","
			    "\"timestamp\":\"2027-01-15T08:00:00.000Z\"}");
	/* the close hooks' connection sends nowhere */
	s->hc.conn = NULL;
	assert_int_equal(h->send(s, NULL, "late", p), -EPIPE);
	s->hc.conn = &fc1.c;
	json_object_put(p);
}

static void channel_parse_canonicalises_for_the_connections_user(
	void **state)
{
	struct pav_session *s;
	char out[PAV_CHANNEL_BUF];

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	assert_int_equal(h->channel_parse(s, "user", out, sizeof(out)), 0);
	assert_string_equal(out, "user:u1");
	assert_int_equal(h->channel_parse(s, "zone:z1", out, sizeof(out)), 0);
	assert_string_equal(out, "zone:z1");
	assert_int_equal(h->channel_parse(s, "zone:", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(h->user_channel("u9", out, sizeof(out)), 0);
	assert_string_equal(out, "user:u9");
	assert_true(h->id_valid("a-b_C9", 6));
	assert_false(h->id_valid("a b", 3));
}

static void user_channels_lists_the_users_shared_channels(void **state)
{
	struct pav_session *a, *b;
	char buf[128] = "";

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u1", NULL);
	fx_subscribe(a, "zone:z1", NULL, NULL);
	fx_subscribe(b, "zone:z1", NULL, NULL);
	h->user_channels(&fx_vh, "u1", collect, buf);
	assert_string_equal(buf, "zone:z1;");
}

/* ---- publishing ---- */

static void one_channel_with_history_is_numbered_and_kept(void **state)
{
	const char *chans[] = {"zone:z1"};

	(void)state;
	publish(chans, 1, NULL, NULL, 0);
	assert_int_equal(pr.err, 0);
	assert_int_equal(pr.offset, 1);
	assert_true(pr.has_epoch);
	assert_int_equal(kept("zone:z1"), 1);
}

static void transient_publication_is_not_kept(void **state)
{
	const char *chans[] = {"zone:z1"};

	(void)state;
	publish(chans, 1, NULL, NULL, 0);
	publish(chans, 1, NULL, NULL, 1);
	assert_int_equal(pr.offset, 0);
	assert_false(pr.has_epoch);
	assert_int_equal(kept("zone:z1"), 1);
}

static void multi_channel_publication_is_kept_nowhere(void **state)
{
	const char *chans[] = {"zone:z1", "zone:z2"};

	(void)state;
	publish(chans, 2, NULL, NULL, 0);
	assert_int_equal(pr.offset, 0);
	assert_int_equal(pr.recipients, -1);
	assert_int_equal(kept("zone:z1"), 0);
	assert_int_equal(kept("zone:z2"), 0);
}

#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
static void publication_without_channels_or_type_or_with_bad_ones_is_einval(
	void **state)
{
	const char *chans[] = {"zone:z1"};
	struct pav_publication pub = {chans, 0, "msg", NULL, NULL, NULL, 0};

	(void)state;
	memset(&pr, 0, sizeof(pr));
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.err, -EINVAL);
	pub.nchannels = 1;
	pub.type = NULL;
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.calls, 2);
	assert_int_equal(pr.err, -EINVAL);
	h->publish(&fx_vh, &pub, NULL, NULL); /* no callback: no crash */
	/* empty ones: the Redis broker's header has no room for them */
	pub.type = "";
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.calls, 3);
	assert_int_equal(pr.err, -EINVAL);
	pub.type = "msg";
	pub.key = "";
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.calls, 4);
	assert_int_equal(pr.err, -EINVAL);
	/* longer than the API's: its header could pass what a node reads */
	pub.key = X64 "x";
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.calls, 5);
	assert_int_equal(pr.err, -EINVAL);
	pub.key = X64;
	pub.type = X64 "x";
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.calls, 6);
	assert_int_equal(pr.err, -EINVAL);
	assert_int_equal(kept("zone:z1"), 0);
	pub.type = X64;
	h->publish(&fx_vh, &pub, on_published, NULL);
	assert_int_equal(pr.calls, 7);
	assert_int_equal(pr.err, 0);
	assert_int_equal(kept("zone:z1"), 1);
}

static void except_connection_gets_nothing(void **state)
{
	struct pav_session *a, *b;
	const char *chans[] = {"user:u1"};

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	b = fx_open(&fc2, "u1", NULL);
	(void)b;
	publish(chans, 1, NULL, a, 1);
	assert_int_equal(pr.recipients, 2);
	assert_int_equal(fc1.n, 0);
	assert_int_equal(fc2.n, 1);
}

static void release_skips_what_the_plugin_already_sent(void **state)
{
	struct pav_session *s;
	const char *chans[] = {"user:u1"};
	const char *skip[] = {"n1"};

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	h->hold(s, "user:u1");
	publish(chans, 1, "n1", NULL, 0);
	publish(chans, 1, "n2", NULL, 0);
	assert_int_equal(fc1.n, 0);
	h->release(s, "user:u1", skip, 1);
	assert_int_equal(fc1.n, 1);
	assert_string_equal(fc1.frames[0].key, "n2");
}

/* ---- presence ---- */

static char got_status[16];
static int got_err;

static void on_presence(void *arg, int err, const struct pav_presence *p)
{
	(void)arg;
	got_err = err;
	snprintf(got_status, sizeof(got_status), "%s", p ? p->status : "");
}

static void presence_change_is_announced_transient_and_stamped(void **state)
{
	struct pav_session *a;
	const char *chans[] = {"user:u1", "zone:z1"};
	json_object *p = json_object_new_object();
	struct pav_presence_change ch = {
		.user = "u1",
		.status = "busy",
		.when = PAV_PRESENCE_IF_CONNECTED,
		.announce = {chans, 2, "status_update", p, NULL, NULL, 1},
		.stamp_member = "lastActive",
		.at_ms = FX_T0 - 1000,
	};

	(void)state;
	a = fx_open(&fc1, "u1", NULL);
	fx_subscribe(a, "zone:z1", NULL, NULL);
	json_object_object_add(p, "userId", json_object_new_string("u1"));
	h->presence_set(&fx_vh, &ch, on_presence, NULL);
	json_object_put(p);
	assert_int_equal(got_err, 0);
	assert_string_equal(got_status, "busy");
	assert_int_equal(fc1.n, 1); /* once, though in both channels */
	assert_string_equal(fx_payload_str(&fc1, 0, "lastActive"),
			    "2027-01-15T07:59:59.000Z");
	assert_int_equal(kept("zone:z1"), 0);
	h->presence_get(&fx_vh, "u1", on_presence, NULL);
	assert_string_equal(got_status, "busy");
}

/* ---- tokens ---- */

static void subscription_token_must_name_a_channel(void **state)
{
	struct pav_session *s;
	json_object *claims = NULL, *v;
	char *tok;

	(void)state;
	s = fx_open(&fc1, "u1", NULL);
	tok = fx_token("{\"sub\":\"u1\",\"channel\":\"zone:z9\"}");
	assert_int_equal(h->verify_token(s, tok, &claims), 0);
	free(tok);
	assert_true(json_object_object_get_ex(claims, "channel", &v));
	assert_string_equal(json_object_get_string(v), "zone:z9");
	json_object_put(claims);
	tok = fx_token("{\"sub\":\"u1\"}"); /* a session token */
	assert_int_equal(h->verify_token(s, tok, &claims), -EACCES);
	free(tok);
	assert_int_equal(h->verify_token(s, "x.y.z", &claims), -EACCES);
}

/* ---- ids, time, timers ---- */

static void random_ids_are_a_prefix_and_16_hex_digits(void **state)
{
	char a[18], b[18];

	(void)state;
	assert_int_equal(h->random_id('m', a, sizeof(a)), 0);
	assert_int_equal(h->random_id('m', b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 17);
	assert_int_equal(a[0], 'm');
	assert_string_not_equal(a, b);
	assert_true(h->now_ms() == FX_T0);
}

static int fired;

static void on_timer(void *arg)
{
	fired += *(int *)arg;
}

static void timer_needs_an_event_loop(void **state)
{
	int one = 1;

	(void)state;
	assert_null(h->timer_start(&fx_vh, 10, on_timer, &one));
}

static void timer_runs_its_function_once(void **state)
{
	static int one = 1;
	pav_timer *t;

	(void)state;
	fx_core.lws = (struct lws_context *)&fx_core; /* never touched */
	fired = 0;
	t = h->timer_start(&fx_vh, 250, on_timer, &one);
	assert_non_null(t);
	assert_int_equal(fake_nsuls, 1);
	assert_true(fake_suls[0].us == 250 * 1000);
	fake_timer_fire(0);
	assert_int_equal(fired, 1);
	assert_null(fx_vh.timers.head); /* off the vhost's list, freed */
	fx_core.lws = NULL;
}

static void cancelled_timer_does_not_run(void **state)
{
	static int one = 1;
	pav_timer *t;

	(void)state;
	fx_core.lws = (struct lws_context *)&fx_core;
	fired = 0;
	t = h->timer_start(&fx_vh, 0, on_timer, &one);
	h->timer_start(&fx_vh, 5, on_timer, &one);
	h->timer_cancel(t);
	assert_false(fake_suls[0].live);
	/* the vhost's leftovers go at teardown */
	pav_timers_cancel_all(&fx_vh.timers);
	assert_false(fake_suls[1].live);
	assert_null(fx_vh.timers.head);
	assert_int_equal(fired, 0);
	fx_core.lws = NULL;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(conn_find_answers_open_connections_of_its_vhost),
		T(conn_find_forgets_a_closed_connection),
		T(connection_facts_are_the_sessions),
		T(conn_channels_lists_the_subscriptions),
		T(send_reaches_the_connection_until_it_closed),
		T(channel_parse_canonicalises_for_the_connections_user),
		T(user_channels_lists_the_users_shared_channels),
		T(one_channel_with_history_is_numbered_and_kept),
		T(transient_publication_is_not_kept),
		T(multi_channel_publication_is_kept_nowhere),
		T(publication_without_channels_or_type_or_with_bad_ones_is_einval),
		T(except_connection_gets_nothing),
		T(release_skips_what_the_plugin_already_sent),
		T(presence_change_is_announced_transient_and_stamped),
		T(subscription_token_must_name_a_channel),
		T(random_ids_are_a_prefix_and_16_hex_digits),
		T(timer_needs_an_event_loop),
		T(timer_runs_its_function_once),
		T(cancelled_timer_does_not_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
