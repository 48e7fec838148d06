/*
 * notification.c — the per-user notification inbox: creation by the
 * backend, delivery, mark_read, and replay on subscribe.
 *
 * Internal API (on the internal vhosts of this vhost's namespace):
 *   POST /v1/notifications {"userId", "notification": {type, content,
 *       sender?, reference?, ...}} → stored in the user's inbox with "id",
 *       "createdAt" and "isRead": false, delivered as a "notification"
 *       message on "user:<id>" to every connection of the user, on every
 *       node → 201 {"id"}.
 *   GET /v1/users/{id}/notifications?unread=1&limit=N → 200 {"userId",
 *       "notifications": [...]} (oldest first; with limit, the newest N).
 *   POST /v1/publish of type "notification" is checked for the spec's
 *       shape (id, createdAt and a boolean isRead included).
 *
 * Client messages:
 *   mark_read {"notificationId": "<id>"} → marks it read; ack
 *       {"notificationId"}; the user's other connections get
 *       {"type": "notification_read", "payload": {"notificationId"}}.  An
 *       id not in this user's inbox → 1004 (the same answer whether it
 *       exists for someone else or not); a bad payload → 1002.
 *   subscribe to "user" with parameters.since (RFC 3339, else 1002) → the
 *       inbox's notifications created after it go to that connection,
 *       oldest first.  Live notifications that arrive while the inbox is
 *       read are held and sent after the replay, those already replayed
 *       dropped (by id): none twice, none missing.  A replay larger than
 *       the connection may hold goes in pages: what fits, then
 *       {"type": "replay_incomplete", "payload": {"since"}} on the user
 *       channel, the createdAt of the first not sent less 1 ms; the client
 *       subscribes again with that since for the next page.
 *
 * Options: none (the plugin's options object must be empty).
 *
 * Every store call is asynchronous: callbacks find the connection again
 * by id, because it may have closed in between.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#define PLUGIN_NAME "notification"

struct notification {
	const struct pav_host *host;
	pav_vhost *vh;
};

/* ---- shapes ---- */

static int is_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	       json_object_is_type(v, json_type_string);
}

/* o[key], when present, is an object of string fields. */
static int obj_of_strings(json_object *o, const char *key,
			  const char *const *fields)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 1;
	if (!json_object_is_type(v, json_type_object))
		return 0;
	for (; *fields; fields++)
		if (!is_str(v, *fields))
			return 0;
	return 1;
}

/* The spec's notification: string type and content, optional sender
 * {id,username,profilePhoto} and reference {type,id}; complete: also id,
 * createdAt and a boolean isRead (a published one). */
static int check_shape(json_object *p, int complete, const char **why)
{
	static const char *const sender[] = {"id", "username", "profilePhoto",
					     NULL};
	static const char *const reference[] = {"type", "id", NULL};
	json_object *v;

	if (!json_object_is_type(p, json_type_object) || !is_str(p, "type") ||
	    !is_str(p, "content")) {
		*why = "notification needs string type and content";
		return -EINVAL;
	}
	if (!obj_of_strings(p, "sender", sender) ||
	    !obj_of_strings(p, "reference", reference)) {
		*why = "notification sender {id,username,profilePhoto} or "
		       "reference {type,id} malformed";
		return -EINVAL;
	}
	if (complete && (!is_str(p, "id") || !is_str(p, "createdAt") ||
			 !json_object_object_get_ex(p, "isRead", &v) ||
			 !json_object_is_type(v, json_type_boolean))) {
		*why = "notification needs id, createdAt and boolean isRead";
		return -EINVAL;
	}
	return 0;
}

static int check_published(void *instance, const char *channel,
			   json_object *payload, const char **why)
{
	(void)instance;
	(void)channel;
	return check_shape(payload, 1, why);
}

/* ---- what a store callback needs ---- */

/* Copied, since nothing of the request or the connection outlives the
 * handler.  The strings follow the struct. */
struct pending {
	struct notification *nt;
	uint64_t conn_id;
	pav_reply *reply;
	pav_api_call *call;
	const char *user;
	const char *id;
	int64_t since_ms; /* a replay's */
	char channel[PAV_CHANNEL_BUF]; /* "user:<user>" */
};

