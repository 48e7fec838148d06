/*
 * test_memory_state.c — the "memory" backend's shared state
 * (src/memory_state.c, src/memory_history.c, src/memory_revoked.c) through
 * its vtable, pav_memory_state: connections per user and their cap, token
 * revocations and their bound, presence and its announcements, inboxes, channel members,
 * history reads, and the history bounds (size, byte budget, ttl).  The clock is fake (fake_clock.c), so
 * times are exact; deliveries go to a recorder (deliveries.c).
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

#include "clock.h"
#include "deliveries.h"
#include "fake_clock.h"
#include "pav_limits.h"
#include "map.h"
#include "memory.h"
#include "msg.h"

#define NS "default"
#define SMALL_INBOX 3
#define SMALL_REVOKED 3
#define T0 1800000000000LL /* 2027-01-15T08:00:00.000Z */

static const struct pav_state_ops *ops = &pav_memory_state;
static void *self;

static struct pav_mem *mem(void)
{
	return self;
}

/* What the last callback saw. */
static struct {
	int calls;
	int err;
	int64_t count;
	int64_t subscribers, user_count;
	char user[64];
	char status[16];
	int64_t last_active_ms;
	int connections;
	json_object *json; /* a reference we took: put by reset() */
	int64_t counts[32];
	size_t ncounts;
	char users[16][64];
	size_t nusers;
	/* history */
	char epoch[32];
	uint64_t offset;
	uint64_t offsets[32];
	size_t n;
	int complete;
} r;

static void reset(void)
{
	json_object_put(r.json);
	memset(&r, 0, sizeof(r));
}

static void on_done(void *arg, int err)
{
	(void)arg;
	r.calls++;
	r.err = err;
}

static void on_count(void *arg, int err, int64_t count)
{
	(void)arg;
	r.calls++;
	r.err = err;
	r.count = count;
}

static void on_member(void *arg, int err, int64_t subscribers,
		      int64_t user_count)
{
	(void)arg;
	r.calls++;
	r.err = err;
	r.subscribers = subscribers;
	r.user_count = user_count;
}

static void on_presence(void *arg, int err, const struct pav_presence *p)
{
	(void)arg;
	r.calls++;
	r.err = err;
	if (!p)
		return;
	snprintf(r.user, sizeof(r.user), "%s", p->user);
	snprintf(r.status, sizeof(r.status), "%s", p->status);
	r.last_active_ms = p->last_active_ms;
	r.connections = p->connections;
}

static void on_json(void *arg, int err, json_object *v)
{
	(void)arg;
	r.calls++;
	r.err = err;
	json_object_put(r.json);
	/* keeping a reference past the callback must be safe */
	r.json = v ? json_object_get(v) : NULL;
}

static void on_counts(void *arg, int err, const int64_t *counts, size_t n)
{
	(void)arg;
	r.calls++;
	r.err = err;
	r.ncounts = n;
	for (size_t i = 0; i < n && i < 32; i++)
		r.counts[i] = counts[i];
}

static void on_users(void *arg, int err, const char *const *users, size_t n)
{
	(void)arg;
	r.calls++;
	r.err = err;
	r.nusers = n;
	for (size_t i = 0; i < n && i < 16; i++)
		snprintf(r.users[i], sizeof(r.users[i]), "%s", users[i]);
}

static void on_history(void *arg, int err, const struct pav_history *h)
{
	(void)arg;
	r.calls++;
	r.err = err;
	if (!h)
		return;
	snprintf(r.epoch, sizeof(r.epoch), "%s", h->epoch);
	r.offset = h->offset;
	r.n = h->n;
	r.complete = h->complete;
	for (size_t i = 0; i < h->n && i < 32; i++)
		r.offsets[i] = h->msgs[i]->offset;
}

/* ---- one-line wrappers: each asserts the callback ran at once ---- */

