/*
 * redis_node.h — the "redis" backend's instance, private to redis_node.c,
 * redis_state.c and redis_broker.c (the scripts are redis_scripts.h's).
 *
 * One instance per process, shared by the state and the broker halves:
 * one Redis client (two connections) per shard, this node's id, and the
 * node's own registry of what it registered in Redis — its users'
 * connections and shared channels, its channels' members by user, the
 * last status set for its users (on any node: the store answers it when
 * the node counts a connection of the user, and an applied status goes
 * to the user's feed as an 'S' message).  The registry is what makes the state
 * rebuildable: whenever Redis may not hold what the node registered (it
 * came back after an outage, a write was refused or not answered, a
 * reaper took the node for dead), the entries concerned are "dirty" and a
 * sync pass writes them again as absolute values, one script per entry.
 *
 * Users and channels are keyed "ns\x1fname" (namespaces are
 * [A-Za-z0-9_.-], ids [A-Za-z0-9_-]: neither holds 0x1f, ':' or '{').
 */
#ifndef PAV_REDIS_NODE_H
#define PAV_REDIS_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "backend.h"
#include "conn_ids.h"
#include "log.h"
#include "map.h"
#include "pav_limits.h"
#include "redis.h"
#include "redis_scripts.h"

#define RB_NODE_LEN 17 /* 16 hex digits + NUL */
#define RB_NS_LEN 65
#define RB_STATUS_LEN 16
#define RB_PRESENCE_TTL_MS "2592000000" /* 30 days */
#define RB_INBOX_TTL_MS "2592000000"

struct rb;
struct rb_argv;

/* Something waiting for a fence to come back (see pav_rb_fence_wait). */
struct rb_fence_wait {
	struct rb_fence_wait *next;
	uint64_t seq;
	void (*fn)(void *arg);
	void *arg;
};

struct rb_shard {
	struct rb *b;
	size_t idx;
	struct pav_redis *r;
	int script[PAV_RB_NSCRIPTS];
	int up;           /* the client is up */
	int was_up;       /* it has been up before: an `up` is a return */
	int registered;   /* a heartbeat was answered since `up` */
	int hb_out;       /* a heartbeat is in flight */
	int dead_out;     /* a search for dead nodes (or a reap) runs */
	int64_t reap_from; /* monotonic ms: no reaping before (see on_up) */
	int resync_due;   /* tell clients once this shard is synced */
	int restore_due;  /* write the kept revocations back (a try failed) */
	unsigned restore_fails; /* write-backs failed in a row */
	size_t ndirty;    /* registry entries of this shard to sync */
	char prefix[24];  /* of its pub/sub channels: "pav:p:", "pav:p@<db>:" */
	/* fences: this node's own pub/sub channel, on which scripts that
	 * read for a catch-up publish a number last; the node uses what
	 * they read once that number came back, so that the live copy of
	 * everything published before the read has reached it */
	char fence[48];
	int fence_live;   /* subscribed */
	int fence_out;    /* its SUBSCRIBE is in flight */
	int fence_refused; /* Redis refused it (said once until allowed) */
	uint64_t fence_seq, fence_seen;
	struct rb_fence_wait *fw_head, *fw_tail;
	/* where the token revocations written on this shard are published
	 * ("pav:revoked", "pav:revoked@<db>"): every node listens on every
	 * shard, and a revocation goes out on its user's shard, where its
	 * key is, so that one shard's write and its message come together */
	char revoked[32];
	int revoked_live; /* subscribed: the node is not ready before */
	int revoked_out;  /* its SUBSCRIBE is in flight */
	int revoked_refused; /* Redis refused it (said once until allowed) */
	/* the catch-up on the revocations the shard holds, once that
	 * SUBSCRIBE is confirmed (redis_state.c): SCAN's cursor, one step
	 * in flight at most */
	char catchup_cursor[24];
	int catchup_out;   /* a step is in flight */
	int catchup_again; /* confirmed again meanwhile: start over after it */
	size_t catchup_kept, catchup_bad;
	/* publication channels Redis refused when a new pub/sub connection
	 * subscribed them again: name -> struct rb_refused, subscribed again
	 * each second until allowed or unsubscribed; NULL: none yet */
	struct pav_map *refused;
	int refused_back; /* one of them is back: resync at the next tick */
};

