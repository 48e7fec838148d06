/*
 * test_memory_broker.c — the "memory" backend's broker
 * (src/memory_broker.c): what a publication gets (offset, epoch,
 * recipients), the exact frame handed to the hub, transient and
 * multi-channel publications, and revocation.  Deliveries go to a
 * recorder (deliveries.c); the clock is fake, so frames are exact text.
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

#include "deliveries.h"
#include "fake_clock.h"
#include "memory.h"

#define NS "default"
#define T0 1800000000000LL
#define TS "\"timestamp\":\"2027-01-15T08:00:00.000Z\""

static const struct pav_broker_ops *br = &pav_memory_broker;
static void *self;

static const struct pav_history_cfg hist = {10, 60};

/* What the last publish answered. */
static struct {
	int calls;
	int err;
	uint64_t offset;
	char epoch[32];
	int has_epoch;
	int64_t recipients;
	int64_t count;
} r;

static void on_published(void *arg, int err, const struct pav_published *res)
{
	(void)arg;
	memset(&r, 0, sizeof(r));
	r.calls = 1;
	r.err = err;
	if (!res)
		return;
	r.offset = res->offset;
	r.has_epoch = res->epoch != NULL;
	snprintf(r.epoch, sizeof(r.epoch), "%s", res->epoch ? res->epoch : "");
	r.recipients = res->recipients;
}

static void on_count(void *arg, int err, int64_t count)
{
	(void)arg;
	r.calls++;
	r.err = err;
	r.count = count;
}

static void on_live(void *arg, int err)
{
	int *called = arg;

	assert_int_equal(err, 0);
	(*called)++;
}

static char hist_epoch[32];
static uint64_t hist_offsets[16];
static size_t hist_n;

static void on_history(void *arg, int err, const struct pav_history *h)
{
	(void)arg;
	assert_int_equal(err, 0);
	snprintf(hist_epoch, sizeof(hist_epoch), "%s", h->epoch);
	hist_n = h->n;
	for (size_t i = 0; i < h->n && i < 16; i++)
		hist_offsets[i] = h->msgs[i]->offset;
}

static void history_of(const char *channel)
{
	pav_memory_state.history_read(self, NS, channel, &hist, 0, 16,
				      on_history, NULL);
}

/* Publishes {"n": n} to channels; history as given. */
static void publish_to(const char *const *channels, size_t n_channels,
		       const struct pav_history_cfg *h, int n, uint64_t except,
		       const char *key)
{
	json_object *p = json_object_new_object();
	struct pav_outgoing out = {
		.channels = channels,
		.nchannels = n_channels,
		.type = "msg",
		.payload = p,
		.except = except,
		.key = key,
		.history = h,
	};

	json_object_object_add(p, "n", json_object_new_int(n));
	r.calls = 0;
	br->publish(self, NS, &out, on_published, NULL);
	json_object_put(p);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
}

static void publish(const char *channel, const struct pav_history_cfg *h,
		    int n)
{
	const char *chans[] = {channel};

	publish_to(chans, 1, h, n, 0, NULL);
}

static void member_add(const char *channel, const char *user)
{
	pav_memory_state.member_add(self, NS, channel, user, NULL, NULL);
}

/* The frame of delivery i is exactly `want` and valid JSON. */
static void frame_is(size_t i, const char *want)
{
	json_object *o;

	assert_true(i < ndlvs);
	assert_non_null(dlvs[i].text);
	assert_string_equal(dlvs[i].text, want);
	o = dlv_json(i);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	json_object_put(o);
}

