/*
 * pavilion/plugin.h — the plugin ABI of pavilion-gateway, version 2.
 *
 * This is the only header a plugin includes.  A plugin is a shared object
 * that exports one symbol, PAV_PLUGIN_SYMBOL, a const struct pav_plugin.
 * The gateway loads "<name>.so" from its plugin directories for every name
 * some vhost enables, checks the descriptor's magic and ABI version, and
 * refuses (error log naming both versions, non-zero `--check`) a plugin
 * built against another ABI.
 *
 * A plugin links against nothing of the gateway: every service it may use
 * (sending, publishing, subscribing, the shared state, timers, logging) is
 * a function pointer in struct pav_host, handed to vhost_create().  Message
 * payloads are json-c objects, so a plugin links json-c
 * (`pkg-config --cflags --libs pavilion-plugin` says so).
 *
 * Scopes (as in libwebsockets): the plugin (process-wide), the instance
 * (one per vhost that enables the plugin, made by vhost_create() from that
 * vhost's options) and the connection (pav_conn, owned by the gateway).
 *
 * Several gateway nodes may serve one namespace (the "redis" store): the
 * host calls that read or change shared state (presence, inboxes, channel
 * membership, publishing) act on every node; those that walk connections
 * (conn_find, user_channels) see this node's only.  Shared-state calls
 * answer through a callback, which may run before the call returns (the
 * "memory" store) or later (a network store): never assume either.  A
 * callback that finds err = -EIO met an unreachable store; answer the
 * client 2000 (PAV_ERR_INTERNAL).
 *
 * Threading: everything happens on the gateway's single event-loop thread.
 * No callback may block.
 *
 * Compatibility: structs that may grow start with a version or size field;
 * new members are only ever appended, and a plugin reads a host member only
 * when pav_host.version says it exists.  What changed from ABI 1 (which is
 * refused): PAV_PENDING is no longer -1; publish, membership and state calls
 * take the instance's vhost instead of a namespace string; subscribe answers
 * the client itself; plugins may own internal-API routes and payload
 * checks; hooks get a struct for subscriptions; timers, random ids, holds.
 */
#ifndef PAVILION_PLUGIN_H
#define PAVILION_PLUGIN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct pav_plugin or the meaning of a host call changes
 * incompatibly.  The loader refuses any other value. */
#define PAV_PLUGIN_ABI_VERSION 2u
/* "PAVG": lets the loader tell a pavilion plugin from any other .so. */
#define PAV_PLUGIN_MAGIC 0x50415647u
/* The symbol the loader looks up with dlsym(). */
#define PAV_PLUGIN_SYMBOL "pavilion_plugin"

/* Version of struct pav_host this header describes (see pav_host.version).
 * 3 added store_ready, 4 send_replay, 5 send_replay_within; a member newer
 * than the running gateway lies past host->size (check it before calling
 * one). */
#define PAV_HOST_VERSION 5u

/* Error codes of the protocol (spec "Error Codes"). */
enum pav_error_code {
	PAV_ERR_AUTH = 1001,         /* authentication error */
	PAV_ERR_FORMAT = 1002,       /* invalid message format */
	PAV_ERR_SUBSCRIPTION = 1003, /* invalid subscription */
	PAV_ERR_PERMISSION = 1004,   /* permission denied */
	PAV_ERR_RATE = 1005,         /* rate limit exceeded */
	PAV_ERR_INTERNAL = 2000,     /* internal server error */
};

/*
 * A handler's "I will answer later" (see pav_handler_fn).  Positive and far
 * above every errno and protocol code, so that no mistaken return value
 * can be read as it.
 */
#define PAV_PENDING 0x50454e44 /* "PEND" */

/* Largest ids the protocol knows: user, channel and message ids. */
#define PAV_ID_MAX 64
/* A buffer that holds any canonical channel name ("channel:" + id). */
#define PAV_CHANNEL_BUF 80
/* A buffer that holds any RFC 3339 time the gateway formats. */
#define PAV_TIME_BUF 32