static struct pending *pending_new(struct notification *nt, uint64_t conn_id,
				   const char *user, const char *id)
{
	size_t lu = strlen(user) + 1, lid = id ? strlen(id) + 1 : 0;
	struct pending *p = calloc(1, sizeof(*p) + lu + lid);
	char *s;

	if (!p)
		return NULL;
	p->nt = nt;
	p->conn_id = conn_id;
	s = (char *)(p + 1);
	p->user = memcpy(s, user, lu);
	p->id = id ? memcpy(s + lu, id, lid) : NULL;
	if (nt->host->user_channel(user, p->channel, sizeof(p->channel)) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* {"notificationId": id}, for the ack and for notification_read. */
static json_object *id_payload(const char *id)
{
	json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, "notificationId",
				       json_object_new_string(id));
	return o;
}

/* ---- POST /v1/notifications ---- */

static void delivered(void *arg, int err, const struct pav_published *res)
{
	struct pending *p = arg;
	json_object *o;

	(void)res;
	if (err == -EIO) {
		p->nt->host->api_error(p->call, 503,
				       "session store unavailable");
	} else if (err) {
		p->nt->host->api_error(p->call, 500, "delivery failed");
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(p->id));
		p->nt->host->api_answer(p->call, 201, o);
	}
	free(p);
}

/* Stored: deliver the stored copy (with id and createdAt) to the user. */
static void stored(void *arg, int err, json_object *n)
{
	struct pending *p = arg, *q;
	const struct pav_host *host = p->nt->host;
	json_object *id;
	const char *chans[] = {p->channel};
	struct pav_publication pub = {chans, 1, "notification", n, NULL, NULL,
				      0};

	if (err || !json_object_object_get_ex(n, "id", &id)) {
		pav_api_store_error(host, p->call, err);
		free(p);
		return;
	}
	q = pending_new(p->nt, 0, p->user, json_object_get_string(id));
	if (!q) {
		host->api_error(p->call, 500, "out of memory");
		free(p);
		return;
	}
	q->call = p->call;
	free(p);
	chans[0] = q->channel; /* p's went with it */
	pub.key = q->id;
	host->publish(q->nt->vh, &pub, delivered, q);
}

static void post_notification(void *instance, pav_api_call *call,
			      const struct pav_api_request *req)
{
	struct notification *nt = instance;
	const struct pav_host *host = nt->host;
	json_object *user, *n;
	const char *why;
	struct pending *p;

	if (!json_object_object_get_ex(req->body, "userId", &user) ||
	    !json_object_is_type(user, json_type_string) ||
	    !host->id_valid(json_object_get_string(user),
			    (size_t)json_object_get_string_len(user)))
		return host->api_error(call, 400, "userId must be 1-64 of "
						  "[A-Za-z0-9_-]");
	if (!json_object_object_get_ex(req->body, "notification", &n) ||
	    !json_object_is_type(n, json_type_object))
		return host->api_error(call, 400,
				       "notification must be an object");
	if (check_shape(n, 0, &why))
		return host->api_error(call, 400, why);
	p = pending_new(nt, 0, json_object_get_string(user), NULL);
	if (!p)
		return host->api_error(call, 500, "out of memory");
	p->call = call;
	host->inbox_add(nt->vh, p->user, n, stored, p);
}

/* ---- GET /v1/users/{id}/notifications ---- */

static void listed(void *arg, int err, json_object *list)
{
	struct pending *p = arg;
	const struct pav_host *host = p->nt->host;
	json_object *o;

	if (err) {
		pav_api_store_error(host, p->call, err);
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "userId",
				       json_object_new_string(p->user));
		json_object_object_add(o, "notifications",
				       json_object_get(list));
		host->api_answer(p->call, 200, o);
	}
	free(p);
}

static void get_inbox(void *instance, pav_api_call *call,
		      const struct pav_api_request *req)
{
	struct notification *nt = instance;
	const struct pav_host *host = nt->host;
	long unread = host->query_number(req->query, "unread", 0, 1);
	long limit = host->query_number(req->query, "limit", 0, 10000);
	struct pending *p;

	if (unread < 0)
		return host->api_error(call, 400, "unread must be 0 or 1");
	if (limit < 0)
		return host->api_error(call, 400, "limit must be a number from "
						  "0 to 10000");
	p = pending_new(nt, 0, req->args[0], NULL);
	if (!p)
		return host->api_error(call, 500, "out of memory");
	p->call = call;
	host->inbox_list(nt->vh, p->user, 0, (int)unread, (size_t)limit,
			 listed, p);
}

/* ---- mark_read ---- */

/* Tells the user's other connections, on every node, that id was read. */
static void announce_read(const struct pending *p)
{
	const struct pav_host *host = p->nt->host;
	const char *chans[] = {p->channel};
	json_object *payload = id_payload(p->id);
	struct pav_publication pub = {chans, 1, "notification_read", payload,
				      NULL, NULL, 1};

	if (!payload)
		return;
	/* the acting connection may have closed meanwhile: then nobody is
	 * left out */
	pub.except = host->conn_find(p->nt->vh, p->conn_id);
	host->publish(p->nt->vh, &pub, NULL, NULL);
	json_object_put(payload);
}

