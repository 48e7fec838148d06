/*
 * redis.h — an asynchronous Redis client on the gateway's lws event loop.
 *
 * One client keeps two TCP connections to one Redis server: a command
 * connection (pipelined commands, Lua scripts, health checks) and a
 * pub/sub connection (subscriptions), both over TLS for a rediss:// URL
 * or behind sentinels with tls (the server's certificate verified; there
 * the sentinels' too).  Single-threaded: every function
 * here must be called on the thread that services the lws context, and
 * every callback runs from that context's service loop.  Nothing blocks
 * after pav_redis_create (which resolves the host name), except a destroy
 * that must wait for a lookup glibc's resolver thread has begun.
 *
 * Callbacks never run inside the call that registered them: a reply,
 * failure or confirmation comes from a later turn of the event loop.
 * The one exception is pav_redis_destroy, which fails what is pending
 * (-ECANCELED) before it returns.  A callback may call any function
 * here, pav_redis_destroy included.
 *
 * Liveness: a command not answered within command_timeout_ms fails the
 * command connection (-ETIMEDOUT); a health request goes out every
 * probe_interval_ms and the connection is dead when it has read nothing
 * for command_timeout_ms while one is unanswered, so a silent Redis is
 * noticed within command_timeout_ms even with nothing pending.  The pub/sub
 * connection is checked end to end: every probe_interval_ms the command
 * connection publishes a probe to a channel of this client's own; a
 * probe not seen back on the pub/sub connection within command_timeout_ms
 * (or that connection closing) replaces the pub/sub connection.
 *
 * Reconnection: after the client is down it reconnects by itself, the
 * first retry within PAV_REDIS_BACKOFF_FIRST_MS, then backing off
 * exponentially (with jitter) up to PAV_REDIS_BACKOFF_MAX_MS.  A host
 * given by name is looked up again (getaddrinfo_a) each time the client
 * goes down; a retry uses the answer once it has come, else the last
 * address.  With sentinels, each retry first asks them for the master's
 * address (one at a time, from the one heard from last or past one whose
 * watch was lost, each given command_timeout_ms to connect and
 * answer; a round with no answer counts as a failed retry; a sentinel's
 * name is looked up again the same way after each failed attempt on it,
 * for the next one), and while up
 * the one that answered is subscribed to +switch-master: a new address of
 * the master takes the client down to ask again (that connection sends
 * the SUBSCRIBE again every probe_interval_ms; one unconfirmed within
 * command_timeout_ms, or the connection lost, moves it to the next
 * sentinel).  Each new
 * connection does its TLS handshake (rediss://), redoes AUTH and SELECT
 * (and with sentinels checks ROLE), loads every registered script and
 * restores every subscription before `up` is called.
 *
 * Memory is bounded: at most max_pending commands (and subscribe
 * confirmations) wait for Redis, at most max_buffer_bytes of commands wait
 * to be written, and a reply being read may not exceed max_buffer_bytes
 * (the connection is reset).  While down, nothing is queued.
 *
 * Destroy the client before the lws context.
 */
#ifndef PAV_REDIS_H
#define PAV_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h> /* struct redisReply, REDIS_REPLY_* */
#include <openssl/ssl.h>     /* SSL_CTX */

struct lws_context;

#define PAV_REDIS_DEF_PORT 6379
#define PAV_REDIS_DEF_COMMAND_TIMEOUT_MS 2000
#define PAV_REDIS_DEF_MAX_PENDING 10000
#define PAV_REDIS_DEF_PROBE_INTERVAL_MS 1000
#define PAV_REDIS_DEF_MAX_BUFFER_BYTES ((size_t)64 << 20)
#define PAV_REDIS_BACKOFF_FIRST_MS 100
#define PAV_REDIS_BACKOFF_MAX_MS 5000
#define PAV_REDIS_MAX_SCRIPTS 256
#define PAV_REDIS_SENTINEL_DEF_PORT 26379
#define PAV_REDIS_MAX_SENTINELS 16
#define PAV_REDIS_MASTER_NAME_MAX 64
#define PAV_REDIS_USER_MAX 127 /* bytes of an ACL user name */

