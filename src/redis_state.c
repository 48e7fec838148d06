/*
 * redis_state.c — the "redis" backend's state (state.h): every call is a
 * script (redis_scripts.h) on the shard of the user or channel it is
 * about, answered from the client's reply callback; a call that cannot be
 * queued (the shard is down, the queue is full) answers -EIO before it
 * returns.  Changes of this node's connections and memberships also go
 * into the node's registry (redis_node.h), so that they can be written
 * again whenever Redis may have lost them.
 *
 * What this backend adds to the contract of state.h, as memory_state.c:
 * conn_add of an id the user already has does not count it twice;
 * notification ids are "n" + 16 hex digits, unique within one inbox;
 * inbox_list's since is exclusive; createdAt is Redis' clock and strictly
 * increases within one inbox (a tie is bumped by 1 ms); an added
 * notification is listed once its delivery was published (the broker's
 * publication with its id as key on the user's channel), or 10 s later.
 *
 * A presence change is applied and announced by one script on the user's
 * shard: with one Redis every node sees one user's changes in the order
 * they were applied.  With shards, channels of other shards get the
 * announcement from this node right after the script answered: in order
 * per node, and a connection subscribed to two of its channels on two
 * shards may get it twice.
 *
 * A token revocation is a key of the user's (Redis ends it), and also a
 * record in the node's own bounded copy (revkeep.h) of the ones made
 * through it: the node's checks read that copy first, and it writes them
 * back whenever the shard may have lost them (shard_rebuild: back after
 * an outage or a failover, or its registration found gone), never
 * lowering a later cut-off another node wrote.  The script that writes
 * the key also publishes the revocation ('V', redis_node.h) on the
 * shard's revocation channel, which every node listens to: each keeps it
 * as its own (heard_revocation), refuses the old tokens from its copy
 * and writes it back as well.  A node that was not listening then (its
 * feed down, or started later) reads the key at each check, and keeps
 * the shard's keys from a catch-up (SCAN) once it listens again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "channel.h"
#include "clock.h"
#include "ids.h"
#include "log.h"
#include "msg.h"
#include "note.h"
#include "redis_backend.h"
#include "redis_node.h"
#include "revkeep.h"
#include "tally.h"

#define STAMP_MARK "#pav-stamp#"
#define ID_LEN 18 /* "n" + 16 hex + NUL */
#define ADD_TRIES 3

#define rlog(level, ...) pav_log(level, "store", __VA_ARGS__)

static int is_str(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_STRING;
}

/* The shared context of one call: where the answer goes. */
struct call {
	struct rb *b;
	char ns[RB_NS_LEN];
	char name[PAV_MAX_CHANNEL_LEN]; /* user or channel */
	void (*cb)(void); /* the caller's, cast back by each answer */
	void *arg;
};

typedef void (*any_fn)(void);

static struct call *call_new(struct rb *b, const char *ns, const char *name,
			     any_fn cb, void *arg, size_t size)
{
	struct call *c = calloc(1, size);

	if (!c)
		return NULL;
	c->b = b;
	snprintf(c->ns, sizeof(c->ns), "%s", ns);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->cb = cb;
	c->arg = arg;
	return c;
}

static size_t user_shard(struct rb *b, const char *ns, const char *user)
{
	return pav_rb_shard_of(b, ns, user);
}

/* 1 when this node's copy refuses tok (NULL: not checked). */
static int kept_refuses(struct rb *b, const char *ns, const char *user,
			const struct pav_token_iat *tok)
{
	int64_t at;

	return tok && pav_revkeep_get(b->kept, ns, user, pav_mono_ms(), &at) &&
	       pav_token_revoked(tok, at);
}

/* ---- connections ------------------------------------------------------- */

struct conn_call {
	struct call c;
	uint64_t conn;
};

/* A connection joined the user's others, maybe on other nodes: their
 * status (which may have been set before this node held the user) is
 * what a rebuild of this node restores.  At the user's first connection
 * the open hooks are about to set one, and remember it then. */
static void remember_joined(struct rb *b, const char *ns, const char *user,
			    int64_t count, const redisReply *status)
{
	if (count > 1 && is_str(status) && status->len)
		pav_rb_remember_status(b, ns, user, status->str, status->len);
}

static void conn_added(void *arg, int err, const redisReply *rep)
{
	struct conn_call *x = arg;
	struct rb *b = x->c.b;
	struct rb_user *u = pav_rb_user(b, x->c.ns, x->c.name, 0);
	pav_state_count_fn cb = (pav_state_count_fn)x->c.cb;
	int64_t count = 0;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "conn_add");
	if (!err && rep->elements != 3)
		err = -EIO;
	if (!err) {
		count = pav_rb_int(rep->element[1]);
		remember_joined(b, x->c.ns, x->c.name, count, rep->element[2]);
		if (pav_rb_int(rep->element[0]) == -1)
			err = -EKEYREVOKED;
		else if (pav_rb_int(rep->element[0]) != 1)
			err = -EUSERS;
		else if (u && !pav_conn_ids_has(&u->conns, x->conn) &&
			 pav_conn_ids_push(&u->conns, x->conn))
			pav_rb_user_dirty(b, u); /* counted there, not here */
		if (u && !err)
			u->gone_ms = 0;
	} else {
		/* Redis may have counted it: make it forget */
		pav_rb_user_dirty(b, u);
	}
	if (u) {
		u->busy--;
		pav_rb_user_settle(b, u);
	}
	if (cb)
		cb(x->c.arg, err, count);
	free(x);
}

/* What conn_add and conn_remove share: the user's entry (busy until the
 * answer), the call in *x, and a begun with the keys (conn_add's with
 * the user's presence and token revocation, `adding`), the connection's
 * field and this node.
 * NULL (cb got -ENOMEM) when out of memory. */
static struct rb_user *conn_start(struct rb *b, const char *ns,
				  const char *user, uint64_t conn, int adding,
				  pav_state_count_fn cb, void *arg,
				  struct conn_call **x, struct rb_argv *a)
{
	struct rb_user *u = pav_rb_user(b, ns, user, 1);

	*x = u ? (struct conn_call *)call_new(b, ns, user, (any_fn)cb, arg,
					      sizeof(**x))
	       : NULL;
	if (!*x) {
		pav_rb_user_settle(b, u);
		if (cb)
			cb(arg, -ENOMEM, 0);
		return NULL;
	}
	(*x)->conn = conn;
	u->busy++;
	pav_rb_av_init(a);
	pav_rb_ukey(a, ns, user, "conns");
	pav_rb_nkey(b, a, "users");
	if (adding) {
		pav_rb_ukey(a, ns, user, "presence");
		pav_rb_ukey(a, ns, user, "revoked");
	}
	pav_rb_av_fmt(a, "%s:%" PRIx64, b->node, conn);
	pav_rb_av_str(a, b->node);
	return u;
}

/* A token's iat as conn_add's script reads it: %.17g gives the double
 * back exactly. */
static void iat_arg(struct rb_argv *a, const struct pav_token_iat *tok)
{
	if (!tok)
		pav_rb_av_str(a, "-");
	else if (!tok->has)
		pav_rb_av_str(a, "");
	else
		pav_rb_av_fmt(a, "%.17g", tok->s);
}

