/* limits.h — every default limit in one place (echoed in README.md). */
#ifndef PAV_PAV_LIMITS_H
#define PAV_PAV_LIMITS_H

#define PAV_DEF_WS_PATH "/ws"
#define PAV_DEF_HEARTBEAT_INTERVAL_S 30
#define PAV_DEF_IDLE_TIMEOUT_S 90
#define PAV_DEF_MAX_MESSAGE_BYTES 16384
#define PAV_DEF_JSON_DEPTH 8
#define PAV_DEF_MESSAGES_PER_S 10
#define PAV_DEF_BURST 20
#define PAV_DEF_ABUSE_CLOSE_AFTER 100 /* excess messages within 10 s */
#define PAV_ABUSE_WINDOW_S 10
#define PAV_DEF_MAX_SUBSCRIPTIONS 128
#define PAV_DEF_MAX_CONNECTIONS_PER_IP 256
#define PAV_DEF_HANDSHAKES_PER_S_PER_IP 20
#define PAV_DEF_MAX_CONNECTIONS_PER_USER 16
#define PAV_DEF_OUTBOUND_QUEUE_BYTES (256 * 1024)
/* History replays a connection has not been sent yet: at most this many
 * times its outbound_queue_bytes (16 MiB by default), then 4008. */
#define PAV_REPLAY_QUEUE_FACTOR 64
#define PAV_DEF_HANDSHAKE_TIMEOUT_S 10
#define PAV_DEF_LEEWAY_S 30
#define PAV_DEF_INBOX_SIZE 500
/* a user's inbox and presence without a connection: 30 days */
#define PAV_USER_RECORD_TTL_MS (30LL * 24 * 3600 * 1000)
#define PAV_DEF_API_MAX_BODY (64 * 1024)
#define PAV_MAX_BATCH_PUBLICATIONS 1000 /* per POST /v1/publish */
/* DELETE /v1/users/{id}/connections?revoke_s=N: N at most 30 days */
#define PAV_MAX_REVOKE_S (30 * 24 * 3600)
/* token revocations a node holds in memory: the memory store's records
 * (past it a revocation of a user without one is refused), and the
 * copies a redis store's node keeps to write back into a Redis that
 * restarted empty (past it the one that ends first goes) */
#define PAV_MAX_KEPT_REVOCATIONS 100000
#define PAV_DEF_HISTORY_MAX_BYTES (64 * 1024 * 1024) /* all channels */
#define PAV_MAX_HISTORY_SIZE 10000 /* publications per channel */
#define PAV_DEF_HISTORY_TTL_S 300
#define PAV_DEF_NODE_TTL_S 10
#define PAV_DEF_COMMAND_TIMEOUT_MS 2000
#define PAV_PRESENCE_SNAPSHOT_MAX 1000
#define PAV_MAX_ID_LEN 64       /* user, channel and message ids */
#define PAV_MAX_CHANNEL_LEN 80  /* "channel:" + 64-char id + NUL, rounded */
/* the soft open-file limit the gateway sets (the hard one when lower):
 * the most sockets one process holds; see server.c */
#define PAV_MAX_OPEN_FILES 65536
#define PAV_SHUTDOWN_GRACE_S 10
#define PAV_SHUTDOWN_CLOSE_WAIT_S 3 /* for clients to answer the 1001 close */
#define PAV_CLOSE_FLUSH_S 5 /* for a close frame to get out */
#define PAV_CLOSE_DRAIN_S 2 /* then for the client's close or EOF */
#define PAV_WRITE_BATCH_BYTES (64 * 1024) /* frames joined into one write */
#define PAV_API_WRITE_BYTES (16 * 1024) /* an API answer's body per write */
#define PAV_FLUSH_DEFER_TURNS 4 /* loop turns a one-slice pass waits for a
				    busy internal API (server.c) */
/* a fan-out is written during its walk when the loop has been idle at
 * least this fraction (1/N) of its last pass (conn.c) */
#define PAV_FANOUT_IDLE_DIV 4
#define PAV_DIRECT_SLICE 256 /* direct writes between two looks at input */
#ifndef PAV_FLUSH_SLICE /* -D for experiments */
#define PAV_FLUSH_SLICE 2048 /* connections written between two looks at input */
#endif
#define PAV_RX_BUFFER_BYTES 256 /* lws' per-connection receive buffer */
#define PAV_MAX_FRAGMENTS 4096  /* lws deliveries per message: frames and chunks, */
#define PAV_PIECE_BYTES 64      /* and one more for each this many bytes of it */

#endif
