/*
 * backend.h — the store backends behind the core: a registry of named
 * backends, each giving a state (state.h) and a broker (broker.h), and what
 * the core hands them (struct pav_backend_env).
 *
 * `store.backend` in the configuration picks a backend by name; main.c and
 * the rest of the core name none.  "memory" is the embedded one-node
 * backend; "redis" makes several gateway processes one gateway.
 */
#ifndef PAV_BACKEND_H
#define PAV_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "config.h"
#include "state.h"

struct lws_context;
struct pav_delivery;

/* What the core gives a backend at create. */
struct pav_backend_env {
	/* The event loop, or NULL under --check (nothing may connect). */
	struct lws_context *lws;
	/* Hands a publication that reached this node to the local hub. */
	void (*deliver)(void *arg, const struct pav_delivery *d);
	/* Connections may have missed publications (the backend lost and
	 * regained its feed): the core sends them "resync". */
	void (*resync)(void *arg);
	/* Another node died and its connections were removed: `user` has no
	 * connection left anywhere.  channels: the dead node's channels of
	 * that user; at_ms: its last heartbeat.  The core runs the close
	 * hooks (on_close, last = 1) for a stand-in connection. */
	void (*user_gone)(void *arg, const char *ns, const char *user,
			  const char *const *channels, size_t n,
			  int64_t at_ms);
	/* This node was taken for dead (its users set offline and announced
	 * so) and has written its registry again: `user`, who has
	 * connections here, is offline in the store.  The core runs the open
	 * hooks (on_open, first = 1) for a stand-in connection. */
	void (*user_back)(void *arg, const char *ns, const char *user);
	void *arg;
};

struct pav_backend {
	const char *name;
	const struct pav_state_ops *state;
	const struct pav_broker_ops *broker;
};

/* The backend named `name`, or NULL. */
const struct pav_backend *pav_backend_find(const char *name);
/* Comma-separated names of the registered backends (for messages). */
const char *pav_backend_names(void);

/* An open backend: its two halves and their instances. */
struct pav_store {
	const struct pav_backend *be;
	void *state;  /* be->state's instance */
	void *broker; /* be->broker's instance */
};

/* Creates both halves of the backend cfg->backend names.  0, or -errno
 * with "file: store...: reason" in err. */
int pav_store_open(struct pav_store *st, const struct pav_store_config *cfg,
		   const struct pav_backend_env *env, char *err,
		   size_t errlen);
/* Before the event loop goes: the backend lets go of it (state's
 * shutdown); later calls fail at once. */
void pav_store_shutdown(struct pav_store *st);
void pav_store_close(struct pav_store *st);
/* Both halves can serve now (for /readyz, new handshakes and plugins'
 * host.store_ready).  Inline: host.c uses it where backend.c is not
 * linked (the unit tests of the layers above the sockets). */
static inline int pav_store_ready(const struct pav_store *st)
{
	return st->be && st->be->state->ready(st->state) &&
	       st->be->broker->ready(st->broker);
}

#endif
