/* msg.c — reference-counted, pre-padded server messages. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "clock.h"

struct pav_msg *pav_msg_new(const char *text, size_t len, const char *key)
{
	size_t klen = key ? strlen(key) + 1 : 0;
	struct pav_msg *m = malloc(sizeof(*m) + LWS_PRE + len + 1 + klen);

	if (!m)
		return NULL;
	m->refs = 1;
	m->offset = 0;
	m->len = len;
	memcpy(m->buf + LWS_PRE, text, len);
	m->buf[LWS_PRE + len] = '\0';
	m->key = NULL;
	if (key) {
		char *k = (char *)m->buf + LWS_PRE + len + 1;

		memcpy(k, key, klen);
		m->key = k;
	}
	return m;
}

void pav_msg_unref(struct pav_msg *m)
{
	if (m && --m->refs == 0)
		free(m);
}

unsigned char *pav_msg_text(struct pav_msg *m)
{
	return m->buf + LWS_PRE;
}

struct pav_msg *pav_msg_frame(const struct pav_frame *f)
{
	json_object *o = json_object_new_object();
	char ts[PAV_TIME_LEN];
	struct pav_msg *m;
	const char *text;
	size_t len;

	if (!o)
		return NULL;
	pav_format_time(f->timestamp_ms ? f->timestamp_ms : pav_now_ms(), ts,
			sizeof(ts));
	json_object_object_add(o, "type", json_object_new_string(f->type));
	if (f->id)
		json_object_object_add(o, "id", json_object_new_string(f->id));
	if (f->channel)
		json_object_object_add(o, "channel",
				       json_object_new_string(f->channel));
	if (f->offset)
		json_object_object_add(o, "offset",
				       json_object_new_int64((int64_t)f->offset));
	if (f->payload)
		json_object_object_add(o, "payload",
				       json_object_get(f->payload));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	text = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	m = text ? pav_msg_new(text, len, f->key) : NULL;
	if (m)
		m->offset = f->offset;
	json_object_put(o);
	return m;
}

struct pav_msg *pav_msg_build(const char *type, const char *id,
			      const char *channel, json_object *payload)
{
	const struct pav_frame f = {
		.type = type, .id = id, .channel = channel, .payload = payload,
	};

	return pav_msg_frame(&f);
}

/* Where the JSON string that starts at t[0] (a quote) ends: the index of
 * its closing quote, or n when it does not end within n bytes. */
static size_t string_end(const char *t, size_t n)
{
	size_t i = 1;

	for (; i < n && t[i] != '"'; i++)
		if (t[i] == '\\')
			i++; /* an escape: the next byte cannot end it */
	return i < n ? i : n;
}

int pav_msg_type(struct pav_msg *m, char *buf, size_t len)
{
	static const char head[] = "{\"type\":";
	const char *t = (const char *)pav_msg_text(m);
	size_t n = sizeof(head) - 1, end;
	json_tokener *tok;
	json_object *s;
	int rc = -1;

	if (m->len <= n || memcmp(t, head, n) || t[n] != '"')
		return -1;
	end = string_end(t + n, m->len - n);
	if (end == m->len - n)
		return -1;
	/* without an escape, the text between the quotes is the type: no
	 * tokener for it (a replay counts each of its messages' types) */
	if (!memchr(t + n + 1, '\\', end - 1)) {
		if (end - 1 >= len)
			return -1;
		memcpy(buf, t + n + 1, end - 1);
		buf[end - 1] = '\0';
		return 0;
	}
	if (!(tok = json_tokener_new()))
		return -1;
	/* the tokener undoes the escapes json-c wrote */
	s = json_tokener_parse_ex(tok, t + n, (int)end + 1);
	if (s && json_object_is_type(s, json_type_string) &&
	    (size_t)json_object_get_string_len(s) < len) {
		memcpy(buf, json_object_get_string(s),
		       (size_t)json_object_get_string_len(s) + 1);
		rc = 0;
	}
	json_object_put(s);
	json_tokener_free(tok);
	return rc;
}

/* An error answers the client's message `id`, or (channel) tells of one
 * of its subscriptions; never both. */
static struct pav_msg *error_msg(int code, const char *message, const char *id,
				 const char *channel)
{
	json_object *p = json_object_new_object();
	struct pav_msg *m;

	json_object_object_add(p, "code", json_object_new_int(code));
	json_object_object_add(p, "message", json_object_new_string(message));
	if (channel)
		json_object_object_add(p, "channel",
				       json_object_new_string(channel));
	m = pav_msg_build("error", id, NULL, p);
	json_object_put(p);
	return m;
}

struct pav_msg *pav_msg_error(int code, const char *message, const char *id)
{
	return error_msg(code, message, id, NULL);
}

struct pav_msg *pav_msg_channel_error(int code, const char *message,
				      const char *channel)
{
	return error_msg(code, message, NULL, channel);
}
