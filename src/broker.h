/*
 * broker.h — publishing to channels and delivery into the local hub, as a
 * vtable that each backend implements.
 *
 * The memory broker hands a publication to the hub at once.  A network
 * broker delivers only what comes back from the network, on the
 * publishing node too, so that every node sees one channel's publications
 * in one order.  Same calling contract as state.h.
 */
#ifndef PAV_BROKER_H
#define PAV_BROKER_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "pavilion/plugin.h"
#include "state.h"

struct pav_msg;

/* A publication on its way out (the core's side of pav_publication). */
struct pav_outgoing {
	const char *const *channels;
	size_t nchannels;
	const char *type;
	json_object *payload;
	uint64_t except;  /* a connection of this node that gets nothing, 0 */
	const char *key;  /* see pav_publication.key */
	/* The channel's history when nchannels is 1 and the publication is
	 * to be kept; NULL otherwise. */
	const struct pav_history_cfg *history;
};

/* What reaches the hub: one frame for the union of a namespace's local
 * subscribers of `channels`. */
enum pav_delivery_kind {
	PAV_DELIVER_FRAME,  /* send msg */
	PAV_DELIVER_REVOKE, /* close the user's connections: 1001 + 4001 */
};

struct pav_delivery {
	enum pav_delivery_kind kind;
	const char *ns;
	const char *const *channels;
	size_t nchannels;
	const char *type;     /* for metrics */
	struct pav_msg *msg;  /* FRAME; borrowed (take a reference to keep) */
	uint64_t except;      /* a local connection that gets nothing, 0 */
	/* Non-zero when the same publication may arrive again for another
	 * of its channels (a network broker fans a multi-channel publication
	 * out per channel): the hub sends it to a connection once. */
	uint64_t pub_id;
};

struct pav_broker_ops {
	/* state: the same backend's state instance, which a broker may
	 * share (one connection, one table). */
	int (*create)(const struct pav_store_config *cfg,
		      const struct pav_backend_env *env, void *state,
		      void **self, char *err, size_t errlen);
	void (*destroy)(void *self);
	int (*ready)(void *self);

	/* Publishes; done (may be NULL) gets the offset/epoch (history) and
	 * the subscriber count (one channel). */
	void (*publish)(void *self, const char *ns,
			const struct pav_outgoing *out, pav_published_fn done,
			void *arg);
	/* This node has local subscribers of (ns, channel) now / no more.
	 * subscribe's cb (may be NULL) runs once the feed is live: what is
	 * published after it reaches this node. */
	void (*subscribe)(void *self, const char *ns, const char *channel,
			  pav_done_fn cb, void *arg);
	void (*unsubscribe)(void *self, const char *ns, const char *channel);
	/* Closes every connection of the user on every node (a REVOKE
	 * delivery on "user:<id>"); cb gets how many there were. */
	void (*revoke)(void *self, const char *ns, const char *user,
		       pav_state_count_fn cb, void *arg);
};

/* A broker's create/destroy for a backend whose broker is its state's
 * instance (one table, one set of connections): *self = state; the state
 * half frees it. */
static inline int pav_backend_share(const struct pav_store_config *cfg,
				    const struct pav_backend_env *env,
				    void *state, void **self, char *err,
				    size_t errlen)
{
	(void)cfg;
	(void)env;
	*self = state;
	if (state)
		return 0;
	if (errlen)
		snprintf(err, errlen, "the broker needs its state half");
	return -EINVAL;
}

static inline void pav_backend_shared_destroy(void *self)
{
	(void)self; /* the state half frees it */
}

#endif