static int setup(void **state)
{
	char err[128];

	(void)state;
	memset(&r, 0, sizeof(r));
	dlv_reset();
	fake_clock_set(T0);
	if (pav_memory_state.create(NULL, &dlv_env, &self, err, sizeof(err)))
		return -1;
	return br->create(NULL, &dlv_env, self, &self, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	dlv_reset();
	br->destroy(self);
	pav_memory_state.destroy(self);
	self = NULL;
	return 0;
}

/* ---- numbering ---- */

static void history_channel_publications_are_numbered_and_kept(void **state)
{
	(void)state;
	publish("zone:a", &hist, 1);
	assert_int_equal(r.offset, 1);
	assert_true(r.has_epoch);
	assert_int_equal(strlen(r.epoch), 16);
	publish("zone:a", &hist, 2);
	assert_int_equal(r.offset, 2);
	history_of("zone:a");
	assert_string_equal(r.epoch, hist_epoch);
	assert_int_equal(hist_n, 2);
	assert_int_equal(hist_offsets[0], 1);
	assert_int_equal(hist_offsets[1], 2);
	frame_is(0, "{\"type\":\"msg\",\"channel\":\"zone:a\",\"offset\":1,"
		    "\"payload\":{\"n\":1}," TS "}");
	frame_is(1, "{\"type\":\"msg\",\"channel\":\"zone:a\",\"offset\":2,"
		    "\"payload\":{\"n\":2}," TS "}");
	assert_int_equal(dlvs[1].offset, 2);
}

static void channels_are_numbered_each_on_its_own(void **state)
{
	(void)state;
	publish("zone:a", &hist, 1);
	publish("zone:a", &hist, 2);
	publish("chat:b", &hist, 1);
	assert_int_equal(r.offset, 1);
}

static void plain_channel_gets_a_sequence_number_but_no_offset_member(
	void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	publish("zone:a", NULL, 1);
	assert_int_equal(r.offset, 1);
	assert_false(r.has_epoch);
	publish("zone:a", NULL, 2);
	assert_int_equal(r.offset, 2);
	frame_is(0, "{\"type\":\"msg\",\"channel\":\"zone:a\","
		    "\"payload\":{\"n\":1}," TS "}");
	frame_is(1, "{\"type\":\"msg\",\"channel\":\"zone:a\","
		    "\"payload\":{\"n\":2}," TS "}");
	assert_int_equal(dlvs[1].offset, 0);
}

static void transient_publication_on_a_history_channel_is_not_numbered_or_kept(
	void **state)
{
	(void)state;
	publish("zone:a", &hist, 1);
	publish("zone:a", NULL, 2); /* transient: no history handed over */
	assert_int_equal(r.offset, 0);
	assert_false(r.has_epoch);
	frame_is(1, "{\"type\":\"msg\",\"channel\":\"zone:a\","
		    "\"payload\":{\"n\":2}," TS "}");
	publish("zone:a", &hist, 3);
	assert_int_equal(r.offset, 2);
	history_of("zone:a");
	assert_int_equal(hist_n, 2);
	assert_int_equal(hist_offsets[0], 1);
	assert_int_equal(hist_offsets[1], 2);
}

static void recipients_are_the_channels_subscribers(void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	member_add("zone:a", "alice");
	member_add("zone:a", "bob");
	publish("zone:a", NULL, 1);
	assert_int_equal(r.recipients, 3);
	publish("zone:empty", &hist, 1);
	assert_int_equal(r.recipients, 0);
}

static void multi_channel_publication_has_no_channel_member(void **state)
{
	const char *chans[] = {"zone:a", "user:bob"};

	(void)state;
	member_add("zone:a", "alice");
	publish_to(chans, 2, &hist, 1, 0, NULL);
	assert_int_equal(r.offset, 0);
	assert_false(r.has_epoch);
	assert_int_equal(r.recipients, -1);
	assert_int_equal(ndlvs, 1);
	assert_int_equal(dlvs[0].nchannels, 2);
	assert_string_equal(dlvs[0].channels[0], "zone:a");
	assert_string_equal(dlvs[0].channels[1], "user:bob");
	frame_is(0, "{\"type\":\"msg\",\"payload\":{\"n\":1}," TS "}");
	/* and it is in no channel's history */
	history_of("zone:a");
	assert_int_equal(hist_n, 0);
}

static void delivery_carries_namespace_type_except_and_key(void **state)
{
	const char *chans[] = {"user:bob"};

	(void)state;
	publish_to(chans, 1, NULL, 1, 42, "n0123");
	assert_int_equal(ndlvs, 1);
	assert_int_equal(dlvs[0].kind, PAV_DELIVER_FRAME);
	assert_string_equal(dlvs[0].ns, NS);
	assert_string_equal(dlvs[0].type, "msg");
	assert_int_equal(dlvs[0].except, 42);
	assert_string_equal(dlvs[0].key, "n0123");
	/* the key travels with the message, not in its text */
	assert_null(strstr(dlvs[0].text, "n0123"));
}

static void frame_text_is_json_with_slashes_unescaped(void **state)
{
	const char *chans[] = {"chat:r1"};
	json_object *p = json_object_new_object();
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = "chat_message",
		.payload = p,
	};

	(void)state;
	json_object_object_add(p, "url", json_object_new_string("a/b"));
	json_object_object_add(p, "q", json_object_new_string("\"x\"\n\xc3\xa9"));
	br->publish(self, NS, &out, NULL, NULL);
	json_object_put(p);
	frame_is(0, "{\"type\":\"chat_message\",\"channel\":\"chat:r1\","
		    "\"payload\":{\"url\":\"a/b\",\"q\":\"\\\"x\\\"\\n\xc3\xa9\"},"
		    TS "}");
}

