/* api.h — the internal HTTP API: the lws protocol callback, the answers
 * plugins' routes give through the host table, and its pure parts. */
#ifndef PAV_API_H
#define PAV_API_H

#include <stddef.h>

#include <json-c/json.h>

#include "pavilion/plugin.h"

/* An answer: HTTP status and a body (JSON unless content_type says). */
struct pav_api_answer {
	int status;
	const char *content_type;
	char *body; /* malloc'd */
	size_t len;
};

/* pav_host.api_answer / api_error / query_number (plugin.h). */
void pav_api_answer(pav_api_call *call, int status, json_object *body);
void pav_api_error(pav_api_call *call, int status, const char *message);
long pav_api_query_number(const char *query, const char *key, long def,
			  long max);

/* ---- api_check.c: no I/O, unit-tested and fuzzed ---- */

/*
 * Parses a request body: one JSON object, depth-limited, valid UTF-8.
 * Returns the object or NULL with a static reason.
 */
json_object *pav_api_parse_body(const char *buf, size_t len,
				const char **why);

/* The string member key of o, or NULL when absent or not a string. */
const char *pav_api_str(json_object *o, const char *key);

/* Constant-time comparison of a presented key against the known keys. */
int pav_api_key_ok(char *const *keys, size_t nkeys, const char *presented);

#endif