static void rb_conn_add(void *self, const char *ns, const char *user,
			uint64_t conn, int max_per_user,
			const struct pav_token_iat *tok, pav_state_count_fn cb,
			void *arg)
{
	struct rb *b = self;
	struct conn_call *x;
	struct rb_argv a;
	struct rb_user *u;

	/* refused by this node's copy: also while Redis lacks it */
	if (kept_refuses(b, ns, user, tok)) {
		if (cb)
			cb(arg, -EKEYREVOKED, 0);
		return;
	}
	u = conn_start(b, ns, user, conn, 1, cb, arg, &x, &a);
	if (!u)
		return;
	pav_rb_av_fmt(&a, "%d", max_per_user > 0 ? max_per_user : 0);
	pav_rb_av_fmt(&a, "%s\x1f%s", ns, user);
	iat_arg(&a, tok);
	pav_rb_eval(b, u->shard, PAV_RB_CONN_ADD, 4, &a, conn_added, x);
}

static void conn_removed(void *arg, int err, const redisReply *rep)
{
	struct conn_call *x = arg;
	struct rb *b = x->c.b;
	struct rb_user *u = pav_rb_user(b, x->c.ns, x->c.name, 0);
	pav_state_count_fn cb = (pav_state_count_fn)x->c.cb;
	int64_t count = 0;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER, "conn_remove");
	if (!err)
		count = rep->integer;
	if (u) {
		u->busy--;
		if (err)
			pav_rb_user_dirty(b, u); /* gone_ms stays: settle later */
		else
			u->gone_ms = 0;
		pav_rb_user_settle(b, u);
	}
	if (cb)
		cb(x->c.arg, err, count);
	free(x);
}

static void rb_conn_remove(void *self, const char *ns, const char *user,
			   uint64_t conn, pav_state_count_fn cb, void *arg)
{
	struct rb *b = self;
	struct conn_call *x;
	struct rb_argv a;
	struct rb_user *u = conn_start(b, ns, user, conn, 0, cb, arg, &x, &a);

	if (!u)
		return;
	if (pav_conn_ids_remove(&u->conns, conn) && !u->conns.n) {
		u->gone_ms = pav_now_ms();
		u->resume[0] = '\0'; /* no connection left to reopen */
	}
	pav_rb_av_fmt(&a, "%s\x1f%s", ns, user);
	pav_rb_eval(b, u->shard, PAV_RB_CONN_REMOVE, 2, &a, conn_removed, x);
}

static void counted(void *arg, int err, const redisReply *rep)
{
	struct call *x = arg;
	pav_state_count_fn cb = (pav_state_count_fn)x->cb;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER, "user_count");
	cb(x->arg, err, err ? 0 : rep->integer);
	free(x);
}

static void rb_user_count(void *self, const char *ns, const char *user,
			  pav_state_count_fn cb, void *arg)
{
	struct rb *b = self;
	struct call *x = call_new(b, ns, user, (any_fn)cb, arg, sizeof(*x));
	struct rb_argv a;

	if (!x) {
		cb(arg, -ENOMEM, 0);
		return;
	}
	pav_rb_av_init(&a);
	pav_rb_av_str(&a, "HLEN");
	pav_rb_ukey(&a, ns, user, "conns");
	pav_rb_command(b, user_shard(b, ns, user), &a, counted, x);
}

/* ---- token revocations ------------------------------------------------- */

/* The node's own copy of a revocation it learnt (made through it, or
 * heard): what it writes back into a Redis that lost it, and what its
 * own checks read first. */
static void keep(struct rb *b, const char *ns, const char *user, int64_t at_ms,
		 int64_t ttl_ms)
{
	int64_t now = pav_mono_ms();
	int rc = pav_revkeep_put(b->kept, ns, user, at_ms, now + ttl_ms, now);

	/* one line a second at most: each API call past the bound drops one */
	if (rc == 1 && pav_log_budget_take(&b->kept_full_log, now))
		rlog(PAV_LOG_WARN,
		     "%d token revocations kept already: the one that ends "
		     "first is no longer kept by this node (Redis still "
		     "holds it; %" PRIu64 " so far)",
		     PAV_MAX_KEPT_REVOCATIONS, pav_revkeep_dropped(b->kept));
	else if (rc)
		rlog(PAV_LOG_WARN,
		     "a token revocation of user %s is not kept by this "
		     "node (%s)",
		     user, strerror(-rc));
}

struct revoke_call {
	struct call c;
	int64_t at_ms;
	int ttl_s;
};

static void revoke_set(void *arg, int err, const redisReply *rep)
{
	struct revoke_call *x = arg;
	pav_done_fn cb = (pav_done_fn)x->c.cb;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER, "tokens_revoke");
	/* kept only when written: 0 is a later cut-off the key holds (and
	 * keeps, with its own end), which is not this call's to keep */
	if (!err && rep->integer == 1)
		keep(x->c.b, x->c.ns, x->c.name, x->at_ms,
		     (int64_t)x->ttl_s * 1000);
	if (cb)
		cb(x->c.arg, err);
	free(x);
}

/* The revocation's key, at_ms, its time to live in ms, and where and
 * what the script publishes when it writes, as the script takes them;
 * -ENOMEM (nothing to free) or 0. */
static int revoke_args(struct rb_argv *a, struct rb *b, const char *ns,
		       const char *user, int64_t at_ms, int64_t ttl_ms,
		       int keep_equal)
{
	char *msg = pav_rb_revocation_msg(ns, user, at_ms, ttl_ms);

	if (!msg)
		return -ENOMEM;
	pav_rb_av_init(a);
	pav_rb_ukey(a, ns, user, "revoked");
	pav_rb_av_fmt(a, "%" PRId64, at_ms);
	pav_rb_av_fmt(a, "%" PRId64, ttl_ms);
	pav_rb_av_str(a, keep_equal ? "1" : "0");
	pav_rb_av_str(a, b->shards[user_shard(b, ns, user)].revoked);
	pav_rb_av_fmt(a, "%s", msg);
	free(msg);
	return 0;
}

/* A revocation learnt from Redis: kept, unless this node's copy holds a
 * later cut-off, which stays with its own end (as the key's script keeps
 * it). */
static void keep_unless_later(struct rb *b, const char *ns, const char *user,
			      int64_t at_ms, int64_t ttl_ms)
{
	int64_t held;

	if (pav_revkeep_get(b->kept, ns, user, pav_mono_ms(), &held) &&
	    held > at_ms)
		return;
	keep(b, ns, user, at_ms, ttl_ms);
}

/* A revocation another node (or this one) wrote on shard sh: kept like
 * one made here, unless this node's copy holds a later cut-off, which
 * stays with its own end (as the key's script keeps it). */
static void heard_revocation(struct rb_shard *sh, const char *data, size_t dlen)
{
	struct rb *b = sh->b;
	char buf[512]; /* the longest names fit (test_redis_wire.c) */
	struct rb_wire w;
	/* a NUL inside would cut a name short: another user's */
	int bad = dlen >= sizeof(buf) || memchr(data, '\0', dlen);

	if (!bad) {
		memcpy(buf, data, dlen);
		buf[dlen] = '\0';
		bad = pav_rb_wire_parse(b->node, buf, dlen, &w) ||
		      w.kind != 'V';
	}
	if (bad) {
		rlog(PAV_LOG_WARN,
		     "shard %zu: a malformed token revocation message dropped",
		     sh->idx);
		return;
	}
	keep_unless_later(b, w.type, w.key, w.at_ms, w.ttl_ms);
}

/* One key per revoked user, on the user's shard: Redis drops it at its
 * end, and it outlives any node.  The node keeps a copy once it is
 * written (see revocations_restore). */
