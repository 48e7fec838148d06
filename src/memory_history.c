/*
 * memory_history.c — the "memory" backend's channel history: a ring of
 * the newest `size` publications per channel, grown on demand, dropped
 * `ttl_s` after the channel's last activity, and a byte budget over all
 * channels (messages, ring slots and the records holding them) that
 * takes from the least recently published channel first.
 */
#include "memory.h"

#include <errno.h>
#include <string.h>

#include "grow.h"

#define RING_MIN 4 /* slots of a channel's first publication */

/* What a record holding history costs beyond its ring and messages. */
static size_t chan_cost(const struct mem_chan *ch)
{
	return sizeof(*ch) + strlen(ch->key) + 1;
}

static void lru_remove(struct pav_mem *m, struct mem_chan *ch)
{
	if (ch->lru_prev)
		ch->lru_prev->lru_next = ch->lru_next;
	else
		m->lru_head = ch->lru_next;
	if (ch->lru_next)
		ch->lru_next->lru_prev = ch->lru_prev;
	else
		m->lru_tail = ch->lru_prev;
	ch->lru_prev = ch->lru_next = NULL;
}

static void lru_unlink(struct pav_mem *m, struct mem_chan *ch)
{
	if (!ch->in_lru)
		return;
	lru_remove(m, ch);
	ch->in_lru = 0;
	m->history_bytes -= chan_cost(ch);
}

/* The most recently published channel goes to the tail. */
static void lru_touch(struct pav_mem *m, struct mem_chan *ch)
{
	if (ch->in_lru)
		lru_remove(m, ch);
	else
		m->history_bytes += chan_cost(ch);
	ch->lru_prev = m->lru_tail;
	if (m->lru_tail)
		m->lru_tail->lru_next = ch;
	else
		m->lru_head = ch;
	m->lru_tail = ch;
	ch->in_lru = 1;
}

void pav_mem_history_config(struct mem_chan *ch,
			    const struct pav_history_cfg *h)
{
	if (!h || h->size <= 0 || ch->size)
		return;
	ch->size = (size_t)h->size;
	ch->ttl_s = h->ttl_s;
}

static void ring_free(struct pav_mem *m, struct mem_chan *ch)
{
	m->history_bytes -= ch->cap * sizeof(*ch->ring);
	free(ch->ring);
	ch->ring = NULL;
	ch->cap = ch->head = 0;
}

/* Room for one more in a full ring: twice the slots, up to size, unless
 * the channel alone would then be past the budget.  0, -ENOSPC (the
 * ring is as large as it gets) or -ENOMEM. */
static int ring_grow(struct pav_mem *m, struct mem_chan *ch, size_t len)
{
	const size_t slot = sizeof(*ch->ring);
	size_t old = ch->cap, bytes = old * slot, next;
	char *p = (char *)ch->ring;

	if (old >= ch->size)
		return -ENOSPC;
	next = !old ? RING_MIN : old > ch->size / 2 ? ch->size : old * 2;
	if (next > ch->size)
		next = ch->size;
	if (old && chan_cost(ch) + next * slot + ch->bytes + len >
			   m->history_max_bytes)
		return -ENOSPC;
	if (pav_grow(&p, &bytes, next * slot, RING_MIN * slot,
		     ch->size * slot))
		return -ENOMEM;
	ch->ring = (struct pav_msg **)(void *)p;
	ch->cap = bytes / slot;
	m->history_bytes += (ch->cap - old) * slot;
	/* the ring was full: [head, old) then [0, head); the first part
	 * moves to the end so the order continues over the new slots */
	if (ch->head) {
		memmove(ch->ring + ch->cap - (old - ch->head),
			ch->ring + ch->head, (old - ch->head) * slot);
		ch->head += ch->cap - old;
	}
	return 0;
}

static void drop_oldest(struct pav_mem *m, struct mem_chan *ch)
{
	struct pav_msg *old = ch->ring[ch->head];

	ch->head = (ch->head + 1) % ch->cap;
	ch->count--;
	ch->bytes -= old->len;
	m->history_bytes -= old->len;
	pav_msg_unref(old);
}

