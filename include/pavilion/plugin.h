/*
 * pavilion/plugin.h — the plugin ABI of pavilion-gateway.
 *
 * This is the only header a plugin includes.  A plugin is a shared object
 * that exports one symbol, PAV_PLUGIN_SYMBOL, a const struct pav_plugin.
 * The gateway dlopen()s every "*.so" in its plugin directories, checks the
 * descriptor's magic and ABI version, and refuses (error log, non-zero
 * `--check`) any plugin built against another ABI.
 *
 * A plugin links against nothing of the gateway: every service it may use
 * (sending, publishing, the session store, logging) is a function pointer
 * in struct pav_host, handed to the plugin's vhost_create().  Message
 * payloads are json-c objects, so a plugin links json-c
 * (`pkg-config --cflags --libs pavilion-plugin` says so).
 *
 * Scopes (as in libwebsockets): the plugin (process-wide), the instance
 * (one per vhost that enables the plugin, made by vhost_create() from that
 * vhost's options) and the connection (pav_conn, owned by the gateway).
 *
 * Threading: everything happens on the gateway's single event-loop thread.
 * No callback may block.
 *
 * Compatibility: structs that may grow start with a version or size field;
 * new members are only ever appended, and a plugin reads a host member only
 * when pav_host.version says it exists.
 */
#ifndef PAVILION_PLUGIN_H
#define PAVILION_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pavilion/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct pav_plugin or the meaning of a host call changes
 * incompatibly.  The loader refuses any other value. */
#define PAV_PLUGIN_ABI_VERSION 1u
/* "PAVG": lets the loader tell a pavilion plugin from any other .so. */
#define PAV_PLUGIN_MAGIC 0x50415647u
/* The symbol the loader looks up with dlsym(). */
#define PAV_PLUGIN_SYMBOL "pavilion_plugin"

/* Version of struct pav_host this header describes (see pav_host.version). */
#define PAV_HOST_VERSION 1u

/* Error codes of the protocol (spec "Error Codes"). */
enum pav_error_code {
	PAV_ERR_AUTH = 1001,         /* authentication error */
	PAV_ERR_FORMAT = 1002,       /* invalid message format */
	PAV_ERR_SUBSCRIPTION = 1003, /* invalid subscription */
	PAV_ERR_PERMISSION = 1004,   /* permission denied */
	PAV_ERR_RATE = 1005,         /* rate limit exceeded */
	PAV_ERR_INTERNAL = 2000,     /* internal server error */
};

enum pav_log_level {
	PAV_LOG_ERROR = 0,
	PAV_LOG_WARN = 1,
	PAV_LOG_INFO = 2,
	PAV_LOG_DEBUG = 3,
};

/* One client WebSocket connection.  Opaque; valid only during the callback
 * that hands it over.  To answer later, keep its id (pav_host.conn_id) and
 * look it up again with pav_host.conn_find(): it may have closed. */
typedef struct pav_conn pav_conn;

/* The vhost an instance belongs to.  Opaque; valid for the instance's life. */
typedef struct pav_vhost pav_vhost;

/* A deferred answer to a client message (see PAV_PENDING). */
typedef struct pav_reply pav_reply;

/*
 * A client message being handled.  Everything is borrowed from the gateway
 * for the duration of the handler call.
 */
struct pav_request {
	const char *type;    /* the envelope's "type" */
	const char *id;      /* the envelope's "id", or NULL */
	json_object *payload; /* the envelope's "payload" object, or NULL */
	/*
	 * Out: on success, extra members for the ack payload (only sent when
	 * the client gave an id).  Set it to a new json object; the gateway
	 * takes the reference.  Leave NULL for a plain {"for": type}.
	 */
	json_object *ack;
	/* Out: with an error return, the error message; a static string. */
	const char *error_message;
};

/*
 * A message handler.  Returns:
 *   0                 success: the gateway sends the ack when the client
 *                     gave an id, nothing otherwise;
 *   a pav_error_code  the gateway sends that error (with
 *                     req->error_message, or a default text) and the id;
 *   PAV_PENDING       the plugin called pav_host.defer() and will answer
 *                     through pav_host.reply() later.
 */
#define PAV_PENDING (-1)
typedef int (*pav_handler_fn)(void *instance, pav_conn *conn,
			      struct pav_request *req);

/*
 * Host services, handed to vhost_create().  The table lives as long as the
 * process; keep the pointer.  Strings passed in are copied by the host
 * unless stated; strings returned are owned by the host.
 */
struct pav_host {
	uint32_t version; /* PAV_HOST_VERSION of the running gateway */
	uint32_t size;    /* sizeof(struct pav_host) of the running gateway */