static void rb_tokens_revoke(void *self, const char *ns, const char *user,
			     int64_t at_ms, int ttl_s, pav_done_fn cb,
			     void *arg)
{
	struct rb *b = self;
	struct revoke_call *x = (struct revoke_call *)call_new(
		b, ns, user, (any_fn)cb, arg, sizeof(*x));
	struct rb_argv a;

	if (!x) {
		if (cb)
			cb(arg, -ENOMEM);
		return;
	}
	x->at_ms = at_ms;
	x->ttl_s = ttl_s;
	if (revoke_args(&a, b, ns, user, at_ms, (int64_t)ttl_s * 1000, 0)) {
		free(x);
		if (cb)
			cb(arg, -ENOMEM);
		return;
	}
	pav_rb_eval(b, user_shard(b, ns, user), PAV_RB_TOKENS_REVOKE, 1, &a,
		    revoke_set, x);
}

struct check_call {
	struct call c;
	struct pav_token_iat tok;
};

static void revoke_got(void *arg, int err, const redisReply *rep)
{
	struct check_call *x = arg;
	pav_done_fn cb = (pav_done_fn)x->c.cb;

	err = pav_rb_reply_err(err, rep, -1, "token_check");
	if (!err && is_str(rep) &&
	    pav_token_revoked(&x->tok, strtoll(rep->str, NULL, 10)))
		err = -EKEYREVOKED;
	else if (!err && !is_str(rep) && rep->type != REDIS_REPLY_NIL)
		err = -EIO;
	cb(x->c.arg, err);
	free(x);
}

static void rb_token_check(void *self, const char *ns, const char *user,
			   const struct pav_token_iat *tok, pav_done_fn cb,
			   void *arg)
{
	struct rb *b = self;
	struct check_call *x;
	struct rb_argv a;

	if (kept_refuses(b, ns, user, tok)) {
		cb(arg, -EKEYREVOKED);
		return;
	}
	x = (struct check_call *)call_new(b, ns, user, (any_fn)cb, arg,
					  sizeof(*x));
	if (!x) {
		cb(arg, -ENOMEM);
		return;
	}
	x->tok = *tok;
	pav_rb_av_init(&a);
	pav_rb_av_str(&a, "GET");
	pav_rb_ukey(&a, ns, user, "revoked");
	pav_rb_command(b, user_shard(b, ns, user), &a, revoke_got, x);
}

/* ---- writing back the kept revocations ---------------------------------- */

#define RESTORE_BATCH 256 /* scripts in flight at most */

struct kept_item {
	char ns[RB_NS_LEN];
	char user[PAV_MAX_ID_LEN + 1];
	int64_t at_ms, end_ms;
};

struct restore {
	struct rb *b;
	size_t shard;
	struct kept_item *items;
	size_t n, cap, next, out, written, held;
	int failed;
};

struct shard_count {
	struct rb *b;
	size_t shard, n;
};

static int count_kept(const char *ns, const char *user, int64_t at_ms,
		      int64_t end_ms, void *arg)
{
	struct shard_count *c = arg;

	(void)at_ms;
	(void)end_ms;
	if (user_shard(c->b, ns, user) == c->shard)
		c->n++;
	return 0;
}

static int collect_kept(const char *ns, const char *user, int64_t at_ms,
			int64_t end_ms, void *arg)
{
	struct restore *x = arg;
	struct kept_item *it;

	if (user_shard(x->b, ns, user) != x->shard || x->n == x->cap)
		return 0;
	it = &x->items[x->n++];
	snprintf(it->ns, sizeof(it->ns), "%s", ns);
	snprintf(it->user, sizeof(it->user), "%s", user);
	it->at_ms = at_ms;
	it->end_ms = end_ms;
	return 0;
}

static void restore_issue(struct restore *x);

/* A write-back that failed (a command refused, the shard gone) is tried
 * again at the next tick while the shard is up, and at its next return;
 * the node is not ready meanwhile.  The first failure in a row is said. */
static void restore_done(struct restore *x)
{
	struct rb_shard *sh = &x->b->shards[x->shard];

	if (x->failed) {
		sh->restore_due = 1;
		if (!sh->restore_fails++)
			rlog(PAV_LOG_WARN,
			     "shard %zu: writing back the token revocations "
			     "this node keeps failed after %zu of %zu; tried "
			     "again each second while the shard is up",
			     x->shard, x->written + x->held, x->n);
		return;
	}
	rlog(PAV_LOG_INFO,
	     "shard %zu: %zu token revocations written back (%zu held "
	     "already%s)",
	     x->shard, x->written, x->held,
	     sh->restore_fails ? ", after failed tries" : "");
	sh->restore_fails = 0;
}

static void restore_answered(struct restore *x)
{
	if (--x->out)
		return;
	if (!x->failed && x->next < x->n) {
		restore_issue(x);
		return;
	}
	if (!x->b->shut)
		restore_done(x);
	x->b->restoring--;
	free(x->items);
	free(x);
}

static void restored(void *arg, int err, const redisReply *rep)
{
	struct restore *x = arg;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER,
			       "revocation write-back");
	if (err)
		x->failed = 1;
	else if (rep->integer)
		x->written++;
	else
		x->held++;
	restore_answered(x);
}

/* The next batch: one script per revocation, with what is left of it. */
static void restore_issue(struct restore *x)
{
	int64_t now = pav_mono_ms();
	struct rb_argv a;

	x->out++; /* ours, while issuing */
	while (!x->failed && x->next < x->n && x->out <= RESTORE_BATCH) {
		const struct kept_item *it = &x->items[x->next++];

		if (it->end_ms <= now)
			continue;
		if (revoke_args(&a, x->b, it->ns, it->user, it->at_ms,
				it->end_ms - now, 1)) {
			x->failed = 1;
			break;
		}
		x->out++;
		pav_rb_eval(x->b, x->shard, PAV_RB_TOKENS_REVOKE, 1, &a,
			    restored, x);
	}
	restore_answered(x);
}

/* Redis may have lost the token revocations: writes back, on shard sh,
 * every one of the shard's this node keeps that its key lacks (or holds
 * with an older cut-off), then logs how many (nothing when it keeps
 * none of the shard's). */
static void revocations_restore(struct rb_shard *sh)
{
	struct rb *b = sh->b;
	int64_t now = pav_mono_ms();
	struct shard_count c = {b, sh->idx, 0};
	struct restore *x;

	sh->restore_due = 0;
	/* a copy of this shard's records only: with shards coming back
	 * together, each write-back holds its own share, not all of them */
	pav_revkeep_each(b->kept, now, count_kept, &c);
	if (!c.n)
		return;
	x = calloc(1, sizeof(*x));
	if (x)
		x->items = calloc(c.n, sizeof(*x->items));
	if (!x || !x->items) {
		rlog(PAV_LOG_ERROR,
		     "shard %zu: out of memory: the token revocations this "
		     "node keeps are not written back yet",
		     sh->idx);
		free(x);
		sh->restore_due = 1;
		return;
	}
	*x = (struct restore){
		.b = b, .shard = sh->idx, .items = x->items, .cap = c.n};
	pav_revkeep_each(b->kept, now, collect_kept, x);
	b->restoring++;
	restore_issue(x);
}

/* ---- catching up on the revocations a shard holds ---------------------- */

/* Keys SCAN looks at per step: one step's answer stays small (a few
 * hundred kB), and a shard of 100,000 takes a hundred round trips. */
#define CATCHUP_COUNT "1000"
#define CATCHUP_KEY_LOG 160 /* bytes of a malformed key in its line */

static void catchup_step(struct rb_shard *sh);

