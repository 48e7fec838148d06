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
#include <sys/random.h>

#include <pavilion/plugin.h>

#define PLUGIN_NAME "chat"
#define MAX_ID_LEN 64
/* "chat:" + a 64-character room id + NUL, with room to spare. */
#define CHANNEL_BUF 128
/* "m" + 16 hex digits + NUL. */
#define MESSAGE_ID_BUF 18

struct chat {
	const struct pav_host *host;
	pav_vhost *vh;
	int client_send;
};

/* The channel grammar's id: 1 to 64 of [A-Za-z0-9_-]. */
static int valid_room_id(const char *s, size_t len)
{
	if (len < 1 || len > MAX_ID_LEN)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_-") == len;
}

/* "m" + 64 random bits in hex: unguessable and, in practice, unique. */
static int new_message_id(char buf[MESSAGE_ID_BUF])
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	buf[0] = 'm';
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(buf + 1 + 2 * i, 3, "%02x", r[i]);
	return 0;
}

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
static int read_incoming(struct pav_request *req, struct incoming *in)
{
	json_object *p = req->payload, *room;

	if (!p)
		return bad_format(req, "payload must be an object");
	if (json_object_object_get_ex(p, "sender", NULL))
		return bad_format(req, "sender is set by the server");
	if (!json_object_object_get_ex(p, "roomId", &room) ||
	    !json_object_is_type(room, json_type_string) ||
	    !valid_room_id(json_object_get_string(room),
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

static int on_chat_message(void *instance, pav_conn *c,
			   struct pav_request *req)
{
	struct chat *ch = instance;
	const struct pav_host *host = ch->host;
	char chan[CHANNEL_BUF], id[MESSAGE_ID_BUF];
	const char *chans[] = {chan};
	struct incoming in;
	json_object *msg;
	int rc = read_incoming(req, &in);

	if (rc != 0)
		return rc;
	snprintf(chan, sizeof(chan), "chat:%s", in.room);
	if (!host->is_subscribed(c, chan)) {
		req->error_message = "not subscribed to this chat room";
		return PAV_ERR_PERMISSION;
	}
	if (new_message_id(id) < 0 || !(msg = build_message(host, c, &in, id)))
		return PAV_ERR_INTERNAL;
	rc = host->publish(host->vhost_namespace(ch->vh), chans, 1,
			   "chat_message", msg, NULL);
	json_object_put(msg);
	if (rc < 0) {
		host->log(PAV_LOG_ERROR, PLUGIN_NAME,
			  "publish to %s failed: %s", chan, strerror(-rc));
		return PAV_ERR_INTERNAL;
	}
	req->ack = json_object_new_object();
	if (req->ack)
		json_object_object_add(req->ack, "id",
				       json_object_new_string(id));
	return 0;
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
	.version = "1.0.0",
	.description = "chat rooms; optional client-sent chat_message",
	.vhost_create = chat_create,
	.vhost_destroy = chat_destroy,
};
