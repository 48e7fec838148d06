/*
 * store_memory.c — the embedded session store (one node).
 *
 * One record per (ns, user) in a pav_map: connection ids, presence and a
 * ring buffer of notifications.  Memory: a record stays while it holds
 * anything a caller could read back (a connection, a non-default presence
 * or a notification).  So a user seen once keeps a small presence record
 * (status + lastActive, which must survive the last connection) for the
 * life of the process: bounded by the number of distinct users, which we
 * accept for a single-node store.  Inboxes are bounded by inbox_size.
 */
#include "store_memory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "pav_limits.h"
#include "map.h"

#define ID_LEN 18 /* "n" + 16 hex + NUL */
#define KEY_SMALL 192
#define CONNS_MIN 4
#define INBOX_MIN 8

struct note {
	json_object *obj; /* owned; its "isRead" mirrors read */
	int64_t created_ms;
	int read;
	char id[ID_LEN];
};

/* Ring buffer, oldest at head.  Grows on demand up to the inbox size so
 * users with few notifications do not pay for 500 slots. */
struct inbox {
	struct note *notes;
	size_t cap, head, count;
};

struct user {
	const char *status; /* one of statuses[], NULL: never set */
	int64_t last_active_ms;
	uint64_t *conns;
	size_t nconns, conns_cap;
	struct inbox inbox;
};

static struct {
	struct pav_map *users;
	size_t inbox_size;
} g;

static const char *const statuses[] = {"online", "offline", "busy", "away"};

/* ---- callbacks: NULL is allowed everywhere ---- */

static void answer_done(pav_store_done_fn cb, void *arg, int err)
{
	if (cb)
		cb(arg, err);
}

static void answer_count(pav_store_count_fn cb, void *arg, int err, int n)
{
	if (cb)
		cb(arg, err, n);
}

static void answer_list(pav_store_list_fn cb, void *arg, int err,
			json_object *list)
{
	if (cb)
		cb(arg, err, list);
}

static void answer_id(pav_store_id_fn cb, void *arg, int err, const char *id)
{
	if (cb)
		cb(arg, err, id);
}

/* ---- user records ---- */

/* The map key "ns\x1fuser", on the stack when it fits. */
struct key {
	char small[KEY_SMALL];
	char *s;
};

static int key_init(struct key *k, const char *ns, const char *user)
{
	size_t len = strlen(ns) + 1 + strlen(user) + 1;

	k->s = len <= sizeof(k->small) ? k->small : malloc(len);
	if (!k->s)
		return -ENOMEM;
	snprintf(k->s, len, "%s\x1f%s", ns, user);
	return 0;
}

static void key_done(struct key *k)
{
	if (k->s != k->small)
		free(k->s);
}

static void note_clear(struct note *n)
{
	json_object_put(n->obj);
	n->obj = NULL;
}

static struct note *inbox_at(const struct inbox *ib, size_t i)
{
	return &ib->notes[(ib->head + i) % ib->cap];
}

static void user_free(void *p)
{
	struct user *u = p;

	for (size_t i = 0; i < u->inbox.count; i++)
		note_clear(inbox_at(&u->inbox, i));
	free(u->inbox.notes);
	free(u->conns);
	free(u);
}

static struct user *user_find(const char *ns, const char *user)
{
	struct key k;
	struct user *u;

	if (key_init(&k, ns, user))
		return NULL;
	u = pav_map_get(g.users, k.s);
	key_done(&k);
	return u;
}

/* Finds or creates the record. */
static int user_get(const char *ns, const char *user, struct user **out)
{
	struct key k;
	int err = 0;

	if (key_init(&k, ns, user))
		return -ENOMEM;
	*out = pav_map_get(g.users, k.s);
	if (!*out) {
		*out = calloc(1, sizeof(**out));
		err = *out ? pav_map_put(g.users, k.s, *out) : -ENOMEM;
		if (err) {
			free(*out);
			*out = NULL;
		}
	}
	key_done(&k);
	return err;
}

/* A record that presence_get would answer exactly like an unknown user
 * is dead weight: drop it so short-lived, never-announced users leave no
 * trace. */
static void user_drop_if_empty(const char *ns, const char *user,
			       struct user *u)
{
	struct key k;

