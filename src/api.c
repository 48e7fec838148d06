/*
 * api.c — the internal HTTP API (DESIGN section 4) on internal vhosts:
 * bearer-key auth, JSON in and out, a body cap; the core's calls
 * (publish, revoke, channels, history, health, metrics) and the routes
 * that plugins register (notifications, presence) for the namespace.
 */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "broker.h"
#include "channel.h"
#include "clock.h"
#include "core.h"
#include "grow.h"
#include "iface.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "msg.h"
#include "pav_limits.h"
#include "state.h"
#include "vhost.h"

struct api_req {
	struct pav_vhost *vh;
	int method;
	char path[PAV_API_PATH_MAX + 1];
	char query[PAV_API_PATH_MAX + 1];
	char *body;
	size_t body_len, body_cap;
	int too_big;
	struct pav_api_answer ans;
	size_t sent;
	int headers_sent;
	int early; /* answered before the body was read: close after */
	int body_done; /* the body is complete (lws said so, or there is none) */
	int held; /* body complete, routed on go_sul (see body_done()) */
	int paused; /* reading paused (lws_rx_flow_control) until answered */
	int unsent; /* counted in vh->api_unsent */
	struct lws *wsi;
	uint64_t rid; /* names the request to late answers */
	lws_sorted_usec_list_t go_sul;
};

/* What a route handler answers through: it outlives the HTTP request
 * (an answer to a client that hung up is dropped). */
struct pav_api_call {
	struct pav_vhost *vh;
	uint64_t rid;
};

/* A declared body over max_body_bytes but within this is read and
 * dropped before its 413 (see on_request()). */
#define API_DRAIN_BYTES (16u << 20)

#define BROKER(vh) ((vh)->core->store.be->broker)
#define BROKER_SELF(vh) ((vh)->core->store.broker)
#define STATE(vh) ((vh)->core->store.be->state)
#define STATE_SELF(vh) ((vh)->core->store.state)

/* ---- requests by id --------------------------------------------------- */

static void rid_key(uint64_t rid, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIx64, rid);
}

static struct api_req *req_find(struct pav_vhost *vh, uint64_t rid)
{
	char k[24];

	rid_key(rid, k, sizeof(k));
	return vh->api_calls ? pav_map_get(vh->api_calls, k) : NULL;
}

static int req_track(struct api_req *r)
{
	struct pav_vhost *vh = r->vh;
	char k[24];

	if (!vh->api_calls && !(vh->api_calls = pav_map_new()))
		return -ENOMEM;
	r->rid = ++vh->api_next_rid;
	rid_key(r->rid, k, sizeof(k));
	return pav_map_put(vh->api_calls, k, r);
}

static void req_untrack(struct api_req *r)
{
	struct pav_vhost *vh = r->vh;
	char k[24];

	if (!vh || !vh->api_calls)
		return;
	rid_key(r->rid, k, sizeof(k));
	pav_map_del(vh->api_calls, k);
	if (!pav_map_count(vh->api_calls)) {
		pav_map_free(vh->api_calls, NULL);
		vh->api_calls = NULL;
	}
}

/* ---- answers ---------------------------------------------------------- */

static void mark_unsent(struct api_req *r, int unsent)
{
	if (!r->vh || r->unsent == unsent)
		return;
	r->unsent = unsent;
	if (unsent)
		r->vh->api_unsent++;
	else
		r->vh->api_unsent--;
}

static void release(struct api_req *r);

static void answer_json(struct api_req *r, int status, json_object *o)
{
	const char *t = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	r->ans.status = status;
	r->ans.content_type = "application/json";
	r->ans.body = strdup(t);
	r->ans.len = r->ans.body ? strlen(r->ans.body) : 0;
	json_object_put(o);
	mark_unsent(r, 1);
	if (r->wsi && !r->held)
		release(r);
}

static const char *slug(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 415: return "unsupported_media_type";
	case 503: return "store_unavailable";
	default: return "internal_error";
	}
}

static json_object *error_body(int status, const char *msg)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(slug(status)));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return o;
}

static void answer_error(struct api_req *r, int status, const char *msg)
{
	answer_json(r, status, error_body(status, msg));
}

/* An error from the store: 503 when it is unreachable. */
static void answer_store_error(struct api_req *r, int err)
{
	if (err == -EIO)
		answer_error(r, 503, "session store unavailable");
	else
		answer_error(r, 500, "session store error");
}

void pav_api_answer(pav_api_call *call, int status, json_object *body)
{
	struct api_req *r = call ? req_find(call->vh, call->rid) : NULL;

	if (r && !r->ans.status)
		answer_json(r, status, body ? body : json_object_new_object());
	else
		json_object_put(body);
	free(call);
}

void pav_api_error(pav_api_call *call, int status, const char *message)
{
	pav_api_answer(call, status, error_body(status, message));
}

static pav_api_call *call_new(struct api_req *r)
{
	pav_api_call *c = malloc(sizeof(*c));

	if (!c) {
		answer_error(r, 500, "out of memory");
		return NULL;
	}
	*c = (pav_api_call){r->vh, r->rid};
	return c;
}

