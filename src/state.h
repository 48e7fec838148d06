/*
 * state.h — the shared state of every node of a namespace (sessions and
 * per-user connection counts, presence, inboxes, channel member counts,
 * history), as a vtable that each backend implements.
 *
 * Contract for every call: `self` is the instance create() made; strings
 * are borrowed for the call; every callback runs exactly once, on the
 * event-loop thread, either before the call returns (memory) or later (a
 * network store) — callers must handle both; err is 0 or -errno, and -EIO
 * means the store is unreachable.  Data handed to a callback is borrowed
 * for the callback's duration.  cb may be NULL where noted.
 */
#ifndef PAV_STATE_H
#define PAV_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "pavilion/plugin.h"

struct pav_store_config;
struct pav_backend_env;
struct pav_msg;
struct pav_outgoing;

/* The issue time of the token a connection presents, as a token
 * revocation (tokens_revoke) judges it. */
struct pav_token_iat {
	int has;  /* the token has an "iat" claim */
	double s; /* its value: seconds since the epoch, as the claims give it */
};

/* Does a revocation made at at_ms (wall clock) refuse tok?  A token
 * without iat cannot show it was issued after, so it is refused too.
 * iat * 1000 is exact for whole seconds (< 2^53); a store that compares
 * elsewhere (a Redis script) compares the same way. */
static inline int pav_token_revoked(const struct pav_token_iat *tok,
				    int64_t at_ms)
{
	return !tok->has || tok->s * 1000.0 <= (double)at_ms;
}

/* count: the user's connections after the change, on every node. */
typedef void (*pav_state_count_fn)(void *arg, int err, int64_t count);
/* After a member joined: the channel's subscribers and this user's
 * connections in it, on every node. */
typedef void (*pav_state_member_fn)(void *arg, int err, int64_t subscribers,
				    int64_t user_count);

/* One channel kind's history (vhost "history"); size 0: none. */
struct pav_history_cfg {
	int size;  /* publications kept */
	int ttl_s; /* kept this long after the channel's last publication */
};

/* A history read: the channel's epoch and newest offset, and the
 * publications after the offset asked for that history still holds
 * (frames with m->offset set), oldest first, at most the number asked
 * for.  complete: every publication after that offset is there (so a
 * recovery can say "recovered"). */
struct pav_history {
	const char *epoch;
	uint64_t offset;
	struct pav_msg *const *msgs;
	size_t n;
	int complete;
};
typedef void (*pav_history_fn)(void *arg, int err,
			       const struct pav_history *h);

struct pav_state_ops {
	int (*create)(const struct pav_store_config *cfg,
		      const struct pav_backend_env *env, void **self,
		      char *err, size_t errlen);
	void (*destroy)(void *self);
	int (*ready)(void *self);
	/* Optional (may be NULL): the event loop is about to go.  Let go of
	 * everything that lives on it (connections, timers); every call after
	 * this fails at once (its callback gets -ECANCELED).  destroy() still
	 * follows, after the loop is gone. */
	void (*shutdown)(void *self);
	/* Once a second from the core's housekeeping (expiry sweeps). */
	void (*tick)(void *self, int64_t now_ms);

	/* Counts a connection for its user: -EUSERS (and nothing counted)
	 * when the user already has max_per_user on all nodes;
	 * -EKEYREVOKED (and nothing counted) when the user's token
	 * revocation refuses tok, the token the connection opened with
	 * (NULL: not checked).  One step, so that a handshake costs the
	 * store no more calls for the check. */
	void (*conn_add)(void *self, const char *ns, const char *user,
			 uint64_t conn, int max_per_user,
			 const struct pav_token_iat *tok,
			 pav_state_count_fn cb, void *arg);
	/* cb may be NULL. */
	void (*conn_remove)(void *self, const char *ns, const char *user,
			    uint64_t conn, pav_state_count_fn cb, void *arg);

	/* As pav_host.presence_get / presence_set (plugin.h); the change's
	 * announcement (may be NULL) is published through this backend's
	 * broker, its payload's stamp_member set to the change's time.  A
	 * store whose node was taken for dead while it held the user's
	 * connections (redis) applies, at the IF_CONNECTED change its open
	 * hooks make again, the status the user had chosen instead of the one
	 * asked for, and the announcement's "status" says so. */
	void (*presence_get)(void *self, const char *ns, const char *user,
			     pav_presence_fn cb, void *arg);
	void (*presence_set)(void *self, const char *ns, const char *user,
			     const char *status, enum pav_presence_when when,
			     int64_t at_ms, const struct pav_outgoing *announce,
			     const char *stamp_member, pav_presence_fn cb,
			     void *arg);

	/* As pav_host.inbox_* (plugin.h); inbox_size from the config. */
	void (*inbox_add)(void *self, const char *ns, const char *user,
			  json_object *notification, pav_json_fn cb,
			  void *arg);
	void (*inbox_list)(void *self, const char *ns, const char *user,
			   int64_t since_ms, int unread_only, size_t limit,
			   pav_json_fn cb, void *arg);
	void (*inbox_mark_read)(void *self, const char *ns, const char *user,
				const char *id, pav_done_fn cb, void *arg);

	/* Channel membership of this node's connections, counted on every
	 * node.  member_remove's cb may be NULL. */
	void (*member_add)(void *self, const char *ns, const char *channel,
			   const char *user, pav_state_member_fn cb, void *arg);
	void (*member_remove)(void *self, const char *ns, const char *channel,
			      const char *user);
	void (*channel_counts)(void *self, const char *ns,
			       const char *const *channels, size_t n,
			       pav_counts_fn cb, void *arg);
	void (*channel_users)(void *self, const char *ns, const char *channel,
			      size_t max, pav_users_fn cb, void *arg);
	/* The user's connections on every node (0 for an unknown user). */
	void (*user_count)(void *self, const char *ns, const char *user,
			   pav_state_count_fn cb, void *arg);

	/* A token revocation, for every node: for ttl_s seconds from now,
	 * the user's tokens issued at or before at_ms (wall clock; see
	 * pav_token_revoked) are refused by conn_add and token_check.  A
	 * later call replaces the user's record (its time and its ttl).
	 * One record per revoked user, dropped when it expires.  -ENOSPC:
	 * a store that holds the records in a bounded space is full (a
	 * user without a record only), and nothing was changed. */
	void (*tokens_revoke)(void *self, const char *ns, const char *user,
			      int64_t at_ms, int ttl_s, pav_done_fn cb,
			      void *arg);
	/* 0, or -EKEYREVOKED when the user's token revocation refuses tok
	 * (a token presented to renew a connection's). */
	void (*token_check)(void *self, const char *ns, const char *user,
			    const struct pav_token_iat *tok, pav_done_fn cb,
			    void *arg);

	/* History of a channel with history `h`: publications after
	 * `after`, at most max (0: only epoch and offset). */
	void (*history_read)(void *self, const char *ns, const char *channel,
			     const struct pav_history_cfg *h, uint64_t after,
			     size_t max, pav_history_fn cb, void *arg);
};

#endif