enum pav_log_level {
	PAV_LOG_ERROR = 0,
	PAV_LOG_WARN = 1,
	PAV_LOG_INFO = 2,
	PAV_LOG_DEBUG = 3,
};

/* One client WebSocket connection.  Opaque; valid only during the callback
 * that hands it over.  To answer later, keep its id (pav_host.conn_id) and
 * look it up again with pav_host.conn_find(): it may have closed. */
typedef struct pav_session pav_conn;

/* The vhost an instance belongs to.  Opaque; valid for the instance's life. */
typedef struct pav_vhost pav_vhost;

/* A deferred answer to a client message (see PAV_PENDING). */
typedef struct pav_reply pav_reply;

/* An internal-API request being answered (see register_route). */
typedef struct pav_api_call pav_api_call;

/* A host timer (see timer_start). */
typedef struct pav_timer pav_timer;

/*
 * A client message being handled.  Everything is borrowed from the gateway
 * for the duration of the handler call.
 */
struct pav_request {
	const char *type;     /* the envelope's "type" */
	const char *id;       /* the envelope's "id", or NULL */
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
 *   PAV_PENDING       the plugin called pav_host.defer() (or handed the
 *                     request to a host call that answers it, such as
 *                     subscribe) and the answer comes later.
 * Anything else (a negative errno, say) is a plugin bug: the gateway logs
 * it and answers 2000.
 */
typedef int (*pav_handler_fn)(void *instance, pav_conn *conn,
			      struct pav_request *req);

/* ---- shared state: results handed to callbacks (borrowed) ---------- */

/* Presence of one user.  status: "online", "offline", "busy", "away". */
struct pav_presence {
	const char *user;
	const char *status;
	int64_t last_active_ms; /* 0 when never seen */
	int connections;        /* open connections, all nodes */
};

/* err: 0 or -errno (-ENOENT no such item, -EIO store unreachable). */
typedef void (*pav_done_fn)(void *arg, int err);
typedef void (*pav_presence_fn)(void *arg, int err,
				const struct pav_presence *p);
/* A json value (a notification, a list of them); borrowed, may be kept
 * with json_object_get(). */
typedef void (*pav_json_fn)(void *arg, int err, json_object *v);
/* counts[i] belongs to the i-th channel asked for; -1 where unknown. */
typedef void (*pav_counts_fn)(void *arg, int err, const int64_t *counts,
			      size_t n);
/* Distinct user ids, at most the number asked for. */
typedef void (*pav_users_fn)(void *arg, int err, const char *const *users,
			     size_t n);

/* What a publication got: its channel's offset and epoch where the channel
 * keeps history (else 0 and NULL), and its subscribers over all nodes when
 * it was published to one channel (else -1). */
struct pav_published {
	uint64_t offset;
	const char *epoch;
	int64_t recipients;
};
typedef void (*pav_published_fn)(void *arg, int err,
				 const struct pav_published *res);

/*
 * One message to publish: the union of the connections subscribed to any
 * of `channels` (canonical names) in the vhost's namespace, on every node,
 * gets it once.  It carries a top-level "channel" when nchannels is 1.
 */
struct pav_publication {
	const char *const *channels;
	size_t nchannels;
	const char *type;     /* 1 to 64 bytes */
	json_object *payload; /* borrowed; serialized once */
	const pav_conn *except; /* gets nothing; may be NULL */
	/* Identifies the message for pav_host.release() (a notification's
	 * id, say); NULL or 1 to 64 bytes. */
	const char *key;
	/* Not kept in the channel's history even where it has one (presence
	 * announcements: state, not a message stream). */
	int transient;
};

/* When a presence change applies (see presence_set). */
enum pav_presence_when {
	PAV_PRESENCE_ALWAYS = 0,
	PAV_PRESENCE_IF_CONNECTED,    /* the user has a connection somewhere */
	PAV_PRESENCE_IF_DISCONNECTED, /* the user has none anywhere */
};

/*
 * A status change and what announces it.  The store records `status` and
 * its own clock's time as lastActive when `when` holds and the status
 * differs from the stored one, and then, in the same atomic step, publishes
 * `announce` (when announce.nchannels > 0) with `stamp_member` of its
 * payload set to that time (RFC 3339).  Changes of one user are therefore
 * announced in the order the store applied them, on every node.
 */
struct pav_presence_change {
	const char *user;
	const char *status;
	enum pav_presence_when when;
	struct pav_publication announce;
	const char *stamp_member; /* e.g. "lastActive"; NULL: none */
	/* The change's time (ms since the epoch), e.g. conn_closed_ms() of
	 * the connection that went; 0: the store's clock now. */
	int64_t at_ms;
};

/* ---- internal API routes ------------------------------------------- */

/* One internal-API request routed to a plugin.  Borrowed for the call. */
struct pav_api_request {
	const char *method; /* "GET", "POST", "DELETE" */
	const char *path;   /* without the query */
	const char *query;  /* after '?', "" when none */
	/* The route pattern's "{id}" segments, in order, each a valid id
	 * (1-64 of [A-Za-z0-9_-]); the gateway answered 400 otherwise. */
	const char *const *args;
	size_t nargs;
	json_object *body; /* POST: the JSON object sent; else NULL */
};

/* Must end in exactly one api_answer() or api_error() on `call`, now or
 * later (a later answer to a client that hung up is dropped). */
typedef void (*pav_route_fn)(void *instance, pav_api_call *call,
			     const struct pav_api_request *req);

/* Checks a payload the backend publishes with POST /v1/publish for a type
 * the plugin owns.  0, or -EINVAL with a static reason in *why (answered
 * 400).  channel: the canonical target.  On success it may add to payload
 * a field the type's shape has and the backend left out (what it adds is
 * what goes out); it changes nothing the backend gave. */
typedef int (*pav_payload_check_fn)(void *instance, const char *channel,
				    json_object *payload, const char **why);

/* ---- hooks' arguments ----------------------------------------------- */

struct pav_subscribed {
	const char *channel;     /* canonical */
	json_object *parameters; /* the subscribe's "parameters", or NULL */
	/* No other connection of this user (on any node) was in the
	 * channel; 0 for a repeated subscribe. */
	int user_first;
	/* The channel's subscribers on all nodes after this one joined;
	 * -1 when unknown. */
	int64_t subscribers;
};

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

