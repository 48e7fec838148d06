/* test_store_memory.c — the embedded "memory" session store. */
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
#include "map.h"
#include "store_memory.h"

#define NS "default"
#define SMALL_INBOX 3

static const struct pav_store *st;

/* What the last callback saw. */
static struct {
	int calls;
	int err;
	int count;
	char id[64];
	char user[64];
	char status[16];
	int64_t last_active_ms;
	int connections;
	json_object *list; /* a reference we took: put by the test */
} r;

static void reset(void)
{
	json_object_put(r.list);
	memset(&r, 0, sizeof(r));
}

static void on_done(void *arg, int err)
{
	(void)arg;
	r.calls++;
	r.err = err;
}

static void on_count(void *arg, int err, int count)
{
	(void)arg;
	r.calls++;
	r.err = err;
	r.count = count;
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

static void on_list(void *arg, int err, json_object *list)
{
	(void)arg;
	r.calls++;
	r.err = err;
	json_object_put(r.list);
	/* Keeping a reference past the callback must be safe. */
	r.list = list ? json_object_get(list) : NULL;
}

static void on_id(void *arg, int err, const char *id)
{
	(void)arg;
	r.calls++;
	r.err = err;
	snprintf(r.id, sizeof(r.id), "%s", id ? id : "");
}

/* ---- one-line wrappers: each asserts the callback ran synchronously */

static int conn_add(const char *ns, const char *user, uint64_t id)
{
	reset();
	st->conn_add(ns, user, id, on_count, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	return r.count;
}

static int conn_remove(const char *ns, const char *user, uint64_t id)
{
	reset();
	st->conn_remove(ns, user, id, on_count, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	return r.count;
}

static int presence_set(const char *ns, const char *user, const char *status,
			int64_t last_active_ms)
{
	reset();
	st->presence_set(ns, user, status, last_active_ms, on_done, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static void presence_get(const char *ns, const char *user)
{
	reset();
	st->presence_get(ns, user, on_presence, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
}

/* Adds {"title": title} and answers the new id (static buffer). */
static const char *inbox_add(const char *ns, const char *user,
			     const char *title)
{
	static char id[64];
	json_object *n = json_object_new_object();

	json_object_object_add(n, "title", json_object_new_string(title));
	reset();
	st->inbox_add(ns, user, n, on_id, NULL);
	json_object_put(n);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	snprintf(id, sizeof(id), "%s", r.id);
	return id;
}

/* The list in r.list; answers its length. */
static size_t inbox_list(const char *ns, const char *user, int64_t since_ms,
			 int unread_only, size_t limit)
{
	reset();
	st->inbox_list(ns, user, since_ms, unread_only, limit, on_list, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_true(json_object_is_type(r.list, json_type_array));
	return json_object_array_length(r.list);
}

static int mark_read(const char *ns, const char *user, const char *id)
{
	reset();
	st->inbox_mark_read(ns, user, id, on_done, NULL);
	assert_int_equal(r.calls, 1);
	return r.err;
}

static json_object *item(size_t i)
{
	return json_object_array_get_idx(r.list, i);
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

/* createdAt has millisecond resolution: wait for the clock to move on so
 * the next notification is strictly newer. */
static void next_ms(void)
{
	int64_t t = pav_now_ms();

	while (pav_now_ms() <= t)
		;
}

static int setup_inbox(void **state, size_t inbox_size)
{
	(void)state;
	memset(&r, 0, sizeof(r));
	st = pav_store_memory_create(inbox_size);
	return st ? 0 : -1;
}

static int setup(void **state)
{
	return setup_inbox(state, 0);
}

static int setup_small(void **state)
{
	return setup_inbox(state, SMALL_INBOX);
}

static int teardown(void **state)
{
	(void)state;
	reset();
	pav_store_memory_destroy();
	st = NULL;
	return 0;
}

/* ---- the instance ---- */

static void describes_itself(void **state)
{
	(void)state;
	assert_int_equal(st->version, 1);
	assert_string_equal(st->backend, "memory");
	assert_int_equal(st->ready(), 1);
}

static void second_create_is_refused(void **state)
{
	(void)state;
	assert_null(pav_store_memory_create(10));
}

static void calls_after_destroy_answer_eio(void **state)
{
	const struct pav_store *s = st;

	(void)state;
	pav_store_memory_destroy();
	pav_store_memory_destroy(); /* twice is harmless */
	reset();
	s->conn_add(NS, "alice", 1, on_count, NULL);
	assert_int_equal(r.err, -EIO);
	reset();
	s->inbox_list(NS, "alice", 0, 0, 0, on_list, NULL);
	assert_int_equal(r.err, -EIO);
	assert_null(r.list);
	assert_non_null(st = pav_store_memory_create(0));
}

/* ---- connections ---- */

static void first_connection_counts_one(void **state)
{
	(void)state;
	assert_int_equal(conn_add(NS, "alice", 1), 1);
	assert_int_equal(conn_add(NS, "alice", 2), 2);
	assert_int_equal(conn_add(NS, "bob", 3), 1);
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

static void many_connections_per_user(void **state)
{
	(void)state;
	for (uint64_t i = 1; i <= 100; i++)
		assert_int_equal(conn_add(NS, "alice", i), (int)i);
	for (uint64_t i = 100; i >= 1; i--)
		assert_int_equal(conn_remove(NS, "alice", i), (int)i - 1);
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

static void presence_set_is_read_back(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	conn_add(NS, "alice", 2);
	assert_int_equal(presence_set(NS, "alice", "busy", 1234), 0);
	presence_get(NS, "alice");
	assert_string_equal(r.user, "alice");
	assert_string_equal(r.status, "busy");
	assert_true(r.last_active_ms == 1234);
	assert_int_equal(r.connections, 2);
}

static void unchanged_status_answers_ealready(void **state)
{
	(void)state;
	assert_int_equal(presence_set(NS, "alice", "online", 1000), 0);
	assert_int_equal(presence_set(NS, "alice", "online", 2000), -EALREADY);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "online");
	assert_true(r.last_active_ms == 1000); /* nothing changed */
	assert_int_equal(presence_set(NS, "alice", "away", 3000), 0);
	assert_int_equal(presence_set(NS, "alice", "online", 4000), 0);
}

static void offline_for_unknown_user_answers_ealready(void **state)
{
	(void)state;
	assert_int_equal(presence_set(NS, "ghost", "offline", 1000),
			 -EALREADY);
}

static void unknown_status_is_einval(void **state)
{
	(void)state;
	assert_int_equal(presence_set(NS, "alice", "sleeping", 1), -EINVAL);
	assert_int_equal(presence_set(NS, "alice", "", 1), -EINVAL);
	assert_int_equal(presence_set(NS, "alice", NULL, 1), -EINVAL);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "offline");
}

static void last_active_survives_last_connection(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	presence_set(NS, "alice", "online", 1000);
	assert_int_equal(conn_remove(NS, "alice", 1), 0);
	assert_int_equal(presence_set(NS, "alice", "offline", 5000), 0);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "offline");
	assert_true(r.last_active_ms == 5000);
	assert_int_equal(r.connections, 0);
	assert_int_equal(pav_store_memory_users(), 1);
}

static void user_with_nothing_to_remember_leaves_no_record(void **state)
{
	(void)state;
	conn_add(NS, "alice", 1);
	assert_int_equal(pav_store_memory_users(), 1);
	conn_remove(NS, "alice", 1);
	assert_int_equal(pav_store_memory_users(), 0);
	conn_remove(NS, "bob", 1);
	presence_get(NS, "carol");
	inbox_list(NS, "dave", 0, 0, 0);
	mark_read(NS, "erin", "n0000000000000000");
	assert_int_equal(pav_store_memory_users(), 0);
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
	int64_t before = pav_now_ms(), ms;
	const char *id;

	(void)state;
	id = inbox_add(NS, "alice", "hello");
	assert_true(is_id(id));
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	assert_string_equal(member(item(0), "id"), id);
	assert_string_equal(title_at(0), "hello");
	assert_false(is_read(item(0)));
	assert_int_equal(strlen(member(item(0), "createdAt")), 24);
	ms = created_at(0);
	assert_true(ms >= before && ms <= pav_now_ms());
}

static void inbox_add_overwrites_callers_id_created_at_is_read(void **state)
{
	json_object *n = json_object_new_object();

	(void)state;
	json_object_object_add(n, "id", json_object_new_string("mine"));
	json_object_object_add(n, "createdAt", json_object_new_string("x"));
	json_object_object_add(n, "isRead", json_object_new_boolean(1));
	reset();
	st->inbox_add(NS, "alice", n, on_id, NULL);
	json_object_put(n);
	assert_int_equal(r.err, 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	assert_true(is_id(member(item(0), "id")));
	assert_int_equal(strlen(member(item(0), "createdAt")), 24);
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
	st->inbox_add(NS, "alice", n, on_id, NULL);
	assert_int_equal(r.err, 0);
	/* The caller's object is untouched and changing it later is not
	 * seen in the inbox. */
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
	st->inbox_add(NS, "alice", s, on_id, NULL);
	json_object_put(s);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, -EINVAL);
	reset();
	st->inbox_add(NS, "alice", NULL, on_id, NULL);
	assert_int_equal(r.err, -EINVAL);
	assert_int_equal(pav_store_memory_users(), 0);
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
	int64_t t0, t1;

	(void)state;
	inbox_add(NS, "alice", "old");
	next_ms();
	inbox_add(NS, "alice", "new");
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 2);
	t0 = created_at(0);
	t1 = created_at(1);
	assert_true(t1 > t0);
	assert_int_equal(inbox_list(NS, "alice", t0 - 1, 0, 0), 2);
	assert_int_equal(inbox_list(NS, "alice", t0, 0, 0), 1);
	assert_string_equal(title_at(0), "new");
	assert_int_equal(inbox_list(NS, "alice", t1, 0, 0), 0);
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

static void inbox_get_answers_one_notification(void **state)
{
	char id[32];

	(void)state;
	inbox_add(NS, "alice", "a");
	snprintf(id, sizeof(id), "%s", inbox_add(NS, "alice", "b"));
	reset();
	st->inbox_get(NS, "alice", id, on_list, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(json_object_array_length(r.list), 1);
	assert_string_equal(member(item(0), "id"), id);
	assert_string_equal(title_at(0), "b");
}

static void inbox_get_of_unknown_id_is_enoent(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "a");
	reset();
	st->inbox_get(NS, "alice", "n0123456789abcdef", on_list, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, -ENOENT);
	assert_null(r.list);
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
	reset();
	st->inbox_get(NS, "alice", id, on_list, NULL);
	assert_int_equal(r.err, -ENOENT);
	/* and bob's stays unread */
	assert_int_equal(inbox_list(NS, "bob", 0, 1, 0), 1);
}

static int mutate(json_object *list)
{
	json_object *n = json_object_array_get_idx(list, 0);

	return json_object_object_add(n, "title", json_object_new_string("x"));
}

static void on_list_mutate(void *arg, int err, json_object *list)
{
	(void)arg;
	assert_int_equal(err, 0);
	assert_int_equal(mutate(list), 0);
}

static void listed_notifications_are_copies(void **state)
{
	(void)state;
	inbox_add(NS, "alice", "orig");
	st->inbox_list(NS, "alice", 0, 0, 0, on_list_mutate, NULL);
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
	assert_int_equal(presence_set("a", "alice", "busy", 10), 0);
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
	st->conn_add(NS, "alice", 1, NULL, NULL);
	st->presence_set(NS, "alice", "away", 5, NULL, NULL);
	st->presence_get(NS, "alice", NULL, NULL);
	st->inbox_add(NS, "alice", n, NULL, NULL);
	json_object_put(n);
	assert_int_equal(inbox_list(NS, "alice", 0, 0, 0), 1);
	st->inbox_mark_read(NS, "alice", member(item(0), "id"), NULL, NULL);
	st->inbox_get(NS, "alice", "nope", NULL, NULL);
	st->inbox_list(NS, "alice", 0, 0, 0, NULL, NULL);
	st->conn_remove(NS, "alice", 1, NULL, NULL);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "away");
	assert_int_equal(r.connections, 0);
	assert_int_equal(inbox_list(NS, "alice", 0, 1, 0), 0);
}

/* The presence plugin's pattern: on the first connection, set online
 * from inside conn_add's callback. */
static void on_count_set_online(void *arg, int err, int count)
{
	(void)arg;
	assert_int_equal(err, 0);
	if (count == 1)
		st->presence_set(NS, "alice", "online", 42, on_done, NULL);
}

static void callbacks_may_call_the_store(void **state)
{
	(void)state;
	reset();
	st->conn_add(NS, "alice", 1, on_count_set_online, NULL);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	presence_get(NS, "alice");
	assert_string_equal(r.status, "online");
	assert_int_equal(r.connections, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TS(f) cmocka_unit_test_setup_teardown(f, setup_small, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(describes_itself),
		T(second_create_is_refused),
		T(calls_after_destroy_answer_eio),
		T(first_connection_counts_one),
		T(same_connection_is_not_counted_twice),
		T(last_connection_removed_counts_zero),
		T(removing_unknown_connection_answers_current_count),
		T(many_connections_per_user),
		T(unknown_user_is_offline),
		T(presence_set_is_read_back),
		T(unchanged_status_answers_ealready),
		T(offline_for_unknown_user_answers_ealready),
		T(unknown_status_is_einval),
		T(last_active_survives_last_connection),
		T(user_with_nothing_to_remember_leaves_no_record),
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
		T(inbox_get_answers_one_notification),
		T(inbox_get_of_unknown_id_is_enoent),
		T(mark_read_sets_is_read),
		T(mark_read_of_unknown_id_is_enoent),
		T(mark_read_of_another_users_id_is_enoent),
		T(listed_notifications_are_copies),
		T(namespaces_are_isolated),
		T(namespace_prefix_does_not_collide),
		T(null_callbacks_are_allowed),
		T(callbacks_may_call_the_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