/* A node that was not listening when revocations went out (it started
 * later, or its pub/sub connection was down) keeps them from their keys,
 * as if it had heard them: without a copy, it could not write them back
 * once Redis restarted empty.  Called at each confirmation of the
 * shard's revocation channel; one already running starts over after its
 * step in flight, since that step may have passed keys written during
 * the gap.  The node is ready meanwhile: its checks read the key. */
static void revocations_catch_up(struct rb_shard *sh)
{
	if (sh->catchup_out) {
		sh->catchup_again = 1;
		return;
	}
	snprintf(sh->catchup_cursor, sizeof(sh->catchup_cursor), "0");
	sh->catchup_again = 0;
	sh->catchup_kept = sh->catchup_bad = 0;
	catchup_step(sh);
}

/* One key of a step: 1 when the copy is full (the catch-up stops). */
static int catchup_key(struct rb_shard *sh, const redisReply *key,
		       const redisReply *val, const redisReply *pttl)
{
	struct rb *b = sh->b;
	struct rb_revoked r;
	int64_t held;

	/* gone between SCAN and GET: nothing to keep */
	if (val->type == REDIS_REPLY_NIL && pttl->type == REDIS_REPLY_INTEGER &&
	    pttl->integer == -2)
		return 0;
	if (key->type != REDIS_REPLY_STRING ||
	    val->type != REDIS_REPLY_STRING ||
	    pttl->type != REDIS_REPLY_INTEGER ||
	    pav_rb_revoked_parse(key->str, key->len, val->str, val->len,
				 pttl->integer, &r)) {
		/* one line a second at most; the catch-up's last counts all */
		sh->catchup_bad++;
		if (pav_log_budget_take(&b->catchup_bad_log, pav_mono_ms()))
			rlog(PAV_LOG_WARN,
			     "shard %zu: a malformed token revocation key "
			     "skipped: %.*s",
			     sh->idx, CATCHUP_KEY_LOG,
			     key->type == REDIS_REPLY_STRING ? key->str : "?");
		return 0;
	}
	if (pav_revkeep_count(b->kept) >= PAV_MAX_KEPT_REVOCATIONS &&
	    !pav_revkeep_get(b->kept, r.ns, r.user, pav_mono_ms(), &held)) {
		rlog(PAV_LOG_WARN,
		     "shard %zu: catching up on the token revocations Redis "
		     "holds stopped after %zu: this node keeps %d already "
		     "(the others are still read from Redis at each check)",
		     sh->idx, sh->catchup_kept, PAV_MAX_KEPT_REVOCATIONS);
		return 1;
	}
	keep_unless_later(b, r.ns, r.user, r.at_ms, r.ttl_ms);
	sh->catchup_kept++;
	return 0;
}

/* SCAN's cursor: 1-20 decimal digits. */
static int cursor_ok(const redisReply *c)
{
	return c->type == REDIS_REPLY_STRING && c->len >= 1 && c->len <= 20 &&
	       strspn(c->str, "0123456789") == c->len;
}

static void catchup_got(void *arg, int err, const redisReply *rep)
{
	struct rb_shard *sh = arg;

	sh->catchup_out = 0;
	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY,
			       "token revocation catch-up");
	if (!err && (!rep->elements || (rep->elements - 1) % 3 ||
		     !cursor_ok(rep->element[0]))) {
		rlog(PAV_LOG_ERROR, "shard %zu: token revocation catch-up: "
		     "a malformed answer", sh->idx);
		err = -EIO;
	}
	/* a lost connection, or shutdown: the next confirmation starts
	 * over (a refusal too, with its line); one that came while this
	 * step was in flight starts it now */
	if (err || sh->b->shut) {
		if (sh->catchup_again && !sh->b->shut)
			revocations_catch_up(sh);
		return;
	}
	for (size_t i = 1; i < rep->elements; i += 3)
		if (catchup_key(sh, rep->element[i], rep->element[i + 1],
				rep->element[i + 2]))
			return;
	if (sh->catchup_again) {
		revocations_catch_up(sh);
		return;
	}
	if (strcmp(rep->element[0]->str, "0")) {
		snprintf(sh->catchup_cursor, sizeof(sh->catchup_cursor), "%s",
			 rep->element[0]->str);
		catchup_step(sh);
		return;
	}
	rlog(PAV_LOG_INFO,
	     "shard %zu: caught up on the token revocations Redis holds: "
	     "%zu read (%zu malformed skipped)",
	     sh->idx, sh->catchup_kept, sh->catchup_bad);
}

static void catchup_step(struct rb_shard *sh)
{
	struct rb_argv a;

	pav_rb_av_init(&a);
	pav_rb_av_str(&a, sh->catchup_cursor);
	pav_rb_av_str(&a, RB_REVOKED_MATCH);
	pav_rb_av_str(&a, CATCHUP_COUNT);
	sh->catchup_out = 1;
	pav_rb_eval(sh->b, sh->idx, PAV_RB_REVOKED_SCAN, 0, &a, catchup_got,
		    sh);
}

/* ---- presence ----------------------------------------------------------- */

static void presence_got(void *arg, int err, const redisReply *rep)
{
	struct call *x = arg;
	pav_presence_fn cb = (pav_presence_fn)x->cb;
	struct pav_presence p = {.user = x->name, .status = "offline"};

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "presence_get");
	if (!err && rep->elements != 3)
		err = -EIO;
	if (!err) {
		if (is_str(rep->element[0]))
			p.status = rep->element[0]->str;
		p.last_active_ms = pav_rb_int(rep->element[1]);
		p.connections = (int)pav_rb_int(rep->element[2]);
		pav_rb_remember_status(x->b, x->ns, x->name, p.status,
				       strlen(p.status));
	}
	if (cb)
		cb(x->arg, err, &p);
	free(x);
}

static void rb_presence_get(void *self, const char *ns, const char *user,
			    pav_presence_fn cb, void *arg)
{
	struct rb *b = self;
	struct call *x = call_new(b, ns, user, (any_fn)cb, arg, sizeof(*x));
	struct pav_presence p = {.user = user, .status = "offline"};
	struct rb_argv a;

	if (!x) {
		cb(arg, -ENOMEM, &p);
		return;
	}
	pav_rb_av_init(&a);
	pav_rb_ukey(&a, ns, user, "presence");
	pav_rb_ukey(&a, ns, user, "conns");
	pav_rb_eval(b, user_shard(b, ns, user), PAV_RB_PRESENCE_GET, 2, &a,
		    presence_got, x);
}

struct presence_call {
	struct call c;
	struct pav_msg *frame;   /* with STAMP_MARK where the time goes */
	size_t head_len;         /* up to the mark's opening quote */
	size_t tail_off;         /* from the mark's closing quote */
	int stamp;
	char *hdr;
	char **others;           /* channels of other shards */
	size_t nothers;
};

static void presence_call_free(struct presence_call *x)
{
	for (size_t i = 0; i < x->nothers; i++)
		free(x->others[i]);
	free(x->others);
	free(x->hdr);
	pav_msg_unref(x->frame);
	free(x);
}

/* The last occurrence of the quoted mark: the stamp member is the last
 * one the payload got, and only "timestamp" follows the payload. */
static const char *find_mark(const char *text, size_t len)
{
	const char *mark = "\"" STAMP_MARK "\"";
	size_t ml = strlen(mark);

	for (size_t i = len >= ml ? len - ml + 1 : 0; i-- > 0;)
		if (!memcmp(text + i, mark, ml))
			return text + i;
	return NULL;
}

