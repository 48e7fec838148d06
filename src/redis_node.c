/*
 * redis_node.c — the "redis" backend's instance (redis_node.h): shards
 * and their clients, this node's heartbeat, the reaper of dead nodes, the
 * registry of what this node registered and the sync pass that writes it
 * again, and the two halves' create/destroy/ready/tick.
 *
 * Liveness of nodes.  Every second each node sets pav:N:alive (PX
 * node_ttl) and its score in pav:nodes (Redis TIME) on every shard.  Every
 * second each node also looks, on every shard, for nodes whose score is
 * older than node_ttl and whose alive key is gone; it takes the node's
 * reaper lock and reaps it there in bounded steps, calling
 * env->user_gone() for each user left with no connection (lastActive: the
 * dead node's last heartbeat; the step that pops the user has set it
 * offline already, so a reaper dying in between loses only the
 * announcement).  Before any user of the shard, the dead node's channel
 * members go on every shard, so that announcements are weighed without
 * them.  A node detected dead within node_ttl + 1 s of its last heartbeat
 * is reaped a few round trips later.
 *
 * Failures.  While a shard is down every call on it fails (-EIO) before it
 * returns and nothing is queued: the client's queues bound memory, and the
 * registry holds no more than this node's connections and channels.  On
 * the shard's return (or a heartbeat that finds this node's alive key
 * gone) every entry of the shard is dirty; once the sync pass has written
 * them all, users whose last local connection went while the store could
 * not confirm it are settled (count 0 anywhere: env->user_gone), and every
 * connection gets "resync".  A replaced pub/sub connection alone means
 * "resync" at once.  The token revocations the node keeps are written
 * back then too (redis_state.c), and the node is not ready until they
 * are.
 *
 * After an outage a node reaps nobody for node_ttl: every alive key may
 * have expired while Redis was away, and the others need that long to
 * reconnect and heartbeat.
 *
 * Fences.  A read that a subscriber catches up from (history with
 * recover, the inbox with since) publishes a number on this node's fence
 * channel last; its answer is used once that number came back on the
 * pub/sub connection, so that the live copy of everything the read saw
 * has reached the node (and the subscriber's hold) before the hold is
 * released.
 *
 * Shutdown.  The clients live on the event loop: shutdown() destroys them
 * before the loop goes (what is pending fails -ECANCELED), and every call
 * after that fails at once with -ECANCELED; destroy() frees the rest.
 * A clean stop does not deregister the node: its alive key expires and
 * a live node reaps what is left of it (users whose offline write did not
 * make it go offline then), node_ttl later.
 */
#include "redis_node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "log.h"
#include "redis_backend.h"
#include "revkeep.h"
#include "secret.h"

#define rlog(level, ...) pav_log(level, "store", __VA_ARGS__)

#define SYNC_BATCH 256     /* sync scripts in flight at most */
#define REAP_BATCH "500"   /* users (then channels) per reap step */
#define REAP_LOCK_MS 30000 /* the reaper's lock, refreshed per step */
/* a password file: its first line, and the whole file */
#define PASSWORD_MAX 1024
#define PASSWORD_FILE_MAX (64 * 1024)

/* ---- small helpers ------------------------------------------------------ */

size_t pav_rb_shard_of(const struct rb *b, const char *ns, const char *name)
{
	uint32_t h = 2166136261u;
	const char *parts[] = {ns, "\x1f", name};

	if (b->nshards < 2)
		return 0;
	for (size_t i = 0; i < 3; i++)
		for (const unsigned char *p = (const unsigned char *)parts[i];
		     *p; p++)
			h = (h ^ *p) * 16777619u;
	return h % b->nshards;
}

/* A user's channel lives with the user's keys: its publications can
 * touch the user's inbox in the same step. */
size_t pav_rb_chan_shard(const struct rb *b, const char *ns,
			 const char *channel)
{
	if (!strncmp(channel, "user:", 5))
		return pav_rb_shard_of(b, ns, channel + 5);
	return pav_rb_shard_of(b, ns, channel);
}

uint64_t pav_rb_rand(struct rb *b)
{
	b->rnd ^= b->rnd >> 12;
	b->rnd ^= b->rnd << 25;
	b->rnd ^= b->rnd >> 27;
	return b->rnd * 0x2545F4914F6CDD1DULL;
}

void pav_rb_eval(struct rb *b, size_t shard, enum pav_rb_script s,
		 int nkeys, struct rb_argv *a, pav_redis_reply_fn fn, void *arg)
{
	struct rb_shard *sh = &b->shards[shard];
	const char **argv = a->oom ? NULL : a->v;
	int rc = b->shut ? -ECANCELED : -EIO;

	if (sh->r && sh->up && argv)
		rc = pav_redis_eval(sh->r, sh->script[s], nkeys, a->n, argv,
				    a->len, fn, arg);
	if (rc && fn)
		fn(arg, b->shut ? -ECANCELED : -EIO, NULL);
	pav_rb_av_free(a);
}

void pav_rb_command(struct rb *b, size_t shard, struct rb_argv *a,
		    pav_redis_reply_fn fn, void *arg)
{
	struct rb_shard *sh = &b->shards[shard];
	const char **argv = a->oom ? NULL : a->v;
	int rc = -EIO;

	if (sh->r && sh->up && argv)
		rc = pav_redis_command(sh->r, fn, arg, a->n, argv, a->len);
	if (rc && fn)
		fn(arg, b->shut ? -ECANCELED : -EIO, NULL);
	pav_rb_av_free(a);
}

int pav_rb_reply_err(int err, const redisReply *rep, int type,
		     const char *what)
{
	if (err)
		return err == -ECANCELED ? -ECANCELED : -EIO;
	if (rep->type == REDIS_REPLY_ERROR) {
		rlog(PAV_LOG_ERROR, "%s: Redis answered %s", what, rep->str);
		return -EIO;
	}
	if (type >= 0 && rep->type != type) {
		rlog(PAV_LOG_ERROR, "%s: unexpected reply type %d", what,
		     rep->type);
		return -EIO;
	}
	return 0;
}

