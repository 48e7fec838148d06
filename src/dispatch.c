/*
 * dispatch.c — a complete client message: rate limit, envelope, the
 * core's own types (heartbeat_ack, auth), then the plugin handler that the
 * vhost registered for the type; acks and errors with the client's id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "gateway.h"
#include "pav_limits.h"
#include "log.h"
#include "metrics.h"
#include "dispatch.h"

struct pav_reply {
	uint64_t conn_id;
	char *type;
	char *id;
};

/* on_subscribed hooks waiting for the current message's answer */
struct pending_sub {
	uint64_t conn_id;
	char channel[PAV_MAX_CHANNEL_LEN];
	json_object *parameters;
	int user_first;
};

#define MAX_PENDING 8
static struct pending_sub pending[MAX_PENDING];
static size_t npending;
static int dispatching;

static const char *default_message(int code)
{
	switch (code) {
	case PAV_ERR_AUTH:
		return "authentication error";
	case PAV_ERR_FORMAT:
		return "invalid message format";
	case PAV_ERR_SUBSCRIPTION:
		return "invalid subscription";
	case PAV_ERR_PERMISSION:
		return "permission denied";
	case PAV_ERR_RATE:
		return "rate limit exceeded";
	default:
		return "internal server error";
	}
}

static void answer(struct pav_conn *c, const char *type, const char *id,
		   int code, const char *message, json_object *ack)
{
	if (code) {
		pav_conn_error(c, code, message ? message : default_message(code),
			       id);
	} else if (id) {
		json_object *p = ack ? ack : json_object_new_object();

		json_object_object_add(p, "for", json_object_new_string(type));
		pav_conn_send(c, "ack", id, p);
		json_object_put(p);
		return;
	}
	json_object_put(ack);
}

static void run_subscribed(const struct pending_sub *p)
{
	struct pav_conn *c = pav_conn_find(p->conn_id);

	for (size_t i = 0; c && i < c->vh->ninsts; i++) {
		struct pav_instance *in = &c->vh->insts[i];

		if (in->plugin->on_subscribed && c->state == PAV_CONN_OPEN)
			in->plugin->on_subscribed(in->state, c, p->channel,
						  p->parameters, p->user_first);
	}
}

void pav_dispatch_subscribed(struct pav_conn *c, const char *channel,
			     json_object *parameters, int user_first)
{
	struct pending_sub p = {c->id, "", parameters, user_first};

	snprintf(p.channel, sizeof(p.channel), "%s", channel);
	if (!dispatching || npending == MAX_PENDING) {
		run_subscribed(&p);
		return;
	}
	p.parameters = json_object_get(parameters);
	pending[npending++] = p;
}

static void flush_pending(void)
{
	for (size_t i = 0; i < npending; i++) {
		run_subscribed(&pending[i]);
		json_object_put(pending[i].parameters);
	}
	npending = 0;
}

/* Token bucket: returns 0 to process the message, 1 to drop it. */
static int rate_limited(struct pav_conn *c, int64_t now)
{
	const struct pav_limits *l = &c->vh->cfg->limits;
	int64_t cap = (int64_t)l->burst * 1000;

	c->bucket += (now - c->bucket_ms) * l->messages_per_s;
	c->bucket_ms = now;
	if (c->bucket > cap)
		c->bucket = cap;
	if (c->bucket >= 1000) {
		c->bucket -= 1000;
		return 0;
	}
	pav_metrics_rate_limited();
	if (now - c->abuse_window_ms > PAV_ABUSE_WINDOW_S * 1000) {
		c->abuse_window_ms = now;
		c->abuse_count = 0;
	}
	if (++c->abuse_count >= l->abuse_close_after) {
		pav_warn("conn %llu user=%s peer=%s: rate-limit abuse, closing",
			 (unsigned long long)c->id, c->user, c->peer);
		pav_conn_close(c, 4029, "rate limit abuse");
	} else if (now - c->last_rate_err_ms >= 1000) {
		c->last_rate_err_ms = now;
		pav_conn_error(c, PAV_ERR_RATE, "rate limit exceeded", NULL);
	}
	return 1;
}

