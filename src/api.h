/* api.h — the internal HTTP API: the lws protocol callback, the answers
 * plugins' routes give through the host table, and its pure parts. */
#ifndef PAV_API_H
#define PAV_API_H

#include <stddef.h>

#include <json-c/json.h>
#include <libwebsockets.h>
#include <sys/socket.h>

/* The longest API key: longer key-file lines are refused at load, and the
 * Authorization header ("Bearer " + key) is read into a buffer this fits. */
#define PAV_API_KEY_MAX_LEN 256

/* The longest request path and query string the API reads (bytes, after
 * lws' URL decoding); longer ones are answered 400. */
#define PAV_API_PATH_MAX 255

#include "pavilion/plugin.h"

struct pav_vhost_config;

/* An answer: HTTP status and a body (JSON unless content_type says). */
struct pav_api_answer {
	int status;
	const char *content_type;
	char *body; /* malloc'd */
	size_t len;
};

/* The internal vhosts' protocol callback; server.c's own callback handles
 * what every vhost shares (TLS, upgrades, signals) and passes on the rest. */
int pav_api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len);

struct pav_core;
/* Is the backend waiting on us: an API answer made but not written, or an
 * API connection with input to read?  (Between slices of a fan-out pass,
 * the loop serves such input first, so publications coming faster than a
 * pass drains share its writes.) */
int pav_api_busy(struct pav_core *core);

/* A connection that internal vhost vh accepted, and its end (server.c
 * keeps which vhost accepted it: lws may move it to another by its Host).
 * pav_api_busy() looks at these for input. */
void pav_api_conn_add(struct pav_vhost *vh, struct lws *wsi);
void pav_api_conn_gone(struct pav_vhost *vh, struct lws *wsi);

/* pav_host.api_answer / api_error (plugin.h). */
void pav_api_answer(pav_api_call *call, int status, json_object *body);
void pav_api_error(pav_api_call *call, int status, const char *message);
/* pav_host.query_number (plugin.h), also the API's own ?since= and
 * ?limit=; in api_query.c, which needs no libwebsockets. */
long pav_api_query_number(const char *query, const char *key, long def,
			  long max);
/* As pav_api_query_number() for a key that a request may give once: -1
 * too when the key is repeated or given bare ("?key" or "?key&..."), so
 * that a caller never acts on one of two values it was sent. */
long pav_api_query_once(const char *query, const char *key, long def,
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

/*
 * A request path as lws decoded it (len bytes, may hold a NUL from "%00"):
 * 0, or -EINVAL with a static reason when it is empty, longer than
 * PAV_API_PATH_MAX, or holds a NUL, a control character or a non-ASCII
 * byte (no API path has any).
 */
int pav_api_check_path(const char *path, size_t len, const char **why);

/*
 * Did a request arrive on its vhost's own listener "host:port"?  local is
 * the accepted socket's local address.  1 yes, 0 no; -ENOENT when host is
 * not an address literal (an interface name, as lws reads it), for the
 * caller to match against that interface's addresses.  "0.0.0.0" and "::"
 * match any address; a v4-mapped IPv6 address counts as its IPv4 one.
 */
int pav_api_listener_match(const struct sockaddr *local, const char *host,
			   int port);

/*
 * Did the request on wsi come in through vh's listener (the accepted
 * socket's local address and port against its "listen", an interface's
 * addresses included)?  lws picks a vhost by Host among every vhost of a
 * port, and all "reuse_port" vhosts count as one port to it.  For an
 * interface, the address lws bound is remembered in vh once seen.
 */
int pav_api_own_listener(struct lws *wsi, struct pav_vhost *vh);

/*
 * The vhost other than vh, of a port lws takes for vh's, with a hostname
 * equal to the request's Host in any case ("RT.TEST" for "rt.test"), or
 * NULL.  lws compares names byte for byte: a Host in capitals reaches the
 * port's first vhost, which is not the one it names.
 */
const struct pav_vhost *pav_api_host_names_other(struct lws *wsi,
						 const struct pav_vhost *vh);

/* An API key as it is kept: its SHA-256 only, made when the keys file is
 * read.  A request then costs one digest (the presented key's), and the
 * keys' text does not stay in memory. */
struct pav_api_key {
	unsigned char md[32];
};

/* 0, or -ENOMEM when the digest cannot be made. */
int pav_api_key_digest(const char *key, struct pav_api_key *k);
/* Constant-time comparison of a presented key against the known keys. */
int pav_api_key_ok(const struct pav_api_key *keys, size_t nkeys,
		   const char *presented);

#endif