int64_t pav_rb_int(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

/* ---- argument lists ------------------------------------------------------ */

void pav_rb_av_init(struct rb_argv *a)
{
	memset(a, 0, sizeof(*a));
}

void pav_rb_av_add(struct rb_argv *a, const char *s, size_t len)
{
	if (a->oom)
		return;
	if (a->n == a->cap) {
		int cap = a->cap ? a->cap * 2 : 16;
		const char **v = realloc(a->v, (size_t)cap * sizeof(*v));
		size_t *l = v ? realloc(a->len, (size_t)cap * sizeof(*l)) : NULL;

		if (v)
			a->v = v;
		if (!v || !l) {
			a->oom = 1;
			return;
		}
		a->len = l;
		a->cap = cap;
	}
	a->v[a->n] = s;
	a->len[a->n++] = len;
}

void pav_rb_av_str(struct rb_argv *a, const char *s)
{
	pav_rb_av_add(a, s, strlen(s));
}

void pav_rb_av_fmt(struct rb_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	if (a->oom)
		return;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		a->oom = 1;
		return;
	}
	if (a->nowned == a->owned_cap) {
		int cap = a->owned_cap ? a->owned_cap * 2 : 16;
		char **o = realloc(a->owned, (size_t)cap * sizeof(*o));

		if (!o) {
			free(s);
			a->oom = 1;
			return;
		}
		a->owned = o;
		a->owned_cap = cap;
	}
	a->owned[a->nowned++] = s;
	pav_rb_av_add(a, s, (size_t)n);
}

void pav_rb_av_free(struct rb_argv *a)
{
	for (int i = 0; i < a->nowned; i++)
		free(a->owned[i]);
	free(a->owned);
	free(a->v);
	free(a->len);
	memset(a, 0, sizeof(*a));
}

/* ---- keys (redis_scripts.h) --------------------------------------------- */

void pav_rb_ukey(struct rb_argv *a, const char *ns, const char *user,
		 const char *suffix)
{
	pav_rb_av_fmt(a, "pav:{u:%s:%s}:%s", ns, user, suffix);
}

void pav_rb_ckey(struct rb_argv *a, const char *ns, const char *chan,
		 const char *suffix)
{
	pav_rb_av_fmt(a, "pav:{c:%s:%s}:%s", ns, chan, suffix);
}

void pav_rb_nkey(struct rb *b, struct rb_argv *a, const char *suffix)
{
	pav_rb_av_fmt(a, "pav:{n:%s}:%s", b->node, suffix);
}

void pav_rb_feed(struct rb_shard *sh, struct rb_argv *a, const char *ns,
		 const char *channel)
{
	pav_rb_av_fmt(a, "%s%s:%s", sh->prefix, ns, channel);
}

void pav_rb_inbox_keys(struct rb_argv *a, const char *ns, const char *user)
{
	static const char *const sfx[] = {"inbox", "inbox:t", "read",
					  "inbox:new", "inbox:s", "inbox:c",
					  "inbox:seq"};

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
		pav_rb_ukey(a, ns, user, sfx[i]);
}

void pav_rb_member_keys(struct rb *b, struct rb_argv *a, const char *ns,
			const char *channel)
{
	pav_rb_ckey(a, ns, channel, "n");
	pav_rb_av_fmt(a, "pav:{c:%s:%s}:u:%s", ns, channel, b->node);
	pav_rb_nkey(b, a, "chans");
	pav_rb_ckey(a, ns, channel, "meta");
	pav_rb_ckey(a, ns, channel, "hist");
}

/* ---- the registry ------------------------------------------------------- */

static int entry_key(char *buf, size_t len, const char *ns, const char *name)
{
	int n = snprintf(buf, len, "%s\x1f%s", ns, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

#define KEY_BUF (RB_NS_LEN + PAV_MAX_CHANNEL_LEN + 2)

static void user_free(void *p)
{
	struct rb_user *u = p;

	pav_map_free(u->chans, NULL);
	pav_conn_ids_free(&u->conns);
	free(u);
}

static void chan_free(void *p)
{
	struct rb_chan *c = p;

	pav_map_free(c->users, NULL);
	free(c);
}

struct rb_user *pav_rb_user(struct rb *b, const char *ns, const char *user,
			    int make)
{
	char key[KEY_BUF];
	struct rb_user *u;

	if (entry_key(key, sizeof(key), ns, user) ||
	    strlen(ns) >= RB_NS_LEN || strlen(user) > PAV_MAX_ID_LEN)
		return NULL;
	u = pav_map_get(b->users, key);
	if (u || !make)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u || !(u->chans = pav_map_new()) || pav_map_put(b->users, key, u)) {
		if (u)
			pav_map_free(u->chans, NULL);
		free(u);
		return NULL;
	}
	snprintf(u->ns, sizeof(u->ns), "%s", ns);
	snprintf(u->name, sizeof(u->name), "%s", user);
	u->shard = pav_rb_shard_of(b, ns, user);
	return u;
}

void pav_rb_remember_status(struct rb *b, const char *ns, const char *user,
			    const char *status, size_t len)
{
	struct rb_user *u = pav_rb_user(b, ns, user, 0);

	if (u && status && len < sizeof(u->status)) {
		memcpy(u->status, status, len);
		u->status[len] = '\0';
	}
}

struct rb_chan *pav_rb_chan(struct rb *b, const char *ns, const char *channel,
			    int make)
{
	char key[KEY_BUF];
	struct rb_chan *c;

	if (entry_key(key, sizeof(key), ns, channel) ||
	    strlen(ns) >= RB_NS_LEN || strlen(channel) >= PAV_MAX_CHANNEL_LEN)
		return NULL;
	c = pav_map_get(b->chans, key);
	if (c || !make)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->users = pav_map_new()) || pav_map_put(b->chans, key, c)) {
		if (c)
			pav_map_free(c->users, NULL);
		free(c);
		return NULL;
	}
	snprintf(c->ns, sizeof(c->ns), "%s", ns);
	snprintf(c->name, sizeof(c->name), "%s", channel);
	c->shard = pav_rb_chan_shard(b, ns, channel);
	return c;
}

void pav_rb_user_dirty(struct rb *b, struct rb_user *u)
{
	if (u && !u->dirty) {
		u->dirty = 1;
		b->shards[u->shard].ndirty++;
	}
}

void pav_rb_chan_dirty(struct rb *b, struct rb_chan *c)
{
	if (c && !c->dirty) {
		c->dirty = 1;
		b->shards[c->shard].ndirty++;
	}
}

static void user_clean(struct rb *b, struct rb_user *u)
{
	if (u->dirty) {
		u->dirty = 0;
		b->shards[u->shard].ndirty--;
	}
}

static void chan_clean(struct rb *b, struct rb_chan *c)
{
	if (c->dirty) {
		c->dirty = 0;
		b->shards[c->shard].ndirty--;
	}
}

void pav_rb_user_settle(struct rb *b, struct rb_user *u)
{
	char key[KEY_BUF];

	if (!u || u->conns.n || u->dirty || u->busy || u->gone_ms ||
	    pav_map_count(u->chans))
		return;
	entry_key(key, sizeof(key), u->ns, u->name);
	user_free(pav_map_del(b->users, key));
}