/* ---- publishing ------------------------------------------------------- */

static const char *api_ns(struct api_req *r)
{
	return r->vh->cfg->ns;
}

/* A channel the backend names, canonical into out: 0 or -EINVAL.  "user"
 * alone means nothing without a connection. */
static int api_channel(const char *in, char *out, size_t len)
{
	if (!strcmp(in, "user") || pav_channel_parse("", in, out, len))
		return -EINVAL;
	return 0;
}

/* One publication of a request as it was checked; type and payload are
 * borrowed from the request's body. */
struct pub_in {
	char channel[PAV_CHANNEL_BUF]; /* canonical */
	const char *type;
	json_object *payload;
};

/* Checks the publication p and reads it into in. */
static int check_publication(struct api_req *r, json_object *p,
			     struct pub_in *in, const char **why)
{
	const char *channel = pav_api_str(p, "channel");
	const char *type = pav_api_str(p, "type");
	struct pav_check *ck;

	if (!json_object_is_type(p, json_type_object) || !channel || !type ||
	    !*type || strlen(type) > PAV_MAX_ID_LEN ||
	    !json_object_object_get_ex(p, "payload", &in->payload)) {
		*why = "need channel, type and payload";
		return -EINVAL;
	}
	if (api_channel(channel, in->channel, sizeof(in->channel))) {
		*why = "invalid channel";
		return -EINVAL;
	}
	if (!json_object_is_type(in->payload, json_type_object)) {
		*why = "payload must be an object";
		return -EINVAL;
	}
	in->type = type;
	ck = pav_map_get(r->vh->ns->checks, type);
	if (ck && ck->fn(ck->inst->state, in->channel, in->payload, why))
		return -EINVAL;
	return 0;
}

/* A publish request on its way through the broker: its answers, in order. */
struct pub_batch {
	struct pav_vhost *vh;
	uint64_t rid;
	int64_t t0_us;
	size_t n, done;
	int err;
	int batch; /* {"publications": [...]} */
	json_object *results; /* array, index = order */
};

static json_object *result_of(const char *channel,
			      const struct pav_published *res)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "channel", json_object_new_string(channel));
	json_object_object_add(o, "offset",
			       json_object_new_int64((int64_t)res->offset));
	if (res->epoch)
		json_object_object_add(o, "epoch",
				       json_object_new_string(res->epoch));
	json_object_object_add(o, "recipients",
			       json_object_new_int64(res->recipients));
	return o;
}

static void batch_finish(struct pub_batch *b)
{
	struct api_req *r = req_find(b->vh, b->rid);
	json_object *o;

	/* microseconds: the histogram's first buckets are below 1 ms */
	pav_metrics_fanout_seconds((double)(pav_mono_us() - b->t0_us) / 1e6);
	if (r && b->err) {
		answer_store_error(r, b->err);
	} else if (r && b->batch) {
		o = json_object_new_object();
		json_object_object_add(o, "results", json_object_get(b->results));
		answer_json(r, 202, o);
	} else if (r) {
		answer_json(r, 202, json_object_get(json_object_array_get_idx(
					    b->results, 0)));
	}
	json_object_put(b->results);
	free(b);
}

struct pub_one {
	struct pub_batch *b;
	size_t idx;
	char channel[PAV_CHANNEL_BUF];
};

static void published(void *arg, int err, const struct pav_published *res)
{
	struct pub_one *p = arg;
	struct pub_batch *b = p->b;

	if (err && !b->err)
		b->err = err;
	if (!err)
		json_object_array_put_idx(b->results, p->idx,
					  result_of(p->channel, res));
	free(p);
	if (++b->done == b->n)
		batch_finish(b);
}

static void publish_one(struct pub_batch *b, size_t idx,
			const struct pub_in *in)
{
	const char *chans[] = {in->channel};
	struct pub_one *one = calloc(1, sizeof(*one));
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = in->type,
		.payload = in->payload,
		.history = pav_ns_history(b->vh->ns, in->channel),
	};

	if (!one) {
		published(&(struct pub_one){b, idx, ""}, -ENOMEM, NULL);
		return;
	}
	one->b = b;
	one->idx = idx;
	snprintf(one->channel, sizeof(one->channel), "%s", in->channel);
	BROKER(b->vh)->publish(BROKER_SELF(b->vh), b->vh->cfg->ns, &out,
			       published, one);
}

/* Every publication is checked before any is published: one bad entry
 * and nothing goes out. */