/* One Sentinel: a name (looked up at create, and again after each failed
 * attempt on it, which also moves to its next address; kept when it does
 * not resolve yet) or a numeric address. */
struct pav_redis_sentinel {
	char host[256];
	int port;
};

struct pav_redis_config {
	char host[256];         /* name or numeric address; "[v6]" not here */
	int port;               /* 1..65535 */
	int db;                 /* SELECTed on each command connection if > 0 */
	char user[PAV_REDIS_USER_MAX + 1]; /* ACL user name; "": AUTH with
					    * the password */
	char *password;         /* NULL: no AUTH.  Caller's: the client copies */
	int command_timeout_ms; /* <= 0: the default */
	size_t max_pending;     /* 0: the default */
	int probe_interval_ms;  /* <= 0: the default; at most half the timeout */
	size_t max_buffer_bytes; /* 0: the default */
	int tls;                /* "rediss://": TLS, the server verified */
	SSL_CTX *tls_ctx;       /* with tls: from pav_redis_tls_ctx (the
				 * client takes a reference of its own) */
	/* nsentinels > 0: host and port are not used.  The address of the
	 * master named `master` is asked of the sentinels, in turn, at start
	 * and after every lost connection (with tls, over TLS too: each
	 * sentinel's certificate verified for its configured host, the
	 * master's for the address given); a server whose ROLE is not
	 * master, or a READONLY answer, makes the client go down and ask
	 * again.  user and password are the master's. */
	unsigned nsentinels;    /* 0..PAV_REDIS_MAX_SENTINELS */
	struct pav_redis_sentinel sentinels[PAV_REDIS_MAX_SENTINELS];
	char master[PAV_REDIS_MASTER_NAME_MAX + 1];
	/* the sentinels' AUTH [sentinel_user] sentinel_password before the
	 * question; sentinel_password NULL: none.  Caller's: copied */
	char sentinel_user[PAV_REDIS_USER_MAX + 1];
	char *sentinel_password;
};

/* Fills cfg with the defaults (host "127.0.0.1", port 6379, db 0). */
void pav_redis_config_defaults(struct pav_redis_config *cfg);

/*
 * "redis://[[user]:password@]host[:port][/db]", or "redis://user@..."
 * (the password from elsewhere) -> cfg (defaults for the rest); the same
 * after "rediss://" sets cfg->tls (the caller sets cfg->tls_ctx).  host may
 * be "[v6 address]"; user and password may be %-encoded.  Returns 0,
 * or -EINVAL with a reason in err, or -ENOMEM.  On success cfg->password
 * is NULL or allocated: release it with pav_redis_config_clear.
 */
int pav_redis_parse_url(const char *url, struct pav_redis_config *cfg,
			char *err, size_t errlen);
/*
 * A URL that pav_redis_parse_url() took, "redis://user:password@host...",
 * made "redis://user@host..." in place: the password's bytes are wiped.
 * For the copies of a URL once its client holds the password.
 */
void pav_redis_url_forget_password(char *url);
/*
 * The TLS context of rediss:// clients: the server's certificate must chain
 * to ca_file's certificates (NULL: the system's) and name the URL's host;
 * cert_file (a PEM chain) and key_file, both or neither, are the client's
 * own for a server that asks (Redis' tls-auth-clients).  TLS 1.2 or later.
 * NULL with "key: file: reason" in err.  Free it with SSL_CTX_free.
 */
SSL_CTX *pav_redis_tls_ctx(const char *ca_file, const char *cert_file,
			   const char *key_file, char *err, size_t errlen);
/* Wipes and frees cfg->password and cfg->sentinel_password (set to
 * NULL). */
