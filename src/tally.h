/*
 * tally.h — counts kept as the values of a pav_map, a count of 0 being no
 * entry: how the store backends count a channel's members by user (and
 * the redis backend a user's shared channels).
 */
#ifndef PAV_TALLY_H
#define PAV_TALLY_H

#include <stdint.h>

#include "map.h"

static inline int64_t pav_tally_get(const struct pav_map *m, const char *key)
{
	return (int64_t)(uintptr_t)pav_map_get(m, key);
}

/* Adds delta to key's count; at 0 or below the entry goes.  0 or
 * -ENOMEM. */
static inline int pav_tally_add(struct pav_map *m, const char *key,
				int64_t delta)
{
	int64_t n = pav_tally_get(m, key) + delta;

	if (n <= 0) {
		pav_map_del(m, key);
		return 0;
	}
	return pav_map_put(m, key, (void *)(uintptr_t)n);
}

#endif
