/* gateway.h — the core's runtime state: vhosts, connections, the hub. */
#ifndef PAV_GATEWAY_H
#define PAV_GATEWAY_H

#include <stdint.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "auth.h"
#include "config.h"
#include "map.h"
#include "msg.h"
#include "pav_limits.h"
#include "wheel.h"
#include "pavilion/plugin.h"

struct pav_chan;

/* A plugin enabled on a vhost. */
struct pav_instance {
	const struct pav_plugin *plugin;
	void *state;
};

struct pav_handler {
	pav_handler_fn fn;
	struct pav_instance *inst;
};

/* The lws vhosts of one configured vhost: one per hostname (SNI). */
struct pav_lws_vhost {
	struct lws_vhost *lv;
	SSL_CTX *ssl_ctx; /* for certificate reload on SIGHUP */
};

struct pav_vhost {
	const struct pav_vhost_config *cfg;
	struct pav_auth auth;           /* public vhosts */
	struct pav_instance *insts;     /* enabled plugins */
	size_t ninsts;
	struct pav_map *handlers;       /* type -> struct pav_handler */
	struct pav_instance *creating;  /* set during vhost_create() */
	char conflict[128];             /* why a registration was refused */
	char **api_keys;                /* internal vhosts */
	size_t napi_keys;
	struct pav_lws_vhost *lws;
	size_t nlws;
};

/* One subscription of a connection: where it sits in the channel. */
struct pav_sub {
	struct pav_chan *chan;
	uint32_t idx; /* index in chan->members */
};

enum pav_conn_state {
	PAV_CONN_NEW = 0,
	PAV_CONN_OPEN,    /* authenticated, serving */
	PAV_CONN_REFUSED, /* auth failed: error 1001 then close 4001 */
	PAV_CONN_CLOSING, /* flushing the queue, then close with close_code */
	PAV_CONN_DRAINING, /* close frame handed to lws: discard until the
			    * client's close, EOF or the drain deadline */
};

/*
 * A client connection.  This is the libwebsockets per-session data of the
 * public protocol: lws allocates it zeroed at the upgrade and frees it
 * after LWS_CALLBACK_CLOSED.
 */
struct pav_conn {
	struct lws *wsi;
	struct pav_vhost *vh;
	uint64_t id;
	enum pav_conn_state state;
	int close_code;
	const char *close_reason;
	const char *auth_why;  /* why the token was refused */
	char user[PAV_MAX_ID_LEN + 1];
	char peer[48];
	json_object *claims;
	int64_t exp_ms;        /* token expiry (without leeway) */

	/* inbound reassembly, allocated only while a fragmented message is
	 * in flight */
	char *rx;
	size_t rx_len;
	int rx_binary;
	unsigned rx_pieces; /* chunks of the message in flight */

	/* outbound queue: a ring of shared messages */
	struct pav_msg **q;
	uint32_t q_head, q_count, q_cap;
	size_t q_bytes;

	struct pav_sub *subs;
	uint32_t nsubs, subs_cap;
	uint32_t stamp; /* publication dedup */

	int counted; /* the store counts this connection */
	int64_t last_rx_ms;
	int64_t next_heartbeat_ms;
	struct pav_wheel_node tw; /* next deadline on pav_gateway.wheel */

	/* rate limiting (token bucket in milli-tokens) */
	int64_t bucket;
	int64_t bucket_ms;
	int64_t last_rate_err_ms;
	int64_t abuse_window_ms;
	int abuse_count;
};

struct pav_gateway {
	struct pav_config cfg;
	struct lws_context *ctx;
	struct pav_vhost *vhosts;
	size_t nvhosts;
	struct pav_map *conns;  /* id (hex) -> struct pav_conn */
	struct pav_map *chans;  /* ns \x1f channel -> struct pav_chan */
	struct pav_map *peers;  /* ip -> struct pav_peer (per-IP limits) */
	uint64_t next_conn_id;
	uint32_t stamp;
	const struct pav_store *store;
	int shutting_down;
	int64_t shutdown_deadline_ms;
	struct pav_wheel wheel; /* connection deadlines, one-second slots */
};

