/*
 * fuzz_redis_url.c — libFuzzer target for the Redis store's URL
 * (store.url, store.shards): each input, up to its first NUL, is handed to
 * pav_redis_parse_url.  Checked:
 *
 * - a refused URL has a reason and leaves no password allocated;
 * - an accepted one has a host, a port 1..65535 and a db 0..65535, no TLS
 *   context (the caller's to set), and written again (the same scheme,
 *   user and password %-encoded, the host in brackets when it needs them)
 *   it parses to the same fields, TLS or not included;
 * - with its password forgotten (pav_redis_url_forget_password) it parses
 *   to the same fields and no password.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

#define URL_MAX 4200

/* Appends s %-encoded (everything but letters and digits). */
static size_t put_encoded(char *out, size_t at, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9')) {
			out[at++] = (char)ch;
			continue;
		}
		out[at++] = '%';
		out[at++] = hex[ch >> 4];
		out[at++] = hex[ch & 15];
	}
	return at;
}

static void write_url(const struct pav_redis_config *c, char *out)
{
	size_t at = (size_t)sprintf(out, "redis%s://", c->tls ? "s" : "");
	int brackets = c->host[0] == '[' || strchr(c->host, ':');

	at = put_encoded(out, at, c->user);
	if (c->password) {
		out[at++] = ':';
		at = put_encoded(out, at, c->password);
	}
	if (c->user[0] || c->password)
		out[at++] = '@';
	sprintf(out + at, "%s%s%s:%d/%d", brackets ? "[" : "", c->host,
		brackets ? "]" : "", c->port, c->db);
}

static int same(const struct pav_redis_config *a,
		const struct pav_redis_config *b)
{
	if (!a->password != !b->password)
		return 0;
	return a->tls == b->tls && !strcmp(a->host, b->host) &&
	       a->port == b->port &&
	       a->db == b->db && !strcmp(a->user, b->user) &&
	       (!a->password || !strcmp(a->password, b->password));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pav_redis_config c, again;
	char *url = malloc(size + 1);
	static char out[3 * URL_MAX + 64];
	char err[256] = "";

	if (!url || size > URL_MAX)
		goto done;
	memcpy(url, data, size);
	url[size] = '\0';
	if (pav_redis_parse_url(url, &c, err, sizeof(err))) {
		if (!err[0] || c.password)
			abort();
		goto done;
	}
	if (!c.host[0] || c.port < 1 || c.port > 65535 || c.db < 0 ||
	    c.db > 65535 || strlen(c.user) >= sizeof(c.user) || c.tls_ctx ||
	    (c.tls != 0 && c.tls != 1) || c.tls != !strncmp(url, "rediss", 6))
		abort();
	write_url(&c, out);
	if (pav_redis_parse_url(out, &again, err, sizeof(err)) ||
	    !same(&c, &again)) {
		fprintf(stderr, "fuzz_redis_url: \"%s\" written again as \"%s\": "
			"%s\n", url, out, err[0] ? err : "other fields");
		abort();
	}
	pav_redis_config_clear(&again);
	/* its password forgotten in place: the same URL without one */
	pav_redis_url_forget_password(url);
	if (pav_redis_parse_url(url, &again, err, sizeof(err)) ||
	    again.password || again.tls != c.tls ||
	    strcmp(again.host, c.host) || again.port != c.port ||
	    again.db != c.db || strcmp(again.user, c.user)) {
		fprintf(stderr, "fuzz_redis_url: \"%s\" without its password: "
			"%s\n", url, err[0] ? err : "other fields");
		abort();
	}
	pav_redis_config_clear(&again);
	pav_redis_config_clear(&c);
done:
	free(url);
	return 0;
}