void pav_rb_chan_settle(struct rb *b, struct rb_chan *c)
{
	char key[KEY_BUF];

	if (!c || c->members || c->dirty || c->busy)
		return;
	entry_key(key, sizeof(key), c->ns, c->name);
	chan_free(pav_map_del(b->chans, key));
}

struct mark {
	struct rb *b;
	size_t shard;
};

static int mark_user(const char *key, void *val, void *arg)
{
	struct mark *m = arg;
	struct rb_user *u = val;

	(void)key;
	if (u->shard == m->shard)
		pav_rb_user_dirty(m->b, u);
	return 0;
}

static int mark_chan(const char *key, void *val, void *arg)
{
	struct mark *m = arg;
	struct rb_chan *c = val;

	(void)key;
	if (c->shard == m->shard)
		pav_rb_chan_dirty(m->b, c);
	return 0;
}

/* Redis may not hold what this node registered on the shard: write it
 * all again, then tell the clients. */
static void shard_rebuild(struct rb_shard *sh)
{
	struct mark m = {sh->b, sh->idx};

	pav_map_each(sh->b->users, mark_user, &m);
	pav_map_each(sh->b->chans, mark_chan, &m);
	sh->resync_due = 1;
	if (sh->b->restore_kept)
		sh->b->restore_kept(sh);
}

/* ---- the sync pass -------------------------------------------------------- */

static void sync_pass(struct rb *b);

/* Every shard whose registry is written again: one "resync" for all. */
static void maybe_resync(struct rb *b)
{
	int due = 0;

	for (size_t i = 0; i < b->nshards; i++) {
		struct rb_shard *sh = &b->shards[i];

		if (sh->resync_due && sh->registered && !sh->ndirty) {
			sh->resync_due = 0;
			due = 1;
		}
	}
	if (due && b->env.resync)
		b->env.resync(b->env.arg);
}

static void sync_done(struct rb *b)
{
	if (--b->sync_out)
		return;
	maybe_resync(b);
	sync_pass(b);
}

/* env->user_gone() for a user with no connection left anywhere; chans: a
 * reply's list of the user's shared channels concerned. */
static void user_gone(struct rb *b, const char *ns, const char *user,
		      const redisReply *chans, int64_t at)
{
	const char **v;

	if (!b->env.user_gone)
		return;
	v = calloc(chans->elements + 1, sizeof(*v));
	if (!v)
		return;
	for (size_t i = 0; i < chans->elements; i++)
		v[i] = chans->element[i]->type == REDIS_REPLY_STRING
			       ? chans->element[i]->str : "";
	b->env.user_gone(b->env.arg, ns, user, v, chans->elements, at);
	free(v);
}

struct user_sync {
	struct rb *b;
	char ns[RB_NS_LEN];
	char name[PAV_MAX_ID_LEN + 1];
};

/* Kept for the presence change the open hooks are about to make (see
 * resume_status in redis_state.c). */
static void resume_chosen(struct rb_user *u, const redisReply *chosen)
{
	u->resume[0] = '\0';
	if (chosen->type == REDIS_REPLY_STRING &&
	    chosen->len < sizeof(u->resume)) {
		memcpy(u->resume, chosen->str, chosen->len);
		u->resume[chosen->len] = '\0';
	}
}

static void user_synced(void *arg, int err, const redisReply *rep)
{
	struct user_sync *x = arg;
	struct rb *b = x->b;
	struct rb_user *u = pav_rb_user(b, x->ns, x->name, 0);

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "user sync");
	if (!err && (rep->elements != 4 ||
		     rep->element[1]->type != REDIS_REPLY_ARRAY))
		err = -EIO;
	if (u) {
		u->busy--;
		if (!err && u->dirty)
			user_clean(b, u);
	}
	if (!err && u && u->gone_ms) {
		int64_t at = u->gone_ms;

		u->gone_ms = 0;
		if (pav_rb_int(rep->element[0]) == 0 && !u->conns.n)
			user_gone(b, x->ns, x->name, rep->element[1], at);
		u = pav_rb_user(b, x->ns, x->name, 0); /* the hooks may act */
	}
	/* set offline by a reaper while its connections here lived on: the
	 * open hooks set the status the user had chosen (not "online") */
	if (!err && u && u->conns.n && pav_rb_int(rep->element[2]) == 1 &&
	    b->env.user_back) {
		resume_chosen(u, rep->element[3]);
		b->env.user_back(b->env.arg, x->ns, x->name);
		u = pav_rb_user(b, x->ns, x->name, 0);
	}
	pav_rb_user_settle(b, u);
	free(x);
	sync_done(b);
}

struct chan_field {
	struct rb *b;
	struct rb_argv *a;
	const char *node;
};

static int add_chan_field(const char *key, void *val, void *arg)
{
	struct chan_field *f = arg;

	pav_rb_av_fmt(f->a, "%s|%s", f->node, key);
	pav_rb_av_fmt(f->a, "%" PRIuPTR, (uintptr_t)val);
	return 0;
}

static void user_sync(struct rb *b, struct rb_user *u)
{
	struct user_sync *x = calloc(1, sizeof(*x));
	struct chan_field f;
	struct rb_argv a;

	if (!x)
		return;
	x->b = b;
	snprintf(x->ns, sizeof(x->ns), "%s", u->ns);
	snprintf(x->name, sizeof(x->name), "%s", u->name);
	pav_rb_av_init(&a);
	pav_rb_ukey(&a, u->ns, u->name, "conns");
	pav_rb_ukey(&a, u->ns, u->name, "chans");
	pav_rb_ukey(&a, u->ns, u->name, "presence");
	pav_rb_nkey(b, &a, "users");
	pav_rb_av_str(&a, b->node);
	pav_rb_av_fmt(&a, "%s\x1f%s", u->ns, u->name);
	pav_rb_av_str(&a, u->status[0] ? u->status : "online");
	pav_rb_av_fmt(&a, "%" PRId64, pav_now_ms());
	pav_rb_av_str(&a, RB_PRESENCE_TTL_MS);
	pav_rb_av_fmt(&a, "%zu", u->conns.n);
	for (size_t i = 0; i < u->conns.n; i++)
		pav_rb_av_fmt(&a, "%s:%" PRIx64, b->node, u->conns.v[i]);
	f = (struct chan_field){b, &a, b->node};
	pav_map_each(u->chans, add_chan_field, &f);
	u->busy++;
	b->sync_out++;
	pav_rb_eval(b, u->shard, PAV_RB_USER_SYNC, 4, &a, user_synced, x);
}

struct chan_sync {
	struct rb *b;
	char ns[RB_NS_LEN];
	char name[PAV_MAX_CHANNEL_LEN];
};

