/*
 * memory_state.c — the "memory" backend's state (state.h): one node.
 *
 * One record per (ns, user) in a pav_map: connection ids, presence and a
 * ring buffer of notifications.  Memory: a record stays while it holds
 * anything a caller could read back (a connection, a non-default presence
 * or a notification).  So a user seen once keeps a small presence record
 * (status + lastActive, which must survive the last connection); a record
 * without a connection goes PAV_USER_RECORD_TTL_MS after its last change
 * (a notification, a presence change, a close), as Redis expires an
 * inbox and a presence.  Inboxes are bounded by inbox_size.
 * Channel records (members and history) are memory.h's.
 *
 * What this backend adds to the contract of state.h:
 * - every callback runs before the call returns; callbacks may call again;
 * - conn_add of an id the user already has does not count it twice;
 * - a token revocation ends on the monotonic clock (memory_revoked.c);
 *   a new user's is refused (-ENOSPC) while PAV_MAX_KEPT_REVOCATIONS are
 *   held;
 * - notification ids are "n" + 16 hex digits of a getrandom() value, never
 *   repeated within one inbox; inbox_list's since is exclusive;
 * - lists handed to callbacks hold copies.
 */
#include "memory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "note.h"
#include "pav_limits.h"
#include "tally.h"

#define INBOX_MIN 8

/* ---- connections ---- */

static int conn_add(struct pav_mem *m, const char *ns, const char *user,
		    uint64_t conn, int max, int64_t *count)
{
	struct user *u;
	int err = pav_mem_user_get(m, ns, user, &u);

	if (err)
		return err;
	if (!pav_conn_ids_has(&u->conns, conn)) {
		if (max > 0 && u->conns.n >= (size_t)max)
			err = -EUSERS;
		else
			err = pav_conn_ids_push(&u->conns, conn);
	}
	*count = (int64_t)u->conns.n;
	if (err)
		pav_mem_user_drop_if_empty(m, u);
	else
		pav_mem_user_touch(m, u);
	return err;
}

static void mem_conn_add(void *self, const char *ns, const char *user,
			 uint64_t conn, int max_per_user,
			 const struct pav_token_iat *tok, pav_state_count_fn cb,
			 void *arg)
{
	int64_t count = 0;
	int err = -EKEYREVOKED;

	if (!tok || !pav_mem_revoked(self, ns, user, tok))
		err = conn_add(self, ns, user, conn, max_per_user, &count);
	else
		count = pav_mem_user_conns(self, ns, user);

	if (cb)
		cb(arg, err, count);
}

static void mem_conn_remove(void *self, const char *ns, const char *user,
			    uint64_t conn, pav_state_count_fn cb, void *arg)
{
	struct pav_mem *m = self;
	struct user *u = pav_mem_user_find(m, ns, user);
	int64_t count = 0;

	if (u) {
		pav_conn_ids_remove(&u->conns, conn);
		count = (int64_t)u->conns.n;
		pav_mem_user_touch(m, u);
		pav_mem_user_drop_if_empty(m, u);
	}
	if (cb)
		cb(arg, 0, count);
}

static void mem_user_count(void *self, const char *ns, const char *user,
			   pav_state_count_fn cb, void *arg)
{
	cb(arg, 0, pav_mem_user_conns(self, ns, user));
}

/* ---- token revocations ---- */

static void mem_tokens_revoke(void *self, const char *ns, const char *user,
			      int64_t at_ms, int ttl_s, pav_done_fn cb,
			      void *arg)
{
	int err = pav_mem_revoke(self, ns, user, at_ms, ttl_s);

	if (cb)
		cb(arg, err);
}

static void mem_token_check(void *self, const char *ns, const char *user,
			    const struct pav_token_iat *tok, pav_done_fn cb,
			    void *arg)
{
	cb(arg, pav_mem_revoked(self, ns, user, tok) ? -EKEYREVOKED : 0);
}

/* ---- presence ---- */

static void presence_answer(struct pav_mem *m, const char *ns,
			    const char *user, int err, pav_presence_fn cb,
			    void *arg)
{
	const struct user *u = pav_mem_user_find(m, ns, user);
	struct pav_presence p = {.user = user, .status = "offline"};

	if (!cb)
		return;
	if (u) {
		p.status = u->status[0] ? u->status : "offline";
		p.last_active_ms = u->last_active_ms;
		p.connections = (int)u->conns.n;
	}
	cb(arg, err, &p);
}