static int conn_add_max(const char *ns, const char *user, uint64_t id,
			int max)
{
	reset();
	ops->conn_add(self, ns, user, id, max, NULL, on_count, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static int64_t conn_add(const char *ns, const char *user, uint64_t id)
{
	assert_int_equal(conn_add_max(ns, user, id, 0), 0);
	return r.count;
}

static int64_t conn_remove(const char *ns, const char *user, uint64_t id)
{
	reset();
	ops->conn_remove(self, ns, user, id, on_count, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	return r.count;
}

static int64_t user_count(const char *ns, const char *user)
{
	reset();
	ops->user_count(self, ns, user, on_count, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	return r.count;
}

static int presence_set_at(const char *ns, const char *user,
			   const char *status, enum pav_presence_when when,
			   int64_t at_ms, const struct pav_outgoing *announce)
{
	reset();
	ops->presence_set(self, ns, user, status, when, at_ms, announce,
			  announce ? "lastActive" : NULL, on_presence, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static int presence_set_when(const char *ns, const char *user,
			     const char *status, enum pav_presence_when when,
			     const struct pav_outgoing *announce)
{
	return presence_set_at(ns, user, status, when, 0, announce);
}

static int presence_set(const char *ns, const char *user, const char *status)
{
	return presence_set_when(ns, user, status, PAV_PRESENCE_ALWAYS, NULL);
}

static void presence_get(const char *ns, const char *user)
{
	reset();
	ops->presence_get(self, ns, user, on_presence, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
}

/* Adds {"title": title}; answers the new id (static buffer). */
static const char *inbox_add(const char *ns, const char *user,
			     const char *title)
{
	static char id[64];
	json_object *n = json_object_new_object(), *v;

	json_object_object_add(n, "title", json_object_new_string(title));
	reset();
	ops->inbox_add(self, ns, user, n, on_json, NULL);
	json_object_put(n);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_true(json_object_object_get_ex(r.json, "id", &v));
	snprintf(id, sizeof(id), "%s", json_object_get_string(v));
	return id;
}

/* The list in r.json; answers its length. */
static size_t inbox_list(const char *ns, const char *user, int64_t since_ms,
			 int unread_only, size_t limit)
{
	reset();
	ops->inbox_list(self, ns, user, since_ms, unread_only, limit, on_json,
			NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_true(json_object_is_type(r.json, json_type_array));
	return json_object_array_length(r.json);
}

static int mark_read(const char *ns, const char *user, const char *id)
{
	reset();
	ops->inbox_mark_read(self, ns, user, id, on_done, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static void member_add(const char *channel, const char *user)
{
	reset();
	ops->member_add(self, NS, channel, user, on_member, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
}

static int64_t count_of(const char *channel)
{
	const char *chans[] = {channel};

	reset();
	ops->channel_counts(self, NS, chans, 1, on_counts, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.ncounts, 1);
	return r.counts[0];
}

static size_t channel_users(const char *channel, size_t max)
{
	reset();
	ops->channel_users(self, NS, channel, max, on_users, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	return r.nusers;
}

static const struct pav_history_cfg hist10 = {10, 60};

static void history_read(const char *channel, const struct pav_history_cfg *h,
			 uint64_t after, size_t max)
{
	reset();
	ops->history_read(self, NS, channel, h, after, max, on_history, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
}

/* Publishes {"n": n} (padded with `pad` bytes) through the same backend's
 * broker, kept in the channel's history h. */
static void publish_pad(const char *channel, const struct pav_history_cfg *h,
			int n, size_t pad)
{
	const char *chans[] = {channel};
	json_object *p = json_object_new_object();
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = "msg",
		.payload = p,
		.history = h,
	};
	char *fill = calloc(1, pad + 1);

	memset(fill, 'x', pad);
	json_object_object_add(p, "n", json_object_new_int(n));
	if (pad)
		json_object_object_add(p, "pad", json_object_new_string(fill));
	pav_memory_broker.publish(self, NS, &out, NULL, NULL);
	json_object_put(p);
	free(fill);
}

static void publish(const char *channel, const struct pav_history_cfg *h,
		    int n)
{
	publish_pad(channel, h, n, 0);
}

static json_object *item(size_t i)
{
	return json_object_array_get_idx(r.json, i);
}

static const char *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

static int is_read(json_object *o)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, "isRead", &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

static const char *title_at(size_t i)
{
	return member(item(i), "title");
}

static int64_t created_at(size_t i)
{
	int64_t ms = 0;

	assert_int_equal(pav_parse_time(member(item(i), "createdAt"), &ms), 0);
	return ms;
}

static int create(size_t inbox_size, size_t history_max_bytes)
{
	struct pav_store_config cfg = {
		.backend = "memory",
		.inbox_size = inbox_size,
		.history_max_bytes = history_max_bytes,
	};
	char err[128];
	void *broker = NULL;

	memset(&r, 0, sizeof(r));
	dlv_reset();
	fake_clock_set(T0);
	if (ops->create(&cfg, &dlv_env, &self, err, sizeof(err)))
		return -1;
	/* the broker half shares the table */
	if (pav_memory_broker.create(&cfg, &dlv_env, self, &broker, err,
				     sizeof(err)) ||
	    broker != self)
		return -1;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return create(0, 0);
}

static int setup_small(void **state)
{
	(void)state;
	return create(SMALL_INBOX, 0);
}

static int setup_budget(void **state)
{
	(void)state;
	return create(0, 2500); /* two 1000-byte frames, not three */
}

static int setup_64k(void **state)
{
	(void)state;
	return create(0, 65536); /* the smallest history_max_bytes */
}

/* The revocations part made again with a bound of SMALL_REVOKED records
 * (the store's own is PAV_MAX_KEPT_REVOCATIONS). */
static int setup_few_revocations(void **state)
{
	(void)state;
	if (create(0, 0))
		return -1;
	pav_mem_revoked_free(mem());
	return pav_mem_revoked_init(mem(), SMALL_REVOKED);
}

static int teardown(void **state)
{
	(void)state;
	reset();
	dlv_reset();
	ops->destroy(self);
	self = NULL;
	return 0;
}

/* ---- the instance ---- */

static void instance_is_ready_at_once(void **state)
{
	(void)state;
	assert_int_equal(ops->ready(self), 1);
	assert_int_equal(pav_memory_broker.ready(self), 1);
}

/* ---- connections ---- */

static void first_connection_counts_one(void **state)
{
	(void)state;
	assert_int_equal(conn_add(NS, "alice", 1), 1);
	assert_int_equal(conn_add(NS, "alice", 2), 2);
	assert_int_equal(conn_add(NS, "bob", 3), 1);
	assert_int_equal(user_count(NS, "alice"), 2);
}

static void same_connection_is_not_counted_twice(void **state)
{
	(void)state;
	assert_int_equal(conn_add(NS, "alice", 7), 1);
	assert_int_equal(conn_add(NS, "alice", 7), 1);
	assert_int_equal(conn_remove(NS, "alice", 7), 0);
}

static void last_connection_removed_counts_zero(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	conn_add(NS, "alice", 2);
	conn_add(NS, "alice", 3);
	assert_int_equal(conn_remove(NS, "alice", 2), 2);
	assert_int_equal(conn_remove(NS, "alice", 1), 1);
	assert_int_equal(conn_remove(NS, "alice", 3), 0);
	assert_int_equal(user_count(NS, "alice"), 0);
}

static void removing_unknown_connection_answers_current_count(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	conn_add(NS, "alice", 2);
	assert_int_equal(conn_remove(NS, "alice", 99), 2);
	assert_int_equal(conn_remove(NS, "nobody", 1), 0);
	assert_int_equal(conn_remove(NS, "alice", 1), 1);
	assert_int_equal(conn_remove(NS, "alice", 1), 1);
}

static void zero_max_per_user_means_no_cap(void **state)
{
	(void)state;
	for (uint64_t i = 1; i <= 100; i++)
		assert_int_equal(conn_add(NS, "alice", i), (int64_t)i);
	for (uint64_t i = 100; i >= 1; i--)
		assert_int_equal(conn_remove(NS, "alice", i), (int64_t)i - 1);
}

static void connection_past_max_per_user_is_eusers_and_not_counted(
	void **state)
{
	(void)state;
	assert_int_equal(conn_add_max(NS, "alice", 1, 2), 0);
	assert_int_equal(conn_add_max(NS, "alice", 2, 2), 0);
	assert_int_equal(r.count, 2);
	assert_int_equal(conn_add_max(NS, "alice", 3, 2), -EUSERS);
	assert_int_equal(user_count(NS, "alice"), 2);
	presence_get(NS, "alice");
	assert_int_equal(r.connections, 2);
	/* room again after one closed */
	conn_remove(NS, "alice", 1);
	assert_int_equal(conn_add_max(NS, "alice", 3, 2), 0);
	assert_int_equal(r.count, 2);
}

static void connection_already_counted_is_not_refused_at_the_cap(
	void **state)
{
	(void)state;
	assert_int_equal(conn_add_max(NS, "alice", 1, 1), 0);
	assert_int_equal(conn_add_max(NS, "alice", 1, 1), 0);
	assert_int_equal(r.count, 1);
}

static void cap_is_per_user_and_namespace(void **state)
{
	(void)state;
	assert_int_equal(conn_add_max(NS, "alice", 1, 1), 0);
	assert_int_equal(conn_add_max(NS, "bob", 2, 1), 0);
	assert_int_equal(conn_add_max("other", "alice", 3, 1), 0);
	assert_int_equal(conn_add_max(NS, "alice", 4, 1), -EUSERS);
}

static void refused_first_connection_leaves_no_record(void **state)
{
	(void)state;
	/* max 0 would mean "no cap"; a negative max never refuses either */
	assert_int_equal(conn_add_max(NS, "alice", 1, -1), 0);
	conn_remove(NS, "alice", 1);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

/* ---- token revocations ---- */

#define T0_S (T0 / 1000)

static const struct pav_token_iat no_iat = {0, 0};

static struct pav_token_iat iat(double s)
{
	return (struct pav_token_iat){1, s};
}

static void revoke(const char *user, int64_t at_ms, int ttl_s)
{
	reset();
	ops->tokens_revoke(self, NS, user, at_ms, ttl_s, on_done, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
}

static int check(const char *user, struct pav_token_iat tok)
{
	reset();
	ops->token_check(self, NS, user, &tok, on_done, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static int conn_add_with(const char *user, uint64_t id,
			 struct pav_token_iat tok)
{
	reset();
	ops->conn_add(self, NS, user, id, 0, &tok, on_count, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static void tokens_issued_by_the_revocation_are_refused(void **state)
{
	(void)state;
	revoke("alice", T0, 60);
	assert_int_equal(check("alice", iat(T0_S)), -EKEYREVOKED);
	assert_int_equal(check("alice", iat(T0_S - 3600)), -EKEYREVOKED);
	assert_int_equal(check("alice", no_iat), -EKEYREVOKED);
	/* compared as the claims give it: a fraction counts */
	assert_int_equal(check("alice", iat(T0_S + 0.0005)), 0);
	assert_int_equal(check("alice", iat(T0_S + 1)), 0);
	/* another user, another namespace: untouched */
	assert_int_equal(check("bob", iat(T0_S)), 0);
	reset();
	ops->token_check(self, "other", "alice", &no_iat, on_done, NULL);
	assert_int_equal(r.err, 0);
}

static void conn_add_of_a_refused_token_counts_nothing(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	revoke("alice", T0, 60);
	assert_int_equal(conn_add_with("alice", 2, iat(T0_S)), -EKEYREVOKED);
	assert_int_equal(conn_add_with("alice", 3, no_iat), -EKEYREVOKED);
	assert_int_equal(user_count(NS, "alice"), 1);
	assert_int_equal(conn_add_with("alice", 4, iat(T0_S + 1)), 0);
	assert_int_equal(r.count, 2);
	/* without a token to check (NULL), nothing is refused */
	assert_int_equal(conn_add(NS, "alice", 5), 3);
}

/* The end is exact (a lookup past it finds nothing) and the tick drops
 * the record: nothing stays of a revoked user once it ended. */
static void revocation_ends_after_its_seconds(void **state)
{
	(void)state;
	revoke("alice", T0, 2);
	fake_clock_set(T0 + 1999);
	ops->tick(self, T0 + 1999);
	assert_int_equal(pav_map_count(mem()->revoked), 1);
	assert_int_equal(check("alice", iat(T0_S)), -EKEYREVOKED);
	fake_clock_set(T0 + 2000);
	assert_int_equal(check("alice", iat(T0_S)), 0);
	assert_int_equal(pav_map_count(mem()->revoked), 0);
	revoke("bob", T0 + 2000, 1);
	fake_clock_set(T0 + 3000);
	ops->tick(self, T0 + 3000);
	assert_int_equal(pav_map_count(mem()->revoked), 0);
}

static void a_second_revocation_replaces_the_first(void **state)
{
	(void)state;
	revoke("alice", T0, 100);
	fake_clock_set(T0 + 5000);
	revoke("alice", T0 + 5000, 2); /* newer time, shorter life */
	assert_int_equal(pav_map_count(mem()->revoked), 1);
	assert_int_equal(check("alice", iat(T0_S + 3)), -EKEYREVOKED);
	assert_int_equal(check("alice", iat(T0_S + 6)), 0);
	fake_clock_set(T0 + 7000);
	ops->tick(self, T0 + 7000);
	assert_int_equal(pav_map_count(mem()->revoked), 0);
	assert_int_equal(check("alice", iat(T0_S)), 0);
	/* and a longer one after a shorter one lives its own length */
	revoke("alice", T0 + 7000, 1);
	revoke("alice", T0 + 7000, 300);
	fake_clock_set(T0 + 8000);
	ops->tick(self, T0 + 8000);
	assert_int_equal(check("alice", iat(T0_S)), -EKEYREVOKED);
	fake_clock_set(T0 + 307000);
	ops->tick(self, T0 + 307000);
	assert_int_equal(pav_map_count(mem()->revoked), 0);
}

/* One record per user, whatever the user's own record does: the user
 * without a connection leaves no user record, the revocation stays;
 * ends far apart (past the wheel's lap) each come on time. */
static void revocations_are_one_record_per_user_until_their_end(void **state)
{
	char user[16];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		revoke(user, T0, 1 + i % 600);
		revoke(user, T0, 1 + i % 600);
	}
	assert_int_equal(pav_map_count(mem()->revoked), 1000);
	assert_int_equal(pav_map_count(mem()->users), 0);
	fake_clock_set(T0 + 300000);
	ops->tick(self, T0 + 300000);
	assert_int_equal(pav_map_count(mem()->revoked), 400);
	assert_int_equal(check("u299", iat(T0_S)), 0);
	assert_int_equal(check("u300", iat(T0_S)), -EKEYREVOKED);
	fake_clock_set(T0 + 600000);
	ops->tick(self, T0 + 600000);
	assert_int_equal(pav_map_count(mem()->revoked), 0);
}

/* The end is on the monotonic clock: a step of the wall clock neither
 * ends a revocation early nor keeps it. */
static void revocation_end_ignores_a_wall_clock_step(void **state)
{
	(void)state;
	revoke("alice", T0, 10);
	fake_clock_step_wall(3600 * 1000);
	ops->tick(self, T0 + 3600 * 1000);
	assert_int_equal(check("alice", iat(T0_S)), -EKEYREVOKED);
	fake_clock_advance(10000);
	assert_int_equal(check("alice", iat(T0_S)), 0);
}

/* The revocation's err, whatever it is. */
static int try_revoke(const char *user, int64_t at_ms, int ttl_s)
{
	reset();
	ops->tokens_revoke(self, NS, user, at_ms, ttl_s, on_done, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

/* Full: a new user is refused and nothing changes (the record is the
 * only copy: none is dropped for it); a user held is replaced. */
static void a_full_store_refuses_a_new_user_and_keeps_its_records(void **state)
{
	(void)state;
	revoke("a", T0, 600);
	revoke("b", T0, 600);
	revoke("c", T0, 600);
	assert_int_equal(try_revoke("d", T0, 600), -ENOSPC);
	assert_int_equal(try_revoke("d", T0, 1), -ENOSPC);
	assert_int_equal(pav_map_count(mem()->revoked), SMALL_REVOKED);
	assert_int_equal(check("d", iat(T0_S)), 0);
	assert_int_equal(check("a", iat(T0_S)), -EKEYREVOKED);
	assert_int_equal(check("b", iat(T0_S)), -EKEYREVOKED);
	assert_int_equal(check("c", iat(T0_S)), -EKEYREVOKED);
	/* the same name in another namespace is another user */
	reset();
	ops->tokens_revoke(self, "other", "a", T0, 600, on_done, NULL);
	assert_int_equal(r.err, -ENOSPC);
	/* replacing: its new time and its new end */
	fake_clock_set(T0 + 5000);
	revoke("a", T0 + 5000, 2);
	assert_int_equal(pav_map_count(mem()->revoked), SMALL_REVOKED);
	assert_int_equal(check("a", iat(T0_S + 4)), -EKEYREVOKED);
	fake_clock_set(T0 + 7000);
	assert_int_equal(check("a", iat(T0_S)), 0);
	/* and its place is free once it ended */
	revoke("d", T0 + 7000, 600);
	assert_int_equal(check("d", iat(T0_S)), -EKEYREVOKED);
}

/* Records that ended hold no place, even before the tick drops them:
 * the revocation drops those due first. */
static void an_ended_revocation_makes_room_before_the_tick(void **state)
{
	(void)state;
	revoke("a", T0, 1);
	revoke("b", T0, 2);
	revoke("c", T0, 600);
	fake_clock_set(T0 + 999);
	assert_int_equal(try_revoke("d", T0 + 999, 600), -ENOSPC);
	fake_clock_set(T0 + 1000);
	revoke("d", T0 + 1000, 600);
	assert_int_equal(pav_map_count(mem()->revoked), SMALL_REVOKED);
	assert_int_equal(check("a", iat(T0_S)), 0);
	assert_int_equal(check("d", iat(T0_S + 1)), -EKEYREVOKED);
	assert_int_equal(try_revoke("e", T0 + 1000, 600), -ENOSPC);
	/* a user whose record ended is a new user again */
	fake_clock_set(T0 + 2000);
	revoke("e", T0 + 2000, 600);
	assert_int_equal(try_revoke("b", T0 + 2000, 600), -ENOSPC);
	assert_int_equal(check("b", iat(T0_S)), 0);
}

/* ---- presence ---- */

static void unknown_user_is_offline(void **state)
{
	(void)state;
	presence_get(NS, "ghost");
	assert_string_equal(r.user, "ghost");
	assert_string_equal(r.status, "offline");
	assert_true(r.last_active_ms == 0);
	assert_int_equal(r.connections, 0);
}

static void presence_set_is_read_back_with_the_stores_time(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	conn_add(NS, "alice", 2);
	fake_clock_set(T0 + 1234);
	assert_int_equal(presence_set(NS, "alice", "busy"), 0);
	/* the callback has the stored presence after the change */
	assert_string_equal(r.status, "busy");
	assert_true(r.last_active_ms == T0 + 1234);
	presence_get(NS, "alice");
	assert_string_equal(r.user, "alice");
	assert_string_equal(r.status, "busy");
	assert_true(r.last_active_ms == T0 + 1234);
	assert_int_equal(r.connections, 2);
}

static void unchanged_status_answers_ealready(void **state)
{
	(void)state;
	assert_int_equal(presence_set(NS, "alice", "online"), 0);
	fake_clock_advance(1000);
	assert_int_equal(presence_set(NS, "alice", "online"), -EALREADY);
	assert_string_equal(r.status, "online");
	presence_get(NS, "alice");
	assert_true(r.last_active_ms == T0); /* nothing changed */
	assert_int_equal(presence_set(NS, "alice", "away"), 0);
	assert_int_equal(presence_set(NS, "alice", "online"), 0);
}

static void offline_for_unknown_user_answers_ealready(void **state)
{
	(void)state;
	assert_int_equal(presence_set(NS, "ghost", "offline"), -EALREADY);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

static void missing_or_empty_status_is_einval(void **state)
{
	(void)state;
	assert_int_equal(presence_set(NS, "alice", ""), -EINVAL);
	assert_int_equal(presence_set(NS, "alice", NULL), -EINVAL);
	assert_int_equal(presence_set(NS, "alice",
				      "a-status-far-too-long-to-store"),
			 -EINVAL);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "offline");
}

static void if_connected_applies_only_with_a_connection(void **state)
{
	(void)state;
	assert_int_equal(presence_set_when(NS, "alice", "online",
					   PAV_PRESENCE_IF_CONNECTED, NULL),
			 -EALREADY);
	assert_string_equal(r.status, "offline");
	conn_add(NS, "alice", 1);
	assert_int_equal(presence_set_when(NS, "alice", "online",
					   PAV_PRESENCE_IF_CONNECTED, NULL),
			 0);
	assert_string_equal(r.status, "online");
}

static void if_disconnected_applies_only_without_one(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	presence_set(NS, "alice", "online");
	assert_int_equal(presence_set_when(NS, "alice", "offline",
					   PAV_PRESENCE_IF_DISCONNECTED, NULL),
			 -EALREADY);
	assert_string_equal(r.status, "online");
	conn_remove(NS, "alice", 1);
	assert_int_equal(presence_set_when(NS, "alice", "offline",
					   PAV_PRESENCE_IF_DISCONNECTED, NULL),
			 0);
	assert_string_equal(r.status, "offline");
}

static void change_is_announced_with_its_time_stamped(void **state)
{
	const char *chans[] = {"user:alice", "zone:z1"};
	json_object *p = json_object_new_object(), *f, *v, *pl;
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 2,
		.type = "status_update",
		.payload = p,
		.except = 42,
	};
	char when[PAV_TIME_LEN];

	(void)state;
	json_object_object_add(p, "userId", json_object_new_string("alice"));
	json_object_object_add(p, "status", json_object_new_string("busy"));
	conn_add(NS, "alice", 1);
	fake_clock_set(T0 + 5);
	assert_int_equal(presence_set_when(NS, "alice", "busy",
					   PAV_PRESENCE_ALWAYS, &out),
			 0);
	json_object_put(p);
	assert_int_equal(ndlvs, 1);
	assert_int_equal(dlvs[0].kind, PAV_DELIVER_FRAME);
	assert_string_equal(dlvs[0].ns, NS);
	assert_int_equal(dlvs[0].nchannels, 2);
	assert_string_equal(dlvs[0].channels[0], "user:alice");
	assert_string_equal(dlvs[0].channels[1], "zone:z1");
	assert_int_equal(dlvs[0].except, 42);
	f = dlv_json(0);
	assert_non_null(f);
	assert_true(json_object_object_get_ex(f, "type", &v));
	assert_string_equal(json_object_get_string(v), "status_update");
	assert_false(json_object_object_get_ex(f, "channel", NULL));
	assert_true(json_object_object_get_ex(f, "payload", &pl));
	pav_format_time(T0 + 5, when, sizeof(when));
	assert_string_equal(member(pl, "lastActive"), when);
	assert_string_equal(member(pl, "status"), "busy");
	json_object_put(f);
	/* the stored lastActive is the announced one */
	presence_get(NS, "alice");
	assert_true(r.last_active_ms == T0 + 5);
}

static void change_at_a_given_time_is_stored_and_announced_with_it(
	void **state)
{
	const char *chans[] = {"user:alice"};
	json_object *p = json_object_new_object(), *f, *pl;
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = "status_update",
		.payload = p,
	};
	char when[PAV_TIME_LEN];

	(void)state;
	presence_set(NS, "alice", "online");
	fake_clock_set(T0 + 60000);
	/* the connection went at T0 + 1000 (a dead node's last heartbeat) */
	assert_int_equal(presence_set_at(NS, "alice", "offline",
					 PAV_PRESENCE_IF_DISCONNECTED,
					 T0 + 1000, &out),
			 0);
	json_object_put(p);
	assert_true(r.last_active_ms == T0 + 1000);
	assert_int_equal(ndlvs, 1);
	f = dlv_json(0);
	assert_true(json_object_object_get_ex(f, "payload", &pl));
	pav_format_time(T0 + 1000, when, sizeof(when));
	assert_string_equal(member(pl, "lastActive"), when);
	json_object_put(f);
}

static void change_that_does_not_apply_is_not_announced(void **state)
{
	const char *chans[] = {"user:alice"};
	json_object *p = json_object_new_object();
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = "status_update",
		.payload = p,
	};

	(void)state;
	conn_add(NS, "alice", 1);
	presence_set(NS, "alice", "online");
	assert_int_equal(presence_set_when(NS, "alice", "online",
					   PAV_PRESENCE_ALWAYS, &out),
			 -EALREADY);
	assert_int_equal(presence_set_when(NS, "alice", "offline",
					   PAV_PRESENCE_IF_DISCONNECTED, &out),
			 -EALREADY);
	json_object_put(p);
	assert_int_equal(ndlvs, 0);
}

static void announcement_on_a_history_channel_is_not_kept(void **state)
{
	const char *chans[] = {"zone:z1"};
	json_object *p = json_object_new_object();
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = "status_update",
		.payload = p,
	};

	(void)state;
	member_add("zone:z1", "bob");
	history_read("zone:z1", &hist10, 0, 0);
	publish("zone:z1", &hist10, 1);
	presence_set_when(NS, "alice", "busy", PAV_PRESENCE_ALWAYS, &out);
	json_object_put(p);
	assert_int_equal(ndlvs, 2);
	assert_int_equal(dlvs[1].offset, 0);
	history_read("zone:z1", &hist10, 0, 10);
	assert_int_equal(r.offset, 1);
	assert_int_equal(r.n, 1);
}

static void last_active_survives_last_connection(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	presence_set(NS, "alice", "online");
	assert_int_equal(conn_remove(NS, "alice", 1), 0);
	fake_clock_set(T0 + 5000);
	assert_int_equal(presence_set(NS, "alice", "offline"), 0);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "offline");
	assert_true(r.last_active_ms == T0 + 5000);
	assert_int_equal(r.connections, 0);
	assert_int_equal(pav_map_count(mem()->users), 1);
}

static void user_with_nothing_to_remember_leaves_no_record(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	assert_int_equal(pav_map_count(mem()->users), 1);
	conn_remove(NS, "alice", 1);
	assert_int_equal(pav_map_count(mem()->users), 0);
	conn_remove(NS, "bob", 1);
	presence_get(NS, "carol");
	inbox_list(NS, "dave", 0, 0, 0);
	mark_read(NS, "erin", "n0000000000000000");
	user_count(NS, "frank");
	assert_int_equal(pav_map_count(mem()->users), 0);
}

/* Without a connection, a record goes PAV_USER_RECORD_TTL_MS after its
 * last change, as Redis expires an inbox and a presence. */
static void idle_record_expires_after_its_last_change(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	presence_set(NS, "alice", "away");
	inbox_add(NS, "alice", "hello");
	fake_clock_set(T0 + 1000);
	conn_remove(NS, "alice", 1); /* the close is the last change */
	ops->tick(self, T0 + 1000 + PAV_USER_RECORD_TTL_MS - 1);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "away");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	ops->tick(self, T0 + 1000 + PAV_USER_RECORD_TTL_MS);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "offline");
	assert_true(r.last_active_ms == 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 0);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

static void connected_record_does_not_expire(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	presence_set(NS, "alice", "busy");
	ops->tick(self, T0 + 2 * PAV_USER_RECORD_TTL_MS);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "busy");
	assert_int_equal(r.connections, 1);
	/* and after its close, the ttl counts from the close */
	fake_clock_set(T0 + 2 * PAV_USER_RECORD_TTL_MS);
	conn_remove(NS, "alice", 1);
	ops->tick(self, T0 + 3 * PAV_USER_RECORD_TTL_MS - 1);
	assert_int_equal(pav_map_count(mem()->users), 1);
	ops->tick(self, T0 + 3 * PAV_USER_RECORD_TTL_MS);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

static void a_change_puts_the_record_back_to_the_end(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "one");
	fake_clock_set(T0 + 10);
	inbox_add(NS, "bob", "one");
	fake_clock_set(T0 + 20);
	inbox_add(NS, "alice", "two"); /* alice now changed after bob */
	ops->tick(self, T0 + 10 + PAV_USER_RECORD_TTL_MS);
	assert_int_equal(inbox_list(NS, "bob", 0, 0, 0), 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 2);
	fake_clock_set(T0 + 30);
	assert_int_equal(presence_set(NS, "alice", "away"), 0);
	ops->tick(self, T0 + 20 + PAV_USER_RECORD_TTL_MS);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 2);
	ops->tick(self, T0 + 30 + PAV_USER_RECORD_TTL_MS);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 0);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

/* Notifications of one millisecond, or made after the clock stepped
 * back, get createdAt past the inbox's newest: an inbox's order is its
 * order by createdAt, so a `since` between two of them splits it there
 * (as on Redis; a replay's next page starts from such a since). */
static void inbox_created_at_only_grows(void **state)
{
	const char *prev = "";

	(void)state;
	inbox_add(NS, "alice", "one");
	inbox_add(NS, "alice", "two");
	inbox_add(NS, "alice", "three");
	fake_clock_set(T0 - 5000);
	inbox_add(NS, "alice", "four");
	assert_int_equal(inbox_list(NS, "alice", T0 - 10000, 0, 0), 4);
	for (size_t i = 0; i < 4; i++) {
		json_object *n = json_object_array_get_idx(r.json, i), *v;

		assert_true(json_object_object_get_ex(n, "createdAt", &v));
		assert_true(strcmp(json_object_get_string(v), prev) > 0);
		prev = json_object_get_string(v);
	}
	/* T0, T0 + 1, T0 + 2, T0 + 3 */
	assert_int_equal(inbox_list(NS, "alice", T0 + 1, 0, 0), 2);
	assert_int_equal(inbox_list(NS, "alice", T0 + 3, 0, 0), 0);
}

/* A reconnect takes the record off the idle list: dropping it under a
 * connection would lose the user's count. */
static void reconnected_record_leaves_the_idle_list(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "one");
	conn_add(NS, "alice", 1);
	member_add("user:alice", "alice");
	ops->tick(self, T0 + PAV_USER_RECORD_TTL_MS);
	assert_int_equal(user_count(NS, "alice"), 1);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	/* the connection goes, its user channel membership after it: the
	 * record is idle from then on */
	conn_remove(NS, "alice", 1);
	ops->tick(self, T0 + 3 * PAV_USER_RECORD_TTL_MS);
	assert_int_equal(pav_map_count(mem()->users), 1);
	fake_clock_set(T0 + 3 * PAV_USER_RECORD_TTL_MS);
	ops->member_remove(self, NS, "user:alice", "alice");
	ops->tick(self, T0 + 4 * PAV_USER_RECORD_TTL_MS - 1);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	ops->tick(self, T0 + 4 * PAV_USER_RECORD_TTL_MS);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

/* The presence plugin's pattern: set online from inside conn_add's
 * callback. */
static void on_count_set_online(void *arg, int err, int64_t count)
{
	(void)arg;
	assert_int_equal(err, 0);
	if (count == 1)
		ops->presence_set(self, NS, "alice", "online",
				  PAV_PRESENCE_IF_CONNECTED, 0, NULL, NULL,
				  on_presence, NULL);
}

static void callbacks_may_call_the_store(void **state)
{
	(void)state;
	reset();
	ops->conn_add(self, NS, "alice", 1, 0, NULL, on_count_set_online,
		      NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "online");
	assert_int_equal(r.connections, 1);
}

/* ---- notifications ---- */

static int is_id(const char *id)
{
	if (strlen(id) != 17 || id[0] != 'n')
		return 0;
	for (const char *p = id + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static void inbox_add_fills_id_created_at_and_is_read(void **state)
{
	const char *id;
	char when[PAV_TIME_LEN];

	(void)state;
	id = inbox_add(NS, "alice", "hello");
	assert_true(is_id(id));
	/* the callback has the stored copy */
	assert_string_equal(member(r.json, "title"), "hello");
	assert_false(is_read(r.json));
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	assert_string_equal(member(item(0), "id"), id);
	assert_string_equal(title_at(0), "hello");
	assert_false(is_read(item(0)));
	pav_format_time(T0, when, sizeof(when));
	assert_string_equal(member(item(0), "createdAt"), when);
}

static void inbox_add_overwrites_callers_id_created_at_is_read(void **state)
{
	json_object *n = json_object_new_object();

	(void)state;
	json_object_object_add(n, "id", json_object_new_string("mine"));
	json_object_object_add(n, "createdAt", json_object_new_string("x"));
	json_object_object_add(n, "isRead", json_object_new_boolean(1));
	reset();
	ops->inbox_add(self, NS, "alice", n, on_json, NULL);
	json_object_put(n);
	assert_int_equal(r.err, 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	assert_true(is_id(member(item(0), "id")));
	assert_int_equal(created_at(0), T0);
	assert_false(is_read(item(0)));
}

static void inbox_add_stores_a_copy(void **state)
{
	json_object *n = json_object_new_object();
	json_object *data = json_object_new_object();

	(void)state;
	json_object_object_add(data, "k", json_object_new_string("before"));
	json_object_object_add(n, "data", data);
	reset();
	ops->inbox_add(self, NS, "alice", n, on_json, NULL);
	assert_int_equal(r.err, 0);
	/* the caller's object is untouched and later changes are not seen */
	assert_false(json_object_object_get_ex(n, "id", NULL));
	json_object_object_add(data, "k", json_object_new_string("after"));
	json_object_put(n);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	json_object_object_get_ex(item(0), "data", &data);
	assert_string_equal(member(data, "k"), "before");
}

static void inbox_add_of_non_object_is_einval(void **state)
{
	json_object *s = json_object_new_string("nope");

	(void)state;
	reset();
	ops->inbox_add(self, NS, "alice", s, on_json, NULL);
	json_object_put(s);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, -EINVAL);
	reset();
	ops->inbox_add(self, NS, "alice", NULL, on_json, NULL);
	assert_int_equal(r.err, -EINVAL);
	assert_int_equal(pav_map_count(mem()->users), 0);
}

static void inbox_ids_are_unique(void **state)
{
	enum { N = 2000 };
	struct pav_map *seen = pav_map_new();

	(void)state;
	assert_non_null(seen);
	for (int i = 0; i < N; i++) {
		const char *id = inbox_add(NS, i % 2 ? "alice" : "bob", "t");

		assert_true(is_id(id));
		assert_null(pav_map_get(seen, id));
		assert_int_equal(pav_map_put(seen, id, seen), 0);
	}
	assert_int_equal(pav_map_count(seen), N);
	pav_map_free(seen, NULL);
}

static void inbox_bound_evicts_oldest(void **state)
{
	char title[8], first_id[32];

	(void)state;
	snprintf(first_id, sizeof(first_id), "%s", inbox_add(NS, "alice", "t0"));
	for (int i = 1; i < 5; i++) {
		snprintf(title, sizeof(title), "t%d", i);
		inbox_add(NS, "alice", title);
	}
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), SMALL_INBOX);
	assert_string_equal(title_at(0), "t2");
	assert_string_equal(title_at(1), "t3");
	assert_string_equal(title_at(2), "t4");
	assert_int_equal(mark_read(NS, "alice", first_id), -ENOENT);
}

static void inbox_bound_is_per_user(void **state)
{
	(void)state;
	for (int i = 0; i < SMALL_INBOX; i++)
		inbox_add(NS, "alice", "a");
	inbox_add(NS, "bob", "b");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), SMALL_INBOX);
	assert_int_equal(inbox_list(NS, "bob", 0, 0, 0), 1);
}

static void inbox_list_is_oldest_first(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "first");
	inbox_add(NS, "alice", "second");
	inbox_add(NS, "alice", "third");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 3);
	assert_string_equal(title_at(0), "first");
	assert_string_equal(title_at(1), "second");
	assert_string_equal(title_at(2), "third");
}

static void inbox_list_since_is_exclusive(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "old");
	fake_clock_advance(1);
	inbox_add(NS, "alice", "new");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 2);
	assert_int_equal(created_at(0), T0);
	assert_int_equal(created_at(1), T0 + 1);
	assert_int_equal(inbox_list(NS, "alice", T0 - 1, 0, 0), 2);
	assert_int_equal(inbox_list(NS, "alice", T0, 0, 0), 1);
	assert_string_equal(title_at(0), "new");
	assert_int_equal(inbox_list(NS, "alice", T0 + 1, 0, 0), 0);
}

static void inbox_list_unread_only(void **state)
{
	char id[32];

	(void)state;
	inbox_add(NS, "alice", "a");
	snprintf(id, sizeof(id), "%s", inbox_add(NS, "alice", "b"));
	inbox_add(NS, "alice", "c");
	assert_int_equal(mark_read(NS, "alice", id), 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 1, 0), 2);
	assert_string_equal(title_at(0), "a");
	assert_string_equal(title_at(1), "c");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 3);
}

static void inbox_list_limit_answers_newest_oldest_first(void **state)
{
	char title[8];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(title, sizeof(title), "t%d", i);
		inbox_add(NS, "alice", title);
	}
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 3), 3);
	assert_string_equal(title_at(0), "t7");
	assert_string_equal(title_at(1), "t8");
	assert_string_equal(title_at(2), "t9");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 50), 10);
	assert_string_equal(title_at(0), "t0");
}