static void chan_synced(void *arg, int err, const redisReply *rep)
{
	struct chan_sync *x = arg;
	struct rb *b = x->b;
	struct rb_chan *c = pav_rb_chan(b, x->ns, x->name, 0);

	err = pav_rb_reply_err(err, rep, -1, "channel sync");
	if (c) {
		c->busy--;
		if (!err && c->dirty)
			chan_clean(b, c);
		pav_rb_chan_settle(b, c);
	}
	free(x);
	sync_done(b);
}

static int add_user_count(const char *key, void *val, void *arg)
{
	struct rb_argv *a = arg;

	pav_rb_av_str(a, key);
	pav_rb_av_fmt(a, "%" PRIuPTR, (uintptr_t)val);
	return 0;
}

static void chan_sync(struct rb *b, struct rb_chan *c)
{
	struct chan_sync *x = calloc(1, sizeof(*x));
	struct rb_argv a;

	if (!x)
		return;
	x->b = b;
	snprintf(x->ns, sizeof(x->ns), "%s", c->ns);
	snprintf(x->name, sizeof(x->name), "%s", c->name);
	pav_rb_av_init(&a);
	pav_rb_member_keys(b, &a, c->ns, c->name);
	pav_rb_av_str(&a, b->node);
	pav_rb_av_fmt(&a, "%s\x1f%s", c->ns, c->name);
	pav_rb_av_fmt(&a, "%" PRId64, c->members);
	pav_map_each(c->users, add_user_count, &a);
	c->busy++;
	b->sync_out++;
	pav_rb_eval(b, c->shard, PAV_RB_CHAN_SYNC, 5, &a, chan_synced, x);
}

struct collect {
	struct rb *b;
	void *items[SYNC_BATCH];
	size_t n;
};

static int ready_to_sync(const struct rb *b, size_t shard, int dirty,
			 int busy)
{
	const struct rb_shard *sh = &b->shards[shard];

	return dirty && !busy && sh->up && sh->registered;
}

static int collect_user(const char *key, void *val, void *arg)
{
	struct collect *k = arg;
	struct rb_user *u = val;

	(void)key;
	if (ready_to_sync(k->b, u->shard, u->dirty, u->busy))
		k->items[k->n++] = u;
	return k->n == SYNC_BATCH;
}

static int collect_chan(const char *key, void *val, void *arg)
{
	struct collect *k = arg;
	struct rb_chan *c = val;

	(void)key;
	if (ready_to_sync(k->b, c->shard, c->dirty, c->busy))
		k->items[k->n++] = c;
	return k->n == SYNC_BATCH;
}

/* One batch at a time; the last answer of a batch starts the next. */
static void sync_pass(struct rb *b)
{
	struct collect *k;
	size_t dirty = 0;

	for (size_t i = 0; i < b->nshards; i++)
		dirty += b->shards[i].ndirty;
	if (!dirty || b->sync_out || !(k = calloc(1, sizeof(*k))))
		return;
	k->b = b;
	b->sync_out++; /* ours, while issuing */
	pav_map_each(b->users, collect_user, k);
	for (size_t i = 0; i < k->n; i++)
		user_sync(b, k->items[i]);
	k->n = 0;
	pav_map_each(b->chans, collect_chan, k);
	for (size_t i = 0; i < k->n; i++)
		chan_sync(b, k->items[i]);
	free(k);
	if (--b->sync_out == 0)
		maybe_resync(b);
}

/* ---- heartbeat and reaper ------------------------------------------------- */

static void heartbeat_done(void *arg, int err, const redisReply *rep)
{
	struct rb_shard *sh = arg;

	sh->hb_out = 0;
	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "heartbeat");
	if (err || rep->elements != 2 || !sh->up)
		return;
	/* alive key gone while we were registered: a reaper may have taken
	 * this node for dead, or Redis lost its data */
	if (sh->registered && pav_rb_int(rep->element[0]) == 0) {
		rlog(PAV_LOG_WARN, "shard %zu: this node's registration was "
		     "lost; registering everything again", sh->idx);
		shard_rebuild(sh);
	}
	sh->registered = 1;
	maybe_resync(sh->b);
	sync_pass(sh->b);
}

static void heartbeat(struct rb_shard *sh)
{
	struct rb *b = sh->b;
	struct rb_argv a;

	if (sh->hb_out || !sh->up)
		return;
	pav_rb_av_init(&a);
	pav_rb_av_str(&a, "pav:nodes");
	pav_rb_nkey(b, &a, "alive");
	pav_rb_av_str(&a, b->node);
	pav_rb_av_fmt(&a, "%" PRId64, b->node_ttl_ms);
	sh->hb_out = 1;
	pav_rb_eval(b, sh->idx, PAV_RB_HEARTBEAT, 2, &a, heartbeat_done, sh);
}

struct reap {
	struct rb_shard *sh;
	char dead[RB_NODE_LEN + 16];
	int64_t last_ms;
	/* with shards: the next shard whose members of the dead node go
	 * before its users here are announced (see reap_step) */
	size_t other;
	struct reap *next; /* the other dead nodes found with it */
};

static void reap_step(struct reap *rp);

static void reap_next(struct reap *rp)
{
	struct reap *next = rp->next;
	struct rb_shard *sh = rp->sh;

	free(rp);
	if (next)
		reap_step(next);
	else
		sh->dead_out = 0;
}

/* {{ns, user, {channel...}}...}: each user has no connection left. */
static void users_gone(struct rb *b, const redisReply *list, int64_t at)
{
	for (size_t i = 0; i < list->elements; i++) {
		const redisReply *e = list->element[i];

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 3 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_STRING ||
		    e->element[2]->type != REDIS_REPLY_ARRAY)
			continue;
		user_gone(b, e->element[0]->str, e->element[1]->str,
			  e->element[2], at);
	}
}

static void reaped(void *arg, int err, const redisReply *rep)
{
	struct reap *rp = arg;
	int64_t state;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "reaper");
	if (err || rep->elements != 2 ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		reap_next(rp);
		return;
	}
	state = pav_rb_int(rep->element[0]);
	users_gone(rp->sh->b, rep->element[1], rp->last_ms);
	if (state == 0) {
		reap_step(rp);
		return;
	}
	rlog(PAV_LOG_INFO, "shard %zu: node %s %s", rp->sh->idx, rp->dead,
	     state == 1 ? "reaped" : "is alive again: left to itself");
	reap_next(rp);
}

/* Another shard's channels of the dead node: done there (or it cannot
 * tell: the announcements had better be weighed with its members than
 * not made), or a next batch. */