	/*
	 * Registration, only from vhost_create().  Each returns 0, -EINVAL
	 * for bad arguments, or -EEXIST when the name is taken (by another
	 * plugin, or the gateway's own "auth"/"heartbeat_ack"); vhost_create()
	 * then just returns the error: the gateway reports the conflict,
	 * naming both sides.
	 *
	 * register_handler: client messages of `type` on this vhost go to fn.
	 * register_route: internal-API requests `method` (GET/POST/DELETE)
	 *   `pattern` (e.g. "/v1/users/{id}/notifications"; "{id}" matches one
	 *   path segment holding an id) on the internal vhosts of this vhost's
	 *   namespace go to fn.  Several vhosts of one namespace may enable the
	 *   same plugin: the first instance registered answers.  With the
	 *   plugin enabled on no vhost of the namespace, the path answers 404.
	 * register_payload_check: POST /v1/publish of `type` in this
	 *   namespace is checked by fn.
	 */
	int (*register_handler)(pav_vhost *vh, const char *type,
				pav_handler_fn fn);
	int (*register_route)(pav_vhost *vh, const char *method,
			      const char *pattern, pav_route_fn fn);
	int (*register_payload_check)(pav_vhost *vh, const char *type,
				      pav_payload_check_fn fn);

	/* The vhost's configured name (for logs). */
	const char *(*vhost_name)(const pav_vhost *vh);

