/*
 * hub.c — this node's channel membership and fan-out (see hub.h).
 *
 * A publication arrives serialized once (struct pav_msg) and is queued to
 * each recipient by reference.
 */
#include "hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "channel.h"
#include "clock.h"
#include "conn.h"
#include "map.h"
#include "metrics.h"
#include "msg.h"
#include "pav_limits.h"

struct pav_member {
	struct pav_hub_client *c;
	uint32_t slot; /* index in c->subs */
};

struct pav_chan {
	char *key;        /* "ns\x1fchannel" */
	const char *name; /* the channel part of key */
	struct pav_member *m;
	uint32_t n, cap;
	uint64_t stamp;   /* user_channels(): seen in this walk */
};

/* Recent multi-channel publications: their copies may arrive one per
 * channel, not always back to back (shards). */
#define RECENT_PUBS 64

struct pav_hub {
	struct pav_map *chans; /* "ns\x1fchannel" -> struct pav_chan */
	uint64_t stamp;
	struct {
		uint64_t pub_id;
		uint64_t stamp;
	} recent[RECENT_PUBS];
	unsigned next_recent;
	void (*revoke)(struct pav_hub_client *c, void *arg);
	void *arg;
};

#define KEY_BUF (PAV_MAX_CHANNEL_LEN + 128)

struct pav_hub *pav_hub_new(void (*revoke)(struct pav_hub_client *c,
					   void *arg),
			    void *arg)
{
	struct pav_hub *h = calloc(1, sizeof(*h));

	if (!h || !(h->chans = pav_map_new())) {
		free(h);
		return NULL;
	}
	h->revoke = revoke;
	h->arg = arg;
	return h;
}

static void chan_free(void *p)
{
	struct pav_chan *ch = p;

	free(ch->m);
	free(ch->key);
	free(ch);
}

void pav_hub_free(struct pav_hub *h)
{
	if (!h)
		return;
	pav_map_free(h->chans, chan_free);
	free(h);
}

static int chan_key(const char *ns, const char *channel, char *buf,
		    size_t len)
{
	int n = snprintf(buf, len, "%s\x1f%s", ns, channel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct pav_chan *chan_get(const struct pav_hub *h, const char *ns,
				 const char *channel)
{
	char key[KEY_BUF];

	if (chan_key(ns, channel, key, sizeof(key)))
		return NULL;
	return pav_map_get(h->chans, key);
}

static struct pav_chan *chan_make(struct pav_hub *h, const char *ns,
				  const char *channel)
{
	char key[KEY_BUF];
	struct pav_chan *ch;

	if (chan_key(ns, channel, key, sizeof(key)))
		return NULL;
	ch = pav_map_get(h->chans, key);
	if (ch)
		return ch;
	ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->key = strdup(key)) || pav_map_put(h->chans, key, ch)) {
		if (ch)
			free(ch->key);
		free(ch);
		return NULL;
	}
	ch->name = ch->key + strlen(ns) + 1;
	return ch;
}