static void marked(void *arg, int err)
{
	struct pending *p = arg;
	const struct pav_host *host = p->nt->host;

	if (err == -ENOENT) {
		host->reply(p->reply, PAV_ERR_PERMISSION,
			    "notification not found", NULL);
	} else if (err < 0) {
		host->log(PAV_LOG_ERROR, PLUGIN_NAME,
			  "mark_read for user %s: store error: %s", p->user,
			  strerror(-err));
		host->reply(p->reply, PAV_ERR_INTERNAL,
			    "internal server error", NULL);
	} else {
		host->reply(p->reply, 0, NULL, id_payload(p->id));
		announce_read(p);
	}
	free(p);
}

/* payload.notificationId: a string of 1 to 64 characters. */
static const char *read_notification_id(struct pav_request *req)
{
	json_object *v;
	size_t n;

	if (!req->payload ||
	    !json_object_object_get_ex(req->payload, "notificationId", &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	n = (size_t)json_object_get_string_len(v);
	return n >= 1 && n <= PAV_ID_MAX ? json_object_get_string(v) : NULL;
}

static int on_mark_read(void *instance, pav_conn *c, struct pav_request *req)
{
	struct notification *nt = instance;
	const struct pav_host *host = nt->host;
	const char *id = read_notification_id(req);
	struct pending *p;

	if (!id) {
		req->error_message = "payload.notificationId must be a string "
				     "of 1 to 64 characters";
		return PAV_ERR_FORMAT;
	}
	p = pending_new(nt, host->conn_id(c), host->conn_user(c), id);
	if (!p || !(p->reply = host->defer(c, req))) {
		free(p);
		return PAV_ERR_INTERNAL;
	}
	host->inbox_mark_read(nt->vh, p->user, p->id, marked, p);
	return PAV_PENDING;
}

/* ---- replay on subscribe(user, since) ---- */

/*
 * Room kept after a page for the replay_incomplete that ends it: its
 * envelope, with the longest user channel and two times, is under 256
 * bytes.
 */
#define PAGE_END_ROOM 256

/* Sends the listed notifications from the oldest while they fit in what
 * the connection may still hold of replays; how many went out.  *cut: it
 * stopped for room, not because the connection is closing. */
static size_t send_page(const struct pending *p, pav_conn *c,
			json_object *list, int *cut)
{
	const struct pav_host *host = p->nt->host;
	size_t n = json_object_array_length(list), i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		rc = pav_send_replay_within(host, c, p->channel, "notification",
					    json_object_array_get_idx(list, i),
					    PAGE_END_ROOM);
		if (rc)
			break;
	}
	*cut = rc == -ENOSPC;
	return i;
}

/* Where the next page starts: the earliest createdAt of those not sent,
 * less 1 ms, `since` being exclusive.  The earliest, not the first: a
 * store lists a notification that entered the inbox late before newer
 * ones (see inbox_list). */
static int64_t next_since(const struct pending *p, json_object *list,
			  size_t from)
{
	const struct pav_host *host = p->nt->host;
	int64_t first = INT64_MAX, ms;
	json_object *t;

	for (size_t i = from; i < json_object_array_length(list); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(list, i),
					      "createdAt", &t) &&
		    host->parse_time(json_object_get_string(t), &ms) == 0 &&
		    ms < first)
			first = ms;
	/* none readable (never from the stores): this page again */
	return first == INT64_MAX ? p->since_ms : first - 1;
}

/* {"since": ...} on the user channel, as part of the replay: the client
 * subscribes again with it for the rest. */
static void send_page_end(const struct pending *p, pav_conn *c,
			  json_object *list, size_t sent)
{
	const struct pav_host *host = p->nt->host;
	json_object *payload = json_object_new_object();
	char since[PAV_TIME_BUF];

	if (!payload)
		return;
	host->format_time(next_since(p, list, sent), since, sizeof(since));
	json_object_object_add(payload, "since", json_object_new_string(since));
	pav_send_replay(host, c, p->channel, "replay_incomplete", payload);
	json_object_put(payload);
}

/* The ids of the first n listed, for release() to skip. */
static size_t list_ids(json_object *list, size_t n, const char **ids)
{
	size_t k = 0;
	json_object *id;

	for (size_t i = 0; ids && i < n; i++)
		if (json_object_object_get_ex(json_object_array_get_idx(list, i),
					      "id", &id))
			ids[k++] = json_object_get_string(id);
	return k;
}

