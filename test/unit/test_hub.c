/*
 * test_hub.c — this node's channel membership and fan-out (src/hub.c):
 * joining and leaving (first/last member, tags, the subscription limit),
 * the two-sided index under any order of operations, a user's shared
 * channels, deliveries (each connection once, `except`, one publication
 * arriving per channel, REVOKE), and holding a subscription while it
 * catches up.  Connections are fakes (fake_conn.c) that record what they
 * were sent.
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

#include "broker.h"
#include "fake_conn.h"
#include "hub.h"
#include "metrics.h"
#include "msg.h"

#define NS "default"
#define NCLIENT 40
#define NCHAN 12

static struct pav_hub *hub;
static struct fake_conn fc[NCLIENT];
static struct pav_hub_client cl[NCLIENT];

/* REVOKE deliveries seen: which clients, in order. */
static struct pav_hub_client *revoked[NCLIENT];
static size_t nrevoked;
static void *revoke_arg;

static void on_revoke(struct pav_hub_client *c, void *arg)
{
	revoke_arg = arg;
	revoked[nrevoked++] = c;
}

static int setup(void **state)
{
	(void)state;
	hub = pav_hub_new(on_revoke, &hub);
	assert_non_null(hub);
	nrevoked = 0;
	revoke_arg = NULL;
	for (int i = 0; i < NCLIENT; i++) {
		fake_conn_init(&fc[i]);
		cl[i] = (struct pav_hub_client){
			.conn = &fc[i].c,
			.id = (uint64_t)i + 1,
			.ns = NS,
			.hold_max = 1 << 20,
		};
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NCLIENT; i++) {
		char ch[64];
		int last;
		uint32_t tag;

		while (cl[i].nsubs) {
			pav_hub_sub_channel(&cl[i], 0, ch, sizeof(ch));
			assert_int_equal(pav_hub_leave(hub, &cl[i], ch, &last,
						       &tag), 0);
		}
		assert_null(cl[i].subs);
		fake_conn_free(&fc[i]);
	}
	pav_hub_free(hub);
	hub = NULL;
	return 0;
}

static const char *chan(int k)
{
	static char buf[NCHAN][32];

	snprintf(buf[k], sizeof(buf[k]), "zone:z%d", k);
	return buf[k];
}

static int join(int i, const char *channel)
{
	int first = -1;
	int rc = pav_hub_join(hub, &cl[i], channel, 1000, &first);

	assert_true(first == 0 || first == 1);
	return rc;
}

static int leave(int i, const char *channel)
{
	int last = -1;
	uint32_t tag;

	return pav_hub_leave(hub, &cl[i], channel, &last, &tag);
}

/* One frame {"type": type, "channel"?, "offset"?, "payload": {"n": n}}
 * delivered to `channels`; returns how many got it. */
static int deliver_full(const char *const *channels, size_t nchannels,
			const char *type, int n, uint64_t offset,
			const char *key, uint64_t except, uint64_t pub_id)
{
	json_object *p = json_object_new_object();
	struct pav_frame f = {
		.type = type,
		.channel = nchannels == 1 ? channels[0] : NULL,
		.offset = offset,
		.payload = p,
		.key = key,
	};
	struct pav_delivery d = {
		.kind = PAV_DELIVER_FRAME,
		.ns = NS,
		.channels = channels,
		.nchannels = nchannels,
		.type = type,
		.except = except,
		.pub_id = pub_id,
	};
	int sent;

	json_object_object_add(p, "n", json_object_new_int(n));
	d.msg = pav_msg_frame(&f);
	assert_non_null(d.msg);
	sent = pav_hub_deliver(hub, &d);
	pav_msg_unref(d.msg);
	json_object_put(p);
	return sent;
}

static int deliver(const char *channel, int n)
{
	const char *chans[] = {channel};

	return deliver_full(chans, 1, "msg", n, 0, NULL, 0, 0);
}

