/* config.h — the gateway configuration (DESIGN section 3). */
#ifndef PAV_CONFIG_H
#define PAV_CONFIG_H

#include <stddef.h>

#include <json-c/json.h>

#include "channel.h" /* enum pav_channel_kind */
#include "state.h" /* struct pav_history_cfg */

struct pav_limits {
	size_t max_message_bytes;
	int json_depth;
	int messages_per_s;
	int burst;
	int abuse_close_after;
	int max_subscriptions;
	int max_connections_per_ip;
	int handshakes_per_s_per_ip;
	int max_connections_per_user;
	size_t outbound_queue_bytes;
	int handshake_timeout_s;
};

/* History is configured per shared channel kind. */
enum pav_history_kind {
	PAV_HISTORY_ZONE = PAV_CHANNEL_ZONE,
	PAV_HISTORY_CHANNEL = PAV_CHANNEL_CHANNEL,
	PAV_HISTORY_CHAT = PAV_CHANNEL_CHAT,
	PAV_HISTORY_KINDS = PAV_CHANNEL_SHARED_KINDS,
};

/* "store": the backend and its settings (DESIGN 7.2). */
struct pav_store_config {
	const char *file;  /* the file that set "store" (for messages) */
	char *backend;     /* "memory" (default) or "redis" */
	char **urls;       /* redis: "url", or every "shards" entry */
	size_t nurls;
	char **sentinels;    /* redis: "sentinel.addresses", instead of urls */
	size_t nsentinels;
	char *sentinel_master; /* redis: "sentinel.master" */
	int sentinel_db;       /* redis: "sentinel.db" (0) */
	char *sentinel_master_user; /* "sentinel.master_user": with
				     * password_file, the master's ACL user */
	char *sentinel_user;   /* "sentinel.sentinel_user": the sentinels' */
	char *sentinel_password_file; /* "sentinel.sentinel_password_file" */
	int sentinel_tls;      /* "sentinel.tls": sentinels and master */
	char *password_file; /* redis: optional */
	char *tls_ca_file;   /* rediss: optional (the system's CAs) */
	char *tls_cert_file, *tls_key_file; /* rediss: optional, together */
	int node_ttl_s;      /* redis: 10 */
	int command_timeout_ms; /* redis: 2000 */
	size_t inbox_size;   /* notifications per user: 500 */
	size_t history_max_bytes; /* all channels' history together */
};

enum pav_vhost_kind {
	PAV_VHOST_PUBLIC,   /* WebSocket endpoint, JWT auth, plugins */
	PAV_VHOST_INTERNAL, /* has "api": the internal HTTP API */
};

struct pav_vhost_config {
	char *name;
	enum pav_vhost_kind kind;
	char *listen_host; /* "0.0.0.0", "127.0.0.1", "::1", ... */
	int port;
	char **hostnames;
	size_t nhostnames;
	char *ns; /* "namespace", default "default" */

	int tls;                   /* serve TLS (cert + key given) */
	int tls_terminated_upstream;
	char *tls_cert;
	char *tls_key;

	char *ws_path;
	char **allowed_origins; /* NULL/0: any origin */
	size_t nallowed_origins;
	/* websocket.allow_missing_origin, default 0: with allowed_origins, a
	 * request without an Origin header (not a browser's) passes too */
	int allow_missing_origin;
	/* public: addresses whose connections carry their clients' in a
	 * header (proxy.h ranges, checked); trusted_proxies_header: which
	 * one, 0 X-Forwarded-For (default), 1 Forwarded */
	char **trusted_proxies;
	size_t ntrusted_proxies;
	int proxy_forwarded;
	int heartbeat_interval_s;
	int idle_timeout_s;
	int permessage_deflate; /* websocket.permessage_deflate, default 0 */

	/* auth (public vhosts; required there) */
	char **algorithms;
	size_t nalgorithms;
	char *key_file;
	char *issuer;   /* NULL: not checked */
	char *audience; /* NULL: not checked */
	int leeway_s;
	int max_lifetime_s; /* 0: not checked */

	struct pav_limits limits;

	/* "history": per channel kind; all vhosts of one namespace agree
	 * (a vhost that sets none takes its namespace's) */
	struct pav_history_cfg history[PAV_HISTORY_KINDS];
	int history_set; /* this vhost said "history" */
	int reuse_port;  /* share listen with other processes (SO_REUSEPORT) */

	/* "plugins": {"name": {options}} — an owned reference, or NULL. */
	json_object *plugins;

	/* api (internal vhosts) */
	char *api_keys_file;
	size_t api_max_body;

	const char *file; /* the file that declared it (points into config) */
	int index;        /* its index in the merged vhosts array */
	int file_index;   /* its index in its file's "vhosts": for messages */
};

struct pav_config {
	char *path;        /* the main file */
	char *include_dir; /* resolved against the main file's directory */
	char **files;      /* every file read, main first */
	size_t nfiles;
	char **plugin_dirs;
	size_t nplugin_dirs;
	int log_level;     /* enum pav_log_level */
	int log_json;
	struct pav_store_config store;
	char *event_loop; /* "poll" (default) or "uv" */
	struct pav_vhost_config *vhosts;
	size_t nvhosts;
};

/*
 * Loads the main file and the include directory's *.json (lexical order),
 * merges and validates.  On error returns -EINVAL (or -errno) and writes
 * "file: key: reason" into err.  Checks that referenced files exist and are
 * readable; it does not parse keys or certificates (auth.c and tls do).
 *
 * Relative paths (include, plugin_dirs, tls.cert/key, auth.key_file,
 * api.keys_file) are resolved against the main file's directory and stored
 * resolved.  Drop-ins are the include directory's "*.json" files (names
 * starting with '.' skipped) in strcmp order; "include" is allowed only in
 * the main file.  The char ** arrays are NULL-terminated as well as counted.
 * cfg need not be initialised; on error it is left freed and zeroed, so a
 * pav_config_free() after a failed load is harmless (free is idempotent).
 */
int pav_config_load(const char *path, struct pav_config *cfg, char *err,
		    size_t errlen);
void pav_config_free(struct pav_config *cfg);
/* Once the store's clients are made: a password written in a store URL
 * (redis://user:password@host) is wiped from it, the URL left without
 * it.  The client keeps its own copy, for every reconnection; nothing
 * reads the URLs again. */
void pav_config_forget_store_passwords(struct pav_config *cfg);
/* Fills every limit with its default (pav_limits.h). */
void pav_limits_default(struct pav_limits *l);
/* The name lws matches for a configured hostname: "*.x" is "x". */
const char *pav_hostname_lws(const char *hostname);
/* Whether lws takes a and b for one port (it picks a request's vhost
 * among those by Host): the same port, or both "reuse_port". */
int pav_cfg_one_lws_port(const struct pav_vhost_config *a,
			 const struct pav_vhost_config *b);

#endif