/*
 * Sends the listed notifications to the connection that subscribed, as
 * many as it may hold, then what arrived live meanwhile but for those
 * listed.  A page that had to stop before the end is followed by
 * replay_incomplete; the listed ones it did not send are skipped from the
 * live ones too, as the next page brings them in their order.
 */
static void replay_listed(void *arg, int err, json_object *list)
{
	struct pending *p = arg;
	const struct pav_host *host = p->nt->host;
	pav_conn *c = host->conn_find(p->nt->vh, p->conn_id);
	size_t n = err ? 0 : json_object_array_length(list), sent = 0;
	const char **ids = n ? calloc(n, sizeof(*ids)) : NULL;
	int cut = 0;

	if (err)
		host->log(PAV_LOG_WARN, PLUGIN_NAME,
			  "inbox replay for user %s: store error: %s", p->user,
			  strerror(-err));
	if (c && n)
		sent = send_page(p, c, list, &cut);
	if (c && cut)
		send_page_end(p, c, list, sent);
	if (c)
		host->release(c, p->channel, ids,
			      list_ids(list, cut ? n : sent, ids));
	free(ids);
	free(p);
}

static int read_since(const struct pav_host *host, json_object *params,
		      int64_t *since_ms)
{
	json_object *v;

	if (!params || !json_object_object_get_ex(params, "since", &v))
		return 1;
	if (!json_object_is_type(v, json_type_string) ||
	    host->parse_time(json_object_get_string(v), since_ms) < 0)
		return -EINVAL;
	return 0;
}

/* The store answers the replay only after the ack: a `since` on the own
 * user channel while it cannot serve is answered 2000 now, or the replay
 * would be lost unseen. */
static int notification_check_parameters(void *instance, pav_conn *c,
					 const char *channel,
					 json_object *params, const char **why)
{
	struct notification *nt = instance;
	const struct pav_host *host = nt->host;
	char own[PAV_CHANNEL_BUF];
	int64_t ms;
	int rc = read_since(host, params, &ms);

	if (rc < 0) {
		*why = "payload.parameters.since must be an RFC 3339 time";
		return PAV_ERR_FORMAT;
	}
	if (rc == 0 && host->size > offsetof(struct pav_host, store_ready) &&
	    host->store_ready && !host->store_ready(nt->vh) &&
	    host->user_channel(host->conn_user(c), own, sizeof(own)) == 0 &&
	    !strcmp(channel, own)) {
		*why = "session store unavailable";
		return PAV_ERR_INTERNAL;
	}
	return 0;
}

/* A subscription to the connection's own user channel with `since`
 * replays the inbox from then on. */
static void notification_on_subscribed(void *instance, pav_conn *c,
				       const struct pav_subscribed *ev)
{
	struct notification *nt = instance;
	const struct pav_host *host = nt->host;
	struct pending *p;
	int64_t since_ms;

	if (read_since(host, ev->parameters, &since_ms) != 0)
		return;
	p = pending_new(nt, host->conn_id(c), host->conn_user(c), NULL);
	if (!p || strcmp(ev->channel, p->channel) != 0) {
		free(p);
		return;
	}
	p->since_ms = since_ms;
	host->hold(c, p->channel);
	host->inbox_list(nt->vh, p->user, since_ms, 0, 0, replay_listed, p);
}

/* ---- the instance ---- */

static void notification_destroy(void *instance)
{
	free(instance);
}

static int notification_create(const struct pav_host *host, pav_vhost *vh,
			       json_object *options, void **instance,
			       char *err, size_t errlen)
{
	struct notification *nt;
	int rc;

	json_object_object_foreach(options, key, val) {
		(void)val;
		snprintf(err, errlen, "%s: unknown option", key);
		return -EINVAL;
	}
	nt = calloc(1, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	nt->host = host;
	nt->vh = vh;
	rc = host->register_handler(vh, "mark_read", on_mark_read);
	if (rc == 0)
		rc = host->register_route(vh, "POST", "/v1/notifications",
					  post_notification);
	if (rc == 0)
		rc = host->register_route(vh, "GET",
					  "/v1/users/{id}/notifications",
					  get_inbox);
	if (rc == 0)
		rc = host->register_payload_check(vh, "notification",
						  check_published);
	if (rc < 0) {
		free(nt);
		return rc;
	}
	*instance = nt;
	return 0;
}

PAV_PLUGIN_EXPORT = {
	.magic = PAV_PLUGIN_MAGIC,
	.abi_version = PAV_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = "2.0.0",
	.description = "notification inbox: creation, delivery, mark_read, "
		       "replay",
	.vhost_create = notification_create,
	.vhost_destroy = notification_destroy,
	.on_subscribed = notification_on_subscribed,
	.check_parameters = notification_check_parameters,
};