/* A user with connections on this node (or whose last one the store has
 * not confirmed gone yet). */
struct rb_user {
	char ns[RB_NS_LEN];
	char name[PAV_MAX_ID_LEN + 1];
	size_t shard;
	struct pav_conn_ids conns; /* counted here */
	struct pav_map *chans; /* shared channel -> count (tally.h) */
	/* the last one the store answered here, or that another node
	 * applied ('S' messages on the user's feed) */
	char status[RB_STATUS_LEN];
	/* the status the user had chosen, for the open hooks that run again
	 * once a reaper took this node for dead ("" when none is due) */
	char resume[RB_STATUS_LEN];
	int64_t gone_ms; /* the last local connection went unconfirmed */
	int dirty, busy;
};

/* A channel with members on this node (or not yet synced to none). */
struct rb_chan {
	char ns[RB_NS_LEN];
	char name[PAV_MAX_CHANNEL_LEN];
	size_t shard;
	int64_t members;
	struct pav_map *users; /* user -> count (tally.h) */
	int dirty, busy;
};

struct rb {
	struct pav_backend_env env;
	char node[RB_NODE_LEN];
	struct rb_shard *shards;
	size_t nshards;
	int64_t node_ttl_ms;
	size_t inbox_size;
	struct pav_map *users; /* "ns\x1fuser" -> struct rb_user */
	struct pav_map *chans; /* "ns\x1fchannel" -> struct rb_chan */
	size_t sync_out;       /* sync scripts in flight */
	uint64_t rnd;
	char *status_header; /* of a status change on a user's feed ('S'),
				made at the first (redis_state.c) */
	int shut; /* shutdown() ran: every call fails -ECANCELED */
	/* the token revocations this node learnt (redis_state.c) and the
	 * write-backs of them still running: the node is not ready before
	 * they are done */
	struct pav_revkeep *kept;
	struct pav_log_budget kept_full_log; /* its "no longer kept" lines */
	struct pav_log_budget catchup_bad_log; /* malformed keys read back */
	size_t restoring;
	/* the state's write-back of those into shard sh, which may have lost
	 * them (set by its create; called at a shard's rebuild, and at a tick
	 * while sh->restore_due) */
	void (*restore_kept)(struct rb_shard *sh);
	/* the state's reader of the revocations published on shard sh (set
	 * by its create): data is the message, as it came */
	void (*heard_revocation)(struct rb_shard *sh, const char *data,
				 size_t dlen);
	/* the state's catch-up on the revocations shard sh holds (set by
	 * its create): called whenever the shard's revocation channel is
	 * confirmed (subscribed, or restored on a new pub/sub connection),
	 * for what was published while the node did not listen */
	void (*catch_up)(struct rb_shard *sh);
	/* the broker's reader of pub/sub messages (set by its create) */
	void (*on_message)(struct rb_shard *sh, const char *channel,
			   size_t clen, const char *data, size_t dlen);
};

/* ---- redis_node.c ---- */

/* The instance both halves share: the state creates and frees it. */
int pav_rb_create(const struct pav_store_config *cfg,
		  const struct pav_backend_env *env, void **self, char *err,
		  size_t errlen);
void pav_rb_destroy(void *self);
int pav_rb_ready(void *self);
void pav_rb_shutdown(void *self);
void pav_rb_tick(void *self, int64_t now_ms);

/* The shard of a user ("ns", user) or of a channel (pav_rb_chan_shard). */
size_t pav_rb_shard_of(const struct rb *b, const char *ns, const char *name);
size_t pav_rb_chan_shard(const struct rb *b, const char *ns,
			 const char *channel);