static int renew_token(struct pav_conn *c, struct pav_request *req)
{
	json_object *t;

	if (!req->payload || !json_object_object_get_ex(req->payload, "token", &t) ||
	    !json_object_is_type(t, json_type_string)) {
		req->error_message = "payload.token must be a string";
		return PAV_ERR_FORMAT;
	}
	if (pav_conn_authenticate(c, json_object_get_string(t))) {
		pav_metrics_auth_failure();
		req->error_message = c->auth_why;
		return PAV_ERR_AUTH;
	}
	pav_info("conn %llu user=%s: token renewed", (unsigned long long)c->id,
		 c->user);
	return 0;
}

static int handle(struct pav_conn *c, struct pav_request *req)
{
	struct pav_handler *h;

	if (!strcmp(req->type, "heartbeat_ack"))
		return 0;
	if (!strcmp(req->type, "auth"))
		return renew_token(c, req);
	h = pav_map_get(c->vh->handlers, req->type);
	if (!h) {
		req->error_message = "unknown message type";
		return PAV_ERR_FORMAT;
	}
	return h->fn(h->inst->state, c, req);
}

static void process(struct pav_conn *c, const char *buf, size_t len,
		    int binary)
{
	struct pav_envelope env;
	struct pav_request req = {0};
	const char *why = NULL;
	int rc;

	if (binary) {
		pav_conn_error(c, PAV_ERR_FORMAT, "binary frames are not accepted",
			       NULL);
		return;
	}
	rc = pav_envelope_parse(buf, len, c->vh->cfg->limits.json_depth, &env,
				&why);
	if (rc) {
		pav_metrics_in("invalid");
		pav_conn_error(c, rc, why, env.id);
		pav_envelope_free(&env);
		return;
	}
	pav_metrics_in(env.type);
	req = (struct pav_request){env.type, env.id, env.payload, NULL, NULL};
	rc = handle(c, &req);
	if (rc != PAV_PENDING)
		answer(c, env.type, env.id, rc, req.error_message, req.ack);
	pav_envelope_free(&env);
}

void pav_dispatch(struct pav_conn *c, const char *buf, size_t len,
		  int binary)
{
	int64_t now = pav_now_ms();

	c->last_rx_ms = now;
	if (rate_limited(c, now))
		return;
	dispatching = 1;
	process(c, buf, len, binary);
	dispatching = 0;
	flush_pending();
}

int pav_dispatch_register(struct pav_vhost *vh, const char *type,
			  pav_handler_fn fn)
{
	struct pav_handler *h;

	if (!vh->creating || !type || !*type || !fn)
		return -EINVAL;
	if (!strcmp(type, "auth") || !strcmp(type, "heartbeat_ack")) {
		snprintf(vh->conflict, sizeof(vh->conflict),
			 "%s: handled by the gateway itself", type);
		return -EEXIST;
	}
	if ((h = pav_map_get(vh->handlers, type))) {
		snprintf(vh->conflict, sizeof(vh->conflict),
			 "%s: already handled by plugin %s", type,
			 h->inst->plugin->name);
		return -EEXIST;
	}
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct pav_handler){fn, vh->creating};
	if (pav_map_put(vh->handlers, type, h)) {
		free(h);
		return -ENOMEM;
	}
	pav_metrics_known_type(type); /* counted by name in /metrics */
	return 0;
}

struct pav_reply *pav_dispatch_defer(struct pav_conn *c,
				     const struct pav_request *req)
{
	struct pav_reply *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->conn_id = c->id;
	r->type = strdup(req->type);
	r->id = req->id ? strdup(req->id) : NULL;
	if (!r->type || (req->id && !r->id)) {
		free(r->type);
		free(r->id);
		free(r);
		return NULL;
	}
	return r;
}

void pav_dispatch_reply(struct pav_reply *r, int code, const char *message,
			json_object *ack)
{
	struct pav_conn *c;

	if (!r) {
		json_object_put(ack);
		return;
	}
	c = pav_conn_find(r->conn_id);
	if (c && c->state == PAV_CONN_OPEN)
		answer(c, r->type, r->id, code, message, ack);
	else
		json_object_put(ack);
	free(r->type);
	free(r->id);
	free(r);
}