static void inbox_list_limit_counts_matches_only(void **state)
{
	char title[8], ids[6][32];

	(void)state;
	for (int i = 0; i < 6; i++) {
		snprintf(title, sizeof(title), "t%d", i);
		snprintf(ids[i], sizeof(ids[i]), "%s",
			 inbox_add(NS, "alice", title));
	}
	mark_read(NS, "alice", ids[3]);
	mark_read(NS, "alice", ids[5]);
	assert_int_equal(inbox_list(NS, "alice", 0, 1, 2), 2);
	assert_string_equal(title_at(0), "t2");
	assert_string_equal(title_at(1), "t4");
}

static void inbox_list_of_unknown_user_is_empty(void **state)
{
	(void)state;
	assert_int_equal(inbox_list(NS, "ghost", 0, 0, 0), 0);
}

static void mark_read_sets_is_read(void **state)
{
	char id[32];

	(void)state;
	snprintf(id, sizeof(id), "%s", inbox_add(NS, "alice", "a"));
	assert_int_equal(mark_read(NS, "alice", id), 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	assert_true(is_read(item(0)));
	assert_int_equal(mark_read(NS, "alice", id), 0); /* idempotent */
}

static void mark_read_of_unknown_id_is_enoent(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "a");
	assert_int_equal(mark_read(NS, "alice", "n0123456789abcdef"), -ENOENT);
	assert_int_equal(mark_read(NS, "alice", ""), -ENOENT);
	assert_int_equal(mark_read(NS, "ghost", "n0123456789abcdef"),
			 -ENOENT);
}

