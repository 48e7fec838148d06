/*
 * conn_ids.h — the ids of one user's connections on this node, as the
 * store backends keep them (memory.h's struct user, redis_node.h's struct
 * rb_user): an unordered array grown on demand, since a user has a few.
 */
#ifndef PAV_CONN_IDS_H
#define PAV_CONN_IDS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define PAV_CONN_IDS_MIN 4

struct pav_conn_ids {
	uint64_t *v;
	size_t n, cap;
};

static inline int pav_conn_ids_has(const struct pav_conn_ids *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == id)
			return 1;
	return 0;
}

/* Appends id, which the caller knows is not there.  0 or -ENOMEM. */
static inline int pav_conn_ids_push(struct pav_conn_ids *l, uint64_t id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : PAV_CONN_IDS_MIN;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

/* 1 when id was there (the last one fills its place), else 0. */
static inline int pav_conn_ids_remove(struct pav_conn_ids *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] == id) {
			l->v[i] = l->v[--l->n];
			return 1;
		}
	}
	return 0;
}

static inline void pav_conn_ids_free(struct pav_conn_ids *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

#endif
