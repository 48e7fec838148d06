/* msg.h — a serialized server message, shared by reference by all of its
 * recipients.  The text sits after LWS_PRE bytes of padding so lws_write()
 * can frame it in place. */
#ifndef PAV_MSG_H
#define PAV_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

struct pav_msg {
	unsigned refs;
	uint64_t offset;     /* its channel's history offset, 0: none */
	const char *key;     /* pav_publication.key (after the text), or NULL */
	size_t len;          /* text length, without padding */
	unsigned char buf[]; /* LWS_PRE padding, then the text, NUL, key */
};

/* A new message holding a copy of text (refs = 1), or NULL.  key (may be
 * NULL) is copied too. */
struct pav_msg *pav_msg_new(const char *text, size_t len, const char *key);
static inline struct pav_msg *pav_msg_ref(struct pav_msg *m)
{
	m->refs++;
	return m;
}
void pav_msg_unref(struct pav_msg *m);
/* The text, ready for lws_write(). */
unsigned char *pav_msg_text(struct pav_msg *m);

/* What a server message is made of.  Members that are 0/NULL are left
 * out; timestamp_ms 0 means now. */
struct pav_frame {
	const char *type;
	const char *id;       /* the client's correlation id */
	const char *channel;  /* top-level "channel" */
	uint64_t offset;      /* top-level "offset" (history) */
	json_object *payload; /* borrowed */
	int64_t timestamp_ms;
	const char *key;      /* carried along, not serialized */
};

/*
 * Serializes {"type", "id"?, "channel"?, "offset"?, "payload"?,
 * "timestamp"} in that order into a new message, or NULL.
 */
struct pav_msg *pav_msg_frame(const struct pav_frame *f);
/* The same without offset and key, for one connection's messages. */
struct pav_msg *pav_msg_build(const char *type, const char *id,
			      const char *channel, json_object *payload);
/* {"type":"error","id"?,"payload":{"code","message"},"timestamp"} */
struct pav_msg *pav_msg_error(int code, const char *message, const char *id);
/* An error about one subscription rather than a client message (a
 * revoked one): {"type":"error","payload":{"code","message","channel"},
 * "timestamp"}, no id.  Only such errors carry "channel". */
struct pav_msg *pav_msg_channel_error(int code, const char *message,
				      const char *channel);
/* The type of a message pav_msg_frame() wrote (its first member), copied
 * into buf: 0, or -1 when the text does not start with it or it does not
 * fit in len bytes. */
int pav_msg_type(struct pav_msg *m, char *buf, size_t len);

#endif