/* ---- feeds, revocation ---- */

static void subscribed_feed_is_live_at_once(void **state)
{
	int called = 0;

	(void)state;
	br->subscribe(self, NS, "zone:a", on_live, &called);
	assert_int_equal(called, 1);
	br->subscribe(self, NS, "zone:a", NULL, NULL);
	br->unsubscribe(self, NS, "zone:a");
	assert_int_equal(ndlvs, 0);
}

static void revoke_delivers_revoke_on_the_user_channel(void **state)
{
	(void)state;
	pav_memory_state.conn_add(self, NS, "bob", 1, 0, NULL, NULL, NULL);
	pav_memory_state.conn_add(self, NS, "bob", 2, 0, NULL, NULL, NULL);
	pav_memory_state.conn_add(self, NS, "carol", 3, 0, NULL, NULL, NULL);
	r.calls = 0;
	br->revoke(self, NS, "bob", on_count, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.count, 2);
	assert_int_equal(ndlvs, 1);
	assert_int_equal(dlvs[0].kind, PAV_DELIVER_REVOKE);
	assert_string_equal(dlvs[0].ns, NS);
	assert_int_equal(dlvs[0].nchannels, 1);
	assert_string_equal(dlvs[0].channels[0], "user:bob");
	assert_null(dlvs[0].text);
	assert_int_equal(dlvs[0].except, 0);
}

static void revoke_of_an_unknown_user_answers_zero(void **state)
{
	(void)state;
	r.calls = 0;
	br->revoke(self, NS, "nobody", on_count, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.count, 0);
	br->revoke(self, NS, "nobody", NULL, NULL);
}

static void broker_without_its_state_is_refused(void **state)
{
	char err[128] = "";
	void *b = NULL;

	(void)state;
	assert_int_equal(br->create(NULL, &dlv_env, NULL, &b, err,
				    sizeof(err)),
			 -EINVAL);
	assert_true(strlen(err) > 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(history_channel_publications_are_numbered_and_kept),
		T(channels_are_numbered_each_on_its_own),
		T(plain_channel_gets_a_sequence_number_but_no_offset_member),
		T(transient_publication_on_a_history_channel_is_not_numbered_or_kept),
		T(recipients_are_the_channels_subscribers),
		T(multi_channel_publication_has_no_channel_member),
		T(delivery_carries_namespace_type_except_and_key),
		T(frame_text_is_json_with_slashes_unescaped),
		T(subscribed_feed_is_live_at_once),
		T(revoke_delivers_revoke_on_the_user_channel),
		T(revoke_of_an_unknown_user_answers_zero),
		T(broker_without_its_state_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
