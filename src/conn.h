/*
 * conn.h — one client WebSocket connection's I/O: its send queue, inbound
 * reassembly, the closing handshake and its deadlines (heartbeat, idle,
 * token expiry).  It knows nothing of users, channels or plugins: the
 * session (session.h) sits above it.
 */
#ifndef PAV_CONN_H
#define PAV_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "wheel.h"

struct lws;
struct pav_msg;
struct pav_vhost_config;

/* What all connections share: the deadline wheel, and the connections
 * with fresh frames to write (dirty[head..ndirty), in the order they got
 * them; NULL where one was released). */
struct pav_conn_env {
	struct pav_wheel wheel; /* one-second slots */
	struct pav_conn **dirty;
	size_t head, ndirty, dirty_cap;
	/* fan-out mode (pav_conns_fanout_begin) */
	int direct;		/* write idle connections during the walk */
	size_t direct_n;	/* written so in this fan-out */
	int64_t fanout_us;	/* when this fan-out began */
	int64_t pass_start_us;	/* when the dirty list last became non-empty */
	int64_t direct_from_us;	/* the last pass's end, plus a quarter of its
				 * length (PAV_FANOUT_IDLE_DIV): idle from then */
	/* the loop has input waiting that a long walk should let in first
	 * (server.c: the internal API); NULL: never */
	int (*input_waiting)(void *arg);
	void *input_arg;
	unsigned deferred; /* turns a one-slice pass has waited (server.c) */
	size_t live; /* opened and not yet released: a shutdown waits for
		      * their closing handshakes */
	uint64_t opened; /* connections opened so far (heartbeat spread) */
	int close_outside; /* hand closes to lws from pav_conns_flush(),
			    * never by a -1 from a callback (the uv loop:
			    * see conn.c, closing) */
};

enum pav_conn_state {
	PAV_CONN_NEW = 0,
	PAV_CONN_OPEN,     /* serving */
	PAV_CONN_CLOSING,  /* flushing the queue, then the close frame */
	PAV_CONN_DRAINING, /* close frame handed to lws: discard until the
			    * client's close, EOF or the drain deadline */
};

struct pav_conn {
	struct lws *wsi;
	int plain_fd; /* a plain socket (no TLS, no permessage-deflate): its
		       * frames go to send() directly (conn.c, write_raw);
		       * else -1 */
	const struct pav_vhost_config *vc;
	struct pav_conn_env *env;
	enum pav_conn_state state;
	uint64_t id; /* the session's, for logs (0 before it has one) */
	int close_code; /* the gateway's close (0 while it started none) */
	int peer_code;	/* the client's, when it closed first (1005: none) */
	const char *close_reason;

	/* inbound reassembly, allocated only while a fragmented message is
	 * in flight */
	char *rx;
	size_t rx_len, rx_cap;
	int rx_binary;
	unsigned rx_pieces;

	/* outbound queue: a ring of shared messages */
	struct pav_msg **q;
	uint32_t q_head, q_count, q_cap;
	size_t q_bytes; /* of the entries that count */
	size_t q_kept;  /* of a replay's entries */
	size_t q_kept_over; /* the bound's excess for one replay message
			     * larger than it and its spare, while queued */

	int dirty; /* 1 + its index in env->dirty; 0: not there */
	int close_deferred; /* close_outside: the next flush hands it over */

	/* deadlines */
	/* deadlines run on the monotonic clock (pav_mono_ms()): a step of
	 * the wall clock neither closes everyone as idle nor stops the
	 * heartbeats; only the token's expiry is wall-clock time */
	int64_t last_rx_ms;
	int64_t next_heartbeat_ms;
	int64_t exp_ms; /* token expiry (without leeway), wall clock; 0: none */
	struct pav_wheel_node tw;
};

/* Starts serving: deadlines from now. */
void pav_conn_open(struct pav_conn *c, struct lws *wsi,
		   const struct pav_vhost_config *vc,
		   struct pav_conn_env *env, int64_t exp_ms);
/* The token was renewed: its expiry moved. */
void pav_conn_set_expiry(struct pav_conn *c, int64_t exp_ms);
/* Frees what the connection holds (lws frees the struct itself). */
void pav_conn_release(struct pav_conn *c);

/* Queues a message; 0, or -EPIPE (closing) / -ENOBUFS (over the outbound
 * limit: the connection is being closed with 4008). */
int pav_conn_enqueue(struct pav_conn *c, struct pav_msg *m);
/* Queues a publication of a history replay: it does not count against
 * outbound_queue_bytes, so a replay larger than the queue still goes out.
 * Replays not yet sent are bounded apart, at PAV_REPLAY_QUEUE_FACTOR times
 * outbound_queue_bytes (a client that asks for them again and again and
 * reads nothing): past that, 4008 and -ENOBUFS, as for enqueue. */
