/*
 * chat.c — chat rooms: client-sent "chat_message" (optional).
 *
 * Rooms are the channels "chat:<roomId>"; joining one is a subscribe
 * (access-controlled by the subscription plugin), and the backend posts
 * messages through the internal API.  With the option client_send, a
 * client may also send
 *
 *   chat_message {"roomId": "<id>", "content": "<text>",
 *                 "attachments": [...]?}
 *
 * to a room it is subscribed to (else 1004).  The server sets "id",
 * "sender" (from the JWT: id = sub, username = claim "username",
 * profilePhoto = claim "picture"), "createdAt", and publishes the message
 * to the room — the sender's connections in it included.  A client-sent
 * "sender", or a missing/mistyped roomId or content, → 1002.  The ack
 * carries the new message's {"id"}.
 *
 * The internal API's POST /v1/publish of type "chat_message" is checked
 * for the spec's shape, and its roomId must name the chat: channel.
 *
 * Options:
 *   "client_send"  boolean, default false.  When false the plugin
 *                  registers no handler, and the core answers a
 *                  client's chat_message with 1002 like any unhandled
 *                  type.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#define PLUGIN_NAME "chat"

struct chat {
	const struct pav_host *host;
	pav_vhost *vh;
	int client_send;
};

/* A client's message on its way out. */
struct sending {
	const struct pav_host *host;
	pav_reply *reply;
	char id[24];
};