/* 64 random bits (xorshift seeded from getrandom at create). */
uint64_t pav_rb_rand(struct rb *b);
/* Runs a script on a shard with the argument list a (keys first), then
 * frees the list.  When it cannot be queued (the shard is down, the queue
 * is full, building the list ran out of memory) fn runs before this
 * returns, with -EIO (-ECANCELED after shutdown). */
void pav_rb_eval(struct rb *b, size_t shard, enum pav_rb_script s,
		 int nkeys, struct rb_argv *a, pav_redis_reply_fn fn,
		 void *arg);
/* The same for a plain command (a's first entry is its name). */
void pav_rb_command(struct rb *b, size_t shard, struct rb_argv *a,
		    pav_redis_reply_fn fn, void *arg);
/* 0, or -EIO for a failure or a Redis error (logged with what);
 * -ECANCELED stays (shutdown). */
int pav_rb_reply_err(int err, const redisReply *rep, int type,
		     const char *what);
/* An integer reply, or a string reply holding one; 0 for anything else
 * (NULL, nil). */
int64_t pav_rb_int(const redisReply *r);

struct rb_user *pav_rb_user(struct rb *b, const char *ns, const char *user,
			    int make);
struct rb_chan *pav_rb_chan(struct rb *b, const char *ns,
			    const char *channel, int make);
/* Keeps status (len bytes) as a user of this node's: what a rebuild
 * restores.  Nothing for a user the node does not hold. */
void pav_rb_remember_status(struct rb *b, const char *ns, const char *user,
			    const char *status, size_t len);
void pav_rb_user_dirty(struct rb *b, struct rb_user *u);
void pav_rb_chan_dirty(struct rb *b, struct rb_chan *c);
/* Drops the entry once it holds nothing and owes nothing. */
void pav_rb_user_settle(struct rb *b, struct rb_user *u);
void pav_rb_chan_settle(struct rb *b, struct rb_chan *c);

/* The channel and number of the next fence on shard sh (a script
 * publishes the number on the channel), or "" when the node cannot hear
 * it (then there is nothing to wait for). */
const char *pav_rb_fence_next(struct rb_shard *sh, uint64_t *seq);
/* fn(arg) once fence seq came back (or the pub/sub connection that would
 * carry it was lost); before this returns when it already did. */
void pav_rb_fence_wait(struct rb_shard *sh, uint64_t seq,
		       void (*fn)(void *arg), void *arg);
/* The publication channel `name` of shard sh has no local subscriber any
 * more: it is not subscribed again should Redis have refused it. */
void pav_rb_refused_forget(struct rb_shard *sh, const char *name);

/* Keys (see redis_scripts.h): pav:U:<suffix> of a user, pav:C:<suffix> of
 * a channel, pav:N:<suffix> of this node; the seven keys of a user's inbox,
 * in the order the inbox scripts take them; the keys of a channel's
 * members on this node (C:n C:u:<node> N:chans C:meta C:hist), as the
 * member scripts take them. */
void pav_rb_ukey(struct rb_argv *a, const char *ns, const char *user,
		 const char *suffix);
void pav_rb_ckey(struct rb_argv *a, const char *ns, const char *chan,
		 const char *suffix);
void pav_rb_nkey(struct rb *b, struct rb_argv *a, const char *suffix);
/* The pub/sub channel of (ns, channel) on its shard sh. */
void pav_rb_feed(struct rb_shard *sh, struct rb_argv *a, const char *ns,
		 const char *channel);
void pav_rb_inbox_keys(struct rb_argv *a, const char *ns, const char *user);
void pav_rb_member_keys(struct rb *b, struct rb_argv *a, const char *ns,
			const char *channel);

/* ---- redis_broker.c ---- */

/* Publishes one ready message (header + frame) to gateway channels of one
 * namespace, grouped by shard; done (may be NULL) once every shard
 * answered. */
