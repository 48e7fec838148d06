/* ids.c — the id grammar and random ids (see ids.h). */
#include "ids.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

#include "pav_limits.h"

int pav_id_valid(const char *s, size_t len)
{
	if (len < 1 || len > PAV_MAX_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int pav_random_u64(uint64_t *v)
{
	ssize_t n;

	do {
		n = getrandom(v, sizeof(*v), 0);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*v) ? 0 : -EIO;
}

int pav_random_id(char prefix, char *buf, size_t len)
{
	uint64_t v;

	if (len < 18)
		return -ENOSPC;
	if (pav_random_u64(&v))
		return -EIO;
	snprintf(buf, len, "%c%016" PRIx64, prefix, v);
	return 0;
}
