/*
 * api.c — the internal HTTP API (DESIGN section 4) on internal vhosts:
 * bearer-key auth, JSON in and out, a body cap, and the calls that let
 * the backend publish, create notifications and read state.
 */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "channel.h"
#include "clock.h"
#include "gateway.h"
#include "pav_limits.h"
#include "log.h"
#include "metrics.h"

struct api_req {
	struct pav_vhost *vh;
	int method;
	char path[PAV_API_PATH_MAX + 1];
	char query[PAV_API_PATH_MAX + 1];
	char *body;
	size_t body_len;
	int too_big;
	struct pav_api_answer ans;
	size_t sent;
	int headers_sent;
	int early; /* answered before the body was read: close after */
	struct lws *wsi;
	uint64_t rid; /* names the request to store callbacks */
};

static uint64_t publish_offset;
static uint64_t next_rid;
static struct pav_map *pending; /* rid -> struct api_req, while it lives */

/*
 * Store calls may answer after the HTTP connection is gone, so callbacks
 * carry the request's id, not its pointer, and look it up again.
 */
static void rid_key(uint64_t rid, char *buf, size_t len)
{
	snprintf(buf, len, "%llx", (unsigned long long)rid);
}

static struct api_req *req_find(uint64_t rid)
{
	char k[24];

	rid_key(rid, k, sizeof(k));
	return pending ? pav_map_get(pending, k) : NULL;
}

static int req_track(struct api_req *r)
{
	char k[24];

	if (!pending && !(pending = pav_map_new()))
		return -ENOMEM;
	r->rid = ++next_rid;
	rid_key(r->rid, k, sizeof(k));
	return pav_map_put(pending, k, r);
}

static void req_untrack(struct api_req *r)
{
	char k[24];

	rid_key(r->rid, k, sizeof(k));
	if (pending)
		pav_map_del(pending, k);
	if (pending && !pav_map_count(pending)) {
		pav_map_free(pending, NULL);
		pending = NULL;
	}
}

/* ---- answers ---------------------------------------------------------- */

static void answer_json(struct api_req *r, int status, json_object *o)
{
	const char *t = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	r->ans.status = status;
	r->ans.content_type = "application/json";
	r->ans.body = strdup(t);
	r->ans.len = r->ans.body ? strlen(r->ans.body) : 0;
	json_object_put(o);
	if (r->wsi)
		lws_callback_on_writable(r->wsi);
}

static const char *slug(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 413: return "payload_too_large";
	case 415: return "unsupported_media_type";
	case 503: return "unavailable";
	default: return "internal_error";
	}
}

static void answer_error(struct api_req *r, int status, const char *msg)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(slug(status)));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	answer_json(r, status, o);
}

/* ---- calls ------------------------------------------------------------ */

static const char *api_ns(struct api_req *r)
{
	return r->vh->cfg->ns;
}

static void do_publish(struct api_req *r, json_object *body)
{
	const char *channel = pav_api_str(body, "channel");
	const char *type = pav_api_str(body, "type");
	json_object *payload, *o;
	char canon[PAV_MAX_CHANNEL_LEN];
	const char *why;
	int n;

	if (!channel || !type || !*type || strlen(type) > 64 ||
	    !json_object_object_get_ex(body, "payload", &payload))
		return answer_error(r, 400, "need channel, type and payload");
	/* "user" alone means nothing without a connection */
	if (!strcmp(channel, "user") ||
	    pav_channel_parse("", channel, canon, sizeof(canon)))
		return answer_error(r, 400, "invalid channel");
	if (pav_api_check_payload(type, canon, payload, &why))
		return answer_error(r, 400, why);
	int64_t t0 = pav_mono_ms();
	const char *chans[] = {canon};

	n = pav_hub_publish(api_ns(r), chans, 1, type, payload, NULL);
	pav_metrics_fanout_seconds((double)(pav_mono_ms() - t0) / 1000.0);
	if (n < 0)
		return answer_error(r, 500, "publish failed");
	o = json_object_new_object();
	json_object_object_add(o, "channel", json_object_new_string(canon));
	json_object_object_add(o, "offset",
			       json_object_new_int64((int64_t)++publish_offset));
	json_object_object_add(o, "recipients", json_object_new_int(n));
	answer_json(r, 202, o);
}