	/* Connection facts.  user: the JWT "sub"; claims: the whole verified
	 * claim set (borrowed, read-only, valid until the hook, handler or
	 * timer that asked returns: the gateway keeps claims as text and
	 * parses them on demand; NULL when out of memory).  conn_find
	 * answers only this node's open connections of vhost vh, NULL once
	 * one closed. */
	uint64_t (*conn_id)(const pav_conn *c);
	pav_conn *(*conn_find)(pav_vhost *vh, uint64_t id);
	const char *(*conn_user)(const pav_conn *c);
	json_object *(*conn_claims)(const pav_conn *c);
	pav_vhost *(*conn_vhost)(const pav_conn *c);
	/* Calls fn for each channel the connection is subscribed to. */
	void (*conn_channels)(const pav_conn *c,
			      void (*fn)(const char *channel, void *arg),
			      void *arg);
	/* When a closed connection was last known alive (in on_close): the
	 * time it closed, or — for the connections of a gateway node that
	 * died — that node's last heartbeat.  0 while open. */
	int64_t (*conn_closed_ms)(const pav_conn *c);

	/* Sends one server message to one connection: {"type", "channel"?,
	 * "payload"?, "timestamp"}.  channel and payload may be NULL; payload
	 * is borrowed.  0 or -errno (closing, queue full). */
	int (*send)(pav_conn *c, const char *channel, const char *type,
		    json_object *payload);

	/*
	 * Channels.  channel_parse() checks a client's channel string and
	 * canonicalises "user" / "user:<own id>" for the connection's user:
	 * 0 and `out` (NUL-terminated), or -EINVAL.  id_valid(): 1 for 1-64
	 * chars of [A-Za-z0-9_-].  user_channel() writes "user:<user>".
	 */
	int (*channel_parse)(const pav_conn *c, const char *in, char *out,
			     size_t outlen);
	int (*id_valid)(const char *s, size_t len);
	int (*user_channel)(const char *user, char *out, size_t outlen);

	/*
	 * Subscribes the connection and answers the client message `reply`
	 * stands for (from defer()): the ack carries {"channel"} and, on a
	 * channel with history, "offset", "epoch" and (when parameters hold
	 * "recover") "recovered"; recovered publications follow the ack, in
	 * order, before any live one.  Then every plugin's on_subscribed hook
	 * runs.  Past max_subscriptions: error 1003; store unreachable: 2000.
	 * A repeated subscribe is a success that runs the hooks again with
	 * user_first 0.  parameters is borrowed.  Always answers `reply`.
	 */
	void (*subscribe)(pav_conn *c, const char *channel,
			  json_object *parameters, pav_reply *reply);
	/* Leaves a channel (idempotent); on_unsubscribed hooks run when it
	 * was subscribed.  0 or -errno; -EPERM for the connection's own
	 * user channel, which it holds as long as it is open. */
	int (*unsubscribe)(pav_conn *c, const char *channel);
	int (*is_subscribed)(const pav_conn *c, const char *channel);
	/* Calls fn once for each distinct zone:/channel:/chat: channel that
	 * a connection of `user` on this node is subscribed to. */
	void (*user_channels)(pav_vhost *vh, const char *user,
			      void (*fn)(const char *channel, void *arg),
			      void *arg);
	/*
	 * Catching up without a gap: hold() makes the connection keep (not
	 * send) what is published to a channel it is subscribed to; release()
	 * sends what was kept, in order, except publications whose key is in
	 * skip (already sent by the caller).  Read the past after hold() and
	 * release() after sending it; each hold() takes one release().  Two
	 * catch-ups of one channel that overlap keep one hold until the last
	 * release: an earlier release drops only what its skip names, and
	 * the last sends the rest, skipping the keys of every one of them.
	 * A hold that outgrows the connection's outbound queue (the keys an
	 * earlier release left with it count too) closes it like a slow
	 * consumer (4008).
	 */
	void (*hold)(pav_conn *c, const char *channel);
	void (*release)(pav_conn *c, const char *channel,
			const char *const *skip, size_t nskip);