/* A string claim, or "" when absent or not a string. */
static const char *claim_string(json_object *claims, const char *name)
{
	json_object *v;

	if (claims && json_object_object_get_ex(claims, name, &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "";
}

static json_object *sender_of(const struct pav_host *host, pav_conn *c)
{
	json_object *claims = host->conn_claims(c);
	json_object *s = json_object_new_object();

	if (!s)
		return NULL;
	json_object_object_add(s, "id",
			       json_object_new_string(host->conn_user(c)));
	json_object_object_add(
		s, "username",
		json_object_new_string(claim_string(claims, "username")));
	json_object_object_add(
		s, "profilePhoto",
		json_object_new_string(claim_string(claims, "picture")));
	return s;
}

/* The parts of a client's chat_message, borrowed from the request. */
struct incoming {
	const char *room;
	json_object *content;
	json_object *attachments; /* NULL when absent */
};

/* A 1002 with its message. */
static int bad_format(struct pav_request *req, const char *message)
{
	req->error_message = message;
	return PAV_ERR_FORMAT;
}

/* Checks the payload; 0 or 1002 with req->error_message set. */
static int read_incoming(const struct pav_host *host,
			 struct pav_request *req, struct incoming *in)
{
	json_object *p = req->payload, *room;

	if (!p)
		return bad_format(req, "payload must be an object");
	if (json_object_object_get_ex(p, "sender", NULL))
		return bad_format(req, "sender is set by the server");
	if (!json_object_object_get_ex(p, "roomId", &room) ||
	    !json_object_is_type(room, json_type_string) ||
	    !host->id_valid(json_object_get_string(room),
			    (size_t)json_object_get_string_len(room)))
		return bad_format(req, "payload.roomId must be 1 to 64 "
				       "characters of A-Z, a-z, 0-9, _ and -");
	if (!json_object_object_get_ex(p, "content", &in->content) ||
	    !json_object_is_type(in->content, json_type_string))
		return bad_format(req, "payload.content must be a string");
	in->attachments = NULL;
	if (json_object_object_get_ex(p, "attachments", &in->attachments) &&
	    !json_object_is_type(in->attachments, json_type_array))
		return bad_format(req, "payload.attachments must be an array");
	in->room = json_object_get_string(room);
	return 0;
}

/* The message as the spec shapes it; NULL when out of memory. */
static json_object *build_message(const struct pav_host *host, pav_conn *c,
				  const struct incoming *in, const char *id)
{
	json_object *m = json_object_new_object();
	char created[64];

	if (!m)
		return NULL;
	host->format_time(host->now_ms(), created, sizeof(created));
	json_object_object_add(m, "id", json_object_new_string(id));
	json_object_object_add(m, "roomId", json_object_new_string(in->room));
	json_object_object_add(m, "sender", sender_of(host, c));
	/* Shared, not copied: json-c counts the references. */
	json_object_object_add(m, "content", json_object_get(in->content));
	json_object_object_add(m, "createdAt",
			       json_object_new_string(created));
	json_object_object_add(m, "attachments",
			       in->attachments
				       ? json_object_get(in->attachments)
				       : json_object_new_array());
	return m;
}

/* The publication is out: the ack carries the new message's id. */
static void sent(void *arg, int err, const struct pav_published *res)
{
	struct sending *x = arg;
	json_object *ack = NULL;

	(void)res;
	if (!err && (ack = json_object_new_object()))
		json_object_object_add(ack, "id", json_object_new_string(x->id));
	if (err)
		x->host->log(PAV_LOG_ERROR, PLUGIN_NAME, "publish failed: %s",
			     strerror(-err));
	x->host->reply(x->reply, err ? PAV_ERR_INTERNAL : 0, NULL, ack);
	free(x);
}

static int on_chat_message(void *instance, pav_conn *c,
			   struct pav_request *req)
{
	struct chat *ch = instance;
	const struct pav_host *host = ch->host;
	char chan[PAV_CHANNEL_BUF];
	const char *chans[] = {chan};
	struct incoming in;
	struct sending *x;
	struct pav_publication pub = {chans, 1, "chat_message", NULL, NULL,
				      NULL, 0};
	int rc = read_incoming(host, req, &in);

	if (rc != 0)
		return rc;
	snprintf(chan, sizeof(chan), "chat:%s", in.room);
	if (!host->is_subscribed(c, chan)) {
		req->error_message = "not subscribed to this chat room";
		return PAV_ERR_PERMISSION;
	}
	x = calloc(1, sizeof(*x));
	if (!x || host->random_id('m', x->id, sizeof(x->id)) < 0 ||
	    !(pub.payload = build_message(host, c, &in, x->id)) ||
	    !(x->reply = host->defer(c, req))) {
		json_object_put(pub.payload);
		free(x);
		return PAV_ERR_INTERNAL;
	}
	x->host = host;
	host->publish(ch->vh, &pub, sent, x);
	json_object_put(pub.payload);
	return PAV_PENDING;
}

/* A chat_message the backend publishes: the spec's shape, and a roomId
 * that names the chat: channel it goes to.  One left without attachments
 * gets an empty array, as a client-sent one does, so that every
 * chat_message a client receives has the field. */
static int check_published(void *instance, const char *channel,
			   json_object *p, const char **why)
{
	static const char *const required[] = {"id", "roomId", "content",
					       "createdAt", NULL};
	static const char *const sender[] = {"id", "username", "profilePhoto",
					     NULL};
	json_object *v, *s;

	(void)instance;
	for (const char *const *k = required; *k; k++)
		if (!json_object_object_get_ex(p, *k, &v) ||
		    !json_object_is_type(v, json_type_string))
			goto shape;
	if (!json_object_object_get_ex(p, "sender", &s) ||
	    !json_object_is_type(s, json_type_object))
		goto shape;
	for (const char *const *k = sender; *k; k++)
		if (!json_object_object_get_ex(s, *k, &v) ||
		    !json_object_is_type(v, json_type_string))
			goto shape;
	if (json_object_object_get_ex(p, "attachments", &v) &&
	    !json_object_is_type(v, json_type_array)) {
		*why = "attachments must be an array";
		return -EINVAL;
	}
	json_object_object_get_ex(p, "roomId", &v);
	if (strncmp(channel, "chat:", 5) ||
	    strcmp(channel + 5, json_object_get_string(v))) {
		*why = "chat_message roomId must match the chat: channel";
		return -EINVAL;
	}
	if (!json_object_object_get_ex(p, "attachments", NULL)) {
		v = json_object_new_array();
		if (!v || json_object_object_add(p, "attachments", v)) {
			json_object_put(v);
			*why = "out of memory";
			return -EINVAL;
		}
	}
	return 0;
shape:
	*why = "chat_message needs id, roomId, sender, content, createdAt";
	return -EINVAL;
}

static int read_options(struct chat *ch, json_object *options, char *err,
			size_t errlen)
{
	json_object_object_foreach(options, key, val) {
		if (strcmp(key, "client_send") != 0) {
			snprintf(err, errlen, "%s: unknown option", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, json_type_boolean)) {
			snprintf(err, errlen,
				 "client_send: must be true or false");
			return -EINVAL;
		}
		ch->client_send = json_object_get_boolean(val);
	}
	return 0;
}

static void chat_destroy(void *instance)
{
	free(instance);
}

static int chat_create(const struct pav_host *host, pav_vhost *vh,
		       json_object *options, void **instance, char *err,
		       size_t errlen)
{
	struct chat *ch = calloc(1, sizeof(*ch));
	int rc;

	if (!ch)
		return -ENOMEM;
	ch->host = host;
	ch->vh = vh;
	rc = read_options(ch, options, err, errlen);
	if (rc == 0 && ch->client_send)
		rc = host->register_handler(vh, "chat_message",
					    on_chat_message);
	if (rc == 0)
		rc = host->register_payload_check(vh, "chat_message",
						  check_published);
	if (rc < 0) {
		free(ch);
		return rc;
	}
	*instance = ch;
	return 0;
}

PAV_PLUGIN_EXPORT = {
	.magic = PAV_PLUGIN_MAGIC,
	.abi_version = PAV_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = "2.0.0",
	.description = "chat rooms; optional client-sent chat_message",
	.vhost_create = chat_create,
	.vhost_destroy = chat_destroy,
};