static void others_reaped(void *arg, int err, const redisReply *rep)
{
	struct reap *rp = arg;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "reaper");
	if (err || rep->elements != 2 || pav_rb_int(rep->element[0]) != 0)
		rp->other++;
	reap_step(rp);
}

/* The script's arguments up to the mode: 'u' with this shard's lock
 * (channels, then users), 'c' on another shard (its channels only). */
static void reap_args(struct reap *rp, struct rb_argv *a, const char *mode)
{
	pav_rb_av_init(a);
	pav_rb_av_str(a, "pav:nodes");
	pav_rb_av_str(a, rp->dead);
	pav_rb_av_str(a, REAP_BATCH);
	pav_rb_av_fmt(a, "%d", REAP_LOCK_MS);
	pav_rb_av_str(a, mode);
	pav_rb_av_str(a, RB_PRESENCE_TTL_MS);
}

/* The dead node's members of channels on every other shard go first:
 * each shard is reaped on its own, and a user of this shard announced
 * offline to a channel of another is weighed against that channel's
 * count (max_broadcast) without the members that died with it.  Another
 * reaper may hold that shard's lock: popping its channels with it is
 * harmless, each goes once. */
static void reap_step(struct reap *rp)
{
	struct rb *b = rp->sh->b;
	struct rb_argv a;

	if (rp->other == rp->sh->idx)
		rp->other++;
	if (rp->other < b->nshards) {
		reap_args(rp, &a, "c");
		pav_rb_eval(b, rp->other, PAV_RB_REAP, 1, &a, others_reaped,
			    rp);
		return;
	}
	reap_args(rp, &a, "u");
	pav_rb_eval(b, rp->sh->idx, PAV_RB_REAP, 1, &a, reaped, rp);
}

static void dead_found(void *arg, int err, const redisReply *rep)
{
	struct rb_shard *sh = arg;
	struct reap *first = NULL, **tail = &first;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "reaper");
	for (size_t i = 0; !err && i + 1 < rep->elements; i += 2) {
		struct reap *rp = calloc(1, sizeof(*rp));

		if (!rp || rep->element[i]->type != REDIS_REPLY_STRING) {
			free(rp);
			continue;
		}
		rp->sh = sh;
		snprintf(rp->dead, sizeof(rp->dead), "%s",
			 rep->element[i]->str);
		rp->last_ms = pav_rb_int(rep->element[i + 1]);
		rlog(PAV_LOG_WARN, "shard %zu: node %s stopped (last "
		     "heartbeat %" PRId64 "): reaping it", sh->idx, rp->dead,
		     rp->last_ms);
		*tail = rp;
		tail = &rp->next;
	}
	if (first)
		reap_step(first);
	else
		sh->dead_out = 0;
}

static void find_dead(struct rb_shard *sh)
{
	struct rb *b = sh->b;
	struct rb_argv a;

	if (sh->dead_out || !sh->up || !sh->registered ||
	    pav_mono_ms() < sh->reap_from)
		return;
	pav_rb_av_init(&a);
	pav_rb_av_str(&a, "pav:nodes");
	pav_rb_av_fmt(&a, "%" PRId64, b->node_ttl_ms);
	pav_rb_av_fmt(&a, "%d", REAP_LOCK_MS);
	pav_rb_av_str(&a, b->node);
	sh->dead_out = 1;
	pav_rb_eval(b, sh->idx, PAV_RB_FIND_DEAD, 1, &a, dead_found, sh);
}

/* ---- fences ---------------------------------------------------------------- */

const char *pav_rb_fence_next(struct rb_shard *sh, uint64_t *seq)
{
	if (!sh->fence_live || !sh->up) {
		*seq = 0;
		return "";
	}
	*seq = ++sh->fence_seq;
	return sh->fence;
}

/* Runs every waiter whose fence came back (all of them with all). */
static void fences_fire(struct rb_shard *sh, int all)
{
	struct rb_fence_wait *w;

	if (all)
		sh->fence_seen = sh->fence_seq;
	while ((w = sh->fw_head) && w->seq <= sh->fence_seen) {
		sh->fw_head = w->next;
		if (!sh->fw_head)
			sh->fw_tail = NULL;
		w->fn(w->arg);
		free(w);
	}
}

void pav_rb_fence_wait(struct rb_shard *sh, uint64_t seq,
		       void (*fn)(void *arg), void *arg)
{
	struct rb_fence_wait *w;

	if (!seq || seq <= sh->fence_seen || !sh->r ||
	    !(w = calloc(1, sizeof(*w)))) {
		fn(arg);
		return;
	}
	*w = (struct rb_fence_wait){NULL, seq, fn, arg};
	if (sh->fw_tail)
		sh->fw_tail->next = w;
	else
		sh->fw_head = w;
	sh->fw_tail = w;
}

static void fence_message(struct rb_shard *sh, const char *data, size_t len)
{
	char buf[24];
	uint64_t seq;

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < 23 ? len : 23), data);
	seq = strtoull(buf, NULL, 10);
	if (seq > sh->fence_seen && seq <= sh->fence_seq)
		sh->fence_seen = seq;
	fences_fire(sh, 0);
}

static void fence_subscribed(void *arg, int err, const redisReply *rep)
{
	struct rb_shard *sh = arg;

	sh->fence_out = 0;
	if (!err && sh->r) {
		sh->fence_live = 1;
		if (sh->fence_refused)
			rlog(PAV_LOG_INFO, "shard %zu: subscribed to %s",
			     sh->idx, sh->fence);
		sh->fence_refused = 0;
	} else if (err == -EACCES && !sh->fence_refused) {
		sh->fence_refused = 1;
		rlog(PAV_LOG_ERROR, "shard %zu: Redis refuses SUBSCRIBE %s "
		     "(%s): catch-ups (recover, since) on this node do not "
		     "wait for the live feed; trying again each second",
		     sh->idx, sh->fence, rep && rep->str ? rep->str
							: "refused");
	}
}

/* Without its fence channel a catch-up does not wait for a fence (one
 * would never come back): the SUBSCRIBE goes at every `up` and each
 * second until confirmed. */
static void fence_subscribe(struct rb_shard *sh)
{
	if (sh->fence_live || sh->fence_out || !sh->r || !sh->up)
		return;
	if (!pav_redis_subscribe(sh->r, sh->fence, strlen(sh->fence),
				 fence_subscribed, sh))
		sh->fence_out = 1;
}

/* ---- token revocations ---------------------------------------------------- */

/* The channel is confirmed: what went out on it before (the node started
 * later, or its pub/sub connection was down) is read from the keys. */
static void revoked_catch_up(struct rb_shard *sh)
{
	if (sh->b->catch_up)
		sh->b->catch_up(sh);
}