static void do_publish(struct api_req *r, json_object *body)
{
	json_object *list = NULL;
	struct pub_batch *b;
	size_t n = 1;
	struct pub_in *ins;
	const char *why;
	char msg[160];

	if (json_object_object_get_ex(body, "publications", &list)) {
		if (!json_object_is_type(list, json_type_array) ||
		    json_object_object_length(body) != 1 ||
		    (n = json_object_array_length(list)) < 1 ||
		    n > PAV_MAX_BATCH_PUBLICATIONS)
			return answer_error(r, 400, "publications must be an "
						    "array of 1 to 1000");
	}
	if (!pav_store_ready(&r->vh->core->store))
		return answer_error(r, 503, "session store unavailable");
	ins = calloc(n, sizeof(*ins));
	b = calloc(1, sizeof(*b));
	if (!ins || !b || !(b->results = json_object_new_array())) {
		free(ins);
		free(b);
		return answer_error(r, 500, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_object *p = list ? json_object_array_get_idx(list, i) : body;

		if (check_publication(r, p, &ins[i], &why)) {
			if (list) {
				snprintf(msg, sizeof(msg), "publications[%zu]: %s",
					 i, why);
				why = msg;
			}
			json_object_put(b->results);
			free(b);
			free(ins);
			return answer_error(r, 400, why);
		}
	}
	*b = (struct pub_batch){r->vh, r->rid, pav_mono_us(), n, 0, 0,
				list != NULL, b->results};
	for (size_t i = 0; i < n; i++)
		publish_one(b, i, &ins[i]);
	free(ins);
}

/* ---- the core's other calls -------------------------------------------- */

struct read_ctx {
	struct pav_vhost *vh;
	uint64_t rid;
	char name[PAV_CHANNEL_BUF];
};

static struct read_ctx *read_ctx(struct api_req *r, const char *name)
{
	struct read_ctx *x = malloc(sizeof(*x));

	if (!x) {
		answer_error(r, 500, "out of memory");
		return NULL;
	}
	x->vh = r->vh;
	x->rid = r->rid;
	snprintf(x->name, sizeof(x->name), "%s", name);
	return x;
}

static void revoked(void *arg, int err, int64_t count)
{
	struct read_ctx *x = arg;
	struct api_req *r = req_find(x->vh, x->rid);
	json_object *o;

	if (r && err) {
		answer_store_error(r, err);
	} else if (r) {
		pav_info("api: revoked %" PRId64 " connections of user %s",
			 count, x->name);
		o = json_object_new_object();
		json_object_object_add(o, "closed", json_object_new_int64(count));
		answer_json(r, 200, o);
	}
	free(x);
}

static void close_all(struct read_ctx *x)
{
	BROKER(x->vh)->revoke(BROKER_SELF(x->vh), x->vh->cfg->ns, x->name,
			      revoked, x);
}

static struct pav_log_budget revocations_full_log = {.per_s = 1};

/* A store that holds its revocations in a bounded space (the memory
 * store) is full: nothing was recorded, so nothing is closed either.
 * The caller learns that the user is not revoked; the log says so once
 * a second at most, a backend revoking in a loop included. */
static void revocations_full(struct api_req *r, const char *user)
{
	char msg[160];

	pav_warn_budgeted(&revocations_full_log, "api: the token revocation "
			  "of user %s is refused: the store holds %d, its "
			  "limit", user, PAV_MAX_KEPT_REVOCATIONS);
	if (!r)
		return;
	snprintf(msg, sizeof(msg), "token revocations full: the store holds "
		 "%d, its limit, until one ends; the user's connections were "
		 "not closed", PAV_MAX_KEPT_REVOCATIONS);
	answer_error(r, 500, msg);
}

/* The revocation is in the store: now the connections close, even when
 * the caller has hung up (a reconnect is refused from here on). */
static void tokens_revoked(void *arg, int err)
{
	struct read_ctx *x = arg;
	struct api_req *r = req_find(x->vh, x->rid);

	if (!err)
		return close_all(x);
	if (err == -ENOSPC)
		revocations_full(r, x->name);
	else if (r)
		answer_store_error(r, err);
	free(x);
}

#define NO_REVOKE_S -2 /* no ?revoke_s: the connections close, that is all */

/*
 * ?revoke_s=N (1..PAV_MAX_REVOKE_S): first, for N seconds, the user's
 * tokens issued until now are refused on every node, so that a client
 * cannot reconnect with the token it was closed with.  The revocation is
 * made before the connections close: a reconnect between the two would
 * otherwise be let in.
 */
static void do_revoke(struct api_req *r, const char *user)
{
	long ttl = pav_api_query_once(r->query, "revoke_s", NO_REVOKE_S,
				      PAV_MAX_REVOKE_S);
	struct read_ctx *x;
	char msg[96];

	if (ttl == -1 || ttl == 0) {
		snprintf(msg, sizeof(msg), "revoke_s must be given once, a "
			 "whole number of seconds from 1 to %d",
			 PAV_MAX_REVOKE_S);
		return answer_error(r, 400, msg);
	}
	if (!(x = read_ctx(r, user)))
		return;
	if (ttl == NO_REVOKE_S)
		return close_all(x);
	pav_info("api: refusing the tokens of user %s issued until now, for "
		 "%ld s", user, ttl);
	STATE(r->vh)->tokens_revoke(STATE_SELF(r->vh), api_ns(r), user,
				    pav_now_ms(), (int)ttl, tokens_revoked, x);
}

static void counted(void *arg, int err, const int64_t *counts, size_t n)
{
	struct read_ctx *x = arg;
	struct api_req *r = req_find(x->vh, x->rid);
	json_object *o;

	if (r && (err || n != 1)) {
		answer_store_error(r, err ? err : -EIO);
	} else if (r) {
		o = json_object_new_object();
		json_object_object_add(o, "channel",
				       json_object_new_string(x->name));
		json_object_object_add(o, "subscribers",
				       json_object_new_int64(counts[0]));
		answer_json(r, 200, o);
	}
	free(x);
}

/* A channel path segment: canonical, or -1 after answering 400. */
static int channel_arg(struct api_req *r, const char *in, char *out,
		       size_t len)
{
	if (api_channel(in, out, len)) {
		answer_error(r, 400, "invalid channel");
		return -1;
	}
	return 0;
}

static void do_channel(struct api_req *r, const char *channel)
{
	char canon[PAV_CHANNEL_BUF];
	const char *chans[] = {canon};
	struct read_ctx *x;

	if (channel_arg(r, channel, canon, sizeof(canon)) ||
	    !(x = read_ctx(r, canon)))
		return;
	STATE(r->vh)->channel_counts(STATE_SELF(r->vh), api_ns(r), chans, 1,
				     counted, x);
}

/* {"offset","type","payload","timestamp"} of a stored frame. */
static json_object *publication_of(struct pav_msg *m)
{
	const char *why;
	json_object *f = pav_api_parse_body((const char *)pav_msg_text(m),
					    m->len, &why);
	json_object *o = json_object_new_object(), *v;

	json_object_object_add(o, "offset",
			       json_object_new_int64((int64_t)m->offset));
	for (size_t i = 0; f && i < 3; i++) {
		static const char *const keys[] = {"type", "payload",
						   "timestamp"};

		if (json_object_object_get_ex(f, keys[i], &v))
			json_object_object_add(o, keys[i], json_object_get(v));
	}
	json_object_put(f);
	return o;
}

static void history_read(void *arg, int err, const struct pav_history *h)
{
	struct read_ctx *x = arg;
	struct api_req *r = req_find(x->vh, x->rid);
	json_object *o, *list;

	if (r && err) {
		answer_store_error(r, err);
	} else if (r) {
		o = json_object_new_object();
		list = json_object_new_array();
		for (size_t i = 0; i < h->n; i++)
			json_object_array_add(list, publication_of(h->msgs[i]));
		json_object_object_add(o, "channel",
				       json_object_new_string(x->name));
		json_object_object_add(o, "epoch",
				       json_object_new_string(h->epoch));
		json_object_object_add(o, "offset",
				       json_object_new_int64((int64_t)h->offset));
		json_object_object_add(o, "publications", list);
		answer_json(r, 200, o);
	}
	free(x);
}

/*
 * ?since=N&limit=M: the publications after offset N (default: what the
 * history holds), at most M (default and cap: the channel kind's size),
 * oldest first.
 */
static void do_history(struct api_req *r, const char *channel)
{
	char canon[PAV_CHANNEL_BUF];
	const struct pav_history_cfg *h;
	struct read_ctx *x;
	long since, limit;

	if (channel_arg(r, channel, canon, sizeof(canon)))
		return;
	if (!(h = pav_ns_history(r->vh->ns, canon)))
		return answer_error(r, 404, "this channel kind keeps no history");
	since = pav_api_query_number(r->query, "since", -2, INT64_MAX / 2);
	limit = pav_api_query_number(r->query, "limit", h->size, 1000000);
	if (since == -1 || limit < 0)
		return answer_error(r, 400, "since and limit must be whole "
					    "numbers");
	if (!(x = read_ctx(r, canon)))
		return;
	if (limit == 0 || limit > h->size)
		limit = h->size;
	STATE(r->vh)->history_read(STATE_SELF(r->vh), api_ns(r), canon, h,
				   since < 0 ? 0 : (uint64_t)since, (size_t)limit,
				   history_read, x);
}

static void do_metrics(struct api_req *r)
{
	r->ans.status = 200;
	r->ans.content_type = "text/plain; version=0.0.4";
	r->ans.body = pav_metrics_render(&r->ans.len);
	mark_unsent(r, 1);
	if (!r->ans.body)
		answer_error(r, 500, "out of memory");
}

/* /readyz: what a load balancer asks before sending clients here.  A node
 * that is stopping refuses every handshake with 503 (server.c), so it says
 * so here too, or clients would keep being sent to it for the whole grace. */
static const char *readiness(const struct pav_core *core)
{
	if (core->shutting_down)
		return "stopping";
	return pav_store_ready(&core->store) ? "ok" : "unavailable";
}

static void do_health(struct api_req *r, int ready)
{
	json_object *o = json_object_new_object();
	const char *status = ready ? readiness(r->vh->core) : "ok";

	json_object_object_add(o, "status", json_object_new_string(status));
	answer_json(r, strcmp(status, "ok") ? 503 : 200, o);
}

/* ---- routing ---------------------------------------------------------- */

static const char *method_name(int m)
{
	switch (m) {
	case LWSHUMETH_GET: return "GET";
	case LWSHUMETH_POST: return "POST";
	case LWSHUMETH_DELETE: return "DELETE";
	default: return "";
	}
}

static json_object *parsed_body(struct api_req *r)
{
	const char *why;
	json_object *body = pav_api_parse_body(r->body ? r->body : "",
					       r->body_len, &why);

	if (!body)
		answer_error(r, 400, why);
	return body;
}

/* A route a plugin of the namespace registered. */
static int route_plugin(struct api_req *r, const char *m)
{
	char buf[512];
	const char *args[PAV_ROUTE_MAX_SEGS];
	size_t nargs = 0;
	int bad = 0;
	const struct pav_route *rt = pav_ns_route(r->vh->ns, m, r->path, buf,
						  sizeof(buf), args, &nargs,
						  &bad);
	struct pav_api_request req = {m, r->path, r->query, args, 0, NULL};
	pav_api_call *call;

	if (!rt)
		return 0;
	if (bad) {
		answer_error(r, 400, "invalid id in the path");
		return 1;
	}
	req.nargs = nargs;
	if (r->method == LWSHUMETH_POST && !(req.body = parsed_body(r)))
		return 1;
	if ((call = call_new(r)))
		rt->fn(rt->inst->state, call, &req);
	json_object_put(req.body);
	return 1;
}

static void with_body(struct api_req *r,
		      void (*fn)(struct api_req *, json_object *))
{
	json_object *body = parsed_body(r);

	if (body)
		fn(r, body);
	json_object_put(body);
}

/* "/v1/channels/{c}" and "/v1/channels/{c}/history" (c holds a ':'). */
static int route_channels(struct api_req *r, int get)
{
	char chan[PAV_CHANNEL_BUF + 16];
	const char *p = r->path + strlen("/v1/channels/"), *slash;

	if (strncmp(r->path, "/v1/channels/", 13))
		return 0;
	slash = strchr(p, '/');
	if (slash && strcmp(slash, "/history"))
		return 0;
	snprintf(chan, sizeof(chan), "%.*s",
		 (int)(slash ? (size_t)(slash - p) : strlen(p)), p);
	if (!get)
		answer_error(r, 405, "use GET");
	else if (slash)
		do_history(r, chan);
	else
		do_channel(r, chan);
	return 1;
}

/* "DELETE /v1/users/{id}/connections[?revoke_s=N]". */
static int route_revoke(struct api_req *r)
{
	const char *p = r->path + strlen("/v1/users/"), *slash;
	char id[PAV_MAX_ID_LEN + 1];

	if (strncmp(r->path, "/v1/users/", 10) || !(slash = strchr(p, '/')) ||
	    strcmp(slash, "/connections"))
		return 0;
	if (r->method != LWSHUMETH_DELETE) {
		answer_error(r, 405, "use DELETE");
		return 1;
	}
	if (!pav_id_valid(p, (size_t)(slash - p))) {
		answer_error(r, 400, "invalid user id");
		return 1;
	}
	snprintf(id, sizeof(id), "%.*s", (int)(slash - p), p);
	do_revoke(r, id);
	return 1;
}

static void route_v1(struct api_req *r)
{
	const char *m = method_name(r->method);

	if (!strcmp(r->path, "/v1/publish"))
		return r->method == LWSHUMETH_POST ? with_body(r, do_publish)
						   : answer_error(r, 405, "use POST");
	if (route_channels(r, r->method == LWSHUMETH_GET) || route_revoke(r) ||
	    route_plugin(r, m))
		return;
	if (pav_ns_path_known(r->vh->ns, r->path))
		return answer_error(r, 405, "method not allowed here");
	answer_error(r, 404, "no such call");
}

static int authorized(struct lws *wsi, struct api_req *r)
{
	/* "Bearer " + the longest key + NUL; lws refuses a longer header */
	char h[sizeof("Bearer ") + PAV_API_KEY_MAX_LEN];

	if (lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
	    strncasecmp(h, "Bearer ", 7))
		return 0;
	return pav_api_key_ok(r->vh->api_keys, r->vh->napi_keys, h + 7);
}

static void route(struct api_req *r)
{
	int get = r->method == LWSHUMETH_GET;

	if (!strcmp(r->path, "/healthz") || !strcmp(r->path, "/readyz") ||
	    !strcmp(r->path, "/metrics")) {
		if (!get)
			return answer_error(r, 405, "use GET");
		if (!strcmp(r->path, "/metrics"))
			return do_metrics(r);
		return do_health(r, r->path[1] == 'r');
	}
	if (strncmp(r->path, "/v1/", 4))
		return answer_error(r, 404, "no such path");
	route_v1(r);
}

/* ---- lws glue ------------------------------------------------------- */

static void free_req(struct api_req **pr)
{
	if (!*pr)
		return;
	lws_sul_cancel(&(*pr)->go_sul);
	mark_unsent(*pr, 0);
	req_untrack(*pr);
	free((*pr)->body);
	free((*pr)->ans.body);
	free(*pr);
	*pr = NULL;
}

/* application/json, or an application/ type with the +json suffix (RFC
 * 6839), then nothing or parameters: type/subtype *( OWS ";" ... ). */
static int json_content_type(struct lws *wsi)
{
	char ct[128];
	size_t n, end;

	if (lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0)
		return 0;
	n = strcspn(ct, " \t;");
	end = n + strspn(ct + n, " \t");
	if (ct[end] && ct[end] != ';')
		return 0;
	if (n == 16 && !strncasecmp(ct, "application/json", 16))
		return 1;
	return n > 17 && !strncasecmp(ct, "application/", 12) &&
	       !memchr(ct + 12, '/', n - 12) &&
	       !strncasecmp(ct + n - 5, "+json", 5);
}

/* The query's arguments joined by '&' (lws keeps each as a fragment, and
 * lws_hdr_copy() would join them with ',').  -1 when they do not fit. */
static int read_query(struct lws *wsi, char *buf, size_t len)
{
	size_t used = 0;
	int n;

	buf[0] = '\0';
	for (int i = 0; (n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS,
						    i)) > 0; i++) {
		if (used + !!used + (size_t)n + 1 > len)
			return -1;
		if (used)
			buf[used++] = '&';
		lws_hdr_copy_fragment(wsi, buf + used, (int)(len - used),
				      WSI_TOKEN_HTTP_URI_ARGS, i);
		used += (size_t)n;
	}
	return 0;
}