/* payload.n of frame i of client c. */
static int n_of(int c, size_t i)
{
	json_object *o = fake_json(&fc[c], i), *p, *n;
	int v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "payload", &p));
	assert_true(json_object_object_get_ex(p, "n", &n));
	v = json_object_get_int(n);
	json_object_put(o);
	return v;
}

/* ---- membership ---- */

static void first_joiner_of_a_channel_is_told_first(void **state)
{
	int first = -1;

	(void)state;
	assert_int_equal(pav_hub_join(hub, &cl[0], "zone:a", 10, &first), 0);
	assert_int_equal(first, 1);
	assert_int_equal(pav_hub_join(hub, &cl[1], "zone:a", 10, &first), 0);
	assert_int_equal(first, 0);
	assert_int_equal(pav_hub_count(hub, NS, "zone:a"), 2);
}

static void joining_twice_answers_already_a_member(void **state)
{
	int first = -1;

	(void)state;
	assert_int_equal(join(0, "zone:a"), 0);
	assert_int_equal(pav_hub_join(hub, &cl[0], "zone:a", 10, &first), 1);
	assert_int_equal(first, 0);
	assert_int_equal(pav_hub_count(hub, NS, "zone:a"), 1);
	assert_int_equal(cl[0].nsubs, 1);
}

static void last_leaver_of_a_channel_is_told_last(void **state)
{
	int last = -1;
	uint32_t tag;

	(void)state;
	join(0, "zone:a");
	join(1, "zone:a");
	assert_int_equal(pav_hub_leave(hub, &cl[0], "zone:a", &last, &tag), 0);
	assert_int_equal(last, 0);
	assert_int_equal(pav_hub_leave(hub, &cl[1], "zone:a", &last, &tag), 0);
	assert_int_equal(last, 1);
	assert_int_equal(pav_hub_count(hub, NS, "zone:a"), 0);
}

static void leaving_a_channel_not_joined_answers_not_a_member(void **state)
{
	int last = -1;
	uint32_t tag = 99;

	(void)state;
	join(0, "zone:a");
	assert_int_equal(pav_hub_leave(hub, &cl[0], "zone:b", &last, &tag), 1);
	assert_int_equal(last, 0);
	assert_int_equal(tag, 0);
	assert_int_equal(pav_hub_leave(hub, &cl[1], "zone:a", &last, &tag), 1);
	assert_int_equal(pav_hub_count(hub, NS, "zone:a"), 1);
}

static void leave_hands_back_the_tag_bits(void **state)
{
	int last;
	uint32_t tag = 0;

	(void)state;
	join(0, "zone:a");
	join(0, "zone:b");
	pav_hub_tag(&cl[0], "zone:a", 1);
	pav_hub_tag(&cl[0], "zone:a", 4);
	pav_hub_tag(&cl[0], "zone:nope", 2); /* not a member: nothing */
	assert_int_equal(pav_hub_leave(hub, &cl[0], "zone:b", &last, &tag), 0);
	assert_int_equal(tag, 0);
	assert_int_equal(pav_hub_leave(hub, &cl[0], "zone:a", &last, &tag), 0);
	assert_int_equal(tag, 5);
}

static void subscription_limit_answers_enospc(void **state)
{
	int first;

	(void)state;
	for (int k = 0; k < 3; k++)
		assert_int_equal(pav_hub_join(hub, &cl[0], chan(k), 3, &first),
				 0);
	assert_int_equal(pav_hub_join(hub, &cl[0], chan(3), 3, &first),
			 -ENOSPC);
	assert_int_equal(pav_hub_count(hub, NS, chan(3)), 0);
	/* a repeat at the limit is still "already a member" */
	assert_int_equal(pav_hub_join(hub, &cl[0], chan(1), 3, &first), 1);
}