static void revoked_subscribed(void *arg, int err, const redisReply *rep)
{
	struct rb_shard *sh = arg;

	sh->revoked_out = 0;
	if (!err && sh->r) {
		sh->revoked_live = 1;
		if (sh->revoked_refused)
			rlog(PAV_LOG_INFO, "shard %zu: subscribed to %s",
			     sh->idx, sh->revoked);
		sh->revoked_refused = 0;
		revoked_catch_up(sh);
	} else if (err == -EACCES && !sh->revoked_refused) {
		sh->revoked_refused = 1;
		rlog(PAV_LOG_ERROR, "shard %zu: Redis refuses SUBSCRIBE %s "
		     "(%s): this node would miss token revocations, so it is "
		     "not ready; trying again each second", sh->idx,
		     sh->revoked, rep && rep->str ? rep->str : "refused");
	}
}

/* A node that does not hear revocations is not ready (pav_rb_ready): the
 * SUBSCRIBE goes at every `up` and each second until confirmed.  Once it
 * is, the client restores it on every new pub/sub connection by itself
 * (before `up` or `resync`), and the node catches up then. */
static void revoked_subscribe(struct rb_shard *sh)
{
	if (sh->revoked_live || sh->revoked_out || !sh->r || !sh->up)
		return;
	if (!pav_redis_subscribe(sh->r, sh->revoked, strlen(sh->revoked),
				 revoked_subscribed, sh))
		sh->revoked_out = 1;
}

/* ---- publication channels Redis refused ------------------------------------ */

struct rb_refused {
	int out; /* its SUBSCRIBE is in flight */
};

struct refused_try {
	struct rb_shard *sh;
	char name[];
};

void pav_rb_refused_forget(struct rb_shard *sh, const char *name)
{
	if (sh->refused)
		free(pav_map_del(sh->refused, name));
}

static void refused_subscribed(void *arg, int err, const redisReply *rep)
{
	struct refused_try *t = arg;
	struct rb_shard *sh = t->sh;
	struct rb_refused *f = sh->r && sh->refused
			       ? pav_map_get(sh->refused, t->name) : NULL;

	(void)rep;
	if (f && !err) {
		pav_rb_refused_forget(sh, t->name);
		rlog(PAV_LOG_INFO, "shard %zu: subscribed to %s again: its "
		     "local subscribers get resync", sh->idx, t->name);
		sh->refused_back = 1;
	} else if (f) {
		f->out = 0;
	}
	free(t);
}

static int refused_retry(const char *name, void *val, void *arg)
{
	struct rb_refused *f = val;
	struct rb_shard *sh = arg;
	struct refused_try *t;
	size_t n = strlen(name);

	if (f->out || !(t = malloc(sizeof(*t) + n + 1)))
		return 0;
	t->sh = sh;
	memcpy(t->name, name, n + 1);
	if (pav_redis_subscribe(sh->r, name, n, refused_subscribed, t))
		free(t);
	else
		f->out = 1;
	return 0;
}

/* Each second while up: every refused publication channel again; those
 * back since the last tick mean one resync for them all. */
static void refused_subscribe(struct rb_shard *sh)
{
	if (sh->refused_back && sh->b->env.resync) {
		sh->refused_back = 0;
		sh->b->env.resync(sh->b->env.arg);
	}
	if (sh->refused && sh->r && sh->up)
		pav_map_each(sh->refused, refused_retry, sh);
}

/* A publication channel with local subscribers that Redis refused on a
 * new pub/sub connection: they miss its publications until Redis allows
 * it again, then get resync.  Said once per channel. */
static void refused_add(struct rb_shard *sh, const char *name,
			const char *why)
{
	struct rb_refused *f;

	if (sh->refused && pav_map_get(sh->refused, name))
		return;
	if (!sh->refused)
		sh->refused = pav_map_new();
	f = calloc(1, sizeof(*f));
	if (!sh->refused || !f || pav_map_put(sh->refused, name, f)) {
		free(f);
		rlog(PAV_LOG_ERROR, "shard %zu: Redis refuses SUBSCRIBE %s "
		     "(%s) and memory is short: its local subscribers get "
		     "nothing from it", sh->idx, name, why);
		return;
	}
	rlog(PAV_LOG_ERROR, "shard %zu: Redis refuses SUBSCRIBE %s (%s): "
	     "its local subscribers miss its publications; trying again "
	     "each second", sh->idx, name, why);
}

/* ---- client events ------------------------------------------------------- */

static void on_up(void *arg)
{
	struct rb_shard *sh = arg;

	sh->up = 1;
	sh->registered = 0;
	/* after an outage every node's alive key may have expired while
	 * Redis was away: give the others node_ttl to come back and
	 * heartbeat before anyone is taken for dead.  At a node's first
	 * connection too: it cannot tell whether Redis has just come back
	 * (a node killed before it started is reaped node_ttl later) */
	sh->reap_from = pav_mono_ms() + sh->b->node_ttl_ms;
	rlog(PAV_LOG_INFO, "shard %zu: connected (node %s)", sh->idx,
	     sh->b->node);
	if (sh->was_up)
		shard_rebuild(sh);
	sh->was_up = 1;
	fence_subscribe(sh);
	if (sh->revoked_live)
		revoked_catch_up(sh); /* restored with the connection */
	revoked_subscribe(sh);
	heartbeat(sh);
}

static void on_down(void *arg)
{
	struct rb_shard *sh = arg;

	sh->up = 0;
	sh->registered = 0;
	rlog(PAV_LOG_WARN, "shard %zu: unreachable; store calls fail until "
	     "it is back", sh->idx);
	fences_fire(sh, 1); /* they will not come: clients get resync */
}

static void on_resync(void *arg)
{
	struct rb_shard *sh = arg;

	fences_fire(sh, 1);
	if (sh->revoked_live)
		revoked_catch_up(sh);
	if (sh->b->env.resync)
		sh->b->env.resync(sh->b->env.arg);
}

/* A channel Redis refused when the pub/sub connection was replaced (an
 * ACL change took it away, and Redis closed the old connection): the
 * revocation and fence channels are subscribed again each second as at
 * their first `up`, a publication channel likewise (refused_add). */
static void on_refused(void *arg, const char *channel, size_t clen,
		       const redisReply *rep)
{
	struct rb_shard *sh = arg;
	const char *why = rep && rep->str ? rep->str : "refused";

	(void)clen;
	if (!strcmp(channel, sh->revoked)) {
		sh->revoked_live = 0;
		revoked_subscribed(sh, -EACCES, rep);
	} else if (!strcmp(channel, sh->fence)) {
		sh->fence_live = 0;
		fences_fire(sh, 1); /* those published there will not come */
		fence_subscribed(sh, -EACCES, rep);
	} else {
		refused_add(sh, channel, why);
	}
}