static void mark_read_of_another_users_id_is_enoent(void **state)
{
	char id[32];

	(void)state;
	snprintf(id, sizeof(id), "%s", inbox_add(NS, "bob", "for bob"));
	inbox_add(NS, "alice", "for alice");
	assert_int_equal(mark_read(NS, "alice", id), -ENOENT);
	/* and bob's stays unread */
	assert_int_equal(inbox_list(NS, "bob", 0, 1, 0), 1);
}

static void on_list_mutate(void *arg, int err, json_object *list)
{
	json_object *n = json_object_array_get_idx(list, 0);

	(void)arg;
	assert_int_equal(err, 0);
	json_object_object_add(n, "title", json_object_new_string("x"));
}

static void listed_notifications_are_copies(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "orig");
	ops->inbox_list(self, NS, "alice", 0, 0, 0, on_list_mutate, NULL);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	assert_string_equal(title_at(0), "orig");
}

/* ---- namespaces, callbacks ---- */

static void namespaces_are_isolated(void **state)
{
	char id[64];

	(void)state;
	assert_int_equal(conn_add("a", "alice", 1), 1);
	assert_int_equal(conn_add("b", "alice", 1), 1);
	assert_int_equal(presence_set("a", "alice", "busy"), 0);
	snprintf(id, sizeof(id), "%s", inbox_add("a", "alice", "in a"));

	presence_get("b", "alice");
	assert_string_equal(r.status, "offline");
	assert_int_equal(r.connections, 1);
	assert_int_equal(inbox_list("b", "alice", 0, 0, 0), 0);
	assert_int_equal(mark_read("b", "alice", id), -ENOENT);
	assert_int_equal(conn_remove("b", "alice", 1), 0);

	presence_get("a", "alice");
	assert_string_equal(r.status, "busy");
	assert_int_equal(r.connections, 1);
}

