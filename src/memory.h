/*
 * memory.h — the "memory" backend's shared table (private to
 * memory_state.c, memory_history.c and memory_broker.c): one node, one
 * process, everything answered before the call returns.
 *
 * Users and channels are keyed "ns\x1fname" (neither may contain 0x1f:
 * ids are [A-Za-z0-9_-], namespaces come from the configuration).
 */
#ifndef PAV_MEMORY_H
#define PAV_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "conn_ids.h"
#include "map.h"
#include "msg.h"
#include "wheel.h"

#define PAV_MEM_EPOCH_LEN 17 /* 16 hex + NUL */

/* A channel's record: its members on this node and its history.  It lives
 * while it has members or messages, or (history configured, offset > 0)
 * as a history position that a recovery can still match: counted in the
 * history budget and dropped ttl_s after its last activity, or earlier
 * when the budget needs the room.  A record that holds none of these is
 * freed: its epoch comes back the same until a history of its epoch
 * bucket is lost (pav_mem_chan_epoch). */
struct mem_chan {
	char *key;
	int64_t members;
	struct pav_map *users; /* user -> count (tally.h); NULL: no member */

	/* history: a ring of the newest publications, grown on demand up
	 * to size (NULL while it holds none) */
	struct pav_msg **ring;
	size_t cap, head, count;
	size_t bytes;    /* the messages' */
	size_t size;     /* 0: no history configured */
	int ttl_s;
	uint64_t offset; /* the newest publication's */
	uint64_t epoch_gen; /* its epoch bucket's generation at its start */
	char epoch[PAV_MEM_EPOCH_LEN]; /* "": not formatted yet */
	int64_t active_ms; /* last publication, join or leave */
	struct mem_chan *lru_prev, *lru_next; /* channels holding history,
						 least recently published first */
	int in_lru;
	int reaping; /* on the list of records to free (pav_mem_leave) */
	struct mem_chan *reap_next;
};

/* Epochs: a record's is derived from the store's seed, its key's bucket
 * and that bucket's generation, which moves on whenever a record of the
 * bucket loses a history with offsets: a record that held nothing can go
 * and come back with the same epoch, one that lost offsets cannot. */
#define PAV_MEM_EPOCH_BUCKETS 4096

struct pav_mem {
	struct pav_backend_env env;
	struct pav_map *users; /* ns\x1fuser -> struct mem_user */
	struct pav_map *chans; /* ns\x1fchannel -> struct mem_chan */
	size_t inbox_size;
	/* history_bytes: messages, ring slots and the records that hold
	 * history (in the lru list) */
	size_t history_max_bytes, history_bytes;
	struct mem_chan *lru_head, *lru_tail;
	uint64_t epoch_seed;
	uint64_t *epoch_gens; /* PAV_MEM_EPOCH_BUCKETS */
	int busy; /* calls under way that hold a record (pav_mem_enter) */
	struct mem_chan *reap;
	/* users with no connection, least recently changed first */
	struct user *idle_head, *idle_tail;
	/* token revocations (memory_revoked.c): ns\x1fuser -> record, at
	 * most revoked_max of them, and their ends on the monotonic clock's
	 * seconds */
	struct pav_map *revoked;
	size_t revoked_max;
	struct pav_wheel revoked_ends;
};

/* A record's key "ns\x1fname", on the stack when it fits. */
#define PAV_MEM_KEY_SMALL 192

struct pav_mem_key {
	char small[PAV_MEM_KEY_SMALL];
	char *s;
};

/* 0 or -ENOMEM; pav_mem_key_done() after either. */
int pav_mem_key(struct pav_mem_key *k, const char *ns, const char *name);
void pav_mem_key_done(struct pav_mem_key *k);

/* A user's record: connections, presence, inbox. */
#define PAV_MEM_ID_LEN 18 /* "n" + 16 hex + NUL */

struct note {
	json_object *obj; /* owned; its "isRead" mirrors read */
	int64_t created_ms;
	int read;
	char id[PAV_MEM_ID_LEN];
};

/* Ring buffer, oldest at head.  Grows on demand up to the inbox size so
 * users with few notifications do not pay for 500 slots. */
struct inbox {
	struct note *notes;
	size_t cap, head, count;
};

#define PAV_MEM_STATUS_LEN 16

struct user {
	char status[PAV_MEM_STATUS_LEN]; /* "": never set */
	int64_t last_active_ms;
	struct pav_conn_ids conns;
	/* members of "user:<this user>": counted here, not in a channel
	 * record (every connection is one; a record each would cost more
	 * than the connection's own state) */
	int64_t own_members;
	struct inbox inbox;
	/* while it has no connection: on the idle list, dropped
	 * PAV_USER_RECORD_TTL_MS after changed_ms */
	int64_t changed_ms; /* last notification, presence change or close */
	struct user *idle_prev, *idle_next;
	char key[]; /* its key in pav_mem.users */
};

