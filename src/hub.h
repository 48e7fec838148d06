/*
 * hub.h — this node's channel membership and fan-out.
 *
 * A channel (per namespace) holds an array of members; each client holds
 * an array of its subscriptions, and each side knows the other's index, so
 * that joining and leaving are O(1) and a delivery walks exactly its
 * recipients.  The hub knows nothing of sessions, stores or plugins: a
 * client is the part of a session the hub needs (struct pav_hub_client,
 * embedded in the session).
 */
#ifndef PAV_HUB_H
#define PAV_HUB_H

#include <stddef.h>
#include <stdint.h>

struct pav_conn;
struct pav_chan;
struct pav_msg;
struct pav_delivery;

/* Publications kept for a subscription that is catching up.  Catch-ups
 * of one channel that overlap share it: it ends with the last release,
 * and the keys an earlier one's replay sent stay with it until then. */
struct pav_hold {
	struct pav_msg **msgs;
	size_t n, cap;
	size_t bytes;      /* of msgs and keys, against hold_max */
	unsigned catchups; /* holds not yet released */
	char **keys;       /* sent by the catch-ups released so far */
	size_t nkeys;
};

/* Keys of publications just sent by a catch-up, dropped if they still
 * arrive live for a little while after it (PAV_HUB_SKIP_MS). */
struct pav_skip {
	char **keys;
	size_t n;
	int64_t until_ms; /* monotonic */
};

#define PAV_HUB_SKIP_MS 10000

/* One subscription of a client: where it sits in the channel. */
struct pav_sub {
	struct pav_chan *chan;
	uint32_t idx;           /* index in the channel's members */
	uint32_t tag;           /* the owner's bits (pav_hub_tag) */
	struct pav_hold *hold;  /* non-NULL while catching up */
	struct pav_skip *skip;  /* non-NULL just after a catch-up */
};

struct pav_hub_client {
	struct pav_conn *conn; /* where deliveries go; NULL: nowhere */
	uint64_t id;           /* a node-unique connection id */
	const char *ns;
	size_t hold_max;       /* bytes a hold may keep */
	struct pav_sub *subs;
	uint32_t nsubs, subs_cap;
	uint64_t stamp;        /* one copy per publication */
};

struct pav_hub;

/* revoke: called for each local client of a REVOKE delivery. */
struct pav_hub *pav_hub_new(void (*revoke)(struct pav_hub_client *c,
					   void *arg),
			    void *arg);
void pav_hub_free(struct pav_hub *h);

/*
 * Joins a channel.  0 joined (*first: the channel had no local member), 1
 * already a member, -ENOSPC at max_subs subscriptions, -ENOMEM.
 */
int pav_hub_join(struct pav_hub *h, struct pav_hub_client *c,
		 const char *channel, uint32_t max_subs, int *first);
/* Leaves a channel: 0 left (*last: no local member is left; *tag: the
 * subscription's tag), 1 not a member.  A hold in progress is dropped. */
int pav_hub_leave(struct pav_hub *h, struct pav_hub_client *c,
		  const char *channel, int *last, uint32_t *tag);
/* Sets / clears bits in a subscription's tag (the owner's bookkeeping). */
void pav_hub_tag(struct pav_hub_client *c, const char *channel,
		 uint32_t bits);
void pav_hub_untag(struct pav_hub_client *c, const char *channel,
		   uint32_t bits);
int pav_hub_is_member(const struct pav_hub_client *c, const char *channel);
/* A subscription's tag bits (0 when not a member). */
uint32_t pav_hub_tags(const struct pav_hub_client *c, const char *channel);
/* Copies the name of the client's subscription number i. */
void pav_hub_sub_channel(const struct pav_hub_client *c, uint32_t i,
			 char *buf, size_t len);
/* The client's channels, in no particular order. */
void pav_hub_channels(const struct pav_hub_client *c,
		      void (*fn)(const char *channel, void *arg), void *arg);
/* Local members of a channel. */
size_t pav_hub_count(const struct pav_hub *h, const char *ns,
		     const char *channel);
/* Each distinct zone:/channel:/chat: channel of the user's local clients
 * (those in "user:<user>"). */
void pav_hub_user_channels(struct pav_hub *h, const char *ns,
			   const char *user,
			   void (*fn)(const char *channel, void *arg),
			   void *arg);

/* Hands a delivery to its local recipients; returns how many got it. */
int pav_hub_deliver(struct pav_hub *h, const struct pav_delivery *d);

/*
 * Catching up: after hold(), deliveries to the client through `channel`
 * are kept; release() sends them in order, except those with an offset
 * up to `upto` or a key in skip; publications with a key in skip that
 * still arrive within PAV_HUB_SKIP_MS are dropped too (a store that
 * stores before it publishes may list one before it arrives).  -ENOENT
 * when not a member.  Each hold() takes one release(): while another
 * catch-up of the channel is still going, a release drops what its own
 * replay sent (offset up to `upto`, key in skip) and keeps the rest,
 * and its keys count against hold_max until the last release, which
 * skips the keys of them all.  A hold past hold_max bytes closes the
 * connection as a slow consumer (4008).
 */
int pav_hub_hold(struct pav_hub_client *c, const char *channel);
int pav_hub_release(struct pav_hub_client *c, const char *channel,
		    uint64_t upto, const char *const *skip, size_t nskip);

#endif
