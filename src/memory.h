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

/* A channel's record: its members on this node and its history.  It lives
 * while it has members or history, or (with history configured) until
 * ttl_s after its last activity, so that an epoch outlives a short gap. */
struct mem_chan {
	char *key;
	int64_t members;
	struct pav_map *users; /* user -> count (tally.h) */

	/* history: a ring of the newest publications, grown on demand up
	 * to size (NULL while it holds none) */
	struct pav_msg **ring;
	size_t cap, head, count;
	size_t bytes;    /* the messages' */
	size_t size;     /* 0: no history configured */
	uint64_t offset; /* the newest publication's */
	char epoch[20];  /* "": not drawn yet (pav_mem_chan_epoch) */
	int ttl_s;
	int64_t active_ms; /* last publication, join or leave */
	struct mem_chan *lru_prev, *lru_next; /* channels holding history,
						 least recently published first */
	int in_lru;
};

struct pav_mem {
	struct pav_backend_env env;
	struct pav_map *users; /* ns\x1fuser -> struct mem_user */
	struct pav_map *chans; /* ns\x1fchannel -> struct mem_chan */
	size_t inbox_size;
	/* history_bytes: the messages and ring slots of all channels */
	size_t history_max_bytes, history_bytes;
	struct mem_chan *lru_head, *lru_tail;
};

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
void pav_mem_user_drop_if_empty(struct pav_mem *m, const char *ns,
				const char *user, struct user *u);

/* The user whose own channel "user:<id>" channel is, or NULL (also when
 * it is no user channel); made when `make`. */
struct user *pav_mem_own_channel(struct pav_mem *m, const char *ns,
				 const char *channel, int make);

/* A channel's subscribers on this node (for "user:<id>": own_members). */
int64_t pav_mem_members(struct pav_mem *m, const char *ns,
			const char *channel);

/* Channels (memory_table.c).  The channel's record, made when `make`; NULL when absent or out of
 * memory.  pav_mem_chan_drop() frees it once it holds nothing. */
struct mem_chan *pav_mem_chan(struct pav_mem *m, const char *ns,
			      const char *channel, int make);
void pav_mem_chan_drop(struct pav_mem *m, struct mem_chan *ch, int64_t now);
/* The record's epoch, drawn at the first call: a record made for one
 * publication to a channel nobody is in (counted, then dropped) never
 * needs one, so a publication does not pay for drawing it. */
const char *pav_mem_chan_epoch(struct mem_chan *ch);
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
/* Drops the history of channels idle past their ttl. */
void pav_mem_history_sweep(struct pav_mem *m, int64_t now);

/* Publishes from inside the backend (presence announcements). */
void pav_mem_publish(struct pav_mem *m, const char *ns,
		     const struct pav_outgoing *out, pav_published_fn done,
		     void *arg);

extern const struct pav_state_ops pav_memory_state;
extern const struct pav_broker_ops pav_memory_broker;

#endif
