/*
 * hub.c — local channel membership and fan-out.
 *
 * A channel (per namespace) holds an array of members; each connection
 * holds an array of its subscriptions, and each side knows the other's
 * index, so that subscribe and unsubscribe are O(1) and a publication
 * walks exactly its recipients.  A publication is serialized once into a
 * reference-counted struct pav_msg and queued by reference.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "pav_limits.h"
#include "log.h"
#include "metrics.h"

struct pav_member {
	struct pav_conn *c;
	uint32_t slot; /* index in c->subs */
};

struct pav_chan {
	char *key;        /* "ns\x1fchannel" */
	const char *name; /* the channel part of key */
	struct pav_member *m;
	uint32_t n, cap;
};

static int chan_key(const char *ns, const char *channel, char *buf,
		    size_t len)
{
	int n = snprintf(buf, len, "%s\x1f%s", ns, channel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct pav_chan *chan_get(const char *ns, const char *channel)
{
	char key[PAV_MAX_CHANNEL_LEN + 80];

	if (chan_key(ns, channel, key, sizeof(key)))
		return NULL;
	return pav_map_get(pav_gw->chans, key);
}

static struct pav_chan *chan_make(const char *ns, const char *channel)
{
	char key[PAV_MAX_CHANNEL_LEN + 80];
	struct pav_chan *ch;

	if (chan_key(ns, channel, key, sizeof(key)))
		return NULL;
	ch = pav_map_get(pav_gw->chans, key);
	if (ch)
		return ch;
	ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->key = strdup(key)) ||
	    pav_map_put(pav_gw->chans, key, ch)) {
		if (ch)
			free(ch->key);
		free(ch);
		return NULL;
	}
	ch->name = ch->key + strlen(ns) + 1;
	return ch;
}

static void chan_free(void *p)
{
	struct pav_chan *ch = p;

	free(ch->m);
	free(ch->key);
	free(ch);
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

static int find_sub(const struct pav_conn *c, const char *channel)
{
	for (uint32_t i = 0; i < c->nsubs; i++)
		if (!strcmp(c->subs[i].chan->name, channel))
			return (int)i;
	return -1;
}

int pav_hub_subscribe(struct pav_conn *c, const char *channel)
{
	struct pav_chan *ch;

	if (find_sub(c, channel) >= 0)
		return 1;
	if ((int)c->nsubs >= c->vh->cfg->limits.max_subscriptions + 1)
		return -ENOSPC; /* + 1: the automatic user channel */
	ch = chan_make(c->vh->cfg->ns, channel);
	if (!ch || grow((void **)&ch->m, &ch->cap, sizeof(*ch->m), ch->n + 1) ||
	    grow((void **)&c->subs, &c->subs_cap, sizeof(*c->subs),
		 c->nsubs + 1))
		return -ENOMEM;
	ch->m[ch->n] = (struct pav_member){c, c->nsubs};
	c->subs[c->nsubs] = (struct pav_sub){ch, ch->n};
	ch->n++;
	c->nsubs++;
	return 0;
}

/* Removes subscription `slot` of c, swapping the last ones into the holes
 * on both sides and fixing their back-references. */
static void remove_sub(struct pav_conn *c, uint32_t slot)
{
	struct pav_sub s = c->subs[slot];
	struct pav_chan *ch = s.chan;
	struct pav_member last = ch->m[--ch->n];

	if (s.idx != ch->n) {
		ch->m[s.idx] = last;
		last.c->subs[last.slot].idx = s.idx;
	}
	if (slot != --c->nsubs) {
		c->subs[slot] = c->subs[c->nsubs];
		c->subs[slot].chan->m[c->subs[slot].idx].slot = slot;
	}
	if (!ch->n) {
		pav_map_del(pav_gw->chans, ch->key);
		chan_free(ch);
	}
}

int pav_hub_unsubscribe(struct pav_conn *c, const char *channel)
{
	int slot = find_sub(c, channel);

	if (slot < 0)
		return 1;
	remove_sub(c, (uint32_t)slot);
	return 0;
}

int pav_hub_is_subscribed(const struct pav_conn *c, const char *channel)
{
	return find_sub(c, channel) >= 0;
}

void pav_hub_unsubscribe_all(struct pav_conn *c)
{
	while (c->nsubs)
		remove_sub(c, c->nsubs - 1);
	free(c->subs);
	c->subs = NULL;
	c->subs_cap = 0;
}

const char *pav_hub_sub_name(const struct pav_sub *s)
{
	return s->chan->name;
}

size_t pav_hub_count(const char *ns, const char *channel)
{
	struct pav_chan *ch = chan_get(ns, channel);

	return ch ? ch->n : 0;
}

size_t pav_hub_user_count(const char *ns, const char *channel,
			  const char *user, const struct pav_conn *except)
{
	struct pav_chan *ch = chan_get(ns, channel);
	size_t n = 0;

	for (uint32_t i = 0; ch && i < ch->n; i++)
		if (ch->m[i].c != except && !strcmp(ch->m[i].c->user, user))
			n++;
	return n;
}

void pav_hub_each(const char *ns, const char *channel,
		  int (*fn)(struct pav_conn *c, void *arg), void *arg)
{
	struct pav_chan *ch = chan_get(ns, channel);

	/* fn may not change membership of this channel */
	for (uint32_t i = 0; ch && i < ch->n; i++)
		if (fn(ch->m[i].c, arg))
			break;
}

static int deliver(struct pav_chan *ch, struct pav_msg *m,
		   const struct pav_conn *except, uint32_t stamp)
{
	int n = 0;

	/* enqueue may close a slow consumer, which only marks it closing:
	 * membership does not change during the walk */
	for (uint32_t i = 0; i < ch->n; i++) {
		struct pav_conn *c = ch->m[i].c;

		if (c == except || c->stamp == stamp)
			continue;
		c->stamp = stamp;
		if (!pav_conn_deliver(c, m))
			n++;
	}
	return n;
}

int pav_hub_publish(const char *ns, const char *const *channels, size_t n,
		    const char *type, json_object *payload,
		    const struct pav_conn *except)
{
	struct pav_msg *m;
	uint32_t stamp;
	int sent = 0;

	m = pav_msg_build(type, NULL, n == 1 ? channels[0] : NULL, payload);
	if (!m)
		return -ENOMEM;
	stamp = ++pav_gw->stamp;
	if (!stamp) /* wrapped: 0 is every connection's initial stamp */
		stamp = ++pav_gw->stamp;
	for (size_t i = 0; i < n; i++) {
		struct pav_chan *ch = chan_get(ns, channels[i]);

		if (ch)
			sent += deliver(ch, m, except, stamp);
	}
	pav_metrics_out(type, (unsigned)sent);
	pav_msg_unref(m);
	return sent;
}

void pav_hub_free(void)
{
	if (pav_gw->chans)
		pav_map_free(pav_gw->chans, chan_free);
	pav_gw->chans = NULL;
}