/* An announcement says the status the store applies: when that is not
 * the one asked for (an opening that restores the user's chosen status),
 * the payload's "status" says it while serialized.  The old value, to
 * put back, or NULL. */
static json_object *swap_status(json_object *payload, const char *status)
{
	json_object *old;

	if (!status || !payload ||
	    !json_object_is_type(payload, json_type_object) ||
	    !json_object_object_get_ex(payload, "status", &old))
		return NULL;
	json_object_get(old);
	json_object_object_add(payload, "status",
			       json_object_new_string(status));
	return old;
}

/* Serializes the announcement once, with a mark for the stamp (and the
 * status `resumed` when not NULL). */
static int announce_frame(struct presence_call *x,
			  const struct pav_outgoing *out, const char *stamp,
			  const char *resumed)
{
	json_object *old_status;
	struct pav_frame f = {
		.type = out->type,
		.channel = out->nchannels == 1 ? out->channels[0] : NULL,
		.payload = out->payload,
		.key = out->key,
	};
	const char *text, *m;

	x->stamp = stamp && out->payload &&
		   json_object_is_type(out->payload, json_type_object);
	if (x->stamp)
		json_object_object_add(out->payload, stamp,
				       json_object_new_string(STAMP_MARK));
	old_status = swap_status(out->payload, resumed);
	x->frame = pav_msg_frame(&f);
	if (old_status)
		json_object_object_add(out->payload, "status", old_status);
	if (x->stamp)
		json_object_object_del(out->payload, stamp);
	if (!x->frame)
		return -ENOMEM;
	text = (const char *)pav_msg_text(x->frame);
	x->head_len = x->frame->len;
	x->tail_off = x->frame->len;
	if (x->stamp) {
		m = find_mark(text, x->frame->len);
		if (!m)
			return -EINVAL;
		x->head_len = (size_t)(m - text) + 1;
		x->tail_off = x->head_len + strlen(STAMP_MARK);
	}
	return 0;
}

static void publish_others(struct presence_call *x, int64_t at)
{
	char when[PAV_TIME_LEN] = "";
	const char *text = (const char *)pav_msg_text(x->frame);
	size_t hl = strlen(x->hdr), wl, len;
	char *msg;

	if (x->stamp)
		pav_format_time(at, when, sizeof(when));
	wl = strlen(when);
	len = hl + 2 + x->head_len + wl + (x->frame->len - x->tail_off);
	msg = malloc(len + 1);
	if (!msg)
		return;
	memcpy(msg, x->hdr, hl);
	memcpy(msg + hl, "0\n", 2);
	memcpy(msg + hl + 2, text, x->head_len);
	memcpy(msg + hl + 2 + x->head_len, when, wl);
	memcpy(msg + hl + 2 + x->head_len + wl, text + x->tail_off,
	       x->frame->len - x->tail_off);
	msg[len] = '\0';
	pav_rb_publish_raw(x->c.b, x->c.ns, (const char *const *)x->others,
			   x->nothers, msg, len, NULL, NULL);
	free(msg);
}

static void presence_applied(void *arg, int err, const redisReply *rep)
{
	struct presence_call *x = arg;
	pav_presence_fn cb = (pav_presence_fn)x->c.cb;
	struct pav_presence p = {.user = x->c.name, .status = "offline"};
	int applied = 0;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "presence_set");
	if (!err && rep->elements != 4)
		err = -EIO;
	if (!err) {
		applied = pav_rb_int(rep->element[0]) == 1;
		if (is_str(rep->element[1]))
			p.status = rep->element[1]->str;
		p.last_active_ms = pav_rb_int(rep->element[2]);
		p.connections = (int)pav_rb_int(rep->element[3]);
		pav_rb_remember_status(x->c.b, x->c.ns, x->c.name,
				       p.status, strlen(p.status));
		if (!applied)
			err = -EALREADY;
		else if (x->nothers)
			publish_others(x, p.last_active_ms);
	}
	if (cb)
		cb(x->c.arg, err, &p);
	presence_call_free(x);
}

/* The announcement's channels: this shard's go to the script. */
static int split_channels(struct presence_call *x,
			  const struct pav_outgoing *out, size_t shard,
			  struct rb_argv *a)
{
	struct rb *b = x->c.b;

	x->others = calloc(out->nchannels, sizeof(*x->others));
	if (!x->others)
		return -ENOMEM;
	for (size_t i = 0; i < out->nchannels; i++) {
		if (pav_rb_chan_shard(b, x->c.ns, out->channels[i]) == shard) {
			pav_rb_feed(&b->shards[shard], a, x->c.ns,
				    out->channels[i]);
			continue;
		}
		x->others[x->nothers] = strdup(out->channels[i]);
		if (!x->others[x->nothers])
			return -ENOMEM;
		x->nothers++;
	}
	return 0;
}

/* The status an opening sets instead of the one asked for: the user's
 * chosen one, when this node was taken for dead while it held the user's
 * connections and its open hooks run again for them (user_synced).  Used
 * up here; NULL when none is due. */
static const char *resume_status(struct rb *b, const char *ns,
				 const char *user, enum pav_presence_when when,
				 char *buf, size_t len)
{
	struct rb_user *u = pav_rb_user(b, ns, user, 0);

	if (when != PAV_PRESENCE_IF_CONNECTED || !u || !u->resume[0])
		return NULL;
	snprintf(buf, len, "%s", u->resume);
	u->resume[0] = '\0';
	return buf;
}

static void rb_presence_set(void *self, const char *ns, const char *user,
			    const char *status, enum pav_presence_when when,
			    int64_t at_ms, const struct pav_outgoing *out,
			    const char *stamp, pav_presence_fn cb, void *arg)
{
	struct rb *b = self;
	struct pav_presence p = {.user = user, .status = "offline"};
	struct presence_call *x;
	size_t shard = user_shard(b, ns, user);
	char uchan[PAV_CHANNEL_BUF], rbuf[RB_STATUS_LEN];
	const char *resumed = resume_status(b, ns, user, when, rbuf,
					    sizeof(rbuf));
	struct rb_argv a;
	int err = 0;

	if (resumed)
		status = resumed;
	if (!status || !*status || strlen(status) >= RB_STATUS_LEN) {
		if (cb)
			cb(arg, -EINVAL, &p);
		return;
	}
	x = (struct presence_call *)call_new(b, ns, user, (any_fn)cb, arg,
					     sizeof(*x));
	if (!x) {
		if (cb)
			cb(arg, -ENOMEM, &p);
		return;
	}
	pav_rb_av_init(&a);
	pav_rb_ukey(&a, ns, user, "presence");
	pav_rb_ukey(&a, ns, user, "conns");
	pav_rb_av_str(&a, status);
	pav_rb_av_fmt(&a, "%d", (int)when);
	pav_rb_av_fmt(&a, "%" PRId64, at_ms > 0 ? at_ms : 0);
	pav_rb_av_str(&a, RB_PRESENCE_TTL_MS);
	/* the user channel lives on the user's shard */
	if (!b->status_header)
		b->status_header = pav_rb_header(b, 0, 0, 'S', NULL, "status");
	pav_channel_user(user, uchan, sizeof(uchan));
	pav_rb_av_str(&a, b->status_header ? b->status_header : "");
	pav_rb_feed(&b->shards[shard], &a, ns, uchan);
	if (!b->status_header)
		err = -ENOMEM;
	else if (out && out->nchannels) {
		err = announce_frame(x, out, stamp, resumed);
		if (!err)
			x->hdr = pav_rb_header(b, pav_rb_rand(b) | 1,
					       out->except, 'F', out->key,
					       out->type);
		if (!err && !x->hdr)
			err = -ENOMEM;
		if (!err) {
			const char *text =
				(const char *)pav_msg_text(x->frame);

			pav_rb_av_str(&a, x->hdr);
			pav_rb_av_add(&a, text, x->head_len);
			pav_rb_av_add(&a, text + x->tail_off,
				      x->frame->len - x->tail_off);
			pav_rb_av_str(&a, x->stamp ? "1" : "0");
			err = split_channels(x, out, shard, &a);
		}
	}
	if (err) {
		pav_rb_av_free(&a);
		presence_call_free(x);
		if (cb)
			cb(arg, err, &p);
		return;
	}
	pav_rb_eval(b, shard, PAV_RB_PRESENCE_SET, 2, &a, presence_applied, x);
}

