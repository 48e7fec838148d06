/*
 * api_query.c — a query string's whole numbers, for the API's own calls
 * and, through pav_host.query_number, the plugins' routes.  No I/O and no
 * libwebsockets, so the plugin tests' host table links it too.
 *
 * A query is "name=value" pairs joined by '&', as read_query() in api.c
 * joins lws' fragments.
 */
#include "api.h"

#include <string.h>

long pav_api_query_number(const char *q, const char *key, long def, long max)
{
	size_t kl = strlen(key);

	for (const char *p = q; p && *p;
	     p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		const char *v = p + kl + 1;
		long n = 0;

		if (strncmp(p, key, kl) || p[kl] != '=')
			continue;
		if (*v < '0' || *v > '9')
			return -1;
		for (; *v >= '0' && *v <= '9'; v++) {
			int d = *v - '0';

			/* past max, without passing LONG_MAX on the way */
			if (n > max / 10 || n * 10 > max - d)
				return -1;
			n = n * 10 + d;
		}
		return *v && *v != '&' ? -1 : n;
	}
	return def;
}

/* The pairs of q named key: "key=..." and a bare "key" alike. */
static size_t query_count(const char *q, const char *key, int *bare)
{
	size_t kl = strlen(key), n = 0;

	for (const char *p = q; p && *p;
	     p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, key, kl))
			continue;
		if (p[kl] == '=') {
			n++;
		} else if (!p[kl] || p[kl] == '&') {
			n++;
			*bare = 1;
		}
	}
	return n;
}

long pav_api_query_once(const char *q, const char *key, long def, long max)
{
	int bare = 0;
	size_t n = query_count(q, key, &bare);

	if (n > 1 || bare)
		return -1;
	return pav_api_query_number(q, key, def, max);
}