struct local_port {
	const struct sockaddr *local;
	int port;
};

/* For a listener named by interface (lws binds one of its addresses). */
static int is_local(const char *ip, void *arg)
{
	const struct local_port *lp = arg;

	return pav_api_listener_match(lp->local, ip, lp->port) == 1;
}

/*
 * lws picks a request's vhost by its Host header among every vhost of the
 * listener's port, whatever their addresses: a request for this vhost may
 * have come in through another vhost's socket.  Only our own listener
 * (the accepted socket's local address and port) is served.
 */
int pav_api_own_listener(struct lws *wsi, struct pav_vhost *vh)
{
	const struct pav_vhost_config *vc = vh->cfg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = lws_get_socket_fd(wsi), rc;
	struct local_port lp = {(struct sockaddr *)&ss, vc->port};

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	rc = pav_api_listener_match((struct sockaddr *)&ss, vc->listen_host,
				    vc->port);
	if (rc != -ENOENT)
		return rc == 1;
	/* an interface: lws bound one of its addresses, so every connection
	 * of our listener has that one; the interface's list (a netlink
	 * dump) is read until it is known */
	if (vh->iface_bound_len == sl && !memcmp(&vh->iface_bound, &ss, sl))
		return 1;
	if (pav_iface_any_addr(vc->listen_host, is_local, &lp) != 1)
		return 0;
	memcpy(&vh->iface_bound, &ss, sl);
	vh->iface_bound_len = sl;
	return 1;
}

