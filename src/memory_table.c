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

/* ---- keys ---- */

#define KEY_SMALL 192

/* "ns\x1fname" on the stack when it fits. */
struct mem_key {
	char small[KEY_SMALL];
	char *s;
};

static int mem_key(struct mem_key *k, const char *ns, const char *name)
{
	size_t len = strlen(ns) + 1 + strlen(name) + 1;

	k->s = len <= sizeof(k->small) ? k->small : malloc(len);
	if (!k->s)
		return -ENOMEM;
	snprintf(k->s, len, "%s\x1f%s", ns, name);
	return 0;
}

static void mem_key_done(struct mem_key *k)
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
	struct mem_key k;
	struct user *u;

	if (mem_key(&k, ns, user))
		return NULL;
	u = pav_map_get(m->users, k.s);
	mem_key_done(&k);
	return u;
}

/* Finds or creates the record. */
int pav_mem_user_get(struct pav_mem *m, const char *ns, const char *user,
		    struct user **out)
{
	struct mem_key k;
	int err = 0;

	if (mem_key(&k, ns, user))
		return -ENOMEM;
	*out = pav_map_get(m->users, k.s);
	if (!*out) {
		*out = calloc(1, sizeof(**out));
		err = *out ? pav_map_put(m->users, k.s, *out) : -ENOMEM;
		if (err) {
			free(*out);
			*out = NULL;
		}
	}
	mem_key_done(&k);
	return err;
}

/* A record that presence_get would answer exactly like an unknown user
 * is dead weight: drop it so short-lived users leave no trace. */
void pav_mem_user_drop_if_empty(struct pav_mem *m, const char *ns,
			       const char *user, struct user *u)
{
	struct mem_key k;

	if (u->conns.n || u->own_members || u->inbox.count ||
	    u->last_active_ms ||
	    (u->status[0] && strcmp(u->status, "offline") != 0))
		return;
	if (mem_key(&k, ns, user))
		return; /* harmless: the record stays */
	pav_mem_user_free(pav_map_del(m->users, k.s));
	mem_key_done(&k);
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

struct mem_chan *pav_mem_chan(struct pav_mem *m, const char *ns,
			      const char *channel, int make)
{
	struct mem_key k;
	struct mem_chan *ch;

	if (mem_key(&k, ns, channel))
		return NULL;
	ch = pav_map_get(m->chans, k.s);
	if (!ch && make && (ch = calloc(1, sizeof(*ch)))) {
		ch->key = strdup(k.s);
		ch->users = pav_map_new();
		ch->active_ms = pav_now_ms();
		if (!ch->key || !ch->users || pav_map_put(m->chans, k.s, ch)) {
			pav_mem_chan_free(ch);
			ch = NULL;
		}
	}
	mem_key_done(&k);
	return ch;
}

const char *pav_mem_chan_epoch(struct mem_chan *ch)
{
	uint64_t r = 0;

	if (!ch->epoch[0]) {
		if (pav_random_u64(&r))
			r = (uint64_t)pav_now_ms() ^ (uintptr_t)ch;
		snprintf(ch->epoch, sizeof(ch->epoch), "%016" PRIx64, r);
	}
	return ch->epoch;
}

void pav_mem_chan_drop(struct pav_mem *m, struct mem_chan *ch, int64_t now)
{
	if (ch->members || ch->count ||
	    (ch->ttl_s && now < ch->active_ms + (int64_t)ch->ttl_s * 1000))
		return;
	/* nothing held (count 0), so it is on no history list either */
	pav_map_del(m->chans, ch->key);
	pav_mem_chan_free(ch);
}