/* Users (memory_table.c). */
void pav_mem_note_clear(struct note *n);
struct note *pav_mem_inbox_at(const struct inbox *ib, size_t i);
void pav_mem_user_free(void *p);
struct user *pav_mem_user_find(struct pav_mem *m, const char *ns,
			       const char *user);
/* Finds or makes the record.  0 or -ENOMEM. */
int pav_mem_user_get(struct pav_mem *m, const char *ns, const char *user,
		     struct user **out);
/* Drops a record that holds nothing presence_get would not answer for an
 * unknown user. */
void pav_mem_user_drop_if_empty(struct pav_mem *m, struct user *u);
/* The record changed now (a notification, a presence change, a
 * connection come or gone): without a connection it goes to the idle
 * list's end, with one it leaves the list. */
void pav_mem_user_touch(struct pav_mem *m, struct user *u);
/* Drops the records idle since PAV_USER_RECORD_TTL_MS before now. */
void pav_mem_users_expire(struct pav_mem *m, int64_t now);

/* The user whose own channel "user:<id>" channel is, or NULL (also when
 * it is no user channel); made when `make`. */
struct user *pav_mem_own_channel(struct pav_mem *m, const char *ns,
				 const char *channel, int make);

/* A channel's subscribers on this node (for "user:<id>": own_members). */
int64_t pav_mem_members(struct pav_mem *m, const char *ns,
			const char *channel);

/* Channels (memory_table.c).  The channel's record, made when `make`; NULL
 * when absent or out of memory. */
struct mem_chan *pav_mem_chan(struct pav_mem *m, const char *ns,
			      const char *channel, int make);
/* Frees ch if it holds nothing: now, or when the outermost call that
 * holds records returns.  Calls that hold a record across code that may
 * drop others (a callback, the budget) run between pav_mem_enter() and
 * pav_mem_leave(). */
void pav_mem_chan_forget(struct pav_mem *m, struct mem_chan *ch);
void pav_mem_enter(struct pav_mem *m);
void pav_mem_leave(struct pav_mem *m);
/* The record's epoch (formatted at the first call). */
const char *pav_mem_chan_epoch(struct pav_mem *m, struct mem_chan *ch);
/* The epoch a record of the channel made now would have, in buf; NULL
 * when out of memory. */
const char *pav_mem_absent_epoch(struct pav_mem *m, const char *ns,
				 const char *channel,
				 char buf[PAV_MEM_EPOCH_LEN]);
/* ch's history is lost (offsets and all): a new epoch from now on. */
void pav_mem_chan_new_epoch(struct pav_mem *m, struct mem_chan *ch);
void pav_mem_chan_free(void *p);
int64_t pav_mem_user_conns(struct pav_mem *m, const char *ns,
			   const char *user);

/* History (memory_history.c). */
void pav_mem_history_config(struct mem_chan *ch,
			    const struct pav_history_cfg *h);
/* Appends a publication (takes a reference): the ring grows on demand up
 * to the channel's size, then the oldest goes; past the store's byte
 * budget the least recently published channels lose first. */
void pav_mem_history_append(struct pav_mem *m, struct mem_chan *ch,
			    struct pav_msg *msg, int64_t now);
/* After a call changed ch: frees it when it holds nothing (no member, no
 * message, no history position), keeps a history position as such (in
 * the budget).  ch may be gone when it returns. */
void pav_mem_chan_drop(struct pav_mem *m, struct mem_chan *ch);
/* Drops the history of channels idle past their ttl. */
void pav_mem_history_sweep(struct pav_mem *m, int64_t now);

/* Token revocations (memory_revoked.c): one record per revoked user, in
 * m->revoked, dropped at its end; at most max records
 * (PAV_MAX_KEPT_REVOCATIONS; smaller in tests). */
int pav_mem_revoked_init(struct pav_mem *m, size_t max);
void pav_mem_revoked_free(struct pav_mem *m);
/* Makes or replaces the user's record.  0, -ENOMEM, or -ENOSPC when the
 * user has none and max records that have not ended are held: then
 * nothing changed. */
int pav_mem_revoke(struct pav_mem *m, const char *ns, const char *user,
		   int64_t at_ms, int ttl_s);
/* 1 when the user's record refuses tok, else 0. */
int pav_mem_revoked(struct pav_mem *m, const char *ns, const char *user,
		    const struct pav_token_iat *tok);
/* Drops the records whose end has come (the store's tick). */
void pav_mem_revoked_expire(struct pav_mem *m);

/* Publishes from inside the backend (presence announcements). */
void pav_mem_publish(struct pav_mem *m, const char *ns,
		     const struct pav_outgoing *out, pav_published_fn done,
		     void *arg);

extern const struct pav_state_ops pav_memory_state;
extern const struct pav_broker_ops pav_memory_broker;

#endif