/* ---- notifications ------------------------------------------------------ */

struct inbox_call {
	struct call c;
	json_object *note; /* the stored copy, with "id" */
	int tries;
};

static void inbox_try(struct inbox_call *x);

static void inbox_added(void *arg, int err, const redisReply *rep)
{
	struct inbox_call *x = arg;
	pav_json_fn cb = (pav_json_fn)x->c.cb;

	err = pav_rb_reply_err(err, rep, -1, "inbox_add");
	if (!err && rep->type == REDIS_REPLY_NIL && ++x->tries < ADD_TRIES) {
		inbox_try(x); /* the id was taken: another one */
		return;
	}
	if (!err && !is_str(rep))
		err = -EIO;
	if (!err)
		err = pav_note_complete(x->note, strtoll(rep->str, NULL, 10),
					0);
	if (cb)
		cb(x->c.arg, err, err ? NULL : x->note);
	json_object_put(x->note);
	free(x);
}

static void inbox_try(struct inbox_call *x)
{
	struct rb *b = x->c.b;
	char id[ID_LEN];
	const char *text;
	struct rb_argv a;
	size_t len;

	if (pav_random_id('n', id, sizeof(id)) ||
	    pav_note_set(x->note, "id", json_object_new_string(id))) {
		inbox_added(x, -EIO, NULL);
		return;
	}
	text = json_object_to_json_string_length(
		x->note, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	pav_rb_av_init(&a);
	pav_rb_inbox_keys(&a, x->c.ns, x->c.name);
	pav_rb_av_str(&a, id);
	pav_rb_av_add(&a, text ? text : "", text ? len : 0);
	pav_rb_av_fmt(&a, "%zu", b->inbox_size);
	pav_rb_av_str(&a, RB_INBOX_TTL_MS);
	if (!text)
		a.oom = 1;
	pav_rb_eval(b, user_shard(b, x->c.ns, x->c.name), PAV_RB_INBOX_ADD, 7,
		    &a, inbox_added, x);
}

static void rb_inbox_add(void *self, const char *ns, const char *user,
			 json_object *src, pav_json_fn cb, void *arg)
{
	struct rb *b = self;
	struct inbox_call *x;

	if (!json_object_is_type(src, json_type_object)) {
		if (cb)
			cb(arg, -EINVAL, NULL);
		return;
	}
	x = (struct inbox_call *)call_new(b, ns, user, (any_fn)cb, arg,
					  sizeof(*x));
	if (!x || json_object_deep_copy(src, &x->note, NULL) != 0) {
		free(x);
		if (cb)
			cb(arg, -ENOMEM, NULL);
		return;
	}
	inbox_try(x);
}

/* {id, createdAt, json, read}... -> a json array of complete copies. */
static int list_of(const redisReply *rep, json_object *list)
{
	for (size_t i = 0; i + 3 < rep->elements; i += 4) {
		json_object *note;

		if (!is_str(rep->element[i + 2]))
			continue;
		note = json_tokener_parse(rep->element[i + 2]->str);
		if (!note || !json_object_is_type(note, json_type_object)) {
			json_object_put(note);
			continue; /* not ours: never written like that */
		}
		if (pav_note_complete(note, pav_rb_int(rep->element[i + 1]),
				  pav_rb_int(rep->element[i + 3]) == 1) ||
		    json_object_array_add(list, note)) {
			json_object_put(note);
			return -ENOMEM;
		}
	}
	return 0;
}

/* A list read for a replay, answered once its fence came back. */
struct list_call {
	struct call c;
	size_t shard;
	uint64_t fence;
	int err;
	json_object *list;
};

static void inbox_list_answer(void *arg)
{
	struct list_call *x = arg;
	pav_json_fn cb = (pav_json_fn)x->c.cb;

	cb(x->c.arg, x->err, x->err ? NULL : x->list);
	json_object_put(x->list);
	free(x);
}

static void inbox_listed(void *arg, int err, const redisReply *rep)
{
	struct list_call *x = arg;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "inbox_list");
	if (!err && !(x->list = json_object_new_array()))
		err = -ENOMEM;
	if (!err)
		err = list_of(rep, x->list);
	x->err = err;
	if (err)
		inbox_list_answer(x);
	else
		pav_rb_fence_wait(&x->c.b->shards[x->shard], x->fence,
				  inbox_list_answer, x);
}

static void rb_inbox_list(void *self, const char *ns, const char *user,
			  int64_t since_ms, int unread_only, size_t limit,
			  pav_json_fn cb, void *arg)
{
	struct rb *b = self;
	struct list_call *x = (struct list_call *)call_new(
		b, ns, user, (any_fn)cb, arg, sizeof(*x));
	struct rb_argv a;

	if (!x) {
		cb(arg, -ENOMEM, NULL);
		return;
	}
	x->shard = user_shard(b, ns, user);
	pav_rb_av_init(&a);
	pav_rb_inbox_keys(&a, ns, user);
	pav_rb_av_fmt(&a, "%" PRId64, since_ms > 0 ? since_ms : 0);
	pav_rb_av_str(&a, unread_only ? "1" : "0");
	pav_rb_av_fmt(&a, "%zu", limit);
	pav_rb_av_fmt(&a, "%zu", b->inbox_size);
	pav_rb_av_str(&a, RB_INBOX_TTL_MS);
	pav_rb_av_str(&a, pav_rb_fence_next(&b->shards[x->shard], &x->fence));
	pav_rb_av_fmt(&a, "%" PRIu64, x->fence);
	pav_rb_eval(b, x->shard, PAV_RB_INBOX_LIST, 7, &a, inbox_listed, x);
}

static void marked(void *arg, int err, const redisReply *rep)
{
	struct call *x = arg;
	pav_done_fn cb = (pav_done_fn)x->cb;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER, "mark_read");
	if (!err && rep->integer != 1)
		err = -ENOENT;
	if (cb)
		cb(x->arg, err);
	free(x);
}

static void rb_inbox_mark_read(void *self, const char *ns, const char *user,
			       const char *id, pav_done_fn cb, void *arg)
{
	struct rb *b = self;
	struct call *x;
	struct rb_argv a;

	if (!id || !*id) {
		if (cb)
			cb(arg, -ENOENT);
		return;
	}
	x = call_new(b, ns, user, (any_fn)cb, arg, sizeof(*x));
	if (!x) {
		if (cb)
			cb(arg, -ENOMEM);
		return;
	}
	pav_rb_av_init(&a);
	pav_rb_ukey(&a, ns, user, "inbox");
	pav_rb_ukey(&a, ns, user, "read");
	pav_rb_av_str(&a, id);
	pav_rb_eval(b, user_shard(b, ns, user), PAV_RB_INBOX_MARK_READ, 2, &a,
		    marked, x);
}