static void on_message(void *arg, const char *channel, size_t clen,
		       const char *data, size_t dlen)
{
	struct rb_shard *sh = arg;

	if (clen == strlen(sh->fence) && !memcmp(channel, sh->fence, clen)) {
		fence_message(sh, data, dlen);
		return;
	}
	if (clen == strlen(sh->revoked) &&
	    !memcmp(channel, sh->revoked, clen)) {
		if (sh->b->heard_revocation)
			sh->b->heard_revocation(sh, data, dlen);
		return;
	}
	if (sh->b->on_message)
		sh->b->on_message(sh, channel, clen, data, dlen);
}

/* ---- shutdown: the clients go before the event loop ------------------------ */

static void clients_destroy(struct rb *b)
{
	for (size_t i = 0; b->shards && i < b->nshards; i++) {
		struct pav_redis *r = b->shards[i].r;

		b->shards[i].r = NULL;
		b->shards[i].up = 0;
		b->shards[i].registered = 0;
		pav_redis_destroy(r); /* fails what is pending: -ECANCELED */
		fences_fire(&b->shards[i], 1);
	}
}

void pav_rb_shutdown(void *self)
{
	struct rb *b = self;

	b->shut = 1;
	clients_destroy(b);
}

/* ---- create, destroy ------------------------------------------------------ */

/* The first line of path (key: the setting that names it, for messages). */
static int read_password(const char *key, const char *path, char **out,
			 char *err, size_t errlen)
{
	size_t len, n;
	char *buf;
	int rc = pav_secret_read(path, PASSWORD_FILE_MAX, &buf, &len);

	*out = NULL;
	if (rc == -EFBIG)
		snprintf(err, errlen, "%s: %s: larger than %d bytes", key, path,
			 PASSWORD_FILE_MAX);
	else if (rc)
		snprintf(err, errlen, "%s: cannot open %s: %s", key, path,
			 pav_secret_why(rc));
	if (rc)
		return rc;
	n = strcspn(buf, "\r\n"); /* a NUL in the file ends the line too */
	buf[n] = '\0';
	if (n > PASSWORD_MAX) {
		snprintf(err, errlen, "%s: %s: the first line is longer "
			 "than %d bytes", key, path, PASSWORD_MAX);
		rc = -EINVAL;
	} else if (!n) {
		snprintf(err, errlen, "%s: %s: the first line is empty",
			 key, path);
		rc = -EINVAL;
	} else if (!(*out = strdup(buf))) {
		rc = -ENOMEM;
	}
	/* every way out: a refused line may still be most of a secret */
	pav_secret_free(buf, len);
	return rc;
}

/* One Redis server per url, or one master the sentinels name. */
static size_t nservers(const struct pav_store_config *cfg)
{
	return cfg->nurls ? cfg->nurls : cfg->nsentinels ? 1 : 0;
}

/* "sentinel" -> rc (the configuration checked each part already). */
static int sentinel_config(const struct pav_store_config *cfg,
			   struct pav_redis_config *rc, char *err,
			   size_t errlen)
{
	char why[160];

	pav_redis_config_defaults(rc);
	if (cfg->nsentinels > PAV_REDIS_MAX_SENTINELS ||
	    !pav_redis_master_name_ok(cfg->sentinel_master)) {
		snprintf(err, errlen, "sentinel: too many addresses or a bad "
			 "master name");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->nsentinels; i++) {
		if (pav_redis_parse_sentinel(cfg->sentinels[i],
					     &rc->sentinels[i], why,
					     sizeof(why))) {
			snprintf(err, errlen, "sentinel.addresses[%zu]: %s", i,
				 why);
			return -EINVAL;
		}
	}
	rc->nsentinels = (unsigned)cfg->nsentinels;
	snprintf(rc->master, sizeof(rc->master), "%s", cfg->sentinel_master);
	rc->db = cfg->sentinel_db;
	rc->tls = cfg->sentinel_tls;
	if (cfg->sentinel_master_user)
		snprintf(rc->user, sizeof(rc->user), "%s",
			 cfg->sentinel_master_user);
	if (cfg->sentinel_user)
		snprintf(rc->sentinel_user, sizeof(rc->sentinel_user), "%s",
			 cfg->sentinel_user);
	return 0;
}

static int parse_urls(struct rb *b, const struct pav_store_config *cfg,
		      struct pav_redis_config *rc, const char *password,
		      char *err, size_t errlen)
{
	const char *key = cfg->nurls > 1 ? "shards"
			  : cfg->nurls    ? "url"
					  : "sentinel";
	char why[256];

	for (size_t i = 0; i < nservers(cfg); i++) {
		if (!cfg->nurls) {
			if (sentinel_config(cfg, &rc[i], err, errlen))
				return -EINVAL;
		} else if (pav_redis_parse_url(cfg->urls[i], &rc[i], why,
					       sizeof(why))) {
			snprintf(err, errlen, "%s[%zu]: %s", key, i, why);
			return -EINVAL;
		}
		rc[i].command_timeout_ms = cfg->command_timeout_ms;
		if (rc[i].db) {
			snprintf(b->shards[i].prefix, sizeof(b->shards[i].prefix),
				 "pav:p@%d:", rc[i].db);
			snprintf(b->shards[i].fence, sizeof(b->shards[i].fence),
				 "pav:f@%d:%s", rc[i].db, b->node);
			snprintf(b->shards[i].revoked,
				 sizeof(b->shards[i].revoked), "pav:revoked@%d",
				 rc[i].db);
		} else {
			snprintf(b->shards[i].prefix, sizeof(b->shards[i].prefix),
				 "pav:p:");
			snprintf(b->shards[i].fence, sizeof(b->shards[i].fence),
				 "pav:f:%s", b->node);
			snprintf(b->shards[i].revoked,
				 sizeof(b->shards[i].revoked), "pav:revoked");
		}
		if (password && rc[i].password) {
			snprintf(err, errlen, "%s[%zu]: a password in the URL "
				 "and a password_file: give one of them",
				 key, i);
			return -EINVAL;
		}
		if (password) {
			pav_redis_config_clear(&rc[i]);
			rc[i].password = (char *)password; /* copied by create */
		}
		if (rc[i].user[0] && !rc[i].password) {
			snprintf(err, errlen, "%s[%zu]: the user name needs a "
				 "password, in the URL or in password_file",
				 key, i);
			return -EINVAL;
		}
	}
	return 0;
}

static int register_scripts(struct rb_shard *sh)
{
	for (int s = 0; s < PAV_RB_NSCRIPTS; s++) {
		sh->script[s] = pav_redis_script(sh->r, pav_rb_lua[s]);
		if (sh->script[s] < 0)
			return sh->script[s];
	}
	return 0;
}