static int grow(void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
	uint32_t ncap = *cap ? *cap : 4;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, (size_t)ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int find_sub(const struct pav_hub_client *c, const char *channel)
{
	for (uint32_t i = 0; i < c->nsubs; i++)
		if (!strcmp(c->subs[i].chan->name, channel))
			return (int)i;
	return -1;
}

int pav_hub_join(struct pav_hub *h, struct pav_hub_client *c,
		 const char *channel, uint32_t max_subs, int *first)
{
	struct pav_chan *ch;

	*first = 0;
	if (find_sub(c, channel) >= 0)
		return 1;
	if (c->nsubs >= max_subs)
		return -ENOSPC;
	ch = chan_make(h, c->ns, channel);
	if (!ch || grow((void **)&ch->m, &ch->cap, sizeof(*ch->m), ch->n + 1) ||
	    grow((void **)&c->subs, &c->subs_cap, sizeof(*c->subs),
		 c->nsubs + 1)) {
		if (ch && !ch->n) {
			pav_map_del(h->chans, ch->key);
			chan_free(ch);
		}
		return -ENOMEM;
	}
	*first = ch->n == 0;
	ch->m[ch->n] = (struct pav_member){c, c->nsubs};
	c->subs[c->nsubs] = (struct pav_sub){ch, ch->n, 0, NULL, NULL};
	ch->n++;
	c->nsubs++;
	return 0;
}

static void skip_free(struct pav_skip *sk)
{
	for (size_t i = 0; sk && i < sk->n; i++)
		free(sk->keys[i]);
	if (sk)
		free(sk->keys);
	free(sk);
}

static void hold_free(struct pav_hold *hd)
{
	if (!hd)
		return;
	for (size_t i = 0; i < hd->n; i++)
		pav_msg_unref(hd->msgs[i]);
	for (size_t i = 0; i < hd->nkeys; i++)
		free(hd->keys[i]);
	free(hd->keys);
	free(hd->msgs);
	free(hd);
}

/* Removes subscription `slot` of c, swapping the last ones into the holes
 * on both sides and fixing their back-references.  1 when the channel
 * has no local member left (and is gone). */
static int remove_sub(struct pav_hub *h, struct pav_hub_client *c,
		      uint32_t slot)
{
	struct pav_sub s = c->subs[slot];
	struct pav_chan *ch = s.chan;
	struct pav_member last = ch->m[--ch->n];

	hold_free(s.hold);
	skip_free(s.skip);
	if (s.idx != ch->n) {
		ch->m[s.idx] = last;
		last.c->subs[last.slot].idx = s.idx;
	}
	if (slot != --c->nsubs) {
		c->subs[slot] = c->subs[c->nsubs];
		c->subs[slot].chan->m[c->subs[slot].idx].slot = slot;
	}
	if (ch->n)
		return 0;
	pav_map_del(h->chans, ch->key);
	chan_free(ch);
	return 1;
}

int pav_hub_leave(struct pav_hub *h, struct pav_hub_client *c,
		  const char *channel, int *last, uint32_t *tag)
{
	int slot = find_sub(c, channel);

	*last = 0;
	*tag = 0;
	if (slot < 0)
		return 1;
	*tag = c->subs[slot].tag;
	*last = remove_sub(h, c, (uint32_t)slot);
	if (!c->nsubs) {
		free(c->subs);
		c->subs = NULL;
		c->subs_cap = 0;
	}
	return 0;
}

void pav_hub_tag(struct pav_hub_client *c, const char *channel,
		 uint32_t bits)
{
	int slot = find_sub(c, channel);

	if (slot >= 0)
		c->subs[slot].tag |= bits;
}

void pav_hub_untag(struct pav_hub_client *c, const char *channel,
		   uint32_t bits)
{
	int slot = find_sub(c, channel);

	if (slot >= 0)
		c->subs[slot].tag &= ~bits;
}

int pav_hub_is_member(const struct pav_hub_client *c, const char *channel)
{
	return find_sub(c, channel) >= 0;
}

uint32_t pav_hub_tags(const struct pav_hub_client *c, const char *channel)
{
	int slot = find_sub(c, channel);

	return slot >= 0 ? c->subs[slot].tag : 0;
}

void pav_hub_sub_channel(const struct pav_hub_client *c, uint32_t i,
			 char *buf, size_t len)
{
	snprintf(buf, len, "%s", i < c->nsubs ? c->subs[i].chan->name : "");
}

void pav_hub_channels(const struct pav_hub_client *c,
		      void (*fn)(const char *channel, void *arg), void *arg)
{
	for (uint32_t i = 0; i < c->nsubs; i++)
		fn(c->subs[i].chan->name, arg);
}

size_t pav_hub_count(const struct pav_hub *h, const char *ns,
		     const char *channel)
{
	struct pav_chan *ch = chan_get(h, ns, channel);

	return ch ? ch->n : 0;
}

/* Stamps are 64 bits so that they never come round again: a 32-bit one
 * wraps after 2^32 publications (12 hours at 100,000/s), and a client last
 * stamped exactly 2^32 stamps before would then miss a publication.  0 is
 * every client's and channel's initial stamp. */
static uint64_t next_stamp(struct pav_hub *h)
{
	return ++h->stamp;
}

void pav_hub_user_channels(struct pav_hub *h, const char *ns,
			   const char *user,
			   void (*fn)(const char *channel, void *arg),
			   void *arg)
{
	char own[PAV_MAX_CHANNEL_LEN];
	struct pav_chan *uc;
	uint64_t stamp = next_stamp(h);

	if (pav_channel_user(user, own, sizeof(own)) ||
	    !(uc = chan_get(h, ns, own)))
		return;
	for (uint32_t i = 0; i < uc->n; i++) {
		struct pav_hub_client *c = uc->m[i].c;

		for (uint32_t k = 0; k < c->nsubs; k++) {
			struct pav_chan *ch = c->subs[k].chan;

			if (ch->stamp == stamp || !pav_channel_is_shared(ch->name))
				continue;
			ch->stamp = stamp;
			fn(ch->name, arg);
		}
	}
}

/* ---- delivery ---- */

static int hold_push(struct pav_hub_client *c, struct pav_hold *hd,
		     struct pav_msg *m)
{
	struct pav_msg **nm;

	if (hd->bytes && hd->bytes + m->len > c->hold_max) { /* as conn.c */
		pav_conn_overflow(c->conn);
		return -ENOBUFS;
	}
	if (hd->n == hd->cap) {
		size_t cap = hd->cap ? hd->cap * 2 : 8;

		nm = realloc(hd->msgs, cap * sizeof(*nm));
		if (!nm) {
			pav_conn_overflow(c->conn);
			return -ENOMEM;
		}
		hd->msgs = nm;
		hd->cap = cap;
	}
	hd->msgs[hd->n++] = pav_msg_ref(m);
	hd->bytes += m->len;
	return 0;
}

/* Was m just sent by a catch-up (its key in the sub's skip list)? */
static int just_sent(struct pav_sub *s, const struct pav_msg *m)
{
	if (pav_mono_ms() > s->skip->until_ms) {
		skip_free(s->skip);
		s->skip = NULL;
		return 0;
	}
	for (size_t i = 0; m->key && i < s->skip->n; i++)
		if (!strcmp(s->skip->keys[i], m->key))
			return 1;
	return 0;
}

static int deliver_one(struct pav_hub_client *c, struct pav_sub *s,
		       struct pav_msg *m)
{
	int rc;

	if (!c->conn)
		return -EPIPE;
	if (s->skip && just_sent(s, m))
		return -EALREADY;
	if (s->hold) /* 1: held, counted as sent when it is released */
		return (rc = hold_push(c, s->hold, m)) ? rc : 1;
	return pav_conn_deliver(c->conn, m);
}

static int deliver_chan(struct pav_hub *h, struct pav_chan *ch,
			const struct pav_delivery *d, uint64_t stamp,
			int *held)
{
	int n = 0, rc;

	/* delivering may close a slow consumer, which only marks it
	 * closing: membership does not change during the walk */
	for (uint32_t i = 0; i < ch->n; i++) {
		struct pav_hub_client *c = ch->m[i].c;

		if (c->id == d->except || c->stamp == stamp)
			continue;
		c->stamp = stamp;
		if (d->kind == PAV_DELIVER_REVOKE) {
			h->revoke(c, h->arg);
			n++;
		} else if ((rc = deliver_one(c, &c->subs[ch->m[i].slot],
					     d->msg)) >= 0) {
			n++;
			*held += rc;
		}
	}
	return n;
}

/* A multi-channel publication arriving once per channel keeps one stamp,
 * so each client still gets it once. */
static uint64_t pub_stamp(struct pav_hub *h, uint64_t pub_id)
{
	unsigned slot;

	for (unsigned i = 0; pub_id && i < RECENT_PUBS; i++)
		if (h->recent[i].pub_id == pub_id)
			return h->recent[i].stamp;
	if (!pub_id)
		return next_stamp(h);
	slot = h->next_recent++ % RECENT_PUBS;
	h->recent[slot].pub_id = pub_id;
	h->recent[slot].stamp = next_stamp(h);
	return h->recent[slot].stamp;
}

int pav_hub_deliver(struct pav_hub *h, const struct pav_delivery *d)
{
	uint64_t stamp;
	int sent = 0, held = 0;

	stamp = pub_stamp(h, d->pub_id);
	for (size_t i = 0; i < d->nchannels; i++) {
		struct pav_chan *ch = chan_get(h, d->ns, d->channels[i]);

		if (ch)
			sent += deliver_chan(h, ch, d, stamp, &held);
	}
	if (d->kind == PAV_DELIVER_FRAME && d->type)
		pav_metrics_out(d->type, (unsigned)(sent - held));
	return sent;
}

/* ---- catching up ---- */

int pav_hub_hold(struct pav_hub_client *c, const char *channel)
{
	int slot = find_sub(c, channel);

	if (slot < 0)
		return -ENOENT;
	if (!c->subs[slot].hold &&
	    !(c->subs[slot].hold = calloc(1, sizeof(struct pav_hold))))
		return -ENOMEM;
	c->subs[slot].hold->catchups++;
	return 0;
}

static int skipped(const struct pav_msg *m, uint64_t upto,
		   const char *const *skip, size_t nskip)
{
	if (m->offset && m->offset <= upto)
		return 1;
	for (size_t i = 0; m->key && i < nskip; i++)
		if (!strcmp(m->key, skip[i]))
			return 1;
	return 0;
}

/* The catch-ups' keys stay a while: a publication stored before it was
 * read may still arrive live after the release.  Those of the catch-ups
 * released before the last come from the hold (taken from it). */
static void keep_skips(struct pav_sub *s, struct pav_hold *hd,
		       const char *const *skip, size_t nskip)
{
	size_t had = hd ? hd->nkeys : 0;
	struct pav_skip *sk;

	skip_free(s->skip);
	s->skip = NULL;
	if (!had && !nskip)
		return;
	if (!(sk = calloc(1, sizeof(*sk))) ||
	    !(sk->keys = calloc(had + nskip, sizeof(*sk->keys)))) {
		free(sk);
		return;
	}
	for (size_t i = 0; i < had; i++)
		sk->keys[sk->n++] = hd->keys[i];
	if (hd)
		hd->nkeys = 0;
	for (size_t i = 0; i < nskip; i++)
		if ((sk->keys[sk->n] = strdup(skip[i])))
			sk->n++;
	sk->until_ms = pav_mono_ms() + PAV_HUB_SKIP_MS;
	s->skip = sk;
}

/* The keys of a catch-up that ended while another is still going, kept
 * for the last release; they count against the hold. */
static int hold_keys(struct pav_hub_client *c, struct pav_hold *hd,
		     const char *const *skip, size_t nskip)
{
	char **nk;
	size_t len;

	if (!nskip)
		return 0;
	nk = realloc(hd->keys, (hd->nkeys + nskip) * sizeof(*nk));
	if (!nk) {
		pav_conn_overflow(c->conn);
		return -ENOMEM;
	}
	hd->keys = nk;
	for (size_t i = 0; i < nskip; i++) {
		len = strlen(skip[i]) + 1;
		if (hd->bytes + len > c->hold_max) { /* as hold_push */
			pav_conn_overflow(c->conn);
			return -ENOBUFS;
		}
		if (!(hd->keys[hd->nkeys] = strdup(skip[i]))) {
			pav_conn_overflow(c->conn);
			return -ENOMEM;
		}
		hd->nkeys++;
		hd->bytes += len;
	}
	return 0;
}

/* A catch-up ends while another of the channel is still going: what its
 * replay sent is dropped, the rest waits for the last release. */
static int hold_settle(struct pav_hub_client *c, struct pav_hold *hd,
		       uint64_t upto, const char *const *skip, size_t nskip)
{
	size_t k = 0;

	hd->catchups--;
	for (size_t i = 0; i < hd->n; i++) {
		if (!skipped(hd->msgs[i], upto, skip, nskip)) {
			hd->msgs[k++] = hd->msgs[i];
			continue;
		}
		hd->bytes -= hd->msgs[i]->len;
		pav_msg_unref(hd->msgs[i]);
	}
	hd->n = k;
	return hold_keys(c, hd, skip, nskip);
}

int pav_hub_release(struct pav_hub_client *c, const char *channel,
		    uint64_t upto, const char *const *skip, size_t nskip)
{
	int slot = find_sub(c, channel);
	struct pav_hold *hd;

	if (slot < 0)
		return -ENOENT;
	hd = c->subs[slot].hold;
	if (hd && hd->catchups > 1)
		return hold_settle(c, hd, upto, skip, nskip);
	c->subs[slot].hold = NULL;
	for (size_t i = 0; hd && i < hd->n && c->conn; i++)
		if (!skipped(hd->msgs[i], upto, skip, nskip) &&
		    !pav_conn_deliver(c->conn, hd->msgs[i]))
			pav_metrics_out_msg(hd->msgs[i]);
	keep_skips(&c->subs[slot], hd, skip, nskip);
	hold_free(hd);
	return 0;
}
