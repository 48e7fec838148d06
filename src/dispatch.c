/*
 * dispatch.c — a complete client message: rate limit, envelope, the
 * gateway's own types (heartbeat_ack, auth), then the plugin handler that
 * the vhost registered for the type (see dispatch.h).
 */
#include "dispatch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "envelope.h"
#include "log.h"
#include "metrics.h"
#include "pav_limits.h"
#include "session.h"
#include "vhost.h"

/*
 * Excess messages over the last PAV_ABUSE_WINDOW_S seconds, in slices of
 * ABUSE_SLICE_MS: "abuse_close_after excess within 10 s" is checked over
 * a window that slides (10 s to 10.1 s long), not one that restarts.
 */
#define ABUSE_SLICE_MS 100
#define ABUSE_SLICES (PAV_ABUSE_WINDOW_S * 1000 / ABUSE_SLICE_MS + 1)

struct pav_abuse {
	int64_t slice; /* the newest slice counted (now / ABUSE_SLICE_MS) */
	uint32_t n[ABUSE_SLICES];
};

/* Counts one excess message at now; the excess within the window. */
static uint64_t abuse_count(struct pav_abuse *a, int64_t now)
{
	int64_t slice = now / ABUSE_SLICE_MS;
	uint64_t sum = 0;

	for (int64_t t = a->slice + 1; t <= slice && t <= a->slice + ABUSE_SLICES;
	     t++)
		a->n[t % ABUSE_SLICES] = 0; /* slices that went by */
	if (slice > a->slice)
		a->slice = slice;
	a->n[a->slice % ABUSE_SLICES]++;
	for (int i = 0; i < ABUSE_SLICES; i++)
		sum += a->n[i];
	return sum;
}

/* The 1005 for a dropped message, with its id when it has one (it is
 * read only for this: at most once a second). */
static void rate_error(struct pav_session *s, const char *buf, size_t len,
		       int binary)
{
	struct pav_envelope env;
	const char *why;

	if (binary) {
		pav_conn_error(s->hc.conn, PAV_ERR_RATE, "rate limit exceeded",
			       NULL);
		return;
	}
	pav_envelope_parse(buf, len, s->vh->cfg->limits.json_depth, &env,
			   &why); /* the id, if valid, even in a bad message */
	pav_conn_error(s->hc.conn, PAV_ERR_RATE, "rate limit exceeded", env.id);
	pav_envelope_free(&env);
}

/* Token bucket: returns 0 to process the message, 1 to drop it.  now is
 * the monotonic clock's (pav_mono_ms()). */
static int rate_limited(struct pav_session *s, int64_t now, const char *buf,
			size_t len, int binary)
{
	const struct pav_limits *l = &s->vh->cfg->limits;
	int64_t cap = (int64_t)l->burst * 1000;

	s->bucket += (now - s->bucket_ms) * l->messages_per_s;
	s->bucket_ms = now;
	if (s->bucket > cap)
		s->bucket = cap;
	if (s->bucket >= 1000) {
		s->bucket -= 1000;
		return 0;
	}
	pav_metrics_rate_limited();
	if (!s->abuse && !(s->abuse = calloc(1, sizeof(*s->abuse)))) {
		pav_conn_close(s->hc.conn, 1011, "out of memory");
		return 1;
	}
	if (abuse_count(s->abuse, now) >= (uint64_t)l->abuse_close_after) {
		pav_warn("conn %" PRIu64 " user=%s peer=%s: rate-limit abuse, "
			 "closing", s->id, s->user, s->peer);
		pav_conn_close(s->hc.conn, 4029, "rate limit abuse");
	} else if (now - s->last_rate_err_ms >= 1000) {
		s->last_rate_err_ms = now;
		rate_error(s, buf, len, binary);
	}
	return 1;
}

/* Answered by pav_session_renew(), now or once the store has checked the
 * token against the user's token revocation. */
static int renew_token(struct pav_session *s, struct pav_request *req)
{
	struct pav_reply *reply;
	const char *why;
	json_object *t;

	if (!req->payload ||
	    !json_object_object_get_ex(req->payload, "token", &t) ||
	    !json_object_is_type(t, json_type_string)) {
		req->error_message = "payload.token must be a string";
		return PAV_ERR_FORMAT;
	}
	if (!(reply = pav_session_defer(s, req->type, req->id)))
		return PAV_ERR_INTERNAL;
	pav_session_renew(s, json_object_get_string(t), reply, &why);
	return PAV_PENDING;
}

int pav_dispatch_valid_return(int rc)
{
	return rc == 0 || rc == PAV_PENDING ||
	       (rc >= PAV_ERR_AUTH && rc <= PAV_ERR_RATE) ||
	       rc == PAV_ERR_INTERNAL;
}

static int handle(struct pav_session *s, struct pav_request *req)
{
	struct pav_handler *h;
	int rc;

	if (!strcmp(req->type, "heartbeat_ack"))
		return 0;
	if (!strcmp(req->type, "auth"))
		return renew_token(s, req);
	h = pav_map_get(s->vh->handlers, req->type);
	if (!h) {
		req->error_message = "unknown message type";
		return PAV_ERR_FORMAT;
	}
	rc = h->fn(h->inst->state, s, req);
	if (pav_dispatch_valid_return(rc))
		return rc;
	pav_err("plugin %s: handler for \"%s\" returned %d (not 0, "
		"PAV_PENDING or a protocol code): plugin bug, answered 2000",
		h->inst->plugin->name, req->type, rc);
	req->error_message = NULL;
	json_object_put(req->ack);
	req->ack = NULL;
	return PAV_ERR_INTERNAL;
}

void pav_dispatch(struct pav_session *s, const char *buf, size_t len,
		  int binary)
{
	struct pav_envelope env;
	struct pav_request req = {0};
	const char *why = NULL;
	int rc;

	if (rate_limited(s, pav_mono_ms(), buf, len, binary))
		return;
	if (binary) {
		pav_conn_error(s->hc.conn, PAV_ERR_FORMAT,
			       "binary frames are not accepted", NULL);
		return;
	}
	rc = pav_envelope_parse(buf, len, s->vh->cfg->limits.json_depth, &env,
				&why);
	if (rc) {
		pav_metrics_in("invalid");
		pav_conn_error(s->hc.conn, rc, why, env.id);
		pav_envelope_free(&env);
		return;
	}
	pav_metrics_in(env.type);
	req = (struct pav_request){env.type, env.id, env.payload, NULL, NULL};
	rc = handle(s, &req);
	if (rc != PAV_PENDING)
		pav_session_answer(s, env.type, env.id, rc, req.error_message,
				   req.ack);
	pav_envelope_free(&env);
}
