/* msg.c — reference-counted, pre-padded server messages. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "clock.h"

struct pav_msg *pav_msg_new(const char *text, size_t len)
{
	struct pav_msg *m = malloc(sizeof(*m) + LWS_PRE + len + 1);

	if (!m)
		return NULL;
	m->refs = 1;
	m->len = len;
	memcpy(m->buf + LWS_PRE, text, len);
	m->buf[LWS_PRE + len] = '\0';
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

struct pav_msg *pav_msg_build(const char *type, const char *id,
			      const char *channel, json_object *payload)
{
	json_object *o = json_object_new_object();
	char ts[PAV_TIME_LEN];
	struct pav_msg *m;
	const char *text;
	size_t len;

	if (!o)
		return NULL;
	pav_format_time(pav_now_ms(), ts, sizeof(ts));
	json_object_object_add(o, "type", json_object_new_string(type));
	if (id)
		json_object_object_add(o, "id", json_object_new_string(id));
	if (channel)
		json_object_object_add(o, "channel",
				       json_object_new_string(channel));
	if (payload)
		json_object_object_add(o, "payload", json_object_get(payload));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	text = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	m = text ? pav_msg_new(text, len) : NULL;
	json_object_put(o);
	return m;
}

struct pav_msg *pav_msg_error(int code, const char *message, const char *id)
{
	json_object *p = json_object_new_object();
	struct pav_msg *m;

	json_object_object_add(p, "code", json_object_new_int(code));
	json_object_object_add(p, "message", json_object_new_string(message));
	m = pav_msg_build("error", id, NULL, p);
	json_object_put(p);
	return m;
}