void pav_redis_config_clear(struct pav_redis_config *cfg);

/*
 * "host[:port]" or "[v6][:port]" of a sentinel (port: 26379 unless given)
 * -> out.  0, or -EINVAL with a reason in err.
 */
int pav_redis_parse_sentinel(const char *s, struct pav_redis_sentinel *out,
			     char *err, size_t errlen);
/* 1 when name can be a master's name: 1..PAV_REDIS_MASTER_NAME_MAX of
 * letters, digits, '.', '-', '_'; else 0. */
int pav_redis_master_name_ok(const char *name);
/* 1 when name can be an ACL user name (AUTH user password): 1 to
 * PAV_REDIS_USER_MAX bytes (any but NUL, as a URL's %-decoded one); else
 * 0. */
int pav_redis_user_ok(const char *name);
/*
 * The answer to SENTINEL get-master-addr-by-name: [address, port] -> host
 * (a numeric IPv4 or IPv6 address, NUL-terminated) and port.  0; -ENOENT
 * when it is nil (the sentinel does not know the master); -EINVAL for
 * anything else (an error, a host name, a bad port...).
 */
int pav_redis_sentinel_reply(const struct redisReply *rep, char *host,
			     size_t hostsize, int *port);
/*
 * A sentinel's +switch-master message, "name old-ip old-port new-ip
 * new-port" (msg[0..len), no NUL needed): when name is master, the new
 * numeric address (NUL-terminated) and port -> host and port, 0; -ENOENT
 * for another master's; -EINVAL for anything else.
 */
int pav_redis_switch_master(const char *msg, size_t len, const char *master,
			    char *host, size_t hostsize, int *port);
/* 1 when rep is ROLE's answer of a master, else 0. */
int pav_redis_role_is_master(const struct redisReply *rep);
/* 1 when rep confirms SUBSCRIBE +switch-master on a connection subscribed
 * to that channel alone: ["subscribe", "+switch-master", 1] (also Redis'
 * answer when it was already subscribed); else 0. */
int pav_redis_switch_subscribed(const struct redisReply *rep);

/* %-decodes s[0..n) in place into a NUL-terminated string (the URL's
 * password, the broker's header fields).  0, or -EINVAL for a cut or
 * non-hex escape or an encoded NUL. */
int pav_redis_unescape(char *s, size_t n);

/* Every callback gets `arg`.  Any of them may be NULL. */
struct pav_redis_events {
	void *arg;
	/* Both connections are ready: AUTH/SELECT done, scripts loaded,
	 * subscriptions restored.  After a `down`, messages published while
	 * down were missed (no `resync` is added). */
	void (*up)(void *arg);
	/* The client was up and is not any more; every pending command and
	 * subscribe confirmation has already failed (-EIO or -ETIMEDOUT). */
	void (*down)(void *arg);
	/* A message on a subscribed channel, in publication order.  channel
	 * and data are borrowed for the call. */
	void (*message)(void *arg, const char *channel, size_t clen,
			const char *data, size_t dlen);
	/* While up, the pub/sub connection was replaced and every channel
	 * subscribed again: messages may have been missed. */
	void (*resync)(void *arg);
	/* A channel of the set that Redis refused (an ACL without it) when
	 * a new pub/sub connection subscribed the set again: it has left the
	 * set (its waiters, if any, got -EACCES); the other channels are
	 * restored.  reply: Redis' error, borrowed for the call. */
	void (*refused)(void *arg, const char *channel, size_t clen,
			const struct redisReply *reply);
};

struct pav_redis;

/*
 * Starts connecting; returns NULL when cfg is invalid, the host does not
 * resolve or memory is short (logged).  cfg and ev are copied.  No event
 * runs inside this call.
 */
struct pav_redis *pav_redis_create(struct lws_context *ctx,
				   const struct pav_redis_config *cfg,
				   const struct pav_redis_events *ev);
