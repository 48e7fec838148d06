/*
 * session.h — a client connection's life above its socket: opening
 * (counted in the store, the automatic "user:<id>"), subscriptions with
 * catch-up from history, renewal, revocation and closing.  The session
 * layer is the one place that calls plugin hooks, in the order
 * pavilion/plugin.h documents.  A struct pav_session is what plugins see
 * as pav_conn.
 */
#ifndef PAV_SESSION_H
#define PAV_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "hub.h"
#include "pavilion/plugin.h"
#include "state.h"

struct pav_core;
struct pav_conn;
struct pav_vhost;
struct sub_op;

enum pav_session_state {
	PAV_SESSION_OPENING, /* waiting for the store to count it */
	PAV_SESSION_OPEN,
	PAV_SESSION_GONE,    /* socket closed; close hooks pending */
};

struct pav_session {
	struct pav_hub_client hc; /* hc.conn: the socket, NULL once gone */
	struct pav_core *core;
	struct pav_vhost *vh;
	uint64_t id;
	enum pav_session_state state;
	char user[PAV_ID_MAX + 1];
	/* The verified claims are kept as text (a json-c object of a few
	 * claims takes over a kilobyte; an idle connection needs none): a
	 * plugin that asks gets them parsed, and the parse lasts until the
	 * loop turn is over (pav_sessions_turn_over). */
	char *claims_text;
	json_object *claims;	/* parsed this turn, or NULL */
	struct pav_session *claims_next, **claims_prev; /* core->claims_turn */
	char peer[48];
	/* the token's iat, which the store's token revocation judges when
	 * it counts the connection */
	struct pav_token_iat iat;
	int counted; /* the store counts this connection */
	/* pavilion_connections_total has had its say: counted once the store
	 * answered (or at the close, if it never did), or never, for a token
	 * the store's revocation refused (an authentication failure only) */
	int tallied;
	int opened;  /* the on_open hooks ran */
	/* repeated subscribes waiting for the first one's answer */
	struct sub_op *repeats;
	/* subscribes still on their way whose channel a renewal revoked:
	 * their memberships' serials, so that each is answered 1004 when
	 * the store answers it, never acked */
	uint32_t *revoked;
	size_t nrevoked;

	/* rate limiting (token bucket in milli-tokens), on the monotonic
	 * clock: a step of the wall clock changes no client's rate */
	int64_t bucket, bucket_ms;
	int64_t last_rate_err_ms;
	struct pav_abuse *abuse; /* excess counts, from the first excess */

	/* after the socket closed: its channels, for the close hooks */
	char **gone;
	size_t ngone;
	int64_t closed_ms;
};

/* A deferred answer (pav_host.defer). */
struct pav_reply {
	struct pav_core *core;
	uint64_t sid;
	char *type;
	char *id;
};

/*
 * Verifies a session token for vhost vh: pav_auth_verify(), and no
 * "channel" claim (that makes it a subscription token).  0 with a new
 * reference in *claims, the user in user (PAV_ID_MAX + 1 bytes) and the
 * expiry in *exp_ms; or -EACCES with a static reason.
 */
int pav_session_verify(struct pav_vhost *vh, const char *token,
		       json_object **claims, char *user, int64_t *exp_ms,
		       const char **why);
/* A connection whose token was refused (why, never the token), at the
 * handshake or by the store: logged, counted as an authentication
 * failure, error 1001 with why, then close 4001. */
void pav_session_refuse_token(struct pav_conn *c, const struct pav_vhost *vh,
			      const char *peer, const char *why);

/* Makes the session of a connection whose token verified: takes claims.
 * Returns NULL when out of memory (the caller closes 1011). */
struct pav_session *pav_session_open(struct pav_core *core,
				     struct pav_vhost *vh,
				     struct pav_conn *conn, const char *user,
				     json_object *claims, const char *peer);
/* The session's verified claims (borrowed: valid until the loop turn is
 * over), or NULL when out of memory. */
json_object *pav_session_claims(struct pav_session *s);
/* The end of a loop turn: the claims parsed during it are let go. */
void pav_sessions_turn_over(struct pav_core *core);

/* The socket closed: the session leaves every channel and the store, then
 * runs the close hooks and frees itself (maybe later). */
void pav_session_closed(struct pav_session *s);
struct pav_session *pav_session_find(struct pav_core *core, uint64_t id);

/* host.subscribe / unsubscribe (plugin.h). */
void pav_session_subscribe(struct pav_session *s, const char *channel,
			   json_object *parameters, struct pav_reply *reply);
int pav_session_unsubscribe(struct pav_session *s, const char *channel);
/* The connection's channels (also after it closed). */
void pav_session_channels(const struct pav_session *s,
			  void (*fn)(const char *channel, void *arg),
			  void *arg);

/*
 * The `auth` message: a fresh token for the same user, which the store
 * then checks against the user's token revocation.  reply (taken; may be
 * NULL) gets the answer: the ack once the token is the connection's, or
 * an error, the old token staying: 1001 with the reason (counted as an
 * authentication failure), 1001 "token revoked" likewise, or 2000 out
 * of memory.  A store that cannot answer leaves the token unchecked.
 * Returns -EACCES with the static reason in *why, or -ENOMEM, when it
 * was refused before the store was asked (answered already); else 0.
 * After the ack, every subscription but the user channel is asked about
 * again under the new claims (pav_plugin.check_renewed): each one refused
 * is left as an unsubscribe leaves it, and the client gets one error 1004
 * "subscription revoked" with payload.channel for it.  A subscribe of it
 * still on its way is then answered 1004 "subscription revoked" (no
 * answer for one without an id: that error told), never acked.
 */
int pav_session_renew(struct pav_session *s, const char *token,
		      struct pav_reply *reply, const char **why);

/* Answers (pav_host.defer / reply). */
struct pav_reply *pav_session_defer(struct pav_session *s, const char *type,
				    const char *id);
void pav_session_reply(struct pav_reply *r, int code, const char *message,
		       json_object *ack);
/* Answers one client message now: the error, or the ack when id. */
void pav_session_answer(struct pav_session *s, const char *type,
			const char *id, int code, const char *message,
			json_object *ack);

/* For the backends (struct pav_backend_env) and the hub. */
void pav_session_deliver(void *core, const struct pav_delivery *d);
void pav_session_resync(void *core);
void pav_session_user_gone(void *core, const char *ns, const char *user,
			   const char *const *channels, size_t n,
			   int64_t at_ms);
void pav_session_user_back(void *core, const char *ns, const char *user);
void pav_session_revoke(struct pav_hub_client *c, void *core);
/* Shutting down: every session gets close 1001. */
void pav_sessions_close_all(struct pav_core *core, int code,
			    const char *reason);

#endif