static void namespaces_are_separate(void **state)
{
	(void)state;
	cl[1].ns = "other";
	join(0, "zone:a");
	join(1, "zone:a");
	assert_int_equal(pav_hub_count(hub, NS, "zone:a"), 1);
	assert_int_equal(pav_hub_count(hub, "other", "zone:a"), 1);
	assert_int_equal(deliver("zone:a", 1), 1);
	assert_int_equal(fc[0].n, 1);
	assert_int_equal(fc[1].n, 0);
}

static void collect_channel(const char *channel, void *arg)
{
	int *seen = arg;

	for (int k = 0; k < NCHAN; k++)
		if (!strcmp(channel, chan(k)))
			seen[k]++;
}

/* Random joins and leaves against a plain matrix: members, counts, each
 * client's channels and deliveries agree with it. */
static void membership_matches_a_model(void **state)
{
	static int model[NCLIENT][NCHAN];

	(void)state;
	memset(model, 0, sizeof(model));
	srand(7);
	for (int step = 0; step < 20000; step++) {
		int i = rand() % NCLIENT, k = rand() % NCHAN;

		if (rand() % 3) {
			assert_int_equal(join(i, chan(k)), model[i][k]);
			model[i][k] = 1;
		} else {
			assert_int_equal(leave(i, chan(k)), !model[i][k]);
			model[i][k] = 0;
		}
		if (step % 997)
			continue;
		for (int kk = 0; kk < NCHAN; kk++) {
			int n = 0;

			for (int ii = 0; ii < NCLIENT; ii++) {
				assert_int_equal(pav_hub_is_member(&cl[ii],
								   chan(kk)),
						 model[ii][kk]);
				n += model[ii][kk];
				fake_conn_clear(&fc[ii]);
			}
			assert_int_equal(pav_hub_count(hub, NS, chan(kk)), n);
			assert_int_equal(deliver(chan(kk), kk), n);
			for (int ii = 0; ii < NCLIENT; ii++)
				assert_int_equal(fc[ii].n, model[ii][kk]);
		}
		for (int ii = 0; ii < NCLIENT; ii++) {
			int seen[NCHAN] = {0};

			pav_hub_channels(&cl[ii], collect_channel, seen);
			for (int kk = 0; kk < NCHAN; kk++)
				assert_int_equal(seen[kk], model[ii][kk]);
		}
	}
}