/*
 * Fails every pending command and subscribe confirmation with
 * -ECANCELED (before returning), then frees the client; no event or
 * callback runs after.  Callable from inside any of its callbacks
 * (the memory goes when that callback returns).  NULL is ignored.
 */
void pav_redis_destroy(struct pav_redis *r);
/* 1 from `up` to `down`: commands are accepted (meanwhile the pub/sub
 * connection may be being replaced: see `resync`). */
int pav_redis_is_up(const struct pav_redis *r);

/*
 * The reply callback.  err 0: reply is Redis' answer (a Redis error is
 * err 0 with reply->type == REDIS_REPLY_ERROR); reply is borrowed for
 * the call.  Otherwise reply is NULL and err is -EIO (connection lost),
 * -ETIMEDOUT (no answer within command_timeout_ms) or -ECANCELED
 * (pav_redis_destroy).
 */
typedef void (*pav_redis_reply_fn)(void *arg, int err,
				   const struct redisReply *reply);

/*
 * Queues one command (argv[0] is its name; argvlen NULL: C strings) on
 * the command connection; commands go out and are answered in the order
 * queued.  The arguments are copied.  Returns 0: cb (may be NULL) runs
 * exactly once, later.  Otherwise cb is never called: -EIO (down),
 * -ENOBUFS (max_pending or max_buffer_bytes reached), -EINVAL, -ENOMEM.
 * Do not SUBSCRIBE, MONITOR or change the connection's state (SELECT,
 * AUTH, MULTI without EXEC) here, and give a blocking command (BLPOP...)
 * a server-side timeout below command_timeout_ms.
 */
int pav_redis_command(struct pav_redis *r, pav_redis_reply_fn cb, void *arg,
		      int argc, const char **argv, const size_t *argvlen);

/*
 * Registers a Lua script (copied) and returns its handle (>= 0), the same
 * for the same text; -EINVAL, -ENOMEM or -ENOSPC (PAV_REDIS_MAX_SCRIPTS).
 * Any time after create; scripts are loaded on every new connection.
 */
int pav_redis_script(struct pav_redis *r, const char *lua);
/*
 * EVALSHA of a registered script with nkeys keys first in argv.  On a
 * NOSCRIPT answer the script is loaded and the call retried once (the
 * retry then runs after commands queued meanwhile).  Returns and calls
 * back like pav_redis_command; -EINVAL for an unknown handle.
 */
int pav_redis_eval(struct pav_redis *r, int script, int nkeys, int argc,
		   const char **argv, const size_t *argvlen,
		   pav_redis_reply_fn cb, void *arg);

/*
 * Adds channel to the client's set of subscriptions, which is restored on
 * every new pub/sub connection.  Idempotent.  cb (may be NULL) runs once,
 * later: err 0 when Redis confirmed the subscription (reply NULL);
 * -EIO/-ETIMEDOUT when the client went down first (the channel stays in
 * the set: unsubscribe if it is not wanted); -EACCES when Redis refused
 * it (reply: its error, such as an ACL's NOPERM; the channel leaves the
 * set); -ECANCELED when unsubscribed first, or at destroy.  On a new
 * connection the set is subscribed again in batches; a batch Redis refuses
 * (NOPERM) goes again one channel at a time, and each channel refused then
 * leaves the set and is told to `refused` (its waiters get -EACCES); the
 * client's own probe channel refused fails the connection.  Returns 0,
 * -EIO (down: nothing recorded), -ENOBUFS (max_pending waiting callbacks),
 * -EINVAL (empty, or a NUL inside), -ENOMEM.
 */
int pav_redis_subscribe(struct pav_redis *r, const char *channel, size_t len,
			pav_redis_reply_fn cb, void *arg);
/* Removes channel from the set (no more messages once Redis confirmed).
 * 0 (also when it was not in the set), or -EINVAL. */
int pav_redis_unsubscribe(struct pav_redis *r, const char *channel,
			  size_t len);

#endif
