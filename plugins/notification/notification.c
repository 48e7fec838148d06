/*
 * notification.c — the client side of the per-user notification inbox.
 *
 *   mark_read {"notificationId": "<id>"} → marks it read in the store;
 *       ack {"notificationId": "<id>"}; the user's other connections get
 *       {"type": "notification_read", "payload": {"notificationId": ...}}.
 *       An id not in this user's inbox → 1004 (the same answer whether it
 *       exists for someone else or not); a bad payload → 1002.
 *   subscribe to "user" with parameters.since (RFC 3339) → the inbox's
 *       notifications created after it are sent to that connection,
 *       oldest first, as "notification" messages.  An unparsable `since`
 *       is ignored (the subscription itself already succeeded).
 *
 * Notifications are created and delivered live by the core's internal API;
 * this plugin only reads and marks the inbox.
 *
 * Options: none (the plugin's options object must be empty).
 *
 * Store calls are asynchronous: their callbacks find the connection again
 * by id, because it may have closed in between.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#define PLUGIN_NAME "notification"
#define MAX_ID_LEN 64
/* "user:" + a 64-character user id + NUL, with room to spare. */
#define CHANNEL_BUF 128

struct notification {
	const struct pav_host *host;
	pav_vhost *vh;
};

/* What a store callback needs; copied, since nothing of the request or
 * the connection outlives the handler.  The strings follow the struct. */
struct pending {
	const struct pav_host *host;
	uint64_t conn_id;
	pav_reply *reply; /* mark_read only */
	const char *ns;
	const char *user;
	const char *id; /* mark_read only */
};

/* One allocation for the struct and copies of its strings. */
static struct pending *pending_new(const struct pav_host *host, pav_conn *c,
				   const char *ns, const char *id)
{
	const char *user = host->conn_user(c);
	size_t lns = strlen(ns) + 1, lu = strlen(user) + 1;
	size_t lid = id ? strlen(id) + 1 : 0;
	struct pending *p = malloc(sizeof(*p) + lns + lu + lid);
	char *s;

	if (!p)
		return NULL;
	p->host = host;
	p->conn_id = host->conn_id(c);
	p->reply = NULL;
	s = (char *)(p + 1);
	p->ns = memcpy(s, ns, lns);
	p->user = memcpy(s + lns, user, lu);
	p->id = id ? memcpy(s + lns + lu, id, lid) : NULL;
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

/* Tells the user's other connections, on every node, that id was read. */
static void announce_read(const struct pending *p)
{
	char chan[CHANNEL_BUF];
	const char *chans[] = {chan};
	json_object *payload = id_payload(p->id);

	if (!payload)
		return;
	snprintf(chan, sizeof(chan), "user:%s", p->user);
	/* The acting connection may have closed meanwhile: then nobody is
	 * left out. */
	p->host->publish(p->ns, chans, 1, "notification_read", payload,
			 p->host->conn_find(p->conn_id));
	json_object_put(payload);
}

static void mark_read_done(void *arg, int err)
{
	struct pending *p = arg;
	const struct pav_host *host = p->host;

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
	return n >= 1 && n <= MAX_ID_LEN ? json_object_get_string(v) : NULL;
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
	p = pending_new(host, c, host->vhost_namespace(nt->vh), id);
	if (!p)
		return PAV_ERR_INTERNAL;
	p->reply = host->defer(c, req);
	if (!p->reply) {
		free(p);
		return PAV_ERR_INTERNAL;
	}
	host->store->inbox_mark_read(p->ns, p->user, p->id, mark_read_done, p);
	return PAV_PENDING;
}

/* Sends the inbox's notifications to the connection that subscribed,
 * if it is still there.  The list is oldest first already. */
static void replay_listed(void *arg, int err, json_object *list)
{
	struct pending *p = arg;
	pav_conn *c = p->host->conn_find(p->conn_id);
	char chan[80];

	snprintf(chan, sizeof(chan), "user:%s", p->user);
	if (err < 0)
		p->host->log(PAV_LOG_WARN, PLUGIN_NAME,
			     "inbox replay for user %s: store error: %s",
			     p->user, strerror(-err));
	else if (c && json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++)
			if (p->host->send_channel(
				    c, chan, "notification",
				    json_object_array_get_idx(list, i)) < 0)
				break; /* closing, or its queue is full */
	free(p);
}

/* parameters.since as ms since the epoch; 0, or -EINVAL when absent or
 * unparsable. */
static int read_since(const struct pav_host *host, json_object *params,
		      int64_t *since_ms)
{
	json_object *v;

	if (!params || !json_object_object_get_ex(params, "since", &v) ||
	    !json_object_is_type(v, json_type_string))
		return -EINVAL;
	return host->parse_time(json_object_get_string(v), since_ms) < 0
		       ? -EINVAL
		       : 0;
}

/* A subscription to the connection's own user channel with `since`
 * replays the inbox from then on. */
static void notification_on_subscribed(void *instance, pav_conn *c,
				       const char *channel,
				       json_object *parameters,
				       int user_first)
{
	struct notification *nt = instance;
	const struct pav_host *host = nt->host;
	const char *user = host->conn_user(c);
	struct pending *p;
	int64_t since_ms;

	(void)user_first;
	if (strncmp(channel, "user:", 5) != 0 || strcmp(channel + 5, user) != 0)
		return;
	if (read_since(host, parameters, &since_ms) < 0) {
		if (parameters && json_object_object_get_ex(parameters, "since",
							    NULL))
			host->log(PAV_LOG_DEBUG, PLUGIN_NAME,
				  "ignoring an invalid parameters.since");
		return;
	}
	p = pending_new(host, c, host->vhost_namespace(nt->vh), NULL);
	if (!p)
		return;
	host->store->inbox_list(p->ns, p->user, since_ms, 0, 0, replay_listed,
				p);
}

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
	.version = "1.0.0",
	.description = "mark_read and inbox replay on subscribe(user, since)",
	.vhost_create = notification_create,
	.vhost_destroy = notification_destroy,
	.on_subscribed = notification_on_subscribed,
};
