/* envelope.h — the client message envelope (DESIGN section 2). */
#ifndef PAV_ENVELOPE_H
#define PAV_ENVELOPE_H

#include <stddef.h>

#include <json-c/json.h>

#define PAV_ENVELOPE_ID_MAX 64

struct pav_envelope {
	json_object *root; /* owns everything below */
	const char *type;
	const char *id;       /* NULL when absent */
	json_object *payload; /* NULL when absent */
};

/*
 * Parses one client message: exactly one JSON object (trailing white space
 * allowed, nothing else), nesting at most max_depth, strings valid UTF-8;
 * "type" a non-empty string, "payload" an object when present,
 * "timestamp" a string when present, "id" a string of 0-64 chars when
 * present, no other member.  Returns 0, or PAV_ERR_FORMAT (1002) with a
 * static reason in *why; env->id is set whenever the id itself was valid,
 * so the error can echo it.  pav_envelope_free() in both cases.
 */
int pav_envelope_parse(const char *buf, size_t len, int max_depth,
		       struct pav_envelope *env, const char **why);
void pav_envelope_free(struct pav_envelope *env);

/* Is type one the gateway handles itself ("auth", "heartbeat_ack";
 * dispatch.c)?  No plugin may register those. */
int pav_envelope_own_type(const char *type);

#endif