static void sub_channel_names_each_subscription(void **state)
{
	char buf[64];

	(void)state;
	join(0, "zone:a");
	join(0, "chat:b");
	pav_hub_sub_channel(&cl[0], 0, buf, sizeof(buf));
	assert_string_equal(buf, "zone:a");
	pav_hub_sub_channel(&cl[0], 1, buf, sizeof(buf));
	assert_string_equal(buf, "chat:b");
	pav_hub_sub_channel(&cl[0], 2, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

/* ---- a user's shared channels ---- */

struct names {
	char v[16][32];
	size_t n;
};

static void collect_name(const char *channel, void *arg)
{
	struct names *x = arg;

	snprintf(x->v[x->n++], sizeof(x->v[0]), "%s", channel);
}

static int has(const struct names *x, const char *name)
{
	int n = 0;

	for (size_t i = 0; i < x->n; i++)
		n += !strcmp(x->v[i], name);
	return n;
}

static void user_channels_lists_each_shared_channel_once(void **state)
{
	struct names x = {0};

	(void)state;
	/* clients 0 and 7 are user u0, both in their user channel */
	join(0, "user:u0");
	join(7, "user:u0");
	join(0, "zone:a");
	join(7, "zone:a");
	join(0, "channel:b");
	join(7, "chat:c");
	join(1, "zone:other"); /* user u1 */
	join(1, "user:u1");
	pav_hub_user_channels(hub, NS, "u0", collect_name, &x);
	assert_int_equal(x.n, 3);
	assert_int_equal(has(&x, "zone:a"), 1);
	assert_int_equal(has(&x, "channel:b"), 1);
	assert_int_equal(has(&x, "chat:c"), 1);
	/* a second walk finds the same (the dedupe marks are per walk) */
	memset(&x, 0, sizeof(x));
	pav_hub_user_channels(hub, NS, "u0", collect_name, &x);
	assert_int_equal(x.n, 3);
}

static void user_channels_skips_user_channels(void **state)
{
	struct names x = {0};

	(void)state;
	join(0, "user:u0");
	join(0, "user:u3"); /* never allowed by the plugins; still not shared */
	join(0, "zone:a");
	pav_hub_user_channels(hub, NS, "u0", collect_name, &x);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.v[0], "zone:a");
}

static void user_channels_sees_only_clients_in_the_user_channel(void **state)
{
	struct names x = {0};

	(void)state;
	join(0, "zone:a"); /* u0, but not (yet) in user:u0 */
	pav_hub_user_channels(hub, NS, "u0", collect_name, &x);
	assert_int_equal(x.n, 0);
	pav_hub_user_channels(hub, NS, "nobody", collect_name, &x);
	assert_int_equal(x.n, 0);
}

/* ---- delivery ---- */

static void delivery_reaches_every_member_once(void **state)
{
	(void)state;
	join(0, "zone:a");
	join(1, "zone:a");
	join(2, "zone:b");
	assert_int_equal(deliver("zone:a", 5), 2);
	assert_int_equal(fc[0].n, 1);
	assert_int_equal(fc[1].n, 1);
	assert_int_equal(fc[2].n, 0);
	assert_int_equal(fc[0].frames[0].via, FAKE_DELIVER);
	assert_int_equal(n_of(0, 0), 5);
	assert_int_equal(deliver("zone:nobody", 1), 0);
}

static void delivery_leaves_out_the_except_connection(void **state)
{
	const char *chans[] = {"zone:a"};

	(void)state;
	join(0, "zone:a");
	join(1, "zone:a");
	assert_int_equal(deliver_full(chans, 1, "msg", 1, 0, NULL, cl[1].id,
				      0),
			 1);
	assert_int_equal(fc[0].n, 1);
	assert_int_equal(fc[1].n, 0);
}

static void multi_channel_delivery_reaches_a_client_once(void **state)
{
	const char *chans[] = {"zone:a", "zone:b", "chat:c"};

	(void)state;
	join(0, "zone:a");
	join(0, "zone:b");
	join(0, "chat:c");
	join(1, "zone:b");
	join(2, "chat:c");
	join(3, "zone:d");
	assert_int_equal(deliver_full(chans, 3, "msg", 1, 0, NULL, 0, 0), 3);
	assert_int_equal(fc[0].n, 1);
	assert_int_equal(fc[1].n, 1);
	assert_int_equal(fc[2].n, 1);
	assert_int_equal(fc[3].n, 0);
	/* and the next publication reaches them again */
	assert_int_equal(deliver_full(chans, 3, "msg", 2, 0, NULL, 0, 0), 3);
	assert_int_equal(fc[0].n, 2);
}

static void publication_arriving_per_channel_is_sent_once(void **state)
{
	const char *a[] = {"zone:a"}, *b[] = {"zone:b"};

	(void)state;
	join(0, "zone:a");
	join(0, "zone:b");
	join(1, "zone:b");
	/* a network broker hands one publication over once per channel */
	assert_int_equal(deliver_full(a, 1, "msg", 1, 0, NULL, 0, 77), 1);
	assert_int_equal(deliver_full(b, 1, "msg", 1, 0, NULL, 0, 77), 1);
	assert_int_equal(fc[0].n, 1);
	assert_int_equal(fc[1].n, 1);
	/* another publication is another */
	assert_int_equal(deliver_full(b, 1, "msg", 2, 0, NULL, 0, 78), 2);
	assert_int_equal(fc[0].n, 2);
}

static void deliveries_without_a_pub_id_are_never_merged(void **state)
{
	(void)state;
	join(0, "zone:a");
	assert_int_equal(deliver("zone:a", 1), 1);
	assert_int_equal(deliver("zone:a", 1), 1);
	assert_int_equal(fc[0].n, 2);
}

static void publication_arriving_per_channel_interleaved_is_sent_once(
	void **state)
{
	const char *a[] = {"zone:a"}, *b[] = {"zone:b"}, *c[] = {"zone:c"};

	(void)state;
	join(0, "zone:a");
	join(0, "zone:b");
	join(1, "zone:c");
	/* publication 77 to zone:a and zone:b; publication 78 to zone:c
	 * arrives between its two halves (two pub/sub channels of a network
	 * broker are not ordered with each other) */
	deliver_full(a, 1, "msg", 1, 0, NULL, 0, 77);
	deliver_full(c, 1, "msg", 2, 0, NULL, 0, 78);
	deliver_full(b, 1, "msg", 1, 0, NULL, 0, 77);
	assert_int_equal(fc[1].n, 1);
	if (fc[0].n != 1)
		fail_msg("publication 77 reached client 0 %zu times "
			 "(broker.h: the hub sends it to a connection once)",
			 fc[0].n);
}

static void delivery_skips_a_client_without_a_connection(void **state)
{
	(void)state;
	join(0, "zone:a");
	join(1, "zone:a");
	cl[1].conn = NULL;
	assert_int_equal(deliver("zone:a", 1), 1);
	pav_conn_close(&fc[0].c, 1000, "bye");
	assert_int_equal(deliver("zone:a", 1), 0);
	assert_int_equal(fc[0].n, 1);
}

static void revoke_delivery_calls_the_revoke_callback(void **state)
{
	const char *chans[] = {"user:u0"};
	struct pav_delivery d = {
		.kind = PAV_DELIVER_REVOKE,
		.ns = NS,
		.channels = chans,
		.nchannels = 1,
		.type = "revoke",
	};

	(void)state;
	join(0, "user:u0");
	join(7, "user:u0");
	join(14, "zone:x"); /* user u0 too, but not in user:u0 */
	join(1, "user:u1");
	assert_int_equal(pav_hub_deliver(hub, &d), 2);
	assert_int_equal(nrevoked, 2);
	assert_ptr_equal(revoke_arg, &hub);
	assert_true((revoked[0] == &cl[0] && revoked[1] == &cl[7]) ||
		    (revoked[0] == &cl[7] && revoked[1] == &cl[0]));
	/* a revoke sends no frame itself */
	assert_int_equal(fc[0].n, 0);
	assert_int_equal(fc[7].n, 0);
	assert_int_equal(fc[1].n, 0);
}

/* ---- catching up ---- */

static void hold_of_a_channel_not_joined_is_enoent(void **state)
{
	(void)state;
	assert_int_equal(pav_hub_hold(&cl[0], "zone:a"), -ENOENT);
	assert_int_equal(pav_hub_release(&cl[0], "zone:a", 0, NULL, 0),
			 -ENOENT);
}

static void held_publications_are_sent_in_order_on_release(void **state)
{
	(void)state;
	join(0, "zone:a");
	join(1, "zone:a");
	assert_int_equal(pav_hub_hold(&cl[0], "zone:a"), 0);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(deliver("zone:a", i), 2);
	assert_int_equal(fc[0].n, 0);
	assert_int_equal(fc[1].n, 3);
	assert_int_equal(pav_hub_release(&cl[0], "zone:a", 0, NULL, 0), 0);
	assert_int_equal(fc[0].n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(n_of(0, (size_t)i), i + 1);
	/* released: live again */
	deliver("zone:a", 4);
	assert_int_equal(fc[0].n, 4);
	assert_int_equal(n_of(0, 3), 4);
}

static void hold_keeps_only_its_own_channel(void **state)
{
	(void)state;
	join(0, "zone:a");
	join(0, "zone:b");
	pav_hub_hold(&cl[0], "zone:a");
	deliver("zone:b", 1);
	assert_int_equal(fc[0].n, 1);
	deliver("zone:a", 2);
	assert_int_equal(fc[0].n, 1);
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(n_of(0, 1), 2);
}

static void release_skips_offsets_up_to_upto(void **state)
{
	const char *chans[] = {"zone:a"};

	(void)state;
	join(0, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	for (int i = 1; i <= 5; i++)
		deliver_full(chans, 1, "msg", i, (uint64_t)i, NULL, 0, 0);
	/* the replay already sent offsets 1..3 */
	pav_hub_release(&cl[0], "zone:a", 3, NULL, 0);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(fc[0].frames[0].offset, 4);
	assert_int_equal(fc[0].frames[1].offset, 5);
}

static void release_skips_the_keys_already_sent(void **state)
{
	const char *chans[] = {"user:u0"};
	const char *skip[] = {"n2", "n9"};

	(void)state;
	join(0, "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	deliver_full(chans, 1, "notification", 1, 0, "n1", 0, 0);
	deliver_full(chans, 1, "notification", 2, 0, "n2", 0, 0);
	deliver_full(chans, 1, "notification", 3, 0, NULL, 0, 0);
	pav_hub_release(&cl[0], "user:u0", 0, skip, 2);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(n_of(0, 0), 1);
	assert_int_equal(n_of(0, 1), 3);
}

static void multi_channel_publication_during_a_hold_is_sent_once(
	void **state)
{
	const char *chans[] = {"zone:a", "zone:b"};

	(void)state;
	join(0, "zone:a");
	join(0, "zone:b");
	pav_hub_hold(&cl[0], "zone:a");
	deliver_full(chans, 2, "msg", 1, 0, NULL, 0, 0);
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	assert_int_equal(fc[0].n, 1);
}

static void hold_past_its_bytes_closes_as_a_slow_consumer(void **state)
{
	(void)state;
	cl[0].hold_max = 200; /* a frame is about 70 bytes */
	join(0, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	for (int i = 0; i < 10; i++)
		deliver("zone:a", i);
	assert_int_equal(fc[0].overflows, 1);
	assert_int_equal(fc[0].c.close_code, 4008);
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	assert_int_equal(fc[0].n, 0); /* closing: nothing goes out */
}

/* pavilion_messages_out_total{type="msg"}, or 0 without that line. */
static long msgs_out(void)
{
	size_t len;
	char *t = pav_metrics_render(&len), *l;
	long n = 0;

	assert_non_null(t);
	l = strstr(t, "pavilion_messages_out_total{type=\"msg\"} ");
	if (l)
		n = strtol(strchr(l, '}') + 2, NULL, 10);
	free(t);
	return n;
}

static void held_publications_count_as_sent_when_sent(void **state)
{
	const char *chans[] = {"zone:a"};

	(void)state;
	pav_metrics_reset();
	join(0, "zone:a");
	join(1, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	for (int i = 1; i <= 5; i++)
		deliver_full(chans, 1, "msg", i, (uint64_t)i, NULL, 0, 0);
	assert_int_equal(msgs_out(), 5); /* client 1's */
	/* the replay sent 1..3 (counted by whoever sent it), 4 and 5 go now */
	pav_hub_release(&cl[0], "zone:a", 3, NULL, 0);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(msgs_out(), 7);
}

static void held_publications_of_a_slow_consumer_are_not_counted(
	void **state)
{
	(void)state;
	pav_metrics_reset();
	cl[0].hold_max = 200; /* a frame is about 70 bytes */
	join(0, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	for (int i = 0; i < 10; i++)
		deliver("zone:a", i);
	assert_int_equal(fc[0].c.close_code, 4008);
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	assert_int_equal(fc[0].n, 0);
	assert_int_equal(msgs_out(), 0);
}

static void leaving_during_a_hold_drops_what_was_held(void **state)
{
	(void)state;
	join(0, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	deliver("zone:a", 1);
	assert_int_equal(leave(0, "zone:a"), 0);
	/* held messages freed (the sanitizer build checks); join again: live */
	join(0, "zone:a");
	deliver("zone:a", 2);
	assert_int_equal(fc[0].n, 1);
	assert_int_equal(n_of(0, 0), 2);
}

/* Two catch-ups of one channel overlap (a second `since` subscribe sent
 * before the first's replay ended): the first release does not end the
 * hold of the second. */
static void overlapping_catch_ups_keep_holding_until_the_last_release(
	void **state)
{
	(void)state;
	join(0, "zone:a");
	assert_int_equal(pav_hub_hold(&cl[0], "zone:a"), 0);
	assert_int_equal(pav_hub_hold(&cl[0], "zone:a"), 0);
	deliver("zone:a", 1);
	assert_int_equal(pav_hub_release(&cl[0], "zone:a", 0, NULL, 0), 0);
	assert_int_equal(fc[0].n, 0);
	deliver("zone:a", 2);
	assert_int_equal(fc[0].n, 0);
	assert_int_equal(pav_hub_release(&cl[0], "zone:a", 0, NULL, 0), 0);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(n_of(0, 0), 1);
	assert_int_equal(n_of(0, 1), 2);
	deliver("zone:a", 3); /* live again */
	assert_int_equal(fc[0].n, 3);
}

static void overlapping_catch_ups_skip_what_either_replay_sent(void **state)
{
	const char *chans[] = {"user:u0"};
	const char *first[] = {"n1"}, *second[] = {"n3"};

	(void)state;
	join(0, "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	for (int i = 1; i <= 3; i++) {
		char key[8];

		snprintf(key, sizeof(key), "n%d", i);
		deliver_full(chans, 1, "notification", i, 0, key, 0, 0);
	}
	pav_hub_release(&cl[0], "user:u0", 0, first, 1);
	assert_int_equal(fc[0].n, 0);
	deliver_full(chans, 1, "notification", 4, 0, "n4", 0, 0);
	pav_hub_release(&cl[0], "user:u0", 0, second, 1);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(n_of(0, 0), 2);
	assert_int_equal(n_of(0, 1), 4);
	/* arriving late: the keys of both replays are still skipped */
	deliver_full(chans, 1, "notification", 1, 0, "n1", 0, 0);
	deliver_full(chans, 1, "notification", 3, 0, "n3", 0, 0);
	deliver_full(chans, 1, "notification", 5, 0, "n5", 0, 0);
	assert_int_equal(fc[0].n, 3);
	assert_int_equal(n_of(0, 2), 5);
}

static void overlapping_recoveries_skip_the_offsets_either_sent(
	void **state)
{
	const char *chans[] = {"zone:a"};

	(void)state;
	join(0, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	for (int i = 1; i <= 4; i++)
		deliver_full(chans, 1, "msg", i, (uint64_t)i, NULL, 0, 0);
	pav_hub_release(&cl[0], "zone:a", 3, NULL, 0);
	assert_int_equal(fc[0].n, 0);
	deliver_full(chans, 1, "msg", 5, 5, NULL, 0, 0);
	pav_hub_release(&cl[0], "zone:a", 2, NULL, 0);
	assert_int_equal(fc[0].n, 2);
	assert_int_equal(fc[0].frames[0].offset, 4);
	assert_int_equal(fc[0].frames[1].offset, 5);
}

static void a_catch_up_started_after_a_release_is_counted_again(
	void **state)
{
	(void)state;
	join(0, "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	pav_hub_hold(&cl[0], "zone:a");
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	pav_hub_hold(&cl[0], "zone:a");
	deliver("zone:a", 1);
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	assert_int_equal(fc[0].n, 0);
	pav_hub_release(&cl[0], "zone:a", 0, NULL, 0);
	assert_int_equal(fc[0].n, 1);
	/* one release too many changes nothing */
	assert_int_equal(pav_hub_release(&cl[0], "zone:a", 0, NULL, 0), 0);
	deliver("zone:a", 2);
	assert_int_equal(fc[0].n, 2);
}

static void keys_kept_for_the_last_release_count_against_the_hold(
	void **state)
{
	const char *keys[] = {"a-key-of-forty-bytes-0123456789abcdefghi",
			      "a-key-of-forty-bytes-0123456789abcdefghj",
			      "a-key-of-forty-bytes-0123456789abcdefghk"};

	(void)state;
	cl[0].hold_max = 100;
	join(0, "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	pav_hub_release(&cl[0], "user:u0", 0, keys, 2);
	assert_int_equal(fc[0].overflows, 0);
	pav_hub_hold(&cl[0], "user:u0");
	pav_hub_release(&cl[0], "user:u0", 0, keys + 2, 1);
	assert_int_equal(fc[0].overflows, 1);
	assert_int_equal(fc[0].c.close_code, 4008);
	pav_hub_release(&cl[0], "user:u0", 0, NULL, 0);
	assert_int_equal(fc[0].n, 0);
}

static void leaving_during_overlapping_catch_ups_drops_the_hold(
	void **state)
{
	const char *keys[] = {"n1"};

	(void)state;
	join(0, "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	pav_hub_hold(&cl[0], "user:u0");
	deliver("user:u0", 1);
	pav_hub_release(&cl[0], "user:u0", 0, keys, 1);
	assert_int_equal(leave(0, "user:u0"), 0);
	/* the held message and the kept key freed (the sanitizer build
	 * checks); the second release finds no subscription */
	assert_int_equal(pav_hub_release(&cl[0], "user:u0", 0, NULL, 0),
			 -ENOENT);
	assert_int_equal(fc[0].n, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(first_joiner_of_a_channel_is_told_first),
		T(joining_twice_answers_already_a_member),
		T(last_leaver_of_a_channel_is_told_last),
		T(leaving_a_channel_not_joined_answers_not_a_member),
		T(leave_hands_back_the_tag_bits),
		T(subscription_limit_answers_enospc),
		T(namespaces_are_separate),
		T(membership_matches_a_model),
		T(sub_channel_names_each_subscription),
		T(user_channels_lists_each_shared_channel_once),
		T(user_channels_skips_user_channels),
		T(user_channels_sees_only_clients_in_the_user_channel),
		T(delivery_reaches_every_member_once),
		T(delivery_leaves_out_the_except_connection),
		T(multi_channel_delivery_reaches_a_client_once),
		T(publication_arriving_per_channel_is_sent_once),
		T(deliveries_without_a_pub_id_are_never_merged),
		T(publication_arriving_per_channel_interleaved_is_sent_once),
		T(delivery_skips_a_client_without_a_connection),
		T(revoke_delivery_calls_the_revoke_callback),
		T(hold_of_a_channel_not_joined_is_enoent),
		T(held_publications_are_sent_in_order_on_release),
		T(hold_keeps_only_its_own_channel),
		T(held_publications_count_as_sent_when_sent),
		T(held_publications_of_a_slow_consumer_are_not_counted),
		T(release_skips_offsets_up_to_upto),
		T(release_skips_the_keys_already_sent),
		T(multi_channel_publication_during_a_hold_is_sent_once),
		T(hold_past_its_bytes_closes_as_a_slow_consumer),
		T(leaving_during_a_hold_drops_what_was_held),
		T(overlapping_catch_ups_keep_holding_until_the_last_release),
		T(overlapping_catch_ups_skip_what_either_replay_sent),
		T(overlapping_recoveries_skip_the_offsets_either_sent),
		T(a_catch_up_started_after_a_release_is_counted_again),
		T(keys_kept_for_the_last_release_count_against_the_hold),
		T(leaving_during_overlapping_catch_ups_drops_the_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