void pav_rb_publish_raw(struct rb *b, const char *ns,
			const char *const *channels, size_t n,
			const char *msg, size_t len,
			void (*done)(void *arg, int err), void *arg);
/* The wire header "P1 <pub_id> <except> F <key> <type> " (the offset and
 * newline follow), malloc'd; NULL when out of memory. */
char *pav_rb_header(struct rb *b, uint64_t pub_id, uint64_t except,
		    char kind, const char *key, const char *type);

/* A token revocation as every node hears it, on its user's shard:
 *   V1 <ns> <user> <at_ms> <ttl_ms>
 * (ns and user escaped as a key; at_ms the cut-off, ttl_ms what was left
 * of it when it was written), malloc'd; NULL when out of memory. */
char *pav_rb_revocation_msg(const char *ns, const char *user, int64_t at_ms,
			    int64_t ttl_ms);

/* The longest time to live a revocation message may carry (revoke_s). */
#define RB_REVOKE_TTL_MAX_MS ((int64_t)PAV_MAX_REVOKE_S * 1000)

struct rb_wire {
	uint64_t pub_id;
	uint64_t except; /* of node, else 0 */
	char kind;       /* 'F' a frame, 'R' a revocation, 'S' the user's
			  * status (the body), on its user channel; 'V' a
			  * token revocation (pav_rb_revocation_msg) */
	char *key;       /* NULL: none; 'V': the user */
	char *type;      /* 'V': the namespace */
	uint64_t offset;
	int64_t at_ms, ttl_ms; /* 'V' only */
};

/* Parses the header line of a message, or a whole 'V' message: hdr is a
 * copy of it (changed in place, key and type decoded there), without its
 * newline; node is this node's id.  0, or -EINVAL.  A 'V' has a user of
 * 1-PAV_MAX_ID_LEN bytes, a namespace of 1-RB_NS_LEN-1, an at_ms >= 0
 * and a ttl_ms of 1-RB_REVOKE_TTL_MAX_MS, all decimal. */
int pav_rb_wire_parse(const char *node, char *hdr, size_t hlen,
		      struct rb_wire *w);

/* A token revocation's key as a node reads it back from Redis
 * (PAV_RB_REVOKED_SCAN), with its value and what is left of it. */
struct rb_revoked {
	char ns[RB_NS_LEN];
	char user[PAV_MAX_ID_LEN + 1];
	int64_t at_ms, ttl_ms;
};

/* The SCAN pattern of those keys (pav_rb_ukey's, which escapes nothing:
 * names hold no glob character). */
#define RB_REVOKED_MATCH "pav:{u:*}:revoked"

/* key[0..klen) "pav:{u:<ns>:<user>}:revoked", val[0..vlen) its value and
 * pttl_ms its PTTL -> r.  Keys carry names as they are, so only the
 * gateway's own are taken: a namespace of 1-64 [A-Za-z0-9_.-], a user id
 * (pav_id_valid); the value a cut-off of decimal digits (no sign, at
 * most INT64_MAX), the PTTL 1-RB_REVOKE_TTL_MAX_MS.  0, or -EINVAL. */
int pav_rb_revoked_parse(const char *key, size_t klen, const char *val,
			 size_t vlen, long long pttl_ms, struct rb_revoked *r);

/* ---- argument lists ---- */

struct rb_argv {
	const char **v;
	size_t *len;
	int n, cap;
	char **owned;
	int nowned, owned_cap;
	int oom;
};

void pav_rb_av_init(struct rb_argv *a);
/* Borrowed: must outlive the call that uses the list. */
void pav_rb_av_add(struct rb_argv *a, const char *s, size_t len);
void pav_rb_av_str(struct rb_argv *a, const char *s);
/* A formatted copy, freed with the list. */
void pav_rb_av_fmt(struct rb_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pav_rb_av_free(struct rb_argv *a);

#endif
