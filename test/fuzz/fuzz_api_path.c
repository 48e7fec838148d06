/*
 * fuzz_api_path.c — libFuzzer target for the internal API's request
 * target: each input, up to its first NUL, is a path with an optional
 * "?query".  The path goes through pav_ns_route (the routes plugins
 * register, "{id}" segments captured) for GET, POST and DELETE, and
 * through pav_ns_path_known; the query through pav_api_query_number for a
 * few keys and limits.  Checked:
 *
 * - a route found for a method is one of that method; it captured one
 *   argument per "{id}" segment, and with no bad argument each one is a
 *   valid id and the route with its arguments put back is the path itself;
 * - pav_ns_path_known says yes exactly when some method found a route;
 * - a query number is what a plain reading of the query gives: the first
 *   "key=" pair (at the start or after '&') decides, its value all digits up
 *   to '&' or the end and at most max, else -1; no such pair, the default;
 * - pav_api_query_once is -1 where the key is named twice or bare, and the
 *   query number otherwise.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"
#include "ids.h"
#include "vhost.h"

#define TARGET_MAX 4200

/* The shipped plugins' routes, and two shapes a plugin may register: two
 * captures, and as many segments as a route may have. */
static const char *const patterns[][2] = {
	{"POST", "/v1/notifications"},
	{"GET", "/v1/users/{id}/notifications"},
	{"GET", "/v1/users/{id}/presence"},
	{"DELETE", "/v1/rooms/{room}/members/{id}"},
	{"GET", "/v1/a/{b}/c/{d}/e/{f}/{g}"},
};
#define NROUTES (sizeof(patterns) / sizeof(patterns[0]))

static struct pav_route routes[NROUTES];
static struct pav_ns ns = {.name = "fuzz", .routes = routes,
			   .nroutes = NROUTES};

static void setup(void)
{
	for (size_t i = 0; i < NROUTES; i++) {
		struct pav_route *r = &routes[i];
		char *save = NULL;

		strcpy(r->method, patterns[i][0]);
		CHECK((r->pattern = strdup(patterns[i][1])));
		for (char *p = strtok_r(r->pattern, "/", &save); p;
		     p = strtok_r(NULL, "/", &save)) {
			CHECK(r->nsegs < PAV_ROUTE_MAX_SEGS);
			r->segs[r->nsegs++] = p;
		}
	}
}

/* The route with its arguments in place of its "{...}" segments. */
static void put_back(const struct pav_route *r, const char **args,
		     char *out, size_t len)
{
	size_t at = 0, k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->nsegs; i++) {
		const char *s = r->segs[i][0] == '{' ? args[k++] : r->segs[i];
		size_t n = strlen(s);

		CHECK(at + 1 + n < len);
		out[at++] = '/';
		memcpy(out + at, s, n);
		at += n;
		out[at] = '\0';
	}
}

static int check_route(const char *method, const char *path)
{
	char buf[512], again[TARGET_MAX + 16];
	const char *args[PAV_ROUTE_MAX_SEGS];
	size_t nargs = 0, want = 0;
	int bad = 0;
	const struct pav_route *r = pav_ns_route(&ns, method, path, buf,
						 sizeof(buf), args, &nargs,
						 &bad);

	if (!r)
		return 0;
	CHECK(!strcmp(r->method, method));
	for (size_t i = 0; i < r->nsegs; i++)
		want += r->segs[i][0] == '{';
	CHECK(nargs == want);
	if (!bad) {
		for (size_t i = 0; i < nargs; i++)
			CHECK(pav_id_valid(args[i], strlen(args[i])));
		put_back(r, args, again, sizeof(again));
		CHECK(!strcmp(again, path));
	}
	return 1;
}

/* The query's number for key, read the plain way. */
static long reference(const char *q, const char *key, long def, long max)
{
	size_t kl = strlen(key);

	for (const char *p = q; *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			const char *v = p + kl + 1, *end = p + len;
			unsigned long long n = 0;

			if (v == end)
				return -1;
			for (; v < end; v++) {
				unsigned long long d, m = (unsigned long)max;

				if (*v < '0' || *v > '9')
					return -1;
				d = (unsigned long long)(*v - '0');
				/* n * 10 + d > m, without overflow */
				if (d > m || n > (m - d) / 10)
					return -1;
				n = n * 10 + d;
			}
			return (long)n;
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	return def;
}

/* query_once, read the plain way: the pairs named key ("key=..." or a
 * bare "key") counted first. */
static long reference_once(const char *q, const char *key, long def,
			   long max)
{
	size_t kl = strlen(key), named = 0;
	int bare = 0;

	for (const char *p = q; *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		if (len >= kl && !strncmp(p, key, kl) &&
		    (len == kl || p[kl] == '=')) {
			named++;
			bare |= len == kl;
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	if (named > 1 || bare)
		return -1;
	return reference(q, key, def, max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"limit", "unread", "l", "limit=",
					   "revoke_s"};
	static const long maxes[] = {0, 1, 10000, LONG_MAX};
	static int ready;
	char target[TARGET_MAX + 1], *query;
	int found = 0;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size > TARGET_MAX)
		size = TARGET_MAX;
	memcpy(target, data, size);
	target[size] = '\0';
	query = strchr(target, '?');
	if (query)
		*query++ = '\0';

	found |= check_route("GET", target);
	found |= check_route("POST", target);
	found |= check_route("DELETE", target);
	CHECK(pav_ns_path_known(&ns, target) == found);

	for (size_t k = 0; query && k < sizeof(keys) / sizeof(keys[0]); k++)
		for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
			CHECK(pav_api_query_number(query, keys[k], 50,
						   maxes[m]) ==
			      reference(query, keys[k], 50, maxes[m]));
			CHECK(pav_api_query_once(query, keys[k], 50,
						 maxes[m]) ==
			      reference_once(query, keys[k], 50, maxes[m]));
		}
	return 0;
}