const struct pav_vhost *pav_api_host_names_other(struct lws *wsi,
						 const struct pav_vhost *vh)
{
	const struct pav_core *core = vh->core;
	char host[256], *colon;

	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return NULL;
	colon = strrchr(host, ':');
	if (colon && !strchr(colon, ']')) /* the port, not "[v6]"'s colons */
		*colon = '\0';
	for (size_t i = 0; i < core->nvhosts; i++) {
		const struct pav_vhost *o = &core->vhosts[i];

		if (o == vh || !pav_cfg_one_lws_port(o->cfg, vh->cfg))
			continue;
		for (size_t k = 0; k < o->cfg->nhostnames; k++)
			if (!strcasecmp(o->cfg->hostnames[k], host))
				return o;
	}
	return NULL;
}

/* Request line: a method, and a path (and query) the API can read whole. */
static int read_request_line(struct lws *wsi, struct api_req *r)
{
	const char *why = "bad request line";
	char *uri = NULL;
	int ulen = 0;

	r->method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (r->method < 0 || !uri || ulen < 0 ||
	    pav_api_check_path(uri, (size_t)ulen, &why)) {
		answer_error(r, 400, why);
		return -EINVAL;
	}
	memcpy(r->path, uri, (size_t)ulen);
	r->path[ulen] = '\0';
	if (read_query(wsi, r->query, sizeof(r->query)) < 0) {
		answer_error(r, 400, "query string too long");
		return -EINVAL;
	}
	return 0;
}