static void mem_presence_get(void *self, const char *ns, const char *user,
			     pav_presence_fn cb, void *arg)
{
	presence_answer(self, ns, user, 0, cb, arg);
}

/* Does the change apply (its condition, a different status)?  0 or
 * -EALREADY. */
static int presence_applies(const struct user *u, enum pav_presence_when when,
			    const char *s)
{
	size_t conns = u ? u->conns.n : 0;
	const char *now = u && u->status[0] ? u->status : "offline";

	if ((when == PAV_PRESENCE_IF_CONNECTED && !conns) ||
	    (when == PAV_PRESENCE_IF_DISCONNECTED && conns) ||
	    strcmp(now, s) == 0)
		return -EALREADY;
	return 0;
}

static void announce(struct pav_mem *m, const char *ns,
		     const struct pav_outgoing *out, const char *stamp,
		     int64_t at)
{
	char when[PAV_TIME_LEN];

	if (!out || !out->nchannels)
		return;
	if (stamp && out->payload) {
		pav_format_time(at, when, sizeof(when));
		json_object_object_add(out->payload, stamp,
				       json_object_new_string(when));
	}
	pav_mem_publish(m, ns, out, NULL, NULL);
}

static void mem_presence_set(void *self, const char *ns, const char *user,
			     const char *status, enum pav_presence_when when,
			     int64_t at_ms, const struct pav_outgoing *out,
			     const char *stamp, pav_presence_fn cb, void *arg)
{
	struct pav_mem *m = self;
	struct user *u = pav_mem_user_find(m, ns, user);
	char name[PAV_ID_MAX + 1];
	int64_t at = at_ms > 0 ? at_ms : pav_now_ms();
	int err = status && *status && strlen(status) < PAV_MEM_STATUS_LEN
			  ? presence_applies(u, when, status)
			  : -EINVAL;

	if (!err)
		err = pav_mem_user_get(m, ns, user, &u);
	if (!err) {
		snprintf(u->status, sizeof(u->status), "%s", status);
		u->last_active_ms = at;
		pav_mem_user_touch(m, u);
		announce(m, ns, out, stamp, at);
	} else if (err == -EALREADY && when == PAV_PRESENCE_IF_DISCONNECTED &&
		   u && !u->conns.n && !strcmp(u->status, status)) {
		/* the last close of a user who had set this status: it
		 * stays, unannounced, but the user was active until now */
		u->last_active_ms = at;
		pav_mem_user_touch(m, u);
	}
	/* the callback may free what user points into (the caller's copy) */
	snprintf(name, sizeof(name), "%s", user);
	presence_answer(m, ns, name, err, cb, arg);
	u = pav_mem_user_find(m, ns, name);
	if (u)
		pav_mem_user_drop_if_empty(m, u);
}

/* ---- notifications ---- */

static struct note *inbox_find(const struct inbox *ib, const char *id)
{
	for (size_t i = 0; i < ib->count; i++) {
		struct note *n = pav_mem_inbox_at(ib, i);

		if (strcmp(n->id, id) == 0)
			return n;
	}
	return NULL;
}

/* A fresh id, never one already in this inbox. */
static int new_id(const struct inbox *ib, char id[PAV_MEM_ID_LEN])
{
	int err;

	do {
		err = pav_random_id('n', id, PAV_MEM_ID_LEN);
	} while (!err && inbox_find(ib, id));
	return err;
}

/* The stored copy with id, createdAt and isRead filled.  createdAt is
 * the clock's, moved past the inbox's newest on a tie (or a step of the
 * clock back), as the Redis store does: an inbox's order is its order by
 * createdAt, which a `since` replay and its pages rely on. */
static int note_make(const struct inbox *ib, json_object *src,
		     const char *id, struct note *n)
{
	json_object *obj = NULL;
	int64_t newest = ib->count ? pav_mem_inbox_at(ib, ib->count - 1)
					     ->created_ms
				   : INT64_MIN;

	if (json_object_deep_copy(src, &obj, NULL) != 0)
		return -ENOMEM;
	n->created_ms = pav_now_ms();
	if (n->created_ms <= newest)
		n->created_ms = newest + 1;
	if (pav_note_set(obj, "id", json_object_new_string(id)) ||
	    pav_note_complete(obj, n->created_ms, 0)) {
		json_object_put(obj);
		return -ENOMEM;
	}
	n->obj = obj;
	n->read = 0;
	memcpy(n->id, id, PAV_MEM_ID_LEN);
	return 0;
}

