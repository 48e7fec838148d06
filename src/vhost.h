/*
 * vhost.h — the runtime side of the configured vhosts and namespaces:
 * JWT keys, plugin instances and what they registered (message handlers,
 * internal-API routes, payload checks), API keys, timers; reload on SIGHUP.
 */
#ifndef PAV_VHOST_H
#define PAV_VHOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"
#include "config.h"
#include "map.h"
#include "pavilion/plugin.h"
#include "timer.h"

struct pav_api_key;
struct pav_cidr;
struct pav_core;
struct lws_vhost;
typedef struct ssl_ctx_st SSL_CTX;

/* A plugin enabled on a vhost. */
struct pav_instance {
	const struct pav_plugin *plugin;
	void *state;
	struct pav_vhost *vh;
};

struct pav_handler {
	pav_handler_fn fn;
	struct pav_instance *inst;
};

/* An internal-API route a plugin registered: "METHOD" + pattern split at
 * '/' ("{id}" segments capture). */
#define PAV_ROUTE_MAX_SEGS 8
struct pav_route {
	char method[8];
	char *pattern;
	const char *segs[PAV_ROUTE_MAX_SEGS];
	size_t nsegs;
	pav_route_fn fn;
	struct pav_instance *inst;
};

struct pav_check {
	pav_payload_check_fn fn;
	struct pav_instance *inst;
};

/* A namespace: what the vhosts that name it share. */
struct pav_ns {
	const char *name;
	struct pav_history_cfg history[PAV_HISTORY_KINDS];
	struct pav_route *routes;
	size_t nroutes;
	struct pav_map *checks; /* type -> struct pav_check */
};

/* The lws vhosts of one configured vhost: one per hostname (SNI). */
struct pav_lws_vhost {
	struct lws_vhost *lv;
	SSL_CTX *ssl_ctx; /* for certificate reload on SIGHUP */
};

struct pav_vhost {
	struct pav_core *core;
	const struct pav_vhost_config *cfg;
	struct pav_ns *ns;
	struct pav_auth auth;          /* public vhosts */
	struct pav_instance *insts;    /* enabled plugins, in config order */
	size_t ninsts;
	struct pav_map *handlers;      /* type -> struct pav_handler */
	struct pav_instance *creating; /* set during vhost_create() */
	char conflict[160];            /* why a registration was refused */
	struct pav_api_key *api_keys;  /* internal vhosts: digests */
	size_t napi_keys;
	struct pav_cidr *proxies;      /* public: trusted_proxies, parsed */
	size_t nproxies;
	struct pav_lws_vhost *lws;
	size_t nlws;
	struct pav_timers timers;      /* the plugins' live timers */
	struct pav_map *api_calls;     /* internal API requests by id */
	uint64_t api_next_rid;
	struct lws **api_conns;        /* its open API connections */
	size_t napi_conns, api_conns_cap;
	unsigned api_unsent;           /* answers made, not yet written */
	/* "listen" names an interface: the address lws bound, once a
	 * connection has shown it (pav_api_own_listener) */
	struct sockaddr_storage iface_bound;
	socklen_t iface_bound_len;
};

/* Builds vhosts and namespaces from core->cfg, makes plugin instances
 * (handing them `host`).  0, or -errno with "file: key: reason" in err. */
int pav_vhosts_setup(struct pav_core *core, const struct pav_host *host,
		     char *err, size_t errlen);
void pav_vhosts_teardown(struct pav_core *core);
/* SIGHUP: certificates, JWT keys and API keys; what fails to load (or a
 * certificate that does not match its key) leaves the old one in use. */
int pav_vhosts_reload(struct pav_core *core);
/* A context of its own holding the PEM certificate chain in cert and the
 * private key in key, when both load and match; else NULL. */
SSL_CTX *pav_tls_pair_load(const char *cert, const char *key);
/* The most an API keys file may hold: a larger one is refused. */
#define PAV_API_KEYS_FILE_MAX (1024 * 1024)
/* The keys of an API keys file, as digests (api.h). */
int pav_api_keys_load(const char *file, struct pav_api_key **keys, size_t *n,
		      char *err, size_t errlen);

/* The history of a canonical channel's kind in the namespace, or NULL
 * when the kind keeps none. */
const struct pav_history_cfg *pav_ns_history(const struct pav_ns *ns,
					     const char *channel);

/* Registration from vhost_create() (the host table's entries). */
int pav_vhost_register_handler(struct pav_vhost *vh, const char *type,
			       pav_handler_fn fn);
int pav_vhost_register_route(struct pav_vhost *vh, const char *method,
			     const char *pattern, pav_route_fn fn);
int pav_vhost_register_check(struct pav_vhost *vh, const char *type,
			     pav_payload_check_fn fn);
/* The route for method + path in a namespace: args (the "{id}" segments,
 * copied into buf) and *nargs; NULL when none.  *bad_arg set when a route
 * matched but a segment is not a valid id. */
const struct pav_route *pav_ns_route(const struct pav_ns *ns,
				     const char *method, const char *path,
				     char *buf, size_t buflen,
				     const char **args, size_t *nargs,
				     int *bad_arg);
/* Some route exists for path with another method (for 405). */
int pav_ns_path_known(const struct pav_ns *ns, const char *path);

#endif