/* ---- channel members ----------------------------------------------------- */

struct member_call {
	struct call c;
	char user[PAV_MAX_ID_LEN + 1];
};

static void uchans_done(void *arg, int err, const redisReply *rep)
{
	struct member_call *x = arg;
	struct rb_user *u = pav_rb_user(x->c.b, x->c.ns, x->user, 0);

	if (pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER, "user channels"))
		pav_rb_user_dirty(x->c.b, u);
	if (u) {
		u->busy--;
		pav_rb_user_settle(x->c.b, u);
	}
	free(x);
}

/* The user's shared channels on this node (U:chans), for announcing its
 * departure should this node die. */
static void uchans_add(struct rb *b, const char *ns, const char *channel,
		       const char *user, int delta)
{
	struct rb_user *u = pav_rb_user(b, ns, user, 1);
	struct member_call *x;
	struct rb_argv a;

	if (!u || !pav_channel_is_shared(channel))
		return;
	if (pav_tally_add(u->chans, channel, delta))
		pav_rb_user_dirty(b, u);
	x = (struct member_call *)call_new(b, ns, channel, NULL, NULL,
					   sizeof(*x));
	if (!x) {
		pav_rb_user_dirty(b, u);
		pav_rb_user_settle(b, u);
		return;
	}
	snprintf(x->user, sizeof(x->user), "%s", user);
	u->busy++;
	pav_rb_av_init(&a);
	pav_rb_ukey(&a, ns, user, "chans");
	pav_rb_av_fmt(&a, "%s|%s", b->node, channel);
	pav_rb_av_fmt(&a, "%d", delta);
	pav_rb_eval(b, u->shard, PAV_RB_HASH_ADD, 1, &a, uchans_done, x);
}

static void member_keys(struct rb *b, struct rb_argv *a, const char *ns,
			const char *channel, const char *user)
{
	pav_rb_member_keys(b, a, ns, channel);
	pav_rb_av_str(a, b->node);
	pav_rb_av_str(a, user);
	pav_rb_av_fmt(a, "%s\x1f%s", ns, channel);
}

static void member_added(void *arg, int err, const redisReply *rep)
{
	struct member_call *x = arg;
	struct rb *b = x->c.b;
	struct rb_chan *c = pav_rb_chan(b, x->c.ns, x->c.name, 0);
	pav_state_member_fn cb = (pav_state_member_fn)x->c.cb;
	int64_t subs = 0, uc = 0;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "member_add");
	if (!err && rep->elements != 2)
		err = -EIO;
	if (!err) {
		subs = pav_rb_int(rep->element[0]);
		uc = pav_rb_int(rep->element[1]);
	} else {
		/* the core takes the member out again (member_remove): a
		 * sync makes Redis agree with what is left */
		pav_rb_chan_dirty(b, c);
	}
	if (c) {
		c->busy--;
		pav_rb_chan_settle(b, c);
	}
	if (cb)
		cb(x->c.arg, err, subs, uc);
	free(x);
}

static void rb_member_add(void *self, const char *ns, const char *channel,
			  const char *user, pav_state_member_fn cb, void *arg)
{
	struct rb *b = self;
	struct rb_chan *c = pav_rb_chan(b, ns, channel, 1);
	struct member_call *x = c ? (struct member_call *)call_new(
					    b, ns, channel, (any_fn)cb, arg,
					    sizeof(*x))
				  : NULL;
	struct rb_argv a;

	if (!x || pav_tally_add(c->users, user, 1)) {
		free(x);
		pav_rb_chan_settle(b, c);
		if (cb)
			cb(arg, -ENOMEM, 0, 0);
		return;
	}
	snprintf(x->user, sizeof(x->user), "%s", user);
	c->members++;
	c->busy++;
	uchans_add(b, ns, channel, user, 1);
	pav_rb_av_init(&a);
	member_keys(b, &a, ns, channel, user);
	pav_rb_ckey(&a, ns, channel, "u:");
	pav_rb_eval(b, c->shard, PAV_RB_MEMBER_ADD, 5, &a, member_added, x);
}

static void member_removed(void *arg, int err, const redisReply *rep)
{
	struct member_call *x = arg;
	struct rb_chan *c = pav_rb_chan(x->c.b, x->c.ns, x->c.name, 0);

	err = pav_rb_reply_err(err, rep, -1, "member_remove");
	if (c) {
		if (err)
			pav_rb_chan_dirty(x->c.b, c);
		c->busy--;
		pav_rb_chan_settle(x->c.b, c);
	}
	free(x);
}

static void rb_member_remove(void *self, const char *ns, const char *channel,
			     const char *user)
{
	struct rb *b = self;
	struct rb_chan *c = pav_rb_chan(b, ns, channel, 0);
	struct member_call *x;
	struct rb_argv a;

	if (!c || !pav_tally_get(c->users, user))
		return;
	pav_tally_add(c->users, user, -1);
	c->members--;
	uchans_add(b, ns, channel, user, -1);
	x = (struct member_call *)call_new(b, ns, channel, NULL, NULL,
					   sizeof(*x));
	if (!x) {
		pav_rb_chan_dirty(b, c);
		return;
	}
	snprintf(x->user, sizeof(x->user), "%s", user);
	c->busy++;
	pav_rb_av_init(&a);
	member_keys(b, &a, ns, channel, user);
	pav_rb_eval(b, c->shard, PAV_RB_MEMBER_REMOVE, 5, &a, member_removed,
		    x);
}

/* channel_counts: one script per shard holding some of the channels. */
struct counts_call {
	struct rb *b;
	pav_counts_fn cb;
	void *arg;
	int64_t *counts;
	size_t n;
	size_t pending;
	int err;
	size_t *idx;  /* per shard call: the channels' indexes */
	size_t nidx;
};

struct counts_part {
	struct counts_call *all;
	size_t from, n; /* into all->idx */
};

static void counts_finish(struct counts_call *k)
{
	if (--k->pending)
		return;
	k->cb(k->arg, k->err, k->err ? NULL : k->counts, k->n);
	free(k->counts);
	free(k->idx);
	free(k);
}

static void counts_got(void *arg, int err, const redisReply *rep)
{
	struct counts_part *p = arg;
	struct counts_call *k = p->all;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "channel_counts");
	if (!err && rep->elements != p->n)
		err = -EIO;
	for (size_t i = 0; !err && i < p->n; i++)
		k->counts[k->idx[p->from + i]] = pav_rb_int(rep->element[i]);
	if (err && !k->err)
		k->err = err;
	free(p);
	counts_finish(k);
}

static void counts_shard(struct counts_call *k, const char *ns,
			 const char *const *channels, size_t shard)
{
	struct counts_part *p = calloc(1, sizeof(*p));
	struct rb_argv a;

	if (!p) {
		k->err = -ENOMEM;
		return;
	}
	p->all = k;
	p->from = k->nidx;
	pav_rb_av_init(&a);
	for (size_t i = 0; i < k->n; i++) {
		if (pav_rb_chan_shard(k->b, ns, channels[i]) != shard)
			continue;
		k->idx[k->nidx++] = i;
		pav_rb_ckey(&a, ns, channels[i], "n");
	}
	p->n = k->nidx - p->from;
	if (!p->n) {
		pav_rb_av_free(&a);
		free(p);
		return;
	}
	k->pending++;
	pav_rb_eval(k->b, shard, PAV_RB_CHANNEL_COUNTS, (int)p->n, &a,
		    counts_got, p);
}