/* "ns\x1fuser" keys: a user id that looks like another key's tail must
 * not leak across namespaces. */
static void namespace_prefix_does_not_collide(void **state)
{
	(void)state;
	conn_add("ab", "c", 1);
	presence_get("a", "bc");
	assert_int_equal(r.connections, 0);
}

static void null_callbacks_are_allowed(void **state)
{
	json_object *n = json_object_new_object();

	(void)state;
	ops->conn_add(self, NS, "alice", 1, 0, NULL, NULL, NULL);
	ops->presence_set(self, NS, "alice", "away", PAV_PRESENCE_ALWAYS, 0,
			  NULL, NULL, NULL, NULL);
	ops->presence_get(self, NS, "alice", NULL, NULL);
	ops->inbox_add(self, NS, "alice", n, NULL, NULL);
	json_object_put(n);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	ops->inbox_mark_read(self, NS, "alice", member(item(0), "id"), NULL,
			     NULL);
	ops->member_add(self, NS, "zone:a", "alice", NULL, NULL);
	ops->member_remove(self, NS, "zone:a", "alice");
	ops->conn_remove(self, NS, "alice", 1, NULL, NULL);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "away");
	assert_int_equal(r.connections, 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 1, 0), 0);
}

/* ---- channel members ---- */

static void member_add_counts_subscribers_and_the_users_connections(
	void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	assert_int_equal(r.subscribers, 1);
	assert_int_equal(r.user_count, 1);
	member_add("zone:a", "alice"); /* her second connection */
	assert_int_equal(r.subscribers, 2);
	assert_int_equal(r.user_count, 2);
	member_add("zone:a", "bob");
	assert_int_equal(r.subscribers, 3);
	assert_int_equal(r.user_count, 1);
	member_add("zone:b", "alice");
	assert_int_equal(r.subscribers, 1);
	assert_int_equal(r.user_count, 1);
}

