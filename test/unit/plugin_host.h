/*
 * plugin_host.h — a fake gateway for plugin tests: a struct pav_host whose
 * every entry records its call (as one line of text, in order) and
 * answers from what the test set up, and the plugin-facing objects
 * (pav_conn, pav_vhost, pav_reply, pav_api_call) as plain structs.  No
 * gateway code runs besides the pure helpers (channel grammar, ids, time
 * text, query numbers); a plugin is created through its own descriptor
 * with this host.
 *
 * Store callbacks (inbox_*, presence_*, channel_*, publish's done) run at
 * once, or — after ph.async = 1 — only when ph_run() is called, like a
 * network store's.
 */
#ifndef PAV_TEST_PLUGIN_HOST_H
#define PAV_TEST_PLUGIN_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pavilion/plugin.h"

#define PH_T0 1800000000000LL /* now_ms(): 2027-01-15T08:00:00.000Z */
#define PH_T0_TEXT "2027-01-15T08:00:00.000Z"

/* A client connection as the fake gateway keeps it. */
struct pav_session {
	uint64_t id;
	char user[PAV_ID_MAX + 1];
	json_object *claims;
	int open;              /* conn_find() finds it */
	char *channels[16];    /* conn_channels(), is_subscribed(); joined by
				  subscribe(), left by unsubscribe() */
	size_t nchannels;
	int64_t closed_ms;
	size_t send_limit;     /* > 0: send() fails past this many */
	size_t nsent;
	/* what the connection may still hold of replays, in messages:
	 * with replay_bounded, send_replay_within() takes replay_room more,
	 * then answers -ENOSPC */
	int replay_bounded;
	size_t replay_room;
	size_t replay_spare;   /* the spare send_replay_within() was last asked */
};

struct pav_vhost {
	const char *name;
};

/* The host table and the one vhost. */
extern const struct pav_host ph_host;
extern struct pav_vhost ph_vh;

/* Everything the plugin asked of the host, one line per call. */
#define PH_LOG 512
extern char *ph_log[PH_LOG];
extern size_t ph_nlog;
/* Index of the first line starting with prefix at or after from, or -1. */
int ph_find(const char *prefix, size_t from);
/* The line at i ("" past the end). */
const char *ph_at(size_t i);
/* How many lines start with prefix. */
size_t ph_count(const char *prefix);
void ph_log_clear(void);
/* Prints the log (for a failing test's diagnosis). */
void ph_dump(void);

/* ---- what the host answers (reset by ph_setup) ---- */
struct ph_answers {
	/* verify_token: this token verifies, with these claims (JSON) */
	const char *good_token;
	const char *token_claims;
	int unsubscribe_rc;       /* else unsubscribe() leaves the channel */
	int subscribe_refused;    /* subscribe() joins nothing (a 1003) */
	int defer_fails;
	int publish_err;
	int64_t publish_recipients;
	int inbox_err;            /* inbox_add and inbox_list */
	const char *inbox_list;   /* JSON array answered by inbox_list */
	int mark_read_err;
	int presence_set_err;     /* e.g. -EALREADY */
	int presence_get_err;
	const char *presence_status; /* presence_get's status ("offline") */
	int64_t presence_last_active;
	int presence_connections;
	int counts_err;
	int64_t counts[16];       /* channel_counts, by position; default 1 */
	int ncounts_set;          /* how many of counts[] are set */
	size_t nusers;            /* channel_users: users "p0", "p1", ... */
	const char *user_channels[16]; /* user_channels() answers these */
	int async;
	int store_down;           /* store_ready() answers 0 */
};
extern struct ph_answers ph;

void ph_setup(void);
void ph_teardown(void);
/* Runs the held store callbacks (in order, including those they cause);
 * how many ran. */
int ph_run(void);

/* ---- connections ---- */
/* A new open connection (up to 8 per test) of user, with claims (JSON
 * text, "sub" added) and channels it is in (NULL-terminated). */
pav_conn *ph_conn(uint64_t id, const char *user, const char *claims,
		  const char *const *channels);

/* Replaces the connection's claims (JSON text, "sub" added), as a token
 * renewal does. */
void ph_set_claims(pav_conn *c, const char *claims);

/* ---- the plugin under test ---- */
/* Creates an instance from options (JSON text); 0 or its error (err has
 * the reason).  ph_create_with() hands it `host` (a copy of ph_host as an
 * older gateway's, say). */
int ph_create_with(const struct pav_host *host, const struct pav_plugin *p,
		   const char *options, void **inst, char *err, size_t errlen);
int ph_create(const struct pav_plugin *p, const char *options, void **inst,
	      char *err, size_t errlen);
void ph_destroy(const struct pav_plugin *p, void *inst);

/* Forgets what was registered (to create another instance). */
void ph_forget_registrations(void);
/* What the instance registered. */
pav_handler_fn ph_handler(const char *type);
pav_route_fn ph_route(const char *method, const char *pattern);
pav_payload_check_fn ph_check(const char *type);

/* Calls the handler of `type` as the gateway would; returns its answer.
 * *ack (may be NULL) gets req.ack (put it), *why the error message. */
int ph_handle(void *inst, pav_conn *c, const char *type, const char *id,
	      const char *payload, json_object **ack, const char **why);

/* Calls a route; the answer is logged ("api_answer 201 {...}" or
 * "api_error 400 message"). */
void ph_call_route(void *inst, const char *method, const char *pattern,
		   const char *path_arg, const char *query, const char *body);

/* The payload check of `type` on a payload (JSON text) published to
 * channel: it must pass; or it must answer -EINVAL with a reason. */
void ph_payload_ok(void *inst, const char *type, const char *channel,
		   const char *payload);
void ph_payload_refused(void *inst, const char *type, const char *channel,
			const char *payload);

/* ---- a test's fixture ---- */
/* ph_setup(), an instance of p made from options into *inst, connection 1
 * of user "u1" (claims and channels as for ph_conn) into *c, and an empty
 * log: a cmocka setup's work.  0, or -1 when p refused the options. */
int ph_start(const struct pav_plugin *p, const char *options,
	     const char *claims, const char *const *channels, void **inst,
	     pav_conn **c);
/* A cmocka teardown: destroys the instance ph_start() made, then
 * ph_teardown(). */
int ph_end(void **state);

/* JSON text of o as the log writes it. */
const char *ph_json(json_object *o);

#endif
