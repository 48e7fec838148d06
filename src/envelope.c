/* envelope.c — parse and validate client messages. */
#include "envelope.h"

#include <string.h>

#include "json_check.h"
#include "pavilion/plugin.h"

/* Validates "id" first so that every later error can echo it. */
static int take_id(struct pav_envelope *env, const char **why)
{
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(env->root, "id", &v))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		*why = "id must be a string";
		return PAV_ERR_FORMAT;
	}
	/* the contract bounds it at 64 and sets no floor: "" is an id too,
	 * and its answer echoes it */
	n = (size_t)json_object_get_string_len(v);
	if (n > PAV_ENVELOPE_ID_MAX || strlen(json_object_get_string(v)) != n) {
		*why = "id must be at most 64 characters";
		return PAV_ERR_FORMAT;
	}
	env->id = json_object_get_string(v);
	return 0;
}

static int check_member(struct pav_envelope *env, const char *key,
			json_object *v, const char **why)
{
	if (!strcmp(key, "type")) {
		if (!json_object_is_type(v, json_type_string) ||
		    !json_object_get_string_len(v)) {
			*why = "type must be a non-empty string";
			return PAV_ERR_FORMAT;
		}
		env->type = json_object_get_string(v);
	} else if (!strcmp(key, "payload")) {
		if (!json_object_is_type(v, json_type_object)) {
			*why = "payload must be an object";
			return PAV_ERR_FORMAT;
		}
		env->payload = v;
	} else if (!strcmp(key, "timestamp")) {
		if (!json_object_is_type(v, json_type_string)) {
			*why = "timestamp must be a string";
			return PAV_ERR_FORMAT;
		}
	} else if (strcmp(key, "id")) {
		*why = "unknown top-level member";
		return PAV_ERR_FORMAT;
	}
	return 0;
}

int pav_envelope_parse(const char *buf, size_t len, int max_depth,
		       struct pav_envelope *env, const char **why)
{
	int rc;

	memset(env, 0, sizeof(*env));
	env->root = pav_json_parse_object(buf, len, max_depth,
					  "message must be a JSON object", why);
	if (!env->root)
		return PAV_ERR_FORMAT;
	rc = take_id(env, why);
	if (rc)
		return rc;
	json_object_object_foreach(env->root, key, val) {
		rc = check_member(env, key, val, why);
		if (rc)
			return rc;
	}
	if (!env->type) {
		*why = "type is required";
		return PAV_ERR_FORMAT;
	}
	return 0;
}

void pav_envelope_free(struct pav_envelope *env)
{
	json_object_put(env->root);
	memset(env, 0, sizeof(*env));
}

int pav_envelope_own_type(const char *type)
{
	return !strcmp(type, "auth") || !strcmp(type, "heartbeat_ack");
}