struct notif_ctx {
	uint64_t rid;
	char ns[128];
	char user[PAV_MAX_ID_LEN + 1];
	char id[80];
};

/* Last step: the stored copy (with id, createdAt, isRead) goes out. */
static void notif_got(void *arg, int err, json_object *list)
{
	struct notif_ctx *x = arg;
	struct api_req *r = req_find(x->rid);
	char chan[PAV_MAX_CHANNEL_LEN];
	const char *chans[] = {chan};
	json_object *o;

	if (!err && json_object_array_length(list) == 1) {
		snprintf(chan, sizeof(chan), "user:%s", x->user);
		pav_hub_publish(x->ns, chans, 1, "notification",
				json_object_array_get_idx(list, 0), NULL);
	}
	if (r) {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(x->id));
		answer_json(r, 201, o);
	}
	free(x);
}

static void notif_added(void *arg, int err, const char *id)
{
	struct notif_ctx *x = arg;
	struct api_req *r;

	if (err) {
		if ((r = req_find(x->rid)))
			answer_error(r, 500, "session store unavailable");
		free(x);
		return;
	}
	snprintf(x->id, sizeof(x->id), "%s", id);
	pav_gw->store->inbox_get(x->ns, x->user, x->id, notif_got, x);
}

static void do_notification(struct api_req *r, json_object *body)
{
	const char *user = pav_api_str(body, "userId"), *why;
	struct notif_ctx *x;
	json_object *n;

	if (!user || !pav_id_valid(user, strlen(user)))
		return answer_error(r, 400, "userId must be 1-64 of [A-Za-z0-9_-]");
	if (!json_object_object_get_ex(body, "notification", &n) ||
	    !json_object_is_type(n, json_type_object))
		return answer_error(r, 400, "notification must be an object");
	if (pav_api_check_notification(n, 0, &why))
		return answer_error(r, 400, why);
	x = calloc(1, sizeof(*x));
	if (!x)
		return answer_error(r, 500, "out of memory");
	x->rid = r->rid;
	snprintf(x->ns, sizeof(x->ns), "%s", api_ns(r));
	snprintf(x->user, sizeof(x->user), "%s", user);
	pav_gw->store->inbox_add(x->ns, user, n, notif_added, x);
}

struct read_ctx {
	uint64_t rid;
	char user[PAV_MAX_ID_LEN + 1];
};

static struct read_ctx *read_ctx(struct api_req *r, const char *user)
{
	struct read_ctx *x = malloc(sizeof(*x));

	if (!x) {
		answer_error(r, 500, "out of memory");
		return NULL;
	}
	x->rid = r->rid;
	snprintf(x->user, sizeof(x->user), "%s", user);
	return x;
}

static void list_done(void *arg, int err, json_object *list)
{
	struct read_ctx *x = arg;
	struct api_req *r = req_find(x->rid);
	json_object *o;

	if (r && err) {
		answer_error(r, 500, "session store unavailable");
	} else if (r) {
		o = json_object_new_object();
		json_object_object_add(o, "userId",
				       json_object_new_string(x->user));
		json_object_object_add(o, "notifications",
				       json_object_get(list));
		answer_json(r, 200, o);
	}
	free(x);
}

/* A query parameter as a whole number in [0, max]: the value, def when
 * absent, -1 when malformed. */
static long query_num(const char *q, const char *key, long def, long max)
{
	size_t kl = strlen(key);

	for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		const char *v = p + kl + 1;
		long n = 0;

		if (strncmp(p, key, kl) || p[kl] != '=')
			continue;
		if (*v < '0' || *v > '9')
			return -1;
		for (; *v >= '0' && *v <= '9'; v++)
			if ((n = n * 10 + (*v - '0')) > max)
				return -1;
		return *v && *v != '&' ? -1 : n;
	}
	return def;
}

