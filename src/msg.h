/* msg.h — a serialized server message, shared by reference by all of its
 * recipients.  The text sits after LWS_PRE bytes of padding so lws_write()
 * can frame it in place. */
#ifndef PAV_MSG_H
#define PAV_MSG_H

#include <stddef.h>

#include <json-c/json.h>

struct pav_msg {
	unsigned refs;
	size_t len;          /* text length, without padding */
	unsigned char buf[]; /* LWS_PRE padding, then the text */
};

/* A new message holding a copy of text (refs = 1), or NULL. */
struct pav_msg *pav_msg_new(const char *text, size_t len);
static inline struct pav_msg *pav_msg_ref(struct pav_msg *m)
{
	m->refs++;
	return m;
}
void pav_msg_unref(struct pav_msg *m);
/* The text, ready for lws_write(). */
unsigned char *pav_msg_text(struct pav_msg *m);

/*
 * Serializes {"type", "id"?, "channel"?, "payload"?, "timestamp"} (payload
 * borrowed; id and channel may be NULL) into a new message, or NULL.
 */
struct pav_msg *pav_msg_build(const char *type, const char *id,
			      const char *channel, json_object *payload);
/* {"type":"error","id"?,"payload":{"code","message"},"timestamp"} */
struct pav_msg *pav_msg_error(int code, const char *message, const char *id);

#endif