static void member_remove_uncounts_one_connection(void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	member_add("zone:a", "alice");
	member_add("zone:a", "bob");
	ops->member_remove(self, NS, "zone:a", "alice");
	assert_int_equal(count_of("zone:a"), 2);
	member_add("zone:a", "alice");
	assert_int_equal(r.user_count, 2);
	/* someone not in it: nothing changes */
	ops->member_remove(self, NS, "zone:a", "carol");
	ops->member_remove(self, NS, "zone:nope", "alice");
	assert_int_equal(count_of("zone:a"), 3);
}

static void channel_without_members_or_history_is_forgotten(void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	ops->member_remove(self, NS, "zone:a", "alice");
	assert_int_equal(count_of("zone:a"), 0);
	assert_int_equal(pav_map_count(mem()->chans), 0);
}

static void channel_counts_answers_each_channel_in_order(void **state)
{
	const char *chans[20];
	char names[20][16];

	(void)state;
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "zone:c%d", i);
		chans[i] = names[i];
		for (int k = 0; k < i % 4; k++) {
			char user[8];

			snprintf(user, sizeof(user), "u%d", k);
			member_add(names[i], user);
		}
	}
	/* more than fit its stack buffer */
	reset();
	ops->channel_counts(self, NS, chans, 20, on_counts, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.ncounts, 20);
	for (int i = 0; i < 20; i++)
		assert_int_equal(r.counts[i], i % 4);
	assert_int_equal(count_of("zone:unknown"), 0);
}

static void channel_users_lists_distinct_users(void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	member_add("zone:a", "alice");
	member_add("zone:a", "bob");
	member_add("zone:a", "carol");
	member_add("zone:b", "dave");
	assert_int_equal(channel_users("zone:a", 10), 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(!strcmp(r.users[i], "alice") ||
			    !strcmp(r.users[i], "bob") ||
			    !strcmp(r.users[i], "carol"));
	assert_string_not_equal(r.users[0], r.users[1]);
	assert_string_not_equal(r.users[1], r.users[2]);
	assert_string_not_equal(r.users[0], r.users[2]);
}

static void channel_users_is_bounded(void **state)
{
	(void)state;
	member_add("zone:a", "alice");
	member_add("zone:a", "bob");
	member_add("zone:a", "carol");
	assert_int_equal(channel_users("zone:a", 2), 2);
	assert_int_equal(channel_users("zone:a", 0), 0);
	assert_int_equal(channel_users("zone:nope", 10), 0);
}

/* ---- history ---- */

static int is_epoch(const char *e)
{
	if (strlen(e) != 16)
		return 0;
	for (; *e; e++)
		if (!((*e >= '0' && *e <= '9') || (*e >= 'a' && *e <= 'f')))
			return 0;
	return 1;
}

static void history_of_a_new_channel_is_empty_and_complete(void **state)
{
	(void)state;
	history_read("zone:a", &hist10, 0, 10);
	assert_true(is_epoch(r.epoch));
	assert_int_equal(r.offset, 0);
	assert_int_equal(r.n, 0);
	assert_true(r.complete);
}

static void history_read_answers_what_came_after_the_offset(void **state)
{
	char epoch[32];

	(void)state;
	history_read("zone:a", &hist10, 0, 0);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	for (int i = 1; i <= 4; i++)
		publish("zone:a", &hist10, i);
	history_read("zone:a", &hist10, 0, 10);
	assert_string_equal(r.epoch, epoch); /* the epoch outlives reads */
	assert_int_equal(r.offset, 4);
	assert_int_equal(r.n, 4);
	assert_true(r.complete);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(r.offsets[i], i + 1);
	history_read("zone:a", &hist10, 2, 10);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.offsets[0], 3);
	assert_int_equal(r.offsets[1], 4);
	assert_true(r.complete);
	history_read("zone:a", &hist10, 4, 10);
	assert_int_equal(r.n, 0);
	assert_true(r.complete);
}

static void history_read_stops_at_max_and_says_incomplete(void **state)
{
	(void)state;
	for (int i = 1; i <= 5; i++)
		publish("zone:a", &hist10, i);
	history_read("zone:a", &hist10, 1, 2);
	assert_int_equal(r.offset, 5);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.offsets[0], 2);
	assert_int_equal(r.offsets[1], 3);
	assert_false(r.complete);
}

static void history_read_of_max_zero_answers_epoch_and_offset_only(
	void **state)
{
	(void)state;
	for (int i = 1; i <= 3; i++)
		publish("zone:a", &hist10, i);
	history_read("zone:a", &hist10, 0, 0);
	assert_true(is_epoch(r.epoch));
	assert_int_equal(r.offset, 3);
	assert_int_equal(r.n, 0);
	assert_false(r.complete);
	history_read("zone:a", &hist10, 3, 0);
	assert_true(r.complete); /* nothing after it to miss */
}

