/*
 * api_check.c — the internal API's pure parts: the request body's JSON
 * and the key comparison (payload shapes are the plugins').  No I/O; unit-tested
 * (test/unit/test_api.c) and fuzzed (test/fuzz/fuzz_api_body.c).
 */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "json_check.h"

#define API_JSON_DEPTH 16

json_object *pav_api_parse_body(const char *buf, size_t len, const char **why)
{
	return pav_json_parse_object(buf, len, API_JSON_DEPTH,
				     "body must be one JSON object", why);
}

const char *pav_api_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Keys are compared by their SHA-256: the time a comparison takes then
 * says nothing of a key's length either. */
int pav_api_key_digest(const char *key, struct pav_api_key *k)
{
	_Static_assert(sizeof(k->md) == SHA256_DIGEST_LENGTH, "SHA-256");
	return EVP_Digest(key, strlen(key), k->md, NULL, EVP_sha256(), NULL) ==
			       1
		       ? 0
		       : -ENOMEM;
}

int pav_api_key_ok(const struct pav_api_key *keys, size_t nkeys,
		   const char *presented)
{
	struct pav_api_key want;
	int ok = 0;

	if (!*presented || pav_api_key_digest(presented, &want))
		return 0;
	/* every key is compared, none is skipped */
	for (size_t i = 0; i < nkeys; i++)
		if (!CRYPTO_memcmp(keys[i].md, want.md, sizeof(want.md)))
			ok = 1;
	return ok;
}


int pav_api_check_path(const char *path, size_t len, const char **why)
{
	if (!len || path[0] != '/') {
		*why = "the path must start with /";
		return -EINVAL;
	}
	if (len > PAV_API_PATH_MAX) {
		*why = "path too long";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch < 0x20 || ch >= 0x7f) {
			*why = ch ? "the path holds a control or non-ASCII "
				    "character"
				  : "the path holds a NUL (%00)";
			return -EINVAL;
		}
	}
	return 0;
}

/* An address without port: family AF_INET (4 bytes) or AF_INET6 (16). */
struct bare_addr {
	int family;
	unsigned char a[16];
};

static size_t addr_len(const struct bare_addr *x)
{
	return x->family == AF_INET ? 4 : 16;
}

/* v4-mapped IPv6 addresses become the IPv4 address they carry. */
static void unmap(struct bare_addr *x)
{
	static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
						 0xff, 0xff};

	if (x->family == AF_INET6 && !memcmp(x->a, prefix, sizeof(prefix))) {
		memmove(x->a, x->a + 12, 4);
		x->family = AF_INET;
	}
}

/* The socket address's address and port; -EAFNOSUPPORT for others. */
static int from_sockaddr(const struct sockaddr *sa, struct bare_addr *x,
			 int *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		x->family = AF_INET;
		memcpy(x->a, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		x->family = AF_INET6;
		memcpy(x->a, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	unmap(x);
	return 0;
}

static int is_any(const struct bare_addr *x)
{
	static const unsigned char zero[16];

	return !memcmp(x->a, zero, addr_len(x));
}

int pav_api_listener_match(const struct sockaddr *local, const char *host,
			   int port)
{
	struct bare_addr got = {0}, want = {0};
	int got_port = -1;

	if (from_sockaddr(local, &got, &got_port) || got_port != port)
		return 0;
	if (inet_pton(AF_INET, host, want.a) == 1)
		want.family = AF_INET;
	else if (inet_pton(AF_INET6, host, want.a) == 1)
		want.family = AF_INET6;
	else
		return -ENOENT;
	unmap(&want);
	if (is_any(&want))
		return 1;
	return want.family == got.family &&
	       !memcmp(want.a, got.a, addr_len(&want));
}