int pav_conn_enqueue_kept(struct pav_conn *c, struct pav_msg *m);
/* Queues a replay's message as enqueue_kept does, but only when it leaves
 * `spare` bytes of that bound (or nothing of a replay is queued: one
 * message of any size goes, as there, and the bound grows by what that
 * one and `spare` exceed it, until nothing of a replay is queued again, so
 * that the message ending its page still fits): else -ENOSPC, nothing
 * queued and the connection left open, so that a replay can stop at a
 * page. */
int pav_conn_enqueue_kept_within(struct pav_conn *c, struct pav_msg *m,
				 size_t spare);
/* The most a replay may hold unsent (that bound, in bytes). */
size_t pav_conn_replay_max(const struct pav_conn *c);
/*
 * Fan-out: queues like enqueue, but a connection with nothing waiting
 * joins the dirty list and is written by pav_conns_flush() at the end of
 * the event loop's turn, not through a poll round and its writable
 * callback.  A lone publication goes out at once.  A pass over many
 * connections goes in slices with the loop's input served between them:
 * what arrives meanwhile joins the queues of the connections not written
 * yet, so when publications come faster than a pass drains, each write
 * carries several (adaptive coalescing, decided by what is pending, not by
 * a timer).
 */
int pav_conn_deliver(struct pav_conn *c, struct pav_msg *m);
/*
 * Brackets one publication's fan-out (the pav_conn_deliver() calls for
 * it).  When the gateway is idle (nothing on the dirty list, no input
 * waiting, and idle since its last pass for at least a quarter of the
 * time that pass took, PAV_FANOUT_IDLE_DIV), connections with nothing
 * queued are written during the walk itself: the first frame leaves at
 * once, and each connection is touched once.  Input is looked at before
 * the walk's first write and after every PAV_DIRECT_SLICE writes: once it
 * is found waiting, and when the gateway is not idle, deliveries join the
 * dirty list as described above, so publications arriving faster than a
 * pass drains share writes.
 */
void pav_conns_fanout_begin(struct pav_conn_env *env);
void pav_conns_fanout_end(struct pav_conn_env *env);
/* Writes up to `slice` dirty connections; 1 when some are left (serve
 * the loop without waiting, then call again). */
int pav_conns_flush(struct pav_conn_env *env, size_t slice);
void pav_conn_env_free(struct pav_conn_env *env);
/* Builds and queues {"type","id"?,"channel"?,"payload"?,"timestamp"}. */
int pav_conn_send(struct pav_conn *c, const char *type, const char *id,
		  const char *channel, json_object *payload);
/* Builds and queues a message of a replay the client asked for, counted
 * as pav_conn_enqueue_kept() counts (not against outbound_queue_bytes). */
int pav_conn_send_replay(struct pav_conn *c, const char *type,
			 const char *channel, json_object *payload);
/* Builds and queues it with pav_conn_enqueue_kept_within(). */
int pav_conn_send_replay_within(struct pav_conn *c, const char *type,
				const char *channel, json_object *payload,
				size_t spare);
void pav_conn_error(struct pav_conn *c, int code, const char *message,
		    const char *id);
/* An error about one of the connection's subscriptions (pav_msg.h's
 * pav_msg_channel_error). */
void pav_conn_channel_error(struct pav_conn *c, int code, const char *message,
			    const char *channel);
/* Starts the closing handshake with code (once): the queue is written,
 * then the close frame; the client's frames are discarded until its close
 * or EOF (bounded by deadlines), so the close frame reaches a client that
 * is still sending. */
void pav_conn_close(struct pav_conn *c, int code, const char *reason);
/* The client sent a close frame (its payload: in, len): lws answers it,
 * the gateway sends none. */
void pav_conn_peer_closed(struct pav_conn *c, const void *in, size_t len);
/* lws is closing the connection (WS_SERVER_DROP_PROTOCOL, before it
 * decides whether a close frame goes out). */
void pav_conn_dropping(struct pav_conn *c);
/* A slow consumer: drop the queue, close 4008. */
void pav_conn_overflow(struct pav_conn *c);
int pav_conn_is_open(const struct pav_conn *c);
/* Stops (1) or resumes (0) reading the client's input. */
void pav_conn_rx_pause(struct pav_conn *c, int pause);

/* lws' writable callback: queued frames, then the close frame.  -1: lws
 * is to close the connection. */
int pav_conn_writeable(struct pav_conn *c);
/*
 * Feeds a chunk lws received.  Returns 1 with msg, msg_len and binary set when a
 * whole message is ready (valid until the next call), 0 otherwise (more to
 * come, or the connection is closing and input is discarded).
 */
int pav_conn_receive(struct pav_conn *c, const void *in, size_t len,
		     const char **msg, size_t *msg_len, int *binary);

/* Runs the deadlines that are due (once a second). */
void pav_conns_tick(struct pav_conn_env *env, int64_t mono_ms,
		    int64_t wall_ms);

#endif