static void history_read_after_an_offset_not_reached_is_incomplete(
	void **state)
{
	(void)state;
	publish("zone:a", &hist10, 1);
	history_read("zone:a", &hist10, 7, 10);
	assert_int_equal(r.offset, 1);
	assert_int_equal(r.n, 0);
	assert_false(r.complete);
}

static void history_keeps_the_newest_size_publications(void **state)
{
	const struct pav_history_cfg h3 = {3, 60};

	(void)state;
	for (int i = 1; i <= 5; i++)
		publish("zone:a", &h3, i);
	history_read("zone:a", &h3, 0, 10);
	assert_int_equal(r.offset, 5);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.offsets[0], 3);
	assert_int_equal(r.offsets[2], 5);
	assert_false(r.complete); /* 1 and 2 are gone */
	history_read("zone:a", &h3, 2, 10);
	assert_int_equal(r.n, 3);
	assert_true(r.complete);
}

static void byte_budget_takes_from_least_recently_published_first(
	void **state)
{
	(void)state;
	publish_pad("zone:a", &hist10, 1, 900); /* ~1000-byte frames */
	publish_pad("zone:b", &hist10, 1, 900);
	publish_pad("zone:b", &hist10, 2, 900);
	/* three frames are over the budget: zone:a, published least
	 * recently, loses its only one */
	history_read("zone:a", &hist10, 0, 10);
	assert_int_equal(r.offset, 1);
	assert_int_equal(r.n, 0);
	history_read("zone:b", &hist10, 0, 10);
	assert_int_equal(r.n, 2);
	publish_pad("zone:a", &hist10, 2, 900);
	/* now zone:b is the least recently published */
	history_read("zone:b", &hist10, 0, 10);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.offsets[0], 2);
	history_read("zone:a", &hist10, 0, 10);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.offsets[0], 2);
	assert_true(mem()->history_bytes <= 2500);
}

static void history_past_its_ttl_is_dropped_by_tick(void **state)
{
	char epoch[32];

	(void)state;
	publish("zone:a", &hist10, 1);
	history_read("zone:a", &hist10, 0, 10);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	ops->tick(self, T0 + 59999);
	history_read("zone:a", &hist10, 0, 10);
	assert_string_equal(r.epoch, epoch);
	assert_int_equal(r.n, 1);
	ops->tick(self, T0 + 60000);
	assert_int_equal(pav_map_count(mem()->chans), 0);
	fake_clock_set(T0 + 60000);
	history_read("zone:a", &hist10, 0, 10);
	assert_string_not_equal(r.epoch, epoch); /* a new history */
	assert_int_equal(r.offset, 0);
	assert_int_equal(r.n, 0);
}

static void ttl_counts_from_the_last_publication(void **state)
{
	(void)state;
	publish("zone:a", &hist10, 1);
	fake_clock_set(T0 + 30000);
	publish("zone:a", &hist10, 2);
	ops->tick(self, T0 + 60000);
	history_read("zone:a", &hist10, 0, 10);
	assert_int_equal(r.n, 2);
	ops->tick(self, T0 + 90000);
	fake_clock_set(T0 + 90000);
	history_read("zone:a", &hist10, 0, 10);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.offset, 0);
}

static void ttl_sweep_keeps_the_epoch_of_a_channel_with_members(void **state)
{
	char epoch[32];

	(void)state;
	member_add("zone:a", "alice");
	publish("zone:a", &hist10, 1);
	publish("zone:a", &hist10, 2);
	history_read("zone:a", &hist10, 0, 0);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	ops->tick(self, T0 + 60000);
	history_read("zone:a", &hist10, 0, 10);
	assert_string_equal(r.epoch, epoch);
	assert_int_equal(r.offset, 2);
	assert_int_equal(r.n, 0);
	assert_false(r.complete);
	history_read("zone:a", &hist10, 2, 10);
	assert_true(r.complete);
}

/* ---- history memory: rings grow on demand, everything in the budget,
 * nothing left by channels that hold nothing ---- */

static const struct pav_history_cfg hist_big = {10000, 300};

/* Many publications: the delivery recorder is emptied as they go. */
static void publish_many(const char *channel, const struct pav_history_cfg *h,
			 int n)
{
	publish(channel, h, n);
	dlv_reset();
}

static struct mem_chan *record(const char *channel)
{
	char key[128];

	snprintf(key, sizeof(key), "%s\x1f%s", NS, channel);
	return pav_map_get(mem()->chans, key);
}

static void ring_grows_on_demand_up_to_size(void **state)
{
	const struct pav_history_cfg h20 = {20, 60};
	struct mem_chan *ch;

	(void)state;
	publish("zone:a", &hist_big, 1);
	ch = record("zone:a");
	assert_non_null(ch);
	assert_true(ch->cap >= 1 && ch->cap <= 8); /* not 10000 slots */
	for (int i = 2; i <= 100; i++)
		publish_many("zone:a", &hist_big, i);
	assert_true(ch->cap >= 100 && ch->cap <= 200);
	for (int i = 1; i <= 30; i++)
		publish_many("zone:b", &h20, i);
	ch = record("zone:b");
	assert_int_equal(ch->cap, 20); /* never past size */
	history_read("zone:b", &h20, 0, 32);
	assert_int_equal(r.n, 20);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(r.offsets[i], 11 + i);
	history_read("zone:a", &hist_big, 68, 32);
	assert_int_equal(r.n, 32);
	assert_true(r.complete);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(r.offsets[i], 69 + i);
}

/* A ring whose oldest went to the budget wraps before it is full: its
 * growth keeps the order. */
static void ring_grown_after_wrapping_keeps_the_order(void **state)
{
	struct mem_chan *a;

	(void)state;
	for (int i = 1; i <= 4; i++)
		publish_pad("zone:a", &hist_big, i, 300);
	a = record("zone:a");
	assert_int_equal(a->count, 4);
	/* one large publication elsewhere: zone:a loses its oldest */
	publish_pad("zone:b", &hist_big, 1,
		    mem()->history_max_bytes - mem()->history_bytes + 100);
	assert_true(a->count < 4 && a->count > 0);
	for (int i = 5; i <= 12; i++)
		publish_pad("zone:a", &hist_big, i, 300);
	history_read("zone:a", &hist_big, 0, 32);
	assert_int_equal(r.offset, 12);
	assert_true(r.n >= 8);
	for (size_t i = 0; i < r.n; i++)
		assert_int_equal(r.offsets[i], 12 - r.n + 1 + i);
}

/* What the records holding history really cost: never past the budget. */
static int add_cost(const char *key, void *val, void *arg)
{
	const struct mem_chan *ch = val;
	size_t *cost = arg;

	*cost += sizeof(*ch) + strlen(key) + 1 + ch->cap * sizeof(*ch->ring) +
		 ch->bytes;
	return 0;
}

static void ring_slots_count_in_the_budget(void **state)
{
	size_t cost = 0;
	char name[32];

	(void)state;
	/* one small publication to each of 3000 channels of size 10000 */
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "zone:c%d", i);
		publish_many(name, &hist_big, i);
	}
	pav_map_each(mem()->chans, add_cost, &cost);
	assert_true(mem()->history_bytes <= mem()->history_max_bytes);
	assert_true(cost <= mem()->history_max_bytes);
	assert_true(pav_map_count(mem()->chans) < 3000);
	/* the newest are still there */
	history_read("zone:c2999", &hist_big, 0, 10);
	assert_int_equal(r.offset, 1);
	assert_int_equal(r.n, 1);
}

static void a_large_history_stays_within_the_budget(void **state)
{
	size_t cost = 0;

	(void)state;
	for (int i = 1; i <= 10000; i++)
		publish_many("zone:a", &hist_big, i);
	pav_map_each(mem()->chans, add_cost, &cost);
	assert_true(cost <= mem()->history_max_bytes);
	history_read("zone:a", &hist_big, 0, 0);
	assert_int_equal(r.offset, 10000);
	history_read("zone:a", &hist_big, 9990, 10);
	assert_int_equal(r.n, 10); /* the newest are kept */
	assert_true(r.complete);
}