	if (u->nconns || u->inbox.count || u->last_active_ms ||
	    (u->status && strcmp(u->status, "offline") != 0))
		return;
	if (key_init(&k, ns, user))
		return; /* harmless: the record stays */
	user_free(pav_map_del(g.users, k.s));
	key_done(&k);
}

/* ---- connections ---- */

static int conn_index(const struct user *u, uint64_t id)
{
	for (size_t i = 0; i < u->nconns; i++)
		if (u->conns[i] == id)
			return (int)i;
	return -1;
}

static int conn_push(struct user *u, uint64_t id)
{
	if (u->nconns == u->conns_cap) {
		size_t cap = u->conns_cap ? u->conns_cap * 2 : CONNS_MIN;
		uint64_t *c = realloc(u->conns, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		u->conns = c;
		u->conns_cap = cap;
	}
	u->conns[u->nconns++] = id;
	return 0;
}

static int conn_add(const char *ns, const char *user, uint64_t conn_id,
		    int *count)
{
	struct user *u;
	int err;

	err = user_get(ns, user, &u);
	if (err)
		return err;
	if (conn_index(u, conn_id) < 0) {
		err = conn_push(u, conn_id);
		if (err) {
			user_drop_if_empty(ns, user, u);
			return err;
		}
	}
	*count = (int)u->nconns;
	return 0;
}

static void mem_conn_add(const char *ns, const char *user, uint64_t conn_id,
			 pav_store_count_fn cb, void *arg)
{
	int count = 0;
	int err = g.users ? conn_add(ns, user, conn_id, &count) : -EIO;

	answer_count(cb, arg, err, count);
}

static int conn_remove(const char *ns, const char *user, uint64_t conn_id,
		       int *count)
{
	struct user *u = user_find(ns, user);
	int i;

	if (!u)
		return 0;
	i = conn_index(u, conn_id);
	if (i >= 0) /* order does not matter: move the last into the hole */
		u->conns[i] = u->conns[--u->nconns];
	*count = (int)u->nconns;
	user_drop_if_empty(ns, user, u);
	return 0;
}

static void mem_conn_remove(const char *ns, const char *user,
			    uint64_t conn_id, pav_store_count_fn cb, void *arg)
{
	int count = 0;
	int err = g.users ? conn_remove(ns, user, conn_id, &count) : -EIO;

	answer_count(cb, arg, err, count);
}

/* ---- presence ---- */

/* The interned status, so records own no strings and a status handed to
 * a callback cannot be freed under it by a nested presence_set. */
static const char *status_intern(const char *status)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(status, statuses[i]) == 0)
			return statuses[i];
	return NULL;
}

static const char *status_of(const struct user *u)
{
	return u && u->status ? u->status : "offline";
}

static int presence_set(const char *ns, const char *user, const char *status,
			int64_t last_active_ms)
{
	const char *s = status ? status_intern(status) : NULL;
	struct user *u;
	int err;

	if (!s)
		return -EINVAL;
	/* An unknown user is "offline": setting that is no change either. */
	if (strcmp(status_of(user_find(ns, user)), s) == 0)
		return -EALREADY;
	err = user_get(ns, user, &u);
	if (err)
		return err;
	u->status = s;
	u->last_active_ms = last_active_ms;
	user_drop_if_empty(ns, user, u);
	return 0;
}

static void mem_presence_set(const char *ns, const char *user,
			     const char *status, int64_t last_active_ms,
			     pav_store_done_fn cb, void *arg)
{
	int err = g.users ? presence_set(ns, user, status, last_active_ms)
			  : -EIO;

	answer_done(cb, arg, err);
}

static void mem_presence_get(const char *ns, const char *user,
			     pav_store_presence_fn cb, void *arg)
{
	struct pav_presence p = {.user = user, .status = "offline"};
	const struct user *u = g.users ? user_find(ns, user) : NULL;

	if (!cb)
		return;
	if (!g.users) {
		cb(arg, -EIO, NULL);
		return;
	}
	if (u) {
		p.status = status_of(u);
		p.last_active_ms = u->last_active_ms;
		p.connections = (int)u->nconns;
	}
	cb(arg, 0, &p);
}

/* ---- notifications ---- */

