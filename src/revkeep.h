/*
 * revkeep.h — token revocations a node keeps in memory (the redis store's
 * copy of the ones it learnt), so that it can write them back into a Redis
 * that restarted empty and refuse a revoked token before that write-back.
 *
 * One record per user ("ns", user): the revocation's cut-off (wall clock,
 * as pav_token_revoked judges it) and its end (monotonic ms: the store's
 * key ends then, and the record can no longer matter after it).  A record
 * past its end is never answered and goes at the next put or expire.
 *
 * Bounded: at most `max` records.  A put into a full set drops the record
 * that ends first (the new one itself when it is that one) and says so:
 * the record dropped is still in the store, only the node's spare copy of
 * it is gone.  Times are the caller's (no clock is read here).
 */
#ifndef PAV_REVKEEP_H
#define PAV_REVKEEP_H

#include <stddef.h>
#include <stdint.h>

struct pav_revkeep;

/* NULL when out of memory; max >= 1. */
struct pav_revkeep *pav_revkeep_new(size_t max);
void pav_revkeep_free(struct pav_revkeep *k);

/*
 * Keeps (ns, user) -> at_ms until end_ms, replacing the user's record.
 * 0 kept; 1 kept or not, but a record was dropped to stay within max
 * (pav_revkeep_dropped counts them); nothing and 0 when end_ms <= now_ms;
 * -ENOMEM: not kept (a record dropped to make room for it stays dropped);
 * -EINVAL for a name holding 0x1f.
 */
int pav_revkeep_put(struct pav_revkeep *k, const char *ns, const char *user,
		    int64_t at_ms, int64_t end_ms, int64_t now_ms);
/* 1 and *at_ms when the user has a record that has not ended, else 0. */
int pav_revkeep_get(struct pav_revkeep *k, const char *ns, const char *user,
		    int64_t now_ms, int64_t *at_ms);
/* Drops every record that has ended by now_ms. */
void pav_revkeep_expire(struct pav_revkeep *k, int64_t now_ms);
/* Records held (ended ones not yet dropped included). */
size_t pav_revkeep_count(const struct pav_revkeep *k);
/* Records dropped to stay within max, since pav_revkeep_new. */
uint64_t pav_revkeep_dropped(const struct pav_revkeep *k);

/* fn for each record that has not ended by now_ms, in no particular
 * order; fn must not change k.  Stops when fn returns non-zero. */
typedef int (*pav_revkeep_fn)(const char *ns, const char *user, int64_t at_ms,
			      int64_t end_ms, void *arg);
void pav_revkeep_each(const struct pav_revkeep *k, int64_t now_ms,
		      pav_revkeep_fn fn, void *arg);

#endif
