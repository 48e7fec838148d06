/* api.h — the internal HTTP API: request routing and payload checks. */
#ifndef PAV_API_H
#define PAV_API_H

#include <stddef.h>

#include <json-c/json.h>

/* An answer: HTTP status and a body (JSON unless content_type says). */
struct pav_api_answer {
	int status;
	const char *content_type;
	char *body; /* malloc'd */
	size_t len;
};

/*
 * Parses a request body: one JSON object, depth-limited, valid UTF-8.
 * Returns the object or NULL with a static reason.
 */
json_object *pav_api_parse_body(const char *buf, size_t len,
				const char **why);

/* Checks a published payload against the spec's shape for type
 * (notification, status_update, chat_message; other types: any object).
 * channel is the target.  0, or -EINVAL with a static reason. */
int pav_api_check_payload(const char *type, const char *channel,
			  json_object *payload, const char **why);

/* The string member key of o, or NULL when absent or not a string. */
const char *pav_api_str(json_object *o, const char *key);

/* A notification object: string type and content, optional sender
 * {id,username,profilePhoto} and reference {type,id}; with complete, also
 * id, createdAt and boolean isRead (a published one).  0 or -EINVAL. */
int pav_api_check_notification(json_object *p, int complete,
			       const char **why);

/* Constant-time comparison of a presented key against the known keys. */
int pav_api_key_ok(char *const *keys, size_t nkeys, const char *presented);

#endif