static void do_inbox(struct api_req *r, const char *user)
{
	long unread = query_num(r->query, "unread", 0, 1);
	long limit = query_num(r->query, "limit", 0, 10000);
	struct read_ctx *x;

	if (unread < 0)
		return answer_error(r, 400, "unread must be 0 or 1");
	if (limit < 0)
		return answer_error(r, 400, "limit must be a number from 0 to 10000");
	if (!(x = read_ctx(r, user)))
		return;
	pav_gw->store->inbox_list(api_ns(r), user, 0, (int)unread,
				  (size_t)limit, list_done, x);
}

static void presence_done(void *arg, int err, const struct pav_presence *p)
{
	struct read_ctx *x = arg;
	struct api_req *r = req_find(x->rid);
	char ts[PAV_TIME_LEN];
	json_object *o;

	free(x);
	if (!r)
		return;
	if (err)
		return answer_error(r, 500, "session store unavailable");
	o = json_object_new_object();
	json_object_object_add(o, "userId", json_object_new_string(p->user));
	json_object_object_add(o, "status", json_object_new_string(p->status));
	if (p->last_active_ms) {
		pav_format_time(p->last_active_ms, ts, sizeof(ts));
		json_object_object_add(o, "lastActive",
				       json_object_new_string(ts));
	} else {
		json_object_object_add(o, "lastActive", NULL);
	}
	json_object_object_add(o, "connections",
			       json_object_new_int(p->connections));
	answer_json(r, 200, o);
}

static void do_presence(struct api_req *r, const char *user)
{
	struct read_ctx *x = read_ctx(r, user);

	if (x)
		pav_gw->store->presence_get(api_ns(r), user, presence_done, x);
}

struct revoke_ctx {
	const char *ns, *user;
	int n;
};

static int revoke_one(const char *key, void *val, void *arg)
{
	struct pav_conn *c = val;
	struct revoke_ctx *x = arg;

	(void)key;
	if (c->state != PAV_CONN_OPEN || strcmp(c->user, x->user) ||
	    strcmp(c->vh->cfg->ns, x->ns))
		return 0;
	pav_conn_error(c, PAV_ERR_AUTH, "connection revoked", NULL);
	pav_conn_close(c, 4001, "revoked");
	x->n++;
	return 0;
}

static void do_revoke(struct api_req *r, const char *user)
{
	struct revoke_ctx x = {api_ns(r), user, 0};
	json_object *o = json_object_new_object();

	pav_map_each(pav_gw->conns, revoke_one, &x);
	pav_info("api: revoked %d connections of user %s", x.n, user);
	json_object_object_add(o, "closed", json_object_new_int(x.n));
	answer_json(r, 200, o);
}

static void do_channel(struct api_req *r, const char *channel)
{
	char canon[PAV_MAX_CHANNEL_LEN];
	json_object *o;

	if (!strcmp(channel, "user") ||
	    pav_channel_parse("", channel, canon, sizeof(canon)))
		return answer_error(r, 400, "invalid channel");
	o = json_object_new_object();
	json_object_object_add(o, "channel", json_object_new_string(canon));
	json_object_object_add(o, "subscribers",
			       json_object_new_int64((int64_t)pav_hub_count(
				       api_ns(r), canon)));
	answer_json(r, 200, o);
}

static void do_metrics(struct api_req *r)
{
	r->ans.status = 200;
	r->ans.content_type = "text/plain; version=0.0.4";
	r->ans.body = pav_metrics_render(&r->ans.len);
	if (!r->ans.body)
		answer_error(r, 500, "out of memory");
}

static void do_health(struct api_req *r, int ready)
{
	json_object *o = json_object_new_object();
	int ok = !ready || pav_gw->store->ready();

	json_object_object_add(o, "status",
			       json_object_new_string(ok ? "ok" : "unavailable"));
	answer_json(r, ok ? 200 : 503, o);
}

