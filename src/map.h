/* map.h — a string-keyed hash map (open addressing), owned keys. */
#ifndef PAV_MAP_H
#define PAV_MAP_H

#include <stddef.h>

struct pav_map;

struct pav_map *pav_map_new(void);
/* Frees the map and its keys; free_val (may be NULL) on every value. */
void pav_map_free(struct pav_map *m, void (*free_val)(void *));
/* The value for key, or NULL. */
void *pav_map_get(const struct pav_map *m, const char *key);
/* Inserts or replaces (the key is copied).  0 or -ENOMEM. val != NULL. */
int pav_map_put(struct pav_map *m, const char *key, void *val);
/* Removes key; returns its value, or NULL when absent. */
void *pav_map_del(struct pav_map *m, const char *key);
size_t pav_map_count(const struct pav_map *m);
/* Calls fn for each entry in no particular order; stops when fn returns
 * non-zero.  fn must not change the map. */
void pav_map_each(const struct pav_map *m,
		  int (*fn)(const char *key, void *val, void *arg), void *arg);

#endif