	/* Publishes (see struct pav_publication).  done may be NULL. */
	void (*publish)(pav_vhost *vh, const struct pav_publication *pub,
			pav_published_fn done, void *arg);

	/* Deferred answers: call defer() inside the handler, return
	 * PAV_PENDING, and later call reply() exactly once (code 0 = success,
	 * `ack` taken as in pav_request.ack).  reply() does nothing visible
	 * when the connection has gone.  defer() returns NULL when out of
	 * memory: then answer PAV_ERR_INTERNAL at once. */
	pav_reply *(*defer)(pav_conn *c, const struct pav_request *req);
	void (*reply)(pav_reply *r, int code, const char *message,
		      json_object *ack);

	/*
	 * Shared state of the vhost's namespace, on every node.
	 * presence_get: a user the store never saw is "offline", 0, 0.
	 * presence_set: see struct pav_presence_change; cb's err is
	 *   -EALREADY when nothing changed (status unchanged, or `when` did
	 *   not hold), and its presence is the stored one after the call.
	 * inbox_add: stores a copy of `notification` with "id", "createdAt"
	 *   (the store's clock) and "isRead": false set, evicting the oldest
	 *   past the inbox size; cb gets the stored copy.  It does not deliver.
	 * inbox_list: created after since_ms (0: all), unread only when asked,
	 *   the newest `limit` (0: all), oldest first; cb gets a json array.
	 * inbox_mark_read: -ENOENT when id is not in this user's inbox.
	 * channel_counts: subscribers of each channel on all nodes.
	 * channel_users: distinct users subscribed to a channel, at most max.
	 */
	void (*presence_get)(pav_vhost *vh, const char *user,
			     pav_presence_fn cb, void *arg);
	void (*presence_set)(pav_vhost *vh,
			     const struct pav_presence_change *change,
			     pav_presence_fn cb, void *arg);
	void (*inbox_add)(pav_vhost *vh, const char *user,
			  json_object *notification, pav_json_fn cb,
			  void *arg);
	void (*inbox_list)(pav_vhost *vh, const char *user, int64_t since_ms,
			   int unread_only, size_t limit, pav_json_fn cb,
			   void *arg);
	void (*inbox_mark_read)(pav_vhost *vh, const char *user,
				const char *id, pav_done_fn cb, void *arg);
	void (*channel_counts)(pav_vhost *vh, const char *const *channels,
			       size_t n, pav_counts_fn cb, void *arg);
	void (*channel_users)(pav_vhost *vh, const char *channel, size_t max,
			      pav_users_fn cb, void *arg);

	/* Time: ms since the epoch; RFC 3339 UTC with milliseconds into buf
	 * (PAV_TIME_BUF bytes); parse_time: 0 or -EINVAL. */
	int64_t (*now_ms)(void);
	void (*format_time)(int64_t ms, char *buf, size_t len);
	int (*parse_time)(const char *s, int64_t *ms);

	/* A random id: `prefix` + 16 lowercase hex digits (64 random bits)
	 * into buf (at least 18 bytes).  0 or -EIO. */
	int (*random_id)(char prefix, char *buf, size_t len);

	/* A one-shot timer on the event loop: fn(arg) after delay_ms, unless
	 * cancelled first.  Cancel every timer of an instance in its
	 * vhost_destroy (the gateway cancels leftovers).  NULL when out of
	 * memory.  A timer must not be cancelled from its own fn. */
	pav_timer *(*timer_start)(pav_vhost *vh, int64_t delay_ms,
				  void (*fn)(void *arg), void *arg);
	void (*timer_cancel)(pav_timer *t);

	/* Verifies a subscription token (parameters.token) with the
	 * connection's vhost key and algorithms (exp required, iss/aud/nbf as
	 * configured, a "channel" claim required).  On success *claims is a
	 * new reference the caller puts.  0 or -EACCES. */
	int (*verify_token)(const pav_conn *c, const char *token,
			    json_object **claims);

