/*
 * revkeep.c — the kept token revocations (revkeep.h): a map from
 * "ns\x1fuser" to the record, and a binary min-heap of the records by end,
 * so that expiry looks only at the records due and a full set finds the
 * one that ends first in O(1) (and drops it in O(log n)).
 */
#include "revkeep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

struct rec {
	int64_t at_ms, end_ms;
	size_t pos;	 /* in the heap */
	size_t user_off; /* the user's name in key, after the 0x1f */
	char key[];	 /* "ns\x1fuser" */
};

struct pav_revkeep {
	struct pav_map *map;
	struct rec **heap; /* min-heap by end_ms */
	size_t n, cap, max;
	uint64_t dropped;
};

struct pav_revkeep *pav_revkeep_new(size_t max)
{
	struct pav_revkeep *k = calloc(1, sizeof(*k));

	if (k && !(k->map = pav_map_new())) {
		free(k);
		k = NULL;
	}
	if (k)
		k->max = max ? max : 1;
	return k;
}

void pav_revkeep_free(struct pav_revkeep *k)
{
	if (!k)
		return;
	pav_map_free(k->map, free); /* the heap points at the same records */
	free(k->heap);
	free(k);
}

/* ---- the heap ------------------------------------------------------------ */

static void place(struct pav_revkeep *k, size_t i, struct rec *r)
{
	k->heap[i] = r;
	r->pos = i;
}

static void sift_up(struct pav_revkeep *k, size_t i)
{
	struct rec *r = k->heap[i];

	while (i > 0 && k->heap[(i - 1) / 2]->end_ms > r->end_ms) {
		place(k, i, k->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(k, i, r);
}

static void sift_down(struct pav_revkeep *k, size_t i)
{
	struct rec *r = k->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= k->n)
			break;
		if (c + 1 < k->n && k->heap[c + 1]->end_ms < k->heap[c]->end_ms)
			c++;
		if (k->heap[c]->end_ms >= r->end_ms)
			break;
		place(k, i, k->heap[c]);
		i = c;
	}
	place(k, i, r);
}

/* After r's end changed. */
static void reheap(struct pav_revkeep *k, struct rec *r)
{
	sift_up(k, r->pos);
	sift_down(k, r->pos);
}

static void drop(struct pav_revkeep *k, struct rec *r)
{
	struct rec *last = k->heap[--k->n];

	if (last != r) {
		place(k, r->pos, last);
		reheap(k, last);
	}
	free(pav_map_del(k->map, r->key));
}

/* Room for one more in the heap: it grows by doubling, up to max. */
static int heap_room(struct pav_revkeep *k)
{
	size_t ncap;
	struct rec **h;

	if (k->n < k->cap)
		return 0;
	ncap = k->cap ? k->cap * 2 : 16;
	if (ncap > k->max)
		ncap = k->max;
	h = realloc(k->heap, ncap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	k->heap = h;
	k->cap = ncap;
	return 0;
}

/* ---- records ------------------------------------------------------------- */

static int make_key(char *buf, size_t len, const char *ns, const char *user)
{
	int n;

	if (strchr(ns, '\x1f') || strchr(user, '\x1f'))
		return -EINVAL;
	n = snprintf(buf, len, "%s\x1f%s", ns, user);
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

static struct rec *rec_new(const char *key, const char *ns)
{
	size_t len = strlen(key) + 1;
	struct rec *r = calloc(1, sizeof(*r) + len);

	if (r) {
		memcpy(r->key, key, len);
		r->user_off = strlen(ns) + 1;
	}
	return r;
}

/* A new record into a set with room: 0 or -ENOMEM (nothing changed). */
static int insert(struct pav_revkeep *k, const char *key, const char *ns,
		  int64_t at_ms, int64_t end_ms)
{
	struct rec *r;

	if (heap_room(k) || !(r = rec_new(key, ns)))
		return -ENOMEM;
	if (pav_map_put(k->map, key, r)) {
		free(r);
		return -ENOMEM;
	}
	r->at_ms = at_ms;
	r->end_ms = end_ms;
	place(k, k->n++, r);
	sift_up(k, r->pos);
	return 0;
}

int pav_revkeep_put(struct pav_revkeep *k, const char *ns, const char *user,
		    int64_t at_ms, int64_t end_ms, int64_t now_ms)
{
	char key[512];
	struct rec *r;
	int dropped = 0;

	if (make_key(key, sizeof(key), ns, user))
		return -EINVAL;
	pav_revkeep_expire(k, now_ms);
	if ((r = pav_map_get(k->map, key))) {
		if (end_ms <= now_ms) {
			drop(k, r); /* replaced by a revocation already over */
			return 0;
		}
		r->at_ms = at_ms;
		r->end_ms = end_ms;
		reheap(k, r);
		return 0;
	}
	if (end_ms <= now_ms)
		return 0;
	if (k->n == k->max) {
		k->dropped++;
		dropped = 1;
		/* the one that ends first goes: the new one, if it is that */
		if (end_ms <= k->heap[0]->end_ms)
			return 1;
		drop(k, k->heap[0]);
	}
	return insert(k, key, ns, at_ms, end_ms) ? -ENOMEM : dropped;
}

int pav_revkeep_get(struct pav_revkeep *k, const char *ns, const char *user,
		    int64_t now_ms, int64_t *at_ms)
{
	char key[512];
	const struct rec *r;

	if (make_key(key, sizeof(key), ns, user) ||
	    !(r = pav_map_get(k->map, key)) || r->end_ms <= now_ms)
		return 0;
	*at_ms = r->at_ms;
	return 1;
}

void pav_revkeep_expire(struct pav_revkeep *k, int64_t now_ms)
{
	while (k->n && k->heap[0]->end_ms <= now_ms)
		drop(k, k->heap[0]);
}

size_t pav_revkeep_count(const struct pav_revkeep *k)
{
	return k->n;
}

uint64_t pav_revkeep_dropped(const struct pav_revkeep *k)
{
	return k->dropped;
}

void pav_revkeep_each(const struct pav_revkeep *k, int64_t now_ms,
		      pav_revkeep_fn fn, void *arg)
{
	char ns[512];

	for (size_t i = 0; i < k->n; i++) {
		const struct rec *r = k->heap[i];

		if (r->end_ms <= now_ms)
			continue;
		snprintf(ns, sizeof(ns), "%.*s", (int)(r->user_off - 1),
			 r->key);
		if (fn(ns, r->key + r->user_off, r->at_ms, r->end_ms, arg))
			return;
	}
}
