/* json_check.h — a strict RFC 8259 scan before json-c parses anything. */
#ifndef PAV_JSON_CHECK_H
#define PAV_JSON_CHECK_H

#include <stddef.h>

/*
 * Checks that buf holds exactly one JSON value (white space around it
 * allowed) by RFC 8259's grammar, json-c's leniencies refused: no NaN or
 * Infinity, no "1." or leading zeros, no single quotes, no raw control
 * characters in strings; strings are valid UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF), escapes are valid, "\u0000" and
 * lone surrogate escapes are refused (a C string must not be cut short);
 * arrays and objects nest at most max_depth deep (the outermost counts 1).
 * Returns 0, or -EINVAL with a static reason in *why.
 */
int pav_json_check(const char *buf, size_t len, int max_depth,
		   const char **why);
/* The same, and on failure the byte offset where it was seen in *at. */
int pav_json_check_at(const char *buf, size_t len, int max_depth,
		      const char **why, size_t *at);

/*
 * The gateway's one way to read untrusted JSON: pav_json_check(), then
 * json-c builds the tree.  A key repeated in one object is refused
 * ("duplicate key in an object"): json-c would keep the last silently.
 * Returns a new object, or NULL with a static reason in *why (not_object
 * when the value is valid JSON but no object).
 */
struct json_object;
struct json_object *pav_json_parse_object(const char *buf, size_t len,
					  int max_depth,
					  const char *not_object,
					  const char **why);
/* The same, with the offset of a syntax error or a repeated key in *at
 * (left alone when the value is valid but no object; 0 for a repeated key
 * spelled with other escapes).  Finding a repeated key's offset costs a
 * second scan, quadratic in an object's keys: for trusted input only. */
struct json_object *pav_json_parse_object_at(const char *buf, size_t len,
					     int max_depth,
					     const char *not_object,
					     const char **why, size_t *at);

#endif