	/* Logging; the gateway prefixes the plugin name.  Never log tokens. */
	void (*log)(enum pav_log_level level, const char *plugin,
		    const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* Registration, only from vhost_create(): `type` is handled by `fn`
	 * on this vhost.  Returns 0, or -EEXIST when another enabled plugin
	 * (or the gateway: "auth", "heartbeat_ack") already handles the type
	 * on the vhost; vhost_create() then just returns the error — the
	 * gateway reports the conflict, naming both sides. */
	int (*register_handler)(pav_vhost *vh, const char *type,
				pav_handler_fn fn);

	/* Vhost facts. */
	const char *(*vhost_name)(const pav_vhost *vh);
	const char *(*vhost_namespace)(const pav_vhost *vh);

	/* Connection facts.  user: the JWT "sub"; claims: the whole verified
	 * claim set (borrowed, read-only). */
	uint64_t (*conn_id)(const pav_conn *c);
	pav_conn *(*conn_find)(uint64_t id); /* NULL once it closed */
	const char *(*conn_user)(const pav_conn *c);
	json_object *(*conn_claims)(const pav_conn *c);
	pav_vhost *(*conn_vhost)(const pav_conn *c);

	/* Sends one server message to one connection: {"type", "payload",
	 * "timestamp"}.  payload may be NULL; it is borrowed.  Returns 0 or
	 * -errno (the connection is closing, or its queue is full). */
	int (*send)(pav_conn *c, const char *type, json_object *payload);

	/*
	 * Channels.  A channel name is canonical: "user:<id>", "zone:<id>",
	 * "channel:<id>", "chat:<id>".  channel_parse() checks a client's
	 * channel string and canonicalises "user" / "user:<own id>" for the
	 * connection's user: returns 0 and writes `out` (NUL-terminated), or
	 * -EINVAL for an invalid name.
	 */
	int (*channel_parse)(const pav_conn *c, const char *in, char *out,
			     size_t outlen);
	/* Subscribe / unsubscribe the connection (idempotent).  subscribe
	 * returns 0, 1 when it was already subscribed, -ENOSPC past
	 * max_subscriptions.  Plugins' on_subscribed hooks run after the
	 * current message has been answered. */
	int (*subscribe)(pav_conn *c, const char *channel,
			 json_object *parameters);
	int (*unsubscribe)(pav_conn *c, const char *channel);
	int (*is_subscribed)(const pav_conn *c, const char *channel);
	/* Calls fn for each channel the connection is subscribed to. */
	void (*conn_channels)(const pav_conn *c,
			      void (*fn)(const char *channel, void *arg),
			      void *arg);
	/* Calls fn for each local connection subscribed to the channel in the
	 * namespace; stops early when fn returns non-zero. */
	void (*channel_conns)(const char *ns, const char *channel,
			      int (*fn)(pav_conn *c, void *arg), void *arg);

	/*
	 * Publishes one message to the union of the connections subscribed to
	 * any of `channels` in namespace `ns`: serialized once, each
	 * connection gets one copy.  The message carries a top-level "channel"
	 * (channels[0] when nchannels is 1, omitted otherwise).  `except` (may
	 * be NULL) gets nothing.  Returns the number of local recipients or
	 * -errno.
	 */
	int (*publish)(const char *ns, const char *const *channels,
		       size_t nchannels, const char *type,
		       json_object *payload, const pav_conn *except);

	/* Deferred answers: call defer() inside the handler, return
	 * PAV_PENDING, and later call reply() exactly once (code 0 = success,
	 * `ack` taken as in pav_request.ack).  reply() does nothing when the
	 * connection has gone. */
	pav_reply *(*defer)(pav_conn *c, const struct pav_request *req);
	void (*reply)(pav_reply *r, int code, const char *message,
		      json_object *ack);

	/* The session store (memory or redis), shared by all plugins. */
	const struct pav_store *store;

	/* Current time: milliseconds since the epoch, and RFC 3339 UTC with
	 * milliseconds into buf (at least 32 bytes). */
	int64_t (*now_ms)(void);
	void (*format_time)(int64_t ms, char *buf, size_t len);
	/* Parses RFC 3339 into ms since the epoch; 0 or -EINVAL. */
	int (*parse_time)(const char *s, int64_t *ms);

	/* Verifies a JWT with the connection's vhost key and algorithms
	 * (exp required, iss/aud/nbf as configured).  On success *claims is a
	 * new reference the caller puts.  0 or -EACCES. */
	int (*verify_token)(const pav_conn *c, const char *token,
			    json_object **claims);

	/* As send(), with a top-level "channel": for what belongs to a
	 * channel but goes to one connection (an inbox replay on "user:<id>",
	 * a presence snapshot of a zone). */
	int (*send_channel)(pav_conn *c, const char *channel, const char *type,
			    json_object *payload);
};

/* The descriptor a plugin exports as PAV_PLUGIN_SYMBOL. */
struct pav_plugin {
	uint32_t magic;       /* PAV_PLUGIN_MAGIC */
	uint32_t abi_version; /* PAV_PLUGIN_ABI_VERSION the plugin was built for */
	const char *name;     /* enables it in a vhost's "plugins" object */
	const char *version;  /* the plugin's own version, for logs */
	const char *description;

	/*
	 * Makes the instance for one vhost from its options (the vhost's
	 * "plugins": {"<name>": {...}} object, never NULL).  Registers its
	 * handlers.  On a bad option returns -EINVAL and writes
	 * "key: reason" into err; the gateway prefixes file and path.
	 */
	int (*vhost_create)(const struct pav_host *host, pav_vhost *vh,
			    json_object *options, void **instance, char *err,
			    size_t errlen);
	void (*vhost_destroy)(void *instance);

	/* Optional hooks (NULL when unused).  first/last: this is the
	 * user's first connection / the user's last one closed, in the
	 * namespace, across all nodes. */
	void (*on_open)(void *instance, pav_conn *c, int first);
	void (*on_close)(void *instance, pav_conn *c, int last);
	/* After a subscribe took effect (also the automatic "user:<id>").
	 * user_first: no other connection of this user is in the channel. */
	void (*on_subscribed)(void *instance, pav_conn *c, const char *channel,
			      json_object *parameters, int user_first);
	void (*on_unsubscribed)(void *instance, pav_conn *c,
				const char *channel);

	void *reserved[8]; /* zero; room to grow without an ABI bump */
};

/* Convenience for a plugin's one export. */
#define PAV_PLUGIN_EXPORT \
	__attribute__((visibility("default"))) const struct pav_plugin \
		pavilion_plugin

#ifdef __cplusplus
}
#endif

#endif /* PAVILION_PLUGIN_H */