static void subscribing_to_an_empty_history_channel_leaves_nothing(
	void **state)
{
	char epoch[32];

	(void)state;
	/* as a subscription does: member, then epoch and offset */
	member_add("zone:a", "alice");
	history_read("zone:a", &hist_big, 0, 0);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	ops->member_remove(self, NS, "zone:a", "alice");
	assert_int_equal(pav_map_count(mem()->chans), 0);
	/* nothing was lost: the same epoch, and a recovery from 0 holds */
	member_add("zone:a", "bob");
	history_read("zone:a", &hist_big, 0, 0);
	assert_string_equal(r.epoch, epoch);
	ops->member_remove(self, NS, "zone:a", "bob");
	publish("zone:a", &hist_big, 1);
	history_read("zone:a", &hist_big, 0, 10);
	assert_string_equal(r.epoch, epoch);
	assert_int_equal(r.offset, 1);
	assert_true(r.complete);
}

static void reading_history_of_unknown_channels_makes_no_record(
	void **state)
{
	char epoch[32], name[32];

	(void)state;
	history_read("zone:x", &hist_big, 0, 10);
	assert_true(is_epoch(r.epoch));
	assert_int_equal(r.offset, 0);
	assert_true(r.complete);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "zone:p%d", i);
		history_read(name, &hist_big, 0, 10);
	}
	history_read("zone:x", &hist_big, 3, 10);
	assert_string_equal(r.epoch, epoch); /* the same, record or not */
	assert_false(r.complete);
	assert_int_equal(pav_map_count(mem()->chans), 0);
	assert_int_equal(mem()->history_bytes, 0);
}

static void a_position_lost_to_the_budget_gets_a_new_epoch(void **state)
{
	char epoch[32], name[32];

	(void)state;
	publish("zone:a", &hist10, 1);
	history_read("zone:a", &hist10, 0, 0);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	for (int i = 0; i < 3000 && record("zone:a"); i++) {
		snprintf(name, sizeof(name), "zone:c%d", i);
		publish_many(name, &hist10, i);
	}
	assert_null(record("zone:a"));
	history_read("zone:a", &hist10, 1, 10);
	assert_string_not_equal(r.epoch, epoch);
	assert_int_equal(r.offset, 0);
	assert_false(r.complete); /* offset 1 of the old epoch is gone */
}

static void a_position_without_member_lasts_its_ttl(void **state)
{
	char epoch[32];

	(void)state;
	member_add("zone:a", "alice");
	publish("zone:a", &hist10, 1);
	ops->tick(self, T0 + 60000); /* the message goes, alice keeps 1 */
	history_read("zone:a", &hist10, 0, 0);
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	fake_clock_set(T0 + 70000);
	ops->member_remove(self, NS, "zone:a", "alice");
	ops->tick(self, T0 + 129999);
	history_read("zone:a", &hist10, 1, 10);
	assert_string_equal(r.epoch, epoch);
	assert_int_equal(r.offset, 1);
	assert_true(r.complete); /* nothing after 1 was missed */
	ops->tick(self, T0 + 130000);
	assert_int_equal(pav_map_count(mem()->chans), 0);
	assert_int_equal(mem()->history_bytes, 0);
	history_read("zone:a", &hist10, 1, 10);
	assert_string_not_equal(r.epoch, epoch);
}

/* A history read's callback publishes to the channel: what it was handed
 * stays valid while the ring moves on. */
static void publish_more(void *arg, int err, const struct pav_history *h)
{
	const struct pav_history_cfg *h2 = arg;

	assert_int_equal(err, 0);
	assert_int_equal(h->n, 2);
	for (int i = 0; i < 3; i++)
		publish("zone:a", h2, 10 + i);
	r.calls++;
	r.n = h->n;
	for (size_t i = 0; i < h->n; i++)
		r.offsets[i] = h->msgs[i]->offset;
}

static void history_read_callback_may_publish(void **state)
{
	static const struct pav_history_cfg h2 = {2, 60};

	(void)state;
	publish("zone:a", &h2, 1);
	publish("zone:a", &h2, 2);
	r.calls = 0;
	ops->history_read(self, NS, "zone:a", &h2, 0, 10, publish_more,
			  (void *)&h2);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.offsets[0], 1);
	assert_int_equal(r.offsets[1], 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TS(f) cmocka_unit_test_setup_teardown(f, setup_small, teardown)
#define TB(f) cmocka_unit_test_setup_teardown(f, setup_budget, teardown)
#define TK(f) cmocka_unit_test_setup_teardown(f, setup_64k, teardown)
#define TR(f) cmocka_unit_test_setup_teardown(f, setup_few_revocations, \
					      teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(instance_is_ready_at_once),
		T(first_connection_counts_one),
		T(same_connection_is_not_counted_twice),
		T(last_connection_removed_counts_zero),
		T(removing_unknown_connection_answers_current_count),
		T(zero_max_per_user_means_no_cap),
		T(connection_past_max_per_user_is_eusers_and_not_counted),
		T(connection_already_counted_is_not_refused_at_the_cap),
		T(cap_is_per_user_and_namespace),
		T(refused_first_connection_leaves_no_record),
		T(unknown_user_is_offline),
		T(presence_set_is_read_back_with_the_stores_time),
		T(unchanged_status_answers_ealready),
		T(offline_for_unknown_user_answers_ealready),
		T(missing_or_empty_status_is_einval),
		T(if_connected_applies_only_with_a_connection),
		T(if_disconnected_applies_only_without_one),
		T(change_is_announced_with_its_time_stamped),
		T(change_at_a_given_time_is_stored_and_announced_with_it),
		T(change_that_does_not_apply_is_not_announced),
		T(announcement_on_a_history_channel_is_not_kept),
		T(last_active_survives_last_connection),
		T(user_with_nothing_to_remember_leaves_no_record),
		T(idle_record_expires_after_its_last_change),
		T(connected_record_does_not_expire),
		T(a_change_puts_the_record_back_to_the_end),
		T(inbox_created_at_only_grows),
		T(reconnected_record_leaves_the_idle_list),
		T(callbacks_may_call_the_store),
		T(inbox_add_fills_id_created_at_and_is_read),
		T(inbox_add_overwrites_callers_id_created_at_is_read),
		T(inbox_add_stores_a_copy),
		T(inbox_add_of_non_object_is_einval),
		T(inbox_ids_are_unique),
		TS(inbox_bound_evicts_oldest),
		TS(inbox_bound_is_per_user),
		T(inbox_list_is_oldest_first),
		T(inbox_list_since_is_exclusive),
		T(inbox_list_unread_only),
		T(inbox_list_limit_answers_newest_oldest_first),
		T(inbox_list_limit_counts_matches_only),
		T(inbox_list_of_unknown_user_is_empty),
		T(mark_read_sets_is_read),
		T(mark_read_of_unknown_id_is_enoent),
		T(mark_read_of_another_users_id_is_enoent),
		T(listed_notifications_are_copies),
		T(namespaces_are_isolated),
		T(namespace_prefix_does_not_collide),
		T(null_callbacks_are_allowed),
		T(member_add_counts_subscribers_and_the_users_connections),
		T(member_remove_uncounts_one_connection),
		T(channel_without_members_or_history_is_forgotten),
		T(channel_counts_answers_each_channel_in_order),
		T(channel_users_lists_distinct_users),
		T(channel_users_is_bounded),
		T(history_of_a_new_channel_is_empty_and_complete),
		T(history_read_answers_what_came_after_the_offset),
		T(history_read_stops_at_max_and_says_incomplete),
		T(history_read_of_max_zero_answers_epoch_and_offset_only),
		T(history_read_after_an_offset_not_reached_is_incomplete),
		T(history_keeps_the_newest_size_publications),
		TB(byte_budget_takes_from_least_recently_published_first),
		T(history_past_its_ttl_is_dropped_by_tick),
		T(ttl_counts_from_the_last_publication),
		T(ttl_sweep_keeps_the_epoch_of_a_channel_with_members),
		T(ring_grows_on_demand_up_to_size),
		TK(ring_grown_after_wrapping_keeps_the_order),
		TK(ring_slots_count_in_the_budget),
		TK(a_large_history_stays_within_the_budget),
		T(subscribing_to_an_empty_history_channel_leaves_nothing),
		T(reading_history_of_unknown_channels_makes_no_record),
		TK(a_position_lost_to_the_budget_gets_a_new_epoch),
		T(a_position_without_member_lasts_its_ttl),
		T(history_read_callback_may_publish),
		T(tokens_issued_by_the_revocation_are_refused),
		T(conn_add_of_a_refused_token_counts_nothing),
		T(revocation_ends_after_its_seconds),
		T(a_second_revocation_replaces_the_first),
		T(revocations_are_one_record_per_user_until_their_end),
		T(revocation_end_ignores_a_wall_clock_step),
		TR(a_full_store_refuses_a_new_user_and_keeps_its_records),
		TR(an_ended_revocation_makes_room_before_the_tick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