/* ---- routing ---------------------------------------------------------- */

/* Matches "/v1/users/{id}/<tail>": copies the id. */
static int user_route(const char *path, const char *tail, char *id,
		      size_t len)
{
	const char *p = path + strlen("/v1/users/"), *slash;

	if (strncmp(path, "/v1/users/", 10) || !(slash = strchr(p, '/')) ||
	    strcmp(slash + 1, tail) || (size_t)(slash - p) >= len)
		return 0;
	memcpy(id, p, (size_t)(slash - p));
	id[slash - p] = '\0';
	return pav_id_valid(id, strlen(id)) ? 1 : -1;
}

static void route_body(struct api_req *r, void (*fn)(struct api_req *,
						      json_object *))
{
	const char *why;
	json_object *body = pav_api_parse_body(r->body ? r->body : "",
					       r->body_len, &why);

	if (!body)
		return answer_error(r, 400, why);
	fn(r, body);
	json_object_put(body);
}

static void route_v1(struct api_req *r)
{
	char id[PAV_MAX_ID_LEN + 1];
	int get = r->method == LWSHUMETH_GET, post = r->method == LWSHUMETH_POST;
	int u;

	if (!strcmp(r->path, "/v1/publish"))
		return post ? route_body(r, do_publish)
			    : answer_error(r, 405, "use POST");
	if (!strcmp(r->path, "/v1/notifications"))
		return post ? route_body(r, do_notification)
			    : answer_error(r, 405, "use POST");
	if (!strncmp(r->path, "/v1/channels/", 13))
		return get ? do_channel(r, r->path + 13)
			   : answer_error(r, 405, "use GET");
	if ((u = user_route(r->path, "notifications", id, sizeof(id))) ||
	    (u = user_route(r->path, "presence", id, sizeof(id))) ||
	    (u = user_route(r->path, "connections", id, sizeof(id)))) {
		const char *tail = strrchr(r->path, '/') + 1;
		int del = r->method == LWSHUMETH_DELETE;

		if (u < 0)
			return answer_error(r, 400, "invalid user id");
		if (!strcmp(tail, "connections"))
			return del ? do_revoke(r, id)
				   : answer_error(r, 405, "use DELETE");
		if (!get)
			return answer_error(r, 405, "use GET");
		return !strcmp(tail, "presence") ? do_presence(r, id)
						 : do_inbox(r, id);
	}
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
	req_untrack(*pr);
	free((*pr)->body);
	free((*pr)->ans.body);
	free(*pr);
	*pr = NULL;
}

static int json_content_type(struct lws *wsi)
{
	char ct[128];

	if (lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0)
		return 0;
	return !strncasecmp(ct, "application/json", 16) &&
	       (!ct[16] || ct[16] == ';' || ct[16] == ' ');
}

/* A listener named by interface (lws binds one of its addresses): does
 * local belong to it? */
static int on_interface(const struct sockaddr *local, const char *ifname,
			int port)
{
	struct ifaddrs *list, *i;
	char host[INET6_ADDRSTRLEN];
	int ok = 0;

	if (getifaddrs(&list))
		return 0;
	for (i = list; i && !ok; i = i->ifa_next) {
		const void *a;

		if (!i->ifa_addr || !i->ifa_name || strcmp(i->ifa_name, ifname))
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)
				      i->ifa_addr)->sin_addr;
		else if (i->ifa_addr->sa_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)
				      i->ifa_addr)->sin6_addr;
		else
			continue;
		ok = inet_ntop(i->ifa_addr->sa_family, a, host, sizeof(host)) &&
		     pav_api_listener_match(local, host, port) == 1;
	}
	freeifaddrs(list);
	return ok;
}

/*
 * lws picks a request's vhost by its Host header among every vhost of the
 * listener's port, whatever their addresses: a request for this vhost may
 * have come in through another vhost's socket.  Only our own listener
 * (the accepted socket's local address and port) is served.
 */
