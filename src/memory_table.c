/*
 * memory_table.c — the "memory" backend's records: users (connections,
 * presence, inbox) and channels (members, history ring), keyed
 * "ns\x1fname", made on demand and dropped once they hold nothing a
 * caller could read back.  memory_state.c, memory_history.c and
 * memory_broker.c work on them.
 */
#include "memory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "pav_limits.h"

/* ---- keys ---- */

int pav_mem_key(struct pav_mem_key *k, const char *ns, const char *name)
{
	size_t len = strlen(ns) + 1 + strlen(name) + 1;

	k->s = len <= sizeof(k->small) ? k->small : malloc(len);
	if (!k->s)
		return -ENOMEM;
	snprintf(k->s, len, "%s\x1f%s", ns, name);
	return 0;
}

void pav_mem_key_done(struct pav_mem_key *k)
{
	if (k->s != k->small)
		free(k->s);
}

/* ---- users ---- */

void pav_mem_note_clear(struct note *n)
{
	json_object_put(n->obj);
	n->obj = NULL;
}

struct note *pav_mem_inbox_at(const struct inbox *ib, size_t i)
{
	return &ib->notes[(ib->head + i) % ib->cap];
}

void pav_mem_user_free(void *p)
{
	struct user *u = p;

	for (size_t i = 0; i < u->inbox.count; i++)
		pav_mem_note_clear(pav_mem_inbox_at(&u->inbox, i));
	free(u->inbox.notes);
	pav_conn_ids_free(&u->conns);
	free(u);
}

struct user *pav_mem_user_find(struct pav_mem *m, const char *ns,
			      const char *user)
{
	struct pav_mem_key k;
	struct user *u;

	if (pav_mem_key(&k, ns, user))
		return NULL;
	u = pav_map_get(m->users, k.s);
	pav_mem_key_done(&k);
	return u;
}

/* Finds or creates the record. */
int pav_mem_user_get(struct pav_mem *m, const char *ns, const char *user,
		    struct user **out)
{
	struct pav_mem_key k;
	int err = 0;

	if (pav_mem_key(&k, ns, user))
		return -ENOMEM;
	*out = pav_map_get(m->users, k.s);
	if (!*out) {
		size_t len = strlen(k.s) + 1;

		*out = calloc(1, sizeof(**out) + len);
		if (*out)
			memcpy((*out)->key, k.s, len);
		err = *out ? pav_map_put(m->users, k.s, *out) : -ENOMEM;
		if (err) {
			free(*out);
			*out = NULL;
		}
	}
	pav_mem_key_done(&k);
	return err;
}

/* ---- idle users ---- */

static void idle_unlink(struct pav_mem *m, struct user *u)
{
	if (!u->idle_prev && m->idle_head != u)
		return; /* not on the list */
	*(u->idle_prev ? &u->idle_prev->idle_next : &m->idle_head) =
		u->idle_next;
	*(u->idle_next ? &u->idle_next->idle_prev : &m->idle_tail) =
		u->idle_prev;
	u->idle_prev = u->idle_next = NULL;
}

void pav_mem_user_touch(struct pav_mem *m, struct user *u)
{
	idle_unlink(m, u);
	if (u->conns.n || u->own_members)
		return; /* changed_ms counts only while it has none */
	u->changed_ms = pav_now_ms();
	u->idle_prev = m->idle_tail;
	*(m->idle_tail ? &m->idle_tail->idle_next : &m->idle_head) = u;
	m->idle_tail = u;
}

void pav_mem_users_expire(struct pav_mem *m, int64_t now)
{
	struct user *u;

	while ((u = m->idle_head) &&
	       now - u->changed_ms >= PAV_USER_RECORD_TTL_MS) {
		idle_unlink(m, u);
		pav_mem_user_free(pav_map_del(m->users, u->key));
	}
}

/* A record that presence_get would answer exactly like an unknown user
 * is dead weight: drop it so short-lived users leave no trace. */
void pav_mem_user_drop_if_empty(struct pav_mem *m, struct user *u)
{
	if (u->conns.n || u->own_members || u->inbox.count ||
	    u->last_active_ms ||
	    (u->status[0] && strcmp(u->status, "offline") != 0))
		return;
	idle_unlink(m, u);
	pav_mem_user_free(pav_map_del(m->users, u->key));
}

int64_t pav_mem_user_conns(struct pav_mem *m, const char *ns,
			   const char *user)
{
	const struct user *u = pav_mem_user_find(m, ns, user);

	return u ? (int64_t)u->conns.n : 0;
}

