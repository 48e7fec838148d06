/*
 * map.c — string-keyed hash map: open addressing with linear probing.
 *
 * Linear probing keeps a lookup inside one or two cache lines at the load
 * factors we allow (< 0.7).  Each slot caches the key's full hash so a
 * probe compares strings only on a hash match, and growth never rehashes
 * a string.  Deletion uses backward shift instead of tombstones, so probe
 * chains never degrade under the add/remove churn of connections and
 * channels, and no periodic cleanup rehash is needed.
 */
#include "map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAP_MIN_CAP 16
/* Grow when count reaches 7/10 of capacity. */
#define MAP_LOAD_NUM 7
#define MAP_LOAD_DEN 10

struct slot {
	char *key; /* NULL: empty */
	void *val;
	uint64_t hash;
};

struct pav_map {
	struct slot *slots;
	size_t cap; /* power of two */
	size_t count;
};

/* FNV-1a, 64 bit: short keys ("ns\x1fuser", "zone:abc") hash in a few
 * cycles and spread well enough for linear probing. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* FNV's low bits mix poorly for similar keys; fold the high half in
	 * since the slot index uses only the low bits. */
	return h ^ (h >> 32);
}

struct pav_map *pav_map_new(void)
{
	struct pav_map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->slots = calloc(MAP_MIN_CAP, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return NULL;
	}
	m->cap = MAP_MIN_CAP;
	return m;
}

void pav_map_free(struct pav_map *m, void (*free_val)(void *))
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].key)
			continue;
		free(m->slots[i].key);
		if (free_val)
			free_val(m->slots[i].val);
	}
	free(m->slots);
	free(m);
}

/* The slot holding key, or the empty slot where it would go. */
static struct slot *find(const struct pav_map *m, const char *key,
			 uint64_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct slot *s = &m->slots[i];

		if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
			return s;
	}
}

void *pav_map_get(const struct pav_map *m, const char *key)
{
	return find(m, key, hash_str(key))->val;
}

/* Reinserts a known-absent entry during growth: no compare needed. */
static void place(struct slot *slots, size_t cap, const struct slot *e)
{
	size_t mask = cap - 1;
	size_t i = e->hash & mask;

	while (slots[i].key)
		i = (i + 1) & mask;
	slots[i] = *e;
}

static int grow(struct pav_map *m)
{
	size_t cap = m->cap * 2;
	struct slot *slots;

	if (cap < m->cap || cap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			place(slots, cap, &m->slots[i]);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

static int full(const struct pav_map *m)
{
	return (m->count + 1) * MAP_LOAD_DEN > m->cap * MAP_LOAD_NUM;
}

int pav_map_put(struct pav_map *m, const char *key, void *val)
{
	uint64_t h = hash_str(key);
	struct slot *s = find(m, key, h);
	char *copy;

	if (s->key) {
		s->val = val;
		return 0;
	}
	if (full(m)) {
		if (grow(m))
			return -ENOMEM;
		s = find(m, key, h);
	}
	copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	*s = (struct slot){.key = copy, .val = val, .hash = h};
	m->count++;
	return 0;
}

/* Backward-shift deletion: pull later entries of the probe run into the
 * hole while that does not move them before their home slot, so every
 * remaining key stays reachable without tombstones. */
static void close_hole(struct pav_map *m, size_t hole)
{
	size_t mask = m->cap - 1;

	for (size_t j = (hole + 1) & mask; m->slots[j].key;
	     j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		/* Movable when the hole lies on the path home..j. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole] = (struct slot){0};
}

void *pav_map_del(struct pav_map *m, const char *key)
{
	struct slot *s = find(m, key, hash_str(key));
	void *val = s->val;

	if (!s->key)
		return NULL;
	free(s->key);
	close_hole(m, (size_t)(s - m->slots));
	m->count--;
	return val;
}

size_t pav_map_count(const struct pav_map *m)
{
	return m->count;
}

void pav_map_each(const struct pav_map *m,
		  int (*fn)(const char *key, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && fn(m->slots[i].key, m->slots[i].val, arg))
			return;
}