static int on_own_listener(struct lws *wsi, const struct pav_vhost_config *vc)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = lws_get_socket_fd(wsi), rc;

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	rc = pav_api_listener_match((struct sockaddr *)&ss, vc->listen_host,
				    vc->port);
	if (rc == -ENOENT)
		rc = on_interface((struct sockaddr *)&ss, vc->listen_host,
				  vc->port);
	return rc == 1;
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
	if (lws_hdr_copy(wsi, r->query, sizeof(r->query),
			 WSI_TOKEN_HTTP_URI_ARGS) < 0) {
		answer_error(r, 400, "query string too long");
		return -EINVAL;
	}
	return 0;
}

/* The request line and headers are in: check what can be checked now.
 * Returns 1 when answered already (the body, if any, is not read). */
static int on_request(struct lws *wsi, struct api_req *r)
{
	char cl[32];

	r->vh = lws_vhost_user(lws_get_vhost(wsi));
	if (!on_own_listener(wsi, r->vh->cfg)) {
		pav_warn("api: a request for vhost %s came in through another "
			 "listener: 404", r->vh->cfg->name);
		r->early = 1; /* and no further request on this connection */
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
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
	    strtoull(cl, NULL, 10) > r->vh->cfg->api_max_body) {
		answer_error(r, 413, "body too large");
		return 1;
	}
	return 0;
}

static int on_body(struct api_req *r, const void *in, size_t len)
{
	char *nb;

	if (!len)
		return 0;
	if (r->too_big || r->body_len + len > r->vh->cfg->api_max_body) {
		r->too_big = 1;
		return 0;
	}
	nb = realloc(r->body, r->body_len + len + 1);
	if (!nb)
		return -1;
	memcpy(nb + r->body_len, in, len);
	r->body = nb;
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

static int write_body(struct lws *wsi, struct api_req *r)
{
	unsigned char buf[LWS_PRE + 16384];
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
	if (r->early)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_writeable(struct lws *wsi, struct api_req *r)
{
	if (!r || !r->ans.status)
		return 0;
	if (!r->headers_sent) {
		if (write_headers(wsi, r))
			return -1;
		if (!r->ans.len)
			return r->early || lws_http_transaction_completed(wsi) ? -1 : 0;
		lws_callback_on_writable(wsi);
		return 0;
	}
	return write_body(wsi, r);
}

static int start(struct lws *wsi, struct api_req **pr)
{
	free_req(pr);
	*pr = calloc(1, sizeof(**pr));
	if (!*pr)
		return -1;
	if (req_track(*pr)) {
		free(*pr);
		*pr = NULL;
		return -1;
	}
	(*pr)->wsi = wsi;
	if (on_request(wsi, *pr) && ((*pr)->method == LWSHUMETH_POST ||
				     (*pr)->method < 0))
		(*pr)->early = 1;
	if ((*pr)->ans.status || (*pr)->method != LWSHUMETH_POST) {
		if (!(*pr)->ans.status)
			route(*pr);
		lws_callback_on_writable(wsi);
	}
	return 0;
}

static int body_done(struct lws *wsi, struct api_req *r)
{
	if (!r || r->ans.status)
		return 0;
	if (r->too_big)
		answer_error(r, 413, "body too large");
	else
		route(r);
	lws_callback_on_writable(wsi);
	return 0;
}

int pav_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	struct api_req **pr = user;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		pav_server_note_ssl_ctx(user);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!pav_server_upgrade_is_websocket(wsi))
			return -1; /* see server.c: CVE-2025-11677 */
		lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, NULL);
		return 1;
	case LWS_CALLBACK_HTTP:
		return start(wsi, pr);
	case LWS_CALLBACK_HTTP_BODY:
		return *pr && !(*pr)->ans.status ? on_body(*pr, in, len) : 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return body_done(wsi, *pr);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(wsi, *pr);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		pav_server_handle_signals();
		return 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pr)
			free_req(pr);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