struct user *pav_mem_own_channel(struct pav_mem *m, const char *ns,
				 const char *channel, int make)
{
	struct user *u = NULL;

	if (strncmp(channel, "user:", 5))
		return NULL;
	if (make)
		pav_mem_user_get(m, ns, channel + 5, &u);
	else
		u = pav_mem_user_find(m, ns, channel + 5);
	return u;
}

int64_t pav_mem_members(struct pav_mem *m, const char *ns,
			const char *channel)
{
	struct user *u = pav_mem_own_channel(m, ns, channel, 0);
	struct mem_chan *ch;

	if (!strncmp(channel, "user:", 5))
		return u ? u->own_members : 0;
	ch = pav_mem_chan(m, ns, channel, 0);
	return ch ? ch->members : 0;
}

/* ---- channels ---- */

void pav_mem_chan_free(void *p)
{
	struct mem_chan *ch = p;

	for (size_t i = 0; i < ch->count; i++)
		pav_msg_unref(ch->ring[(ch->head + i) % ch->cap]);
	free(ch->ring);
	pav_map_free(ch->users, NULL);
	free(ch->key);
	free(ch);
}

/* FNV-1a from the store's seed: which bucket's generation a key's
 * epochs follow (keys cannot be picked to share one on purpose). */
static size_t epoch_bucket(const struct pav_mem *m, const char *key)
{
	uint64_t h = 14695981039346656037ULL ^ m->epoch_seed;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return (size_t)(h % PAV_MEM_EPOCH_BUCKETS);
}

/* A bijection of 64-bit values (splitmix64's finalizer). */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* One bucket's generations give distinct epochs (for gen < 2^52). */
static void epoch_format(const struct pav_mem *m, size_t bucket,
			 uint64_t gen, char buf[PAV_MEM_EPOCH_LEN])
{
	uint64_t e = mix64(m->epoch_seed ^ mix64(gen << 12 | bucket));

	snprintf(buf, PAV_MEM_EPOCH_LEN, "%016" PRIx64, e);
}

struct mem_chan *pav_mem_chan(struct pav_mem *m, const char *ns,
			      const char *channel, int make)
{
	struct pav_mem_key k;
	struct mem_chan *ch;

	if (pav_mem_key(&k, ns, channel))
		return NULL;
	ch = pav_map_get(m->chans, k.s);
	if (!ch && make && (ch = calloc(1, sizeof(*ch)))) {
		ch->key = strdup(k.s);
		ch->active_ms = pav_now_ms();
		ch->epoch_gen = m->epoch_gens[epoch_bucket(m, k.s)];
		if (!ch->key || pav_map_put(m->chans, k.s, ch)) {
			pav_mem_chan_free(ch);
			ch = NULL;
		}
	}
	pav_mem_key_done(&k);
	return ch;
}

const char *pav_mem_chan_epoch(struct pav_mem *m, struct mem_chan *ch)
{
	if (!ch->epoch[0])
		epoch_format(m, epoch_bucket(m, ch->key), ch->epoch_gen,
			     ch->epoch);
	return ch->epoch;
}

const char *pav_mem_absent_epoch(struct pav_mem *m, const char *ns,
				 const char *channel,
				 char buf[PAV_MEM_EPOCH_LEN])
{
	struct pav_mem_key k;
	size_t b;

	if (pav_mem_key(&k, ns, channel))
		return NULL;
	b = epoch_bucket(m, k.s);
	epoch_format(m, b, m->epoch_gens[b], buf);
	pav_mem_key_done(&k);
	return buf;
}

void pav_mem_chan_new_epoch(struct pav_mem *m, struct mem_chan *ch)
{
	size_t b = epoch_bucket(m, ch->key);

	ch->epoch_gen = ++m->epoch_gens[b];
	ch->epoch[0] = '\0';
}

static int chan_holds(const struct mem_chan *ch)
{
	return ch->members || ch->count || (ch->size && ch->offset) ||
	       ch->in_lru;
}

static void reap(struct pav_mem *m)
{
	struct mem_chan *ch;

	while ((ch = m->reap)) {
		m->reap = ch->reap_next;
		ch->reap_next = NULL;
		ch->reaping = 0;
		if (!chan_holds(ch)) {
			pav_map_del(m->chans, ch->key);
			pav_mem_chan_free(ch);
		}
	}
}

void pav_mem_chan_forget(struct pav_mem *m, struct mem_chan *ch)
{
	if (chan_holds(ch) || ch->reaping)
		return;
	ch->reaping = 1;
	ch->reap_next = m->reap;
	m->reap = ch;
	if (!m->busy)
		reap(m);
}

void pav_mem_enter(struct pav_mem *m)
{
	m->busy++;
}

void pav_mem_leave(struct pav_mem *m)
{
	if (!--m->busy)
		reap(m);
}