/* Makes room for one more: grows up to max, else evicts the oldest. */
static int inbox_room(struct inbox *ib, size_t max)
{
	size_t cap;
	struct note *notes;

	if (ib->count == max) {
		pav_mem_note_clear(pav_mem_inbox_at(ib, 0));
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
		notes[i] = *pav_mem_inbox_at(ib, i);
	free(ib->notes);
	ib->notes = notes;
	ib->cap = cap;
	ib->head = 0;
	return 0;
}

static int inbox_push(struct inbox *ib, size_t max, json_object *src,
		      struct note **out)
{
	char id[PAV_MEM_ID_LEN];
	struct note n;
	int err;

	err = new_id(ib, id);
	if (!err)
		err = note_make(ib, src, id, &n);
	if (err)
		return err;
	err = inbox_room(ib, max);
	if (err) {
		pav_mem_note_clear(&n);
		return err;
	}
	*out = &ib->notes[(ib->head + ib->count) % ib->cap];
	**out = n;
	ib->count++;
	return 0;
}

static void mem_inbox_add(void *self, const char *ns, const char *user,
			  json_object *src, pav_json_fn cb, void *arg)
{
	struct pav_mem *m = self;
	struct note *n = NULL;
	struct user *u;
	int err = json_object_is_type(src, json_type_object) ? 0 : -EINVAL;

	if (!err)
		err = pav_mem_user_get(m, ns, user, &u);
	if (!err) {
		err = inbox_push(&u->inbox, m->inbox_size, src, &n);
		if (err)
			pav_mem_user_drop_if_empty(m, u);
		else
			pav_mem_user_touch(m, u);
	}
	if (cb)
		cb(arg, err, n ? n->obj : NULL);
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
		if (matches(pav_mem_inbox_at(ib, --i), f))
			seen++;
	return i;
}

static int list_fill(json_object *list, const struct inbox *ib,
		     const struct filter *f, size_t limit)
{
	for (size_t i = list_start(ib, f, limit); i < ib->count; i++) {
		const struct note *n = pav_mem_inbox_at(ib, i);
		int err;

		if (!matches(n, f))
			continue;
		err = list_append(list, n);
		if (err)
			return err;
	}
	return 0;
}

static void mem_inbox_list(void *self, const char *ns, const char *user,
			   int64_t since_ms, int unread_only, size_t limit,
			   pav_json_fn cb, void *arg)
{
	const struct filter f = {.since_ms = since_ms,
				 .unread_only = unread_only};
	const struct user *u = pav_mem_user_find(self, ns, user);
	json_object *list = json_object_new_array();
	int err = list ? 0 : -ENOMEM;

	if (!err && u)
		err = list_fill(list, &u->inbox, &f, limit);
	cb(arg, err, err ? NULL : list);
	json_object_put(list);
}

static void mem_inbox_mark_read(void *self, const char *ns, const char *user,
				const char *id, pav_done_fn cb, void *arg)
{
	struct user *u = pav_mem_user_find(self, ns, user);
	struct note *n = u && id ? inbox_find(&u->inbox, id) : NULL;
	int err = n ? 0 : -ENOENT;

	if (n && !n->read) {
		err = pav_note_set(n->obj, "isRead",
				   json_object_new_boolean(1));
		n->read = !err;
	}
	if (cb)
		cb(arg, err);
}

/* ---- channel members ---- */

/* "user:<id>": its members are the user's own connections. */
static void own_member_add(struct pav_mem *m, const char *ns,
			   const char *channel, pav_state_member_fn cb,
			   void *arg)
{
	struct user *u = pav_mem_own_channel(m, ns, channel, 1);

	if (u) {
		u->own_members++;
		pav_mem_user_touch(m, u);
	}
	if (cb)
		cb(arg, u ? 0 : -ENOMEM, u ? u->own_members : 0,
		   u ? u->own_members : 0);
}

static void mem_member_add(void *self, const char *ns, const char *channel,
			   const char *user, pav_state_member_fn cb, void *arg)
{
	struct pav_mem *m = self;
	struct mem_chan *ch;
	int64_t members, user_count;
	int err;

	if (!strncmp(channel, "user:", 5))
		return own_member_add(m, ns, channel, cb, arg);
	ch = pav_mem_chan(m, ns, channel, 1);
	err = ch ? 0 : -ENOMEM;

	if (ch) {
		if (!ch->users && !(ch->users = pav_map_new()))
			err = -ENOMEM;
		if (!err)
			err = pav_tally_add(ch->users, user, 1);
		if (!err)
			ch->members++;
		ch->active_ms = pav_now_ms();
	}
	members = ch ? ch->members : 0;
	user_count = ch && ch->users ? pav_tally_get(ch->users, user) : 0;
	if (ch && err)
		pav_mem_chan_drop(m, ch);
	if (cb)
		cb(arg, err, members, user_count);
}

static void mem_member_remove(void *self, const char *ns, const char *channel,
			      const char *user)
{
	struct pav_mem *m = self;
	struct user *u = pav_mem_own_channel(m, ns, channel, 0);
	struct mem_chan *ch;

	if (u && u->own_members > 0) {
		u->own_members--;
		pav_mem_user_touch(m, u);
		pav_mem_user_drop_if_empty(m, u);
		return;
	}
	ch = pav_mem_chan(m, ns, channel, 0);
	if (!ch || !ch->users || !pav_tally_get(ch->users, user))
		return;
	pav_tally_add(ch->users, user, -1);
	ch->members--;
	ch->active_ms = pav_now_ms();
	if (!ch->members) {
		pav_map_free(ch->users, NULL);
		ch->users = NULL;
	}
	pav_mem_chan_drop(m, ch);
}

static void mem_channel_counts(void *self, const char *ns,
			       const char *const *channels, size_t n,
			       pav_counts_fn cb, void *arg)
{
	int64_t small[16] = {0};
	int64_t *counts = n <= 16 ? small : calloc(n, sizeof(*counts));

	if (!counts) {
		cb(arg, -ENOMEM, NULL, 0);
		return;
	}
	for (size_t i = 0; i < n; i++)
		counts[i] = pav_mem_members(self, ns, channels[i]);
	cb(arg, 0, counts, n);
	if (counts != small)
		free(counts);
}

struct users_walk {
	const char **users;
	size_t n, max;
};

static int collect_user(const char *key, void *val, void *arg)
{
	struct users_walk *w = arg;

	(void)val;
	if (w->n >= w->max)
		return 1;
	w->users[w->n++] = key;
	return 0;
}

static void mem_channel_users(void *self, const char *ns, const char *channel,
			      size_t max, pav_users_fn cb, void *arg)
{
	struct user *u = pav_mem_own_channel(self, ns, channel, 0);
	const char *own[] = {channel + 5};
	struct mem_chan *ch;

	if (u || !strncmp(channel, "user:", 5)) {
		cb(arg, 0, own, u && u->own_members > 0 && max ? 1 : 0);
		return;
	}
	ch = pav_mem_chan(self, ns, channel, 0);
	size_t have = ch && ch->users ? pav_map_count(ch->users) : 0;
	struct users_walk w = {NULL, 0, have < max ? have : max};

	if (w.max && !(w.users = malloc(w.max * sizeof(*w.users)))) {
		cb(arg, -ENOMEM, NULL, 0);
		return;
	}
	if (ch && ch->users)
		pav_map_each(ch->users, collect_user, &w);
	cb(arg, 0, (const char *const *)w.users, w.n);
	free(w.users);
}

/* ---- history ---- */

/* A channel without a record: no publication held, nobody in it.  What a
 * new record would answer, and nothing made. */
static void history_absent(struct pav_mem *m, const char *ns,
			   const char *channel, uint64_t after,
			   pav_history_fn cb, void *arg)
{
	char epoch[PAV_MEM_EPOCH_LEN];
	struct pav_history r = {0};

	r.epoch = pav_mem_absent_epoch(m, ns, channel, epoch);
	r.complete = after == 0;
	cb(arg, r.epoch ? 0 : -ENOMEM, r.epoch ? &r : NULL);
}

static void mem_history_read(void *self, const char *ns, const char *channel,
			     const struct pav_history_cfg *h, uint64_t after,
			     size_t max, pav_history_fn cb, void *arg)
{
	struct pav_mem *m = self;
	struct mem_chan *ch = pav_mem_chan(m, ns, channel, 0);
	char epoch[PAV_MEM_EPOCH_LEN];
	struct pav_history r = {0};
	struct pav_msg **msgs = NULL;
	uint64_t oldest, first;

	if (!ch)
		return history_absent(m, ns, channel, after, cb, arg);
	pav_mem_enter(m);
	pav_mem_history_config(ch, h);
	snprintf(epoch, sizeof(epoch), "%s", pav_mem_chan_epoch(m, ch));
	r.epoch = epoch;
	r.offset = ch->offset;
	oldest = ch->offset - ch->count + 1; /* of what the ring holds */
	first = after + 1 > oldest ? after + 1 : oldest;
	r.complete = after <= ch->offset && first == after + 1 &&
		     ch->offset - after <= max;
	if (first <= ch->offset && max)
		r.n = (size_t)(ch->offset - first + 1) < max
			      ? (size_t)(ch->offset - first + 1) : max;
	if (r.n && !(msgs = malloc(r.n * sizeof(*msgs)))) {
		cb(arg, -ENOMEM, NULL);
		pav_mem_leave(m);
		return;
	}
	/* referenced: the callback may publish, and the ring move on */
	for (size_t i = 0; i < r.n; i++)
		msgs[i] = pav_msg_ref(
			ch->ring[(ch->head + (first - oldest) + i) % ch->cap]);
	r.msgs = msgs;
	cb(arg, 0, &r);
	for (size_t i = 0; i < r.n; i++)
		pav_msg_unref(msgs[i]);
	free(msgs);
	pav_mem_chan_drop(m, ch);
	pav_mem_leave(m);
}

/* ---- instance ---- */

static int mem_create(const struct pav_store_config *cfg,
		      const struct pav_backend_env *env, void **self, char *err,
		      size_t errlen)
{
	struct pav_mem *m = calloc(1, sizeof(*m));

	if (!m || !(m->users = pav_map_new()) || !(m->chans = pav_map_new()) ||
	    pav_mem_revoked_init(m, PAV_MAX_KEPT_REVOCATIONS) ||
	    !(m->epoch_gens = calloc(PAV_MEM_EPOCH_BUCKETS,
				     sizeof(*m->epoch_gens)))) {
		if (m) {
			pav_map_free(m->users, NULL);
			pav_map_free(m->chans, NULL);
			pav_mem_revoked_free(m);
		}
		free(m);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (env)
		m->env = *env;
	/* epochs differ from every earlier run's */
	if (pav_random_u64(&m->epoch_seed))
		m->epoch_seed = (uint64_t)pav_now_ms() ^ (uintptr_t)m;
	m->inbox_size = cfg && cfg->inbox_size ? cfg->inbox_size
						: PAV_DEF_INBOX_SIZE;
	m->history_max_bytes = cfg && cfg->history_max_bytes
				       ? cfg->history_max_bytes
				       : PAV_DEF_HISTORY_MAX_BYTES;
	*self = m;
	return 0;
}

static void mem_destroy(void *self)
{
	struct pav_mem *m = self;

	if (!m)
		return;
	pav_map_free(m->users, pav_mem_user_free);
	pav_map_free(m->chans, pav_mem_chan_free);
	pav_mem_revoked_free(m);
	free(m->epoch_gens);
	free(m);
}

static int mem_ready(void *self)
{
	(void)self;
	return 1;
}

static void mem_tick(void *self, int64_t now_ms)
{
	pav_mem_history_sweep(self, now_ms);
	pav_mem_users_expire(self, now_ms);
	pav_mem_revoked_expire(self);
}

const struct pav_state_ops pav_memory_state = {
	.create = mem_create,
	.destroy = mem_destroy,
	.ready = mem_ready,
	.tick = mem_tick,
	.conn_add = mem_conn_add,
	.conn_remove = mem_conn_remove,
	.presence_get = mem_presence_get,
	.presence_set = mem_presence_set,
	.inbox_add = mem_inbox_add,
	.inbox_list = mem_inbox_list,
	.inbox_mark_read = mem_inbox_mark_read,
	.member_add = mem_member_add,
	.member_remove = mem_member_remove,
	.channel_counts = mem_channel_counts,
	.channel_users = mem_channel_users,
	.user_count = mem_user_count,
	.tokens_revoke = mem_tokens_revoke,
	.token_check = mem_token_check,
	.history_read = mem_history_read,
};