static int random_id(char id[ID_LEN])
{
	uint64_t v;
	ssize_t n;

	do {
		n = getrandom(&v, sizeof(v), 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(v))
		return -EIO;
	snprintf(id, ID_LEN, "n%016" PRIx64, v);
	return 0;
}

static struct note *inbox_find(const struct inbox *ib, const char *id)
{
	for (size_t i = 0; i < ib->count; i++) {
		struct note *n = inbox_at(ib, i);

		if (strcmp(n->id, id) == 0)
			return n;
	}
	return NULL;
}

/* A fresh id, never one already in this inbox. */
static int new_id(const struct inbox *ib, char id[ID_LEN])
{
	int err;

	do {
		err = random_id(id);
	} while (!err && inbox_find(ib, id));
	return err;
}

/* Sets obj[key] = val, replacing (and freeing) a caller-given member. */
static int set_member(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* The stored copy with id, createdAt and isRead filled. */
static int note_make(json_object *src, const char *id, struct note *n)
{
	char when[PAV_TIME_LEN];
	json_object *obj = NULL;

	if (json_object_deep_copy(src, &obj, NULL) != 0)
		return -ENOMEM;
	n->created_ms = pav_now_ms();
	pav_format_time(n->created_ms, when, sizeof(when));
	if (set_member(obj, "id", json_object_new_string(id)) ||
	    set_member(obj, "createdAt", json_object_new_string(when)) ||
	    set_member(obj, "isRead", json_object_new_boolean(0))) {
		json_object_put(obj);
		return -ENOMEM;
	}
	n->obj = obj;
	n->read = 0;
	memcpy(n->id, id, ID_LEN);
	return 0;
}

/* Makes room for one more: grows up to max, else evicts the oldest. */
static int inbox_room(struct inbox *ib, size_t max)
{
	size_t cap;
	struct note *notes;

	if (ib->count == max) {
		note_clear(inbox_at(ib, 0));
		ib->head = (ib->head + 1) % ib->cap;
		ib->count--;
		return 0;
	}
	if (ib->count < ib->cap)
		return 0;
	cap = ib->cap ? ib->cap * 2 : INBOX_MIN;
	if (cap > max)
		cap = max;
	notes = malloc(cap * sizeof(*notes));
	if (!notes)
		return -ENOMEM;
	for (size_t i = 0; i < ib->count; i++)
		notes[i] = *inbox_at(ib, i);
	free(ib->notes);
	ib->notes = notes;
	ib->cap = cap;
	ib->head = 0;
	return 0;
}

static int inbox_push(struct inbox *ib, size_t max, json_object *src,
		      char id[ID_LEN])
{
	struct note n;
	int err;

	err = new_id(ib, id);
	if (!err)
		err = note_make(src, id, &n);
	if (err)
		return err;
	err = inbox_room(ib, max);
	if (err) {
		note_clear(&n);
		return err;
	}
	ib->notes[(ib->head + ib->count) % ib->cap] = n;
	ib->count++;
	return 0;
}

static int inbox_add(const char *ns, const char *user, json_object *src,
		     char id[ID_LEN])
{
	struct user *u;
	int err;

	if (!json_object_is_type(src, json_type_object))
		return -EINVAL;
	err = user_get(ns, user, &u);
	if (err)
		return err;
	err = inbox_push(&u->inbox, g.inbox_size, src, id);
	if (err)
		user_drop_if_empty(ns, user, u);
	return err;
}

static void mem_inbox_add(const char *ns, const char *user,
			  json_object *notification, pav_store_id_fn cb,
			  void *arg)
{
	char id[ID_LEN];
	int err = g.users ? inbox_add(ns, user, notification, id) : -EIO;

	answer_id(cb, arg, err, err ? NULL : id);
}

/* Appends a copy, so callbacks can neither corrupt nor pin the store. */
static int list_append(json_object *list, const struct note *n)
{
	json_object *copy = NULL;

	if (json_object_deep_copy(n->obj, &copy, NULL) != 0)
		return -ENOMEM;
	if (json_object_array_add(list, copy)) {
		json_object_put(copy);
		return -ENOMEM;
	}
	return 0;
}

/* Hands list to cb and frees it afterwards (the list is borrowed). */
static void answer_list_free(pav_store_list_fn cb, void *arg, int err,
			     json_object *list)
{
	answer_list(cb, arg, err, err ? NULL : list);
	json_object_put(list);
}

/* The note with id in this user's inbox, or NULL. */
static struct note *note_find(const char *ns, const char *user,
			      const char *id)
{
	struct user *u = user_find(ns, user);

	return u && id ? inbox_find(&u->inbox, id) : NULL;
}

static int inbox_get(const char *ns, const char *user, const char *id,
		     json_object **list)
{
	const struct note *n = note_find(ns, user, id);

	if (!n)
		return -ENOENT;
	*list = json_object_new_array();
	if (!*list)
		return -ENOMEM;
	return list_append(*list, n);
}

static void mem_inbox_get(const char *ns, const char *user, const char *id,
			  pav_store_list_fn cb, void *arg)
{
	json_object *list = NULL;
	int err = g.users ? inbox_get(ns, user, id, &list) : -EIO;

	answer_list_free(cb, arg, err, list);
}

struct filter {
	int64_t since_ms;
	int unread_only;
};

static int matches(const struct note *n, const struct filter *f)
{
	return n->created_ms > f->since_ms && !(f->unread_only && n->read);
}

/* Index of the oldest note to answer: with a limit, walk back from the
 * newest until `limit` matches are seen. */
static size_t list_start(const struct inbox *ib, const struct filter *f,
			 size_t limit)
{
	size_t seen = 0, i = ib->count;

	if (!limit)
		return 0;
	while (i > 0 && seen < limit)
		if (matches(inbox_at(ib, --i), f))
			seen++;
	return i;
}

static int list_fill(json_object *list, const struct inbox *ib,
		     const struct filter *f, size_t limit)
{
	for (size_t i = list_start(ib, f, limit); i < ib->count; i++) {
		const struct note *n = inbox_at(ib, i);
		int err;

		if (!matches(n, f))
			continue;
		err = list_append(list, n);
		if (err)
			return err;
	}
	return 0;
}

static int inbox_list(const char *ns, const char *user,
		      const struct filter *f, size_t limit, json_object **list)
{
	const struct user *u = user_find(ns, user);

	*list = json_object_new_array();
	if (!*list)
		return -ENOMEM;
	return u ? list_fill(*list, &u->inbox, f, limit) : 0;
}

static void mem_inbox_list(const char *ns, const char *user, int64_t since_ms,
			   int unread_only, size_t limit, pav_store_list_fn cb,
			   void *arg)
{
	struct filter f = {.since_ms = since_ms, .unread_only = unread_only};
	json_object *list = NULL;
	int err = g.users ? inbox_list(ns, user, &f, limit, &list) : -EIO;

	answer_list_free(cb, arg, err, list);
}

static int mark_read(const char *ns, const char *user, const char *id)
{
	struct note *n = note_find(ns, user, id);
	int err;

	if (!n)
		return -ENOENT;
	if (n->read)
		return 0;
	err = set_member(n->obj, "isRead", json_object_new_boolean(1));
	if (err)
		return err;
	n->read = 1;
	return 0;
}

static void mem_inbox_mark_read(const char *ns, const char *user,
				const char *id, pav_store_done_fn cb, void *arg)
{
	answer_done(cb, arg, g.users ? mark_read(ns, user, id) : -EIO);
}

/* ---- instance ---- */

static int mem_ready(void)
{
	return 1;
}

static const struct pav_store memory_store = {
	.version = 1,
	.backend = "memory",
	.conn_add = mem_conn_add,
	.conn_remove = mem_conn_remove,
	.presence_set = mem_presence_set,
	.presence_get = mem_presence_get,
	.inbox_add = mem_inbox_add,
	.inbox_get = mem_inbox_get,
	.inbox_list = mem_inbox_list,
	.inbox_mark_read = mem_inbox_mark_read,
	.ready = mem_ready,
};

const struct pav_store *pav_store_memory_create(size_t inbox_size)
{
	if (g.users)
		return NULL;
	g.users = pav_map_new();
	if (!g.users)
		return NULL;
	g.inbox_size = inbox_size ? inbox_size : PAV_DEF_INBOX_SIZE;
	return &memory_store;
}

void pav_store_memory_destroy(void)
{
	pav_map_free(g.users, user_free);
	g.users = NULL;
}

size_t pav_store_memory_users(void)
{
	return g.users ? pav_map_count(g.users) : 0;
}