/* ch holds no message any more: its ring goes, and with members it
 * needs no place in the budget (they keep its offset). */
static void history_emptied(struct pav_mem *m, struct mem_chan *ch)
{
	ring_free(m, ch);
	if (ch->members)
		lru_unlink(m, ch);
}

/* ch (no member, no message) loses its history position too. */
static void history_lost(struct pav_mem *m, struct mem_chan *ch)
{
	ring_free(m, ch);
	lru_unlink(m, ch);
	if (ch->offset && ch->size)
		pav_mem_chan_new_epoch(m, ch);
	ch->offset = 0;
}

/* Over the budget: the least recently published lose first, messages
 * before positions; `keep` (the channel just written, or NULL) is the
 * last resort and keeps its position. */
static void trim(struct pav_mem *m, struct mem_chan *keep)
{
	struct mem_chan *ch;

	while (m->history_bytes > m->history_max_bytes && (ch = m->lru_head)) {
		if (ch->count) {
			drop_oldest(m, ch);
			if (!ch->count)
				history_emptied(m, ch);
		} else if (ch == keep) {
			break;
		} else if (ch->members) {
			lru_unlink(m, ch);
		} else {
			history_lost(m, ch);
			pav_mem_chan_forget(m, ch);
		}
	}
}

void pav_mem_history_append(struct pav_mem *m, struct mem_chan *ch,
			    struct pav_msg *msg, int64_t now)
{
	if (!ch->size)
		return;
	if (ch->count == ch->cap && ring_grow(m, ch, msg->len) && ch->count)
		drop_oldest(m, ch);
	if (ch->count == ch->cap)
		return; /* no ring (out of memory): not kept, not recoverable */
	ch->ring[(ch->head + ch->count) % ch->cap] = pav_msg_ref(msg);
	ch->count++;
	ch->bytes += msg->len;
	m->history_bytes += msg->len;
	ch->active_ms = now;
	lru_touch(m, ch);
	trim(m, ch);
}

/* Keeps a record without member or message as a history position (in
 * the budget).  ch may be gone when it returns. */
static void linger(struct pav_mem *m, struct mem_chan *ch)
{
	if (ch->in_lru)
		return;
	lru_touch(m, ch);
	trim(m, NULL);
}

void pav_mem_chan_drop(struct pav_mem *m, struct mem_chan *ch)
{
	if (ch->members || ch->count)
		return;
	if (ch->size && ch->offset)
		linger(m, ch);
	else
		pav_mem_chan_forget(m, ch);
}

struct sweep {
	struct pav_mem *m;
	int64_t now;
	struct mem_chan **dead;
	size_t n, cap;
};

static int find_expired(struct mem_chan *ch, struct sweep *s)
{
	struct mem_chan **d;

	if (!ch->ttl_s || s->now < ch->active_ms + (int64_t)ch->ttl_s * 1000)
		return 0;
	if (!ch->count && (ch->members || !ch->offset))
		return 0; /* nothing to drop */
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		d = realloc(s->dead, s->cap * sizeof(*d));
		if (!d)
			return 1; /* the rest waits for the next sweep */
		s->dead = d;
	}
	s->dead[s->n++] = ch;
	return 0;
}

void pav_mem_history_sweep(struct pav_mem *m, int64_t now)
{
	struct sweep s = {m, now, NULL, 0, 0};

	pav_mem_enter(m);
	/* what can expire (messages, or a position without members) is on
	 * the budget's list: the other channels are not walked */
	for (struct mem_chan *ch = m->lru_head; ch; ch = ch->lru_next)
		if (find_expired(ch, &s))
			break;
	for (size_t i = 0; i < s.n; i++) {
		struct mem_chan *ch = s.dead[i];

		while (ch->count)
			drop_oldest(m, ch);
		history_emptied(m, ch);
		if (!ch->members) {
			history_lost(m, ch);
			pav_mem_chan_forget(m, ch);
		}
	}
	free(s.dead);
	pav_mem_leave(m);
}
