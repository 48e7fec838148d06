/*
 * grow.h — room in a growing buffer.
 */
#ifndef PAV_GROW_H
#define PAV_GROW_H

#include <errno.h>
#include <stdlib.h>

/*
 * Makes *buf (room for *cap bytes) hold need: the room doubles, from
 * first, and stops at limit (need <= limit), so appending n bytes in
 * pieces copies O(n) of them, not O(n^2 / piece).  0, or -ENOMEM with
 * *buf and *cap as they were.
 */
static inline int pav_grow(char **buf, size_t *cap, size_t need,
			   size_t first, size_t limit)
{
	size_t ncap = *cap ? *cap : first ? first : 1;
	char *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap = ncap > limit / 2 ? limit : ncap * 2;
	if (ncap > limit)
		ncap = limit;
	if (!(p = realloc(*buf, ncap)))
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	return 0;
}

#endif