static int clients_create(struct rb *b, struct lws_context *ctx,
			  struct pav_redis_config *rc, char *err,
			  size_t errlen)
{
	for (size_t i = 0; i < b->nshards; i++) {
		struct rb_shard *sh = &b->shards[i];
		const struct pav_redis_events ev = {
			.arg = sh,
			.up = on_up,
			.down = on_down,
			.message = on_message,
			.resync = on_resync,
			.refused = on_refused,
		};

		sh->r = pav_redis_create(ctx, &rc[i], &ev);
		if (!sh->r || register_scripts(sh)) {
			snprintf(err, errlen, "cannot make the Redis client of "
				 "%s", b->nshards > 1 ? "a shard"
				 : rc[i].nsentinels ? "sentinel" : "url");
			return -EINVAL;
		}
	}
	return 0;
}

void pav_rb_destroy(void *self)
{
	struct rb *b = self;

	if (!b)
		return;
	clients_destroy(b); /* no shutdown before: the loop stands */
	for (size_t i = 0; b->shards && i < b->nshards; i++)
		pav_map_free(b->shards[i].refused, free);
	pav_map_free(b->users, user_free);
	pav_map_free(b->chans, chan_free);
	pav_revkeep_free(b->kept);
	free(b->shards);
	free(b->status_header);
	free(b);
}

/* The TLS context of the rediss:// servers, or of the sentinels and their
 * master (none without TLS), made under --check too so that its files are
 * read. */
static int tls_setup(const struct pav_store_config *cfg,
		     struct pav_redis_config *rc, SSL_CTX **ctx, char *err,
		     size_t errlen)
{
	for (size_t i = 0; i < nservers(cfg); i++) {
		if (!rc[i].tls)
			continue;
		if (!*ctx && !(*ctx = pav_redis_tls_ctx(cfg->tls_ca_file,
							cfg->tls_cert_file,
							cfg->tls_key_file,
							err, errlen)))
			return -EINVAL;
		rc[i].tls_ctx = *ctx;
	}
	return 0;
}

static int rb_setup(struct rb *b, const struct pav_store_config *cfg,
		    const struct pav_backend_env *env, char *err,
		    size_t errlen)
{
	struct pav_redis_config *rc = calloc(nservers(cfg), sizeof(*rc));
	char *password = NULL;
	SSL_CTX *tls = NULL;
	int rc_err = rc ? 0 : -ENOMEM;

	if (!rc_err && cfg->password_file)
		rc_err = read_password("password_file", cfg->password_file,
				       &password, err, errlen);
	if (!rc_err)
		rc_err = parse_urls(b, cfg, rc, password, err, errlen);
	if (!rc_err && cfg->sentinel_password_file)
		rc_err = read_password("sentinel.sentinel_password_file",
				       cfg->sentinel_password_file,
				       &rc[0].sentinel_password, err, errlen);
	if (!rc_err)
		rc_err = tls_setup(cfg, rc, &tls, err, errlen);
	if (!rc_err && env->lws)
		rc_err = clients_create(b, env->lws, rc, err, errlen);
	SSL_CTX_free(tls); /* each client holds its own reference */
	for (size_t i = 0; rc && i < nservers(cfg); i++) {
		if (rc[i].password == password)
			rc[i].password = NULL;
		pav_redis_config_clear(&rc[i]);
	}
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(rc);
	if (rc_err == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return rc_err;
}

int pav_rb_create(const struct pav_store_config *cfg,
		  const struct pav_backend_env *env, void **self, char *err,
		  size_t errlen)
{
	struct rb *b = calloc(1, sizeof(*b));
	uint64_t id = 0;
	int rc;

	*self = NULL;
	if (!cfg || !nservers(cfg)) {
		free(b);
		snprintf(err, errlen, "url: required with \"backend\": "
			 "\"redis\"");
		return -EINVAL;
	}
	if (!b || !(b->shards = calloc(nservers(cfg), sizeof(*b->shards))) ||
	    !(b->users = pav_map_new()) || !(b->chans = pav_map_new()) ||
	    !(b->kept = pav_revkeep_new(PAV_MAX_KEPT_REVOCATIONS))) {
		pav_rb_destroy(b);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->env = *env;
	b->nshards = nservers(cfg);
	for (size_t i = 0; i < b->nshards; i++)
		b->shards[i] = (struct rb_shard){.b = b, .idx = i};
	b->node_ttl_ms = (int64_t)(cfg->node_ttl_s > 0 ? cfg->node_ttl_s
						       : PAV_DEF_NODE_TTL_S) *
			 1000;
	b->inbox_size = cfg->inbox_size ? cfg->inbox_size : PAV_DEF_INBOX_SIZE;
	b->kept_full_log.per_s = 1;
	b->catchup_bad_log.per_s = 1;
	if (pav_random_u64(&id))
		id = (uint64_t)pav_now_ms() ^ ((uint64_t)(uintptr_t)b << 16);
	snprintf(b->node, sizeof(b->node), "%016" PRIx64, id);
	b->rnd = id | 1;
	rc = rb_setup(b, cfg, env, err, errlen);
	if (rc) {
		pav_rb_destroy(b);
		return rc;
	}
	if (env->lws)
		rlog(PAV_LOG_INFO, "node %s: %zu Redis server%s, node_ttl %ds",
		     b->node, b->nshards, b->nshards > 1 ? "s" : "",
		     (int)(b->node_ttl_ms / 1000));
	*self = b;
	return 0;
}

int pav_rb_ready(void *self)
{
	struct rb *b = self;

	/* a shard's kept revocations not written back yet, or its
	 * revocations not heard: not ready */
	for (size_t i = 0; i < b->nshards; i++)
		if (!b->shards[i].up || !b->shards[i].registered ||
		    !b->shards[i].revoked_live || b->shards[i].restore_due)
			return 0;
	return b->nshards > 0 && !b->restoring;
}

void pav_rb_tick(void *self, int64_t now_ms)
{
	struct rb *b = self;

	(void)now_ms;
	pav_revkeep_expire(b->kept, pav_mono_ms());
	for (size_t i = 0; i < b->nshards; i++) {
		if (b->shards[i].restore_due && b->shards[i].up &&
		    b->restore_kept)
			b->restore_kept(&b->shards[i]);
		revoked_subscribe(&b->shards[i]);
		fence_subscribe(&b->shards[i]);
		refused_subscribe(&b->shards[i]);
		heartbeat(&b->shards[i]);
		find_dead(&b->shards[i]);
	}
	sync_pass(b);
}