extern struct pav_gateway *pav_gw;
extern struct pav_host pav_host_api;

/* conn.c */
int pav_conn_enqueue(struct pav_conn *c, struct pav_msg *m);
/* As enqueue, but writes at once when nothing is waiting (fan-out). */
int pav_conn_deliver(struct pav_conn *c, struct pav_msg *m);
int pav_conn_send(struct pav_conn *c, const char *type, const char *id,
		  json_object *payload);
int pav_conn_send_on(struct pav_conn *c, const char *channel,
		     const char *type, json_object *payload);
int pav_conn_send_msg(struct pav_conn *c, const char *type, const char *id,
		      const char *channel, json_object *payload);
void pav_conn_error(struct pav_conn *c, int code, const char *msg,
		    const char *id);
void pav_conn_close(struct pav_conn *c, int code, const char *reason);
int pav_conn_writeable(struct pav_conn *c);
void pav_conn_receive(struct pav_conn *c, const void *in, size_t len);
void pav_conn_established(struct pav_conn *c);
void pav_conn_closed(struct pav_conn *c);
/* The client sent a close frame: lws answers it, the gateway sends none. */
void pav_conn_peer_closed(struct pav_conn *c);
/* lws is closing the connection (WS_SERVER_DROP_PROTOCOL, before it
 * decides whether a close frame goes out). */
void pav_conn_dropping(struct pav_conn *c);
/* Runs the connection deadlines that are due (once a second). */
void pav_conns_tick(int64_t now_ms);
struct pav_conn *pav_conn_find(uint64_t id);
int pav_conn_authenticate(struct pav_conn *c, const char *token);

/* hub.c: channel membership and fan-out */
int pav_hub_subscribe(struct pav_conn *c, const char *channel);
int pav_hub_unsubscribe(struct pav_conn *c, const char *channel);
int pav_hub_is_subscribed(const struct pav_conn *c, const char *channel);
void pav_hub_unsubscribe_all(struct pav_conn *c);
const char *pav_hub_sub_name(const struct pav_sub *s);
size_t pav_hub_count(const char *ns, const char *channel);
/* Counts the connections of `user` in the channel other than `except`. */
size_t pav_hub_user_count(const char *ns, const char *channel,
			  const char *user, const struct pav_conn *except);
void pav_hub_each(const char *ns, const char *channel,
		  int (*fn)(struct pav_conn *c, void *arg), void *arg);
int pav_hub_publish(const char *ns, const char *const *channels, size_t n,
		    const char *type, json_object *payload,
		    const struct pav_conn *except);
void pav_hub_free(void);

/* loader.c */
int pav_loader_load(const struct pav_config *cfg, int *refused);
const struct pav_plugin *pav_loader_find(const char *name);
void pav_loader_unload(void);

/* vhost.c: vhost runtime setup (auth keys, plugins, api keys) */
int pav_vhosts_setup(struct pav_gateway *gw, char *err, size_t errlen);
void pav_vhosts_teardown(struct pav_gateway *gw);
int pav_vhosts_reload(struct pav_gateway *gw);
int pav_api_keys_load(const char *file, char ***keys, size_t *n, char *err,
		      size_t errlen);

/* server.c */
int pav_server_run(struct pav_gateway *gw);

/* server.c: remembers a TLS vhost's SSL_CTX while it is being created */
void pav_server_note_ssl_ctx(void *ssl_ctx);
/* Acts on SIGHUP/SIGTERM/SIGINT noted by the signal handler. */
void pav_server_handle_signals(void);
/* Is the request's Upgrade header "websocket"? (never reads lws' `in`) */
int pav_server_upgrade_is_websocket(struct lws *wsi);

/* api.c: the internal HTTP API protocol (per-session data: a pointer) */
int pav_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len);

#endif