	/* Answers an internal-API call: `body` (taken) as JSON with status;
	 * or the gateway's error shape {"error":{"code","message"}} for
	 * status (400, 404, 409, 500, 503, ...). */
	void (*api_answer)(pav_api_call *call, int status, json_object *body);
	void (*api_error)(pav_api_call *call, int status, const char *message);
	/* A query parameter as a whole number in [0, max]: the value, def
	 * when absent, -1 when malformed. */
	long (*query_number)(const char *query, const char *key, long def,
			     long max);

	/* Since version 3.  1 when the store of the vhost's namespace can
	 * serve now (as /readyz says; the memory store always can), else 0:
	 * state calls then fail with -EIO.  For a client message whose work
	 * needs the store only after it is answered (a hook's), so that the
	 * client can still get 2000. */
	int (*store_ready)(pav_vhost *vh);

	/* Since version 4.  Sends like send(), for a replay the client asked
	 * for (an inbox read back, a presence snapshot): the replay is not a backlog the
	 * client failed to read, so it does not count against
	 * outbound_queue_bytes, only against the gateway's own bound on
	 * replays not yet sent (past it: 4008, as for a slow consumer).
	 * 0 or -errno (closing, over that bound). */
	int (*send_replay)(pav_conn *c, const char *channel, const char *type,
			   json_object *payload);

	/* Since version 5.  Sends like send_replay(), but only a message that
	 * leaves at least `spare` bytes of what the connection may still hold
	 * of replays not yet sent; otherwise it sends nothing, leaves the
	 * connection open and answers -ENOSPC.  A connection with no replay
	 * waiting takes one message of any size, so a replay always moves on,
	 * and still `spare` bytes after it, so that it is a page of its own.
	 * For a replay that may be larger than that bound: send it in pages,
	 * `spare` being room for the message that ends a page (sent with
	 * send_replay(), which does count: a client that asks page after
	 * page and reads none is still closed 4008).  0 or -errno (-ENOSPC,
	 * -EPIPE closing). */
	int (*send_replay_within)(pav_conn *c, const char *channel,
				  const char *type, json_object *payload,
				  size_t spare);
};

/* The API error for a store call that failed with err: 503 "session store
 * unavailable" when the store cannot be reached (-EIO), else 500 "session
 * store error".  One wording for every plugin. */
static inline void pav_api_store_error(const struct pav_host *host,
				       pav_api_call *call, int err)
{
	if (err == -EIO)
		host->api_error(call, 503, "session store unavailable");
	else
		host->api_error(call, 500, "session store error");
}

/* send_replay() where the running gateway has it (version 4), else send():
 * for what a client asked to be sent at once (a replay, a snapshot). */
static inline int pav_send_replay(const struct pav_host *host, pav_conn *c,
				  const char *channel, const char *type,
				  json_object *payload)
{
	if (host->size > offsetof(struct pav_host, send_replay) &&
	    host->send_replay)
		return host->send_replay(c, channel, type, payload);
	return host->send(c, channel, type, payload);
}

/* send_replay_within() where the running gateway has it (version 5), else
 * pav_send_replay(), which never answers -ENOSPC: a replay past the bound
 * then closes the connection 4008, as it did before version 5. */
static inline int pav_send_replay_within(const struct pav_host *host,
					 pav_conn *c, const char *channel,
					 const char *type, json_object *payload,
					 size_t spare)
{
	if (host->size > offsetof(struct pav_host, send_replay_within) &&
	    host->send_replay_within)
		return host->send_replay_within(c, channel, type, payload,
						spare);
	return pav_send_replay(host, c, channel, type, payload);
}

/* The descriptor a plugin exports as PAV_PLUGIN_SYMBOL. */
struct pav_plugin {
	uint32_t magic;       /* PAV_PLUGIN_MAGIC */
	uint32_t abi_version; /* PAV_PLUGIN_ABI_VERSION the plugin was built for */
	const char *name;     /* the file is "<name>.so"; enables it in a
				 vhost's "plugins" object */
	const char *version;  /* the plugin's own version, for logs */
	const char *description;