static void rb_channel_counts(void *self, const char *ns,
			      const char *const *channels, size_t n,
			      pav_counts_fn cb, void *arg)
{
	struct rb *b = self;
	struct counts_call *k = calloc(1, sizeof(*k));

	if (!k || !(k->counts = calloc(n ? n : 1, sizeof(*k->counts))) ||
	    !(k->idx = calloc(n ? n : 1, sizeof(*k->idx)))) {
		if (k)
			free(k->counts);
		free(k);
		cb(arg, -ENOMEM, NULL, 0);
		return;
	}
	k->b = b;
	k->cb = cb;
	k->arg = arg;
	k->n = n;
	k->pending = 1; /* ours, while asking */
	for (size_t s = 0; s < b->nshards && !k->err; s++)
		counts_shard(k, ns, channels, s);
	counts_finish(k); /* ours */
}

static void users_got(void *arg, int err, const redisReply *rep)
{
	struct call *x = arg;
	pav_users_fn cb = (pav_users_fn)x->cb;
	const char **users = NULL;
	size_t n = 0;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "channel_users");
	if (!err && rep->elements &&
	    !(users = calloc(rep->elements, sizeof(*users))))
		err = -ENOMEM;
	for (size_t i = 0; !err && i < rep->elements; i++)
		if (is_str(rep->element[i]))
			users[n++] = rep->element[i]->str;
	cb(x->arg, err, err ? NULL : users, n);
	free(users);
	free(x);
}

static void rb_channel_users(void *self, const char *ns, const char *channel,
			     size_t max, pav_users_fn cb, void *arg)
{
	struct rb *b = self;
	struct call *x = call_new(b, ns, channel, (any_fn)cb, arg, sizeof(*x));
	struct rb_argv a;

	if (!x) {
		cb(arg, -ENOMEM, NULL, 0);
		return;
	}
	pav_rb_av_init(&a);
	pav_rb_ckey(&a, ns, channel, "n");
	pav_rb_ckey(&a, ns, channel, "u:");
	pav_rb_av_fmt(&a, "%zu", max);
	pav_rb_eval(b, pav_rb_chan_shard(b, ns, channel), PAV_RB_CHANNEL_USERS,
		    1, &a, users_got, x);
}

/* ---- history ------------------------------------------------------------ */

struct history_call {
	struct call c;
	pav_history_fn cb;
	size_t shard;
	uint64_t fence;
	int err;
	char epoch[64];
	struct pav_history h;
	struct pav_msg **msgs;
};

static void history_answer(void *arg)
{
	struct history_call *x = arg;

	x->h.epoch = x->epoch;
	x->h.msgs = x->msgs;
	if (x->err)
		x->cb(x->c.arg, x->err, NULL);
	else
		x->cb(x->c.arg, 0, &x->h);
	for (size_t i = 0; x->msgs && i < x->h.n; i++)
		pav_msg_unref(x->msgs[i]);
	free(x->msgs);
	free(x);
}

static int history_of(struct history_call *x, const redisReply *rep)
{
	uint64_t first = 0;

	if (rep->elements < 3 || !is_str(rep->element[0]) ||
	    (size_t)rep->element[0]->len >= sizeof(x->epoch))
		return -EIO;
	snprintf(x->epoch, sizeof(x->epoch), "%s", rep->element[0]->str);
	x->h.offset = (uint64_t)pav_rb_int(rep->element[1]);
	x->h.complete = pav_rb_int(rep->element[2]) == 1;
	if (rep->elements <= 4)
		return 0;
	first = (uint64_t)pav_rb_int(rep->element[3]);
	x->msgs = calloc(rep->elements - 4, sizeof(*x->msgs));
	if (!x->msgs)
		return -ENOMEM;
	for (size_t i = 4; i < rep->elements; i++) {
		const redisReply *f = rep->element[i];

		if (!is_str(f) ||
		    !(x->msgs[x->h.n] = pav_msg_new(f->str, (size_t)f->len,
						    NULL)))
			return -ENOMEM;
		x->msgs[x->h.n]->offset = first + x->h.n;
		x->h.n++;
	}
	return 0;
}

static void history_got(void *arg, int err, const redisReply *rep)
{
	struct history_call *x = arg;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "history_read");
	if (!err)
		err = history_of(x, rep);
	x->err = err;
	if (err)
		history_answer(x);
	else
		pav_rb_fence_wait(&x->c.b->shards[x->shard], x->fence,
				  history_answer, x);
}

static void rb_history_read(void *self, const char *ns, const char *channel,
			    const struct pav_history_cfg *h, uint64_t after,
			    size_t max, pav_history_fn cb, void *arg)
{
	struct rb *b = self;
	struct history_call *x = (struct history_call *)call_new(
		b, ns, channel, NULL, arg, sizeof(*x));
	struct rb_argv a;

	if (!x) {
		cb(arg, -ENOMEM, NULL);
		return;
	}
	x->cb = cb;
	x->shard = pav_rb_chan_shard(b, ns, channel);
	pav_rb_av_init(&a);
	pav_rb_ckey(&a, ns, channel, "meta");
	pav_rb_ckey(&a, ns, channel, "hist");
	pav_rb_ckey(&a, ns, channel, "n");
	pav_rb_av_fmt(&a, "%" PRIu64, after);
	pav_rb_av_fmt(&a, "%zu", max);
	pav_rb_av_fmt(&a, "%016" PRIx64, pav_rb_rand(b));
	pav_rb_av_fmt(&a, "%" PRId64,
		      (int64_t)(h && h->ttl_s > 0 ? h->ttl_s : 1) * 1000);
	/* a catch-up (max > 0) waits for the live copies of what it read */
	if (max)
		pav_rb_av_str(&a, pav_rb_fence_next(&b->shards[x->shard],
						    &x->fence));
	else
		pav_rb_av_str(&a, "");
	pav_rb_av_fmt(&a, "%" PRIu64, x->fence);
	pav_rb_eval(b, x->shard, PAV_RB_HISTORY_READ, 3, &a, history_got, x);
}

/* ---- the vtable ----------------------------------------------------------- */

/* The instance, and the node's hook for the revocations it keeps (as the
 * broker's create sets its reader of pub/sub messages). */
static int rb_create(const struct pav_store_config *cfg,
		     const struct pav_backend_env *env, void **self, char *err,
		     size_t errlen)
{
	int rc = pav_rb_create(cfg, env, self, err, errlen);

	if (!rc) {
		((struct rb *)*self)->restore_kept = revocations_restore;
		((struct rb *)*self)->heard_revocation = heard_revocation;
		((struct rb *)*self)->catch_up = revocations_catch_up;
	}
	return rc;
}

const struct pav_state_ops pav_redis_state = {
	.create = rb_create,
	.destroy = pav_rb_destroy,
	.ready = pav_rb_ready,
	.shutdown = pav_rb_shutdown,
	.tick = pav_rb_tick,
	.conn_add = rb_conn_add,
	.conn_remove = rb_conn_remove,
	.presence_get = rb_presence_get,
	.presence_set = rb_presence_set,
	.inbox_add = rb_inbox_add,
	.inbox_list = rb_inbox_list,
	.inbox_mark_read = rb_inbox_mark_read,
	.member_add = rb_member_add,
	.member_remove = rb_member_remove,
	.channel_counts = rb_channel_counts,
	.channel_users = rb_channel_users,
	.user_count = rb_user_count,
	.tokens_revoke = rb_tokens_revoke,
	.token_check = rb_token_check,
	.history_read = rb_history_read,
};