/* Misrouted requests: anyone who reaches a listener can send them. */
static struct pav_log_budget other_listener_log = {.per_s = 1};
static struct pav_log_budget other_host_log = {.per_s = 1};

/* The request line and headers are in: check what can be checked now.
 * Returns 1 when answered already (the body, if any, is not read). */
static int on_request(struct lws *wsi, struct api_req *r)
{
	const struct pav_vhost *other;
	unsigned long long n;
	char cl[32];

	if (!pav_api_own_listener(wsi, r->vh)) {
		pav_warn_budgeted(&other_listener_log, "api: a request for "
				  "vhost %s came in through another listener: "
				  "404", r->vh->cfg->name);
		r->early = 1; /* and no further request on this connection */
		answer_error(r, 404, "no such path");
		return 1;
	}
	if ((other = pav_api_host_names_other(wsi, r->vh))) {
		pav_warn_budgeted(&other_host_log, "api: a request whose Host "
				  "names vhost %s reached vhost %s: 404",
				  other->cfg->name, r->vh->cfg->name);
		r->early = 1;
		answer_error(r, 404, "no such path");
		return 1;
	}
	if (read_request_line(wsi, r))
		return 1;
	if (!strncmp(r->path, "/v1/", 4) && !authorized(wsi, r)) {
		answer_error(r, 401, "missing or wrong API key");
		return 1;
	}
	if (r->method != LWSHUMETH_POST)
		return 0;
	if (!json_content_type(wsi)) {
		answer_error(r, 415, "Content-Type must be application/json");
		return 1;
	}
	/* lws 4.1.6 reads no chunked request body, and tells nothing of a
	 * POST without Content-Length: one is refused, the other has none */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		answer_error(r, 400, "send the body with Content-Length "
				     "(a chunked body is not read)");
		return 1;
	}
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <=
	    0) {
		r->body_done = 1; /* empty: routed at once, then closed */
		r->early = 1;
		return 0;
	}
	n = strtoull(cl, NULL, 10);
	if (n > r->vh->cfg->api_max_body && n > API_DRAIN_BYTES) {
		answer_error(r, 413, "body too large");
		return 1; /* at once, and closed */
	}
	/* a client that sends its whole body before it reads (most do)
	 * would see the early answer's close as a broken pipe: a body up to
	 * API_DRAIN_BYTES is read and dropped (on_body) and answered 413
	 * when complete */
	r->too_big = n > r->vh->cfg->api_max_body;
	return 0;
}