	/*
	 * Makes the instance for one vhost from its options (the vhost's
	 * "plugins": {"<name>": {...}} object, never NULL).  Registers its
	 * handlers, routes and checks.  On a bad option returns -EINVAL and
	 * writes "key: reason" into err; the gateway prefixes file and path.
	 */
	int (*vhost_create)(const struct pav_host *host, pav_vhost *vh,
			    json_object *options, void **instance, char *err,
			    size_t errlen);
	void (*vhost_destroy)(void *instance);

	/*
	 * Optional hooks (NULL when unused).  The gateway calls them, from one
	 * place, in this order for one connection; for each event, instances
	 * run in the order the vhost lists its plugins:
	 *   on_open(first)          after the store counted the connection;
	 *                           first: the user's first connection in
	 *                           the namespace, on any node;
	 *   on_subscribed(user:<id>) the automatic subscription, then one
	 *                           on_subscribed per subscribe, after its ack;
	 *   on_unsubscribed         per unsubscribe that left a channel,
	 *                           per subscription a token renewal
	 *                           revoked (see check_renewed), and per
	 *                           subscribe that joined a channel and
	 *                           then failed (the store: answered 2000,
	 *                           no on_subscribed).  Like an unsubscribe
	 *                           that overtakes a subscribe on its way,
	 *                           this one may come without the
	 *                           on_subscribed of that channel;
	 *   on_close(last)          after the socket closed and the store
	 *                           removed the connection; last: no
	 *                           connection of the user is left anywhere.
	 *                           The connection still lists its channels
	 *                           (conn_channels) but sends go nowhere.
	 */
	void (*on_open)(void *instance, pav_conn *c, int first);
	void (*on_subscribed)(void *instance, pav_conn *c,
			      const struct pav_subscribed *ev);
	void (*on_unsubscribed)(void *instance, pav_conn *c,
				const char *channel);
	void (*on_close)(void *instance, pav_conn *c, int last);

	/*
	 * Optional: checks the members of a subscribe's "parameters" that this
	 * plugin acts on (its own names), before anything is subscribed, so
	 * the client can still be told: 0, or PAV_ERR_FORMAT with a static
	 * reason in *why, or PAV_ERR_INTERNAL when what they ask for needs
	 * the store and store_ready() says it cannot serve.  Members no
	 * plugin knows are ignored.  The gateway itself checks "recover".
	 */
	int (*check_parameters)(void *instance, pav_conn *c,
				const char *channel, json_object *parameters,
				const char **why);

	/*
	 * Optional: may the connection keep `channel` under the claims of
	 * the token it just renewed to?  After an accepted `auth` message,
	 * once its ack is queued, the gateway asks for every channel the
	 * connection is subscribed to (a subscribe still on its way
	 * included), its own user channel excepted, with conn_claims()
	 * answering the new claims: 0 keeps the subscription; any other
	 * value (PAV_ERR_PERMISSION) revokes it.  A channel one instance
	 * revokes is left as an unsubscribe leaves it (the on_unsubscribed
	 * hooks run) and the client gets one error 1004 "subscription
	 * revoked" with the channel in payload.channel; a subscribe of it
	 * still on its way is answered 1004 "subscription revoked" (not
	 * acked) and gets no on_subscribed.  A refused renewal asks
	 * nothing.  Decide from what the subscription was granted on: the
	 * access rules that let a subscribe of this channel through.
	 * This was reserved[0]: a plugin built before it has NULL here.
	 */
	int (*check_renewed)(void *instance, pav_conn *c, const char *channel);

	void *reserved[7]; /* zero; room to grow without an ABI bump */
};

/* Convenience for a plugin's one export. */
#define PAV_PLUGIN_EXPORT \
	__attribute__((visibility("default"))) const struct pav_plugin \
		pavilion_plugin

#ifdef __cplusplus
}
#endif

#endif /* PAVILION_PLUGIN_H */
