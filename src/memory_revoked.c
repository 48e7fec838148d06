/*
 * memory_revoked.c — the "memory" backend's token revocations: one record
 * per revoked user, in a map of its own rather than in the user's record,
 * which goes with the user's last connection while a revocation must
 * outlast it.
 *
 * A record ends on the monotonic clock, so that a step of the wall clock
 * neither cuts a revocation short nor stretches it; its time stays on the
 * wall clock, which is the clock of the tokens' iat.  The ends wait on a
 * timing wheel: the tick looks only at the records due, however many
 * there are, and a lookup past the end drops the record at once.
 *
 * The records are bounded (m->revoked_max), and unlike the redis store's
 * copies (revkeep.c) none can be dropped to make room: it is the only
 * one, and dropping it would let the user's old tokens in again.  So a
 * revocation of a user without a record is refused while the store is
 * full; a user's own record can always be replaced.
 */
#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

struct revoked {
	struct pav_wheel_node end; /* first: the wheel hands this back */
	int64_t at_ms;		   /* wall clock */
	int64_t end_ms;		   /* monotonic clock */
	char key[];		   /* its key in m->revoked */
};

static void revoked_free(void *p)
{
	struct revoked *r = p;

	pav_wheel_del(&r->end);
	free(r);
}

static void drop(struct pav_mem *m, struct revoked *r)
{
	revoked_free(pav_map_del(m->revoked, r->key));
}

int pav_mem_revoked_init(struct pav_mem *m, size_t max)
{
	m->revoked = pav_map_new();
	m->revoked_max = max;
	pav_wheel_init(&m->revoked_ends, pav_mono_ms() / 1000);
	return m->revoked ? 0 : -ENOMEM;
}

void pav_mem_revoked_free(struct pav_mem *m)
{
	pav_map_free(m->revoked, revoked_free);
	m->revoked = NULL;
}

/* The user's record, or NULL (also when it has ended: then dropped). */
static struct revoked *find(struct pav_mem *m, const char *ns, const char *user)
{
	struct pav_mem_key k;
	struct revoked *r = NULL;

	if (!pav_mem_key(&k, ns, user))
		r = pav_map_get(m->revoked, k.s);
	pav_mem_key_done(&k);
	if (r && pav_mono_ms() >= r->end_ms) {
		drop(m, r);
		r = NULL;
	}
	return r;
}

static struct revoked *make(struct pav_mem *m, const char *ns, const char *user)
{
	struct pav_mem_key k;
	struct revoked *r = NULL;
	size_t len;

	if (pav_mem_key(&k, ns, user))
		goto out;
	len = strlen(k.s) + 1;
	r = calloc(1, sizeof(*r) + len);
	if (r)
		memcpy(r->key, k.s, len);
	if (r && pav_map_put(m->revoked, k.s, r)) {
		free(r);
		r = NULL;
	}
out:
	pav_mem_key_done(&k);
	return r;
}

/* Room for one more record?  The records due by now's second go first:
 * one that ended must not hold a place.  (One that ended within the
 * current second still does, until the next tick: finding it would mean
 * walking a slot of the wheel, as long as its records, on every call.) */
static int full(struct pav_mem *m)
{
	pav_mem_revoked_expire(m);
	return pav_map_count(m->revoked) >= m->revoked_max;
}

int pav_mem_revoke(struct pav_mem *m, const char *ns, const char *user,
		   int64_t at_ms, int ttl_s)
{
	struct revoked *r = find(m, ns, user);

	if (!r && full(m))
		return -ENOSPC;
	if (!r && !(r = make(m, ns, user)))
		return -ENOMEM;
	r->at_ms = at_ms;
	r->end_ms = pav_mono_ms() + (int64_t)ttl_s * 1000;
	/* the first tick at or after the end: (end_ms + 999) / 1000 */
	pav_wheel_add(&m->revoked_ends, &r->end, (r->end_ms + 999) / 1000);
	return 0;
}

int pav_mem_revoked(struct pav_mem *m, const char *ns, const char *user,
		    const struct pav_token_iat *tok)
{
	const struct revoked *r = find(m, ns, user);

	return r && pav_token_revoked(tok, r->at_ms);
}

static void ended(struct pav_wheel_node *n, void *arg)
{
	drop(arg, (struct revoked *)n);
}

void pav_mem_revoked_expire(struct pav_mem *m)
{
	pav_wheel_advance(&m->revoked_ends, pav_mono_ms() / 1000, ended, m);
}