static int on_body(struct api_req *r, const void *in, size_t len)
{
	if (!len)
		return 0;
	if (r->too_big || r->body_len + len > r->vh->cfg->api_max_body) {
		r->too_big = 1;
		return 0;
	}
	if (pav_grow(&r->body, &r->body_cap, r->body_len + len + 1, 4096,
		     r->vh->cfg->api_max_body + 1))
		return -1;
	memcpy(r->body + r->body_len, in, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int write_headers(struct lws *wsi, struct api_req *r)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
					   *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned)r->ans.status,
					r->ans.content_type, r->ans.len, &p,
					end) ||
	    lws_add_http_header_by_name(wsi,
					(const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8,
					&p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	r->headers_sent = 1;
	return 0;
}

/* The whole answer is out: the connection closes (an early answer) or
 * waits for its next request. */
static int answered(struct lws *wsi, struct api_req *r)
{
	mark_unsent(r, 0);
	if (r->early)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int write_body(struct lws *wsi, struct api_req *r)
{
	unsigned char buf[LWS_PRE + PAV_API_WRITE_BYTES];
	size_t n = r->ans.len - r->sent;
	int final;

	if (n > sizeof(buf) - LWS_PRE)
		n = sizeof(buf) - LWS_PRE;
	final = r->sent + n == r->ans.len;
	memcpy(buf + LWS_PRE, r->ans.body + r->sent, n);
	if (lws_write(wsi, buf + LWS_PRE, n,
		      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	r->sent += n;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	return answered(wsi, r);
}

static int on_writeable(struct lws *wsi, struct api_req *r)
{
	if (!r || !r->ans.status)
		return 0;
	if (!r->headers_sent) {
		if (write_headers(wsi, r))
			return -1;
		if (!r->ans.len)
			return answered(wsi, r);
		lws_callback_on_writable(wsi);
		return 0;
	}
	return write_body(wsi, r);
}

/* Whether lws reads a body for this request: Content-Length read as
 * lws_http_action() reads it, for any method (a POST without one is
 * answered at once, see on_request()). */
static int has_body(struct lws *wsi)
{
	char cl[32];

	return lws_hdr_copy(wsi, cl, sizeof(cl) - 1,
			    WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
	       atoll(cl);
}

static int start(struct lws *wsi, struct api_req **pr)
{
	free_req(pr);
	*pr = calloc(1, sizeof(**pr));
	if (!*pr)
		return -1;
	(*pr)->vh = lws_vhost_user(lws_get_vhost(wsi));
	if (req_track(*pr)) {
		free(*pr);
		*pr = NULL;
		return -1;
	}
	(*pr)->wsi = wsi;
	if (on_request(wsi, *pr) && ((*pr)->method == LWSHUMETH_POST ||
				     (*pr)->method < 0))
		(*pr)->early = 1;
	/* a request with a body is routed once lws is done with it (go()),
	 * even where the API reads none */
	if ((*pr)->ans.status || (*pr)->body_done ||
	    ((*pr)->method != LWSHUMETH_POST && !has_body(wsi))) {
		if (!(*pr)->ans.status)
			route(*pr);
		lws_callback_on_writable(wsi);
	}
	return 0;
}

/* The answer is ready (or was before the body was complete): reading
 * resumes, and the answer goes out when the socket is writable.  lws
 * serves no POLLOUT to a connection whose reading is paused, so this
 * comes first. */
static void release(struct api_req *r)
{
	if (r->paused) {
		r->paused = 0;
		lws_rx_flow_control(r->wsi, 1);
	}
	lws_callback_on_writable(r->wsi);
}

/* On the loop's next turn after the body completed, with lws out of the
 * call that completed it: the request is carried out. */
static void go(lws_sorted_usec_list_t *sul)
{
	struct api_req *r = lws_container_of(sul, struct api_req, go_sul);

	r->held = 0;
	if (r->ans.status)
		release(r);
	else if (r->too_big)
		answer_error(r, 413, "body too large");
	else
		route(r);
}

/*
 * lws 4.1.6 cannot read the body of a request it takes from what it read
 * ahead: one that came in the same read as the request before it.  Having
 * parsed such a request's head out of that buffer, and before it counts
 * the head as used (roles/h1/ops-h1.c:417-424), lws_http_action() feeds
 * the buffer to the body parser from its start (roles/http/server/
 * server.c:1811-1828): the first Content-Length bytes of the request's
 * own head come as its body.  Then, the body complete and the state still
 * LRS_BODY, each further pass of that loop consumes nothing
 * (ops-h1.c:131) and calls this again, without end and without returning
 * to the event loop.  Only a nonzero return (closing the connection) ends
 * that loop, and no lws call reaches the buffer to take the bytes out.
 *
 * So the request is held until the loop's next turn (go_sul), and its
 * connection's reading paused: lws serves a paused connection nothing, no
 * read and no read-ahead (ops-h1.c:629, core-net/service.c:539), so a
 * second completion while the request is held can only be that loop, and
 * the connection closes with the request neither carried out nor
 * answered.  Reading stays paused until the answer is ready: lws,
 * re-serving its read-ahead to a connection still in LRS_BODY, would
 * complete the body again on every turn while the answer waits (for the
 * store).  Once resumed, such repeats come only until the answer is out,
 * and are ignored.
 */
static int body_done(struct lws *wsi, struct api_req *r)
{
	if (!r)
		return 0;
	if (r->held)
		return -1;
	if (r->body_done)
		return 0;
	r->body_done = 1;
	r->held = 1;
	r->paused = 1;
	lws_rx_flow_control(wsi, 0);
	lws_sul_schedule(lws_get_context(wsi), 0, &r->go_sul, go, 1);
	return 0;
}

/* ---- the API's connections, for pav_api_busy() ------------------------ */

void pav_api_conn_add(struct pav_vhost *vh, struct lws *wsi)
{
	struct lws **c;

	if (vh->napi_conns == vh->api_conns_cap) {
		size_t cap = vh->api_conns_cap ? vh->api_conns_cap * 2 : 8;

		if (!(c = realloc(vh->api_conns, cap * sizeof(*c))))
			return; /* not watched: it only is not looked at early */
		vh->api_conns = c;
		vh->api_conns_cap = cap;
	}
	vh->api_conns[vh->napi_conns++] = wsi;
}

void pav_api_conn_gone(struct pav_vhost *vh, struct lws *wsi)
{
	for (size_t i = 0; i < vh->napi_conns; i++)
		if (vh->api_conns[i] == wsi) {
			vh->api_conns[i] = vh->api_conns[--vh->napi_conns];
			return;
		}
}

/* Input on any of the vhost's API connections: one poll() per 64. */
static int input_waiting(struct pav_vhost *vh)
{
	struct pollfd fds[64];
	size_t n = 0;

	for (size_t i = 0; i < vh->napi_conns; i++) {
		int fd = lws_get_socket_fd(vh->api_conns[i]);

		if (fd >= 0)
			fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
		if (n == 64 || (n && i + 1 == vh->napi_conns)) {
			if (poll(fds, (nfds_t)n, 0) > 0)
				return 1;
			n = 0;
		}
	}
	return 0;
}

int pav_api_busy(struct pav_core *core)
{
	for (size_t i = 0; i < core->nvhosts; i++) {
		struct pav_vhost *vh = &core->vhosts[i];

		if (vh->cfg->kind != PAV_VHOST_INTERNAL)
			continue;
		if (vh->api_unsent || input_waiting(vh))
			return 1;
	}
	return 0;
}

int pav_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	struct api_req **pr = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return start(wsi, pr);
	case LWS_CALLBACK_HTTP_BODY:
		return *pr && !(*pr)->ans.status ? on_body(*pr, in, len) : 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return body_done(wsi, *pr);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(wsi, *pr);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pr)
			free_req(pr);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
