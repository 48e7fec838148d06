/*
 * api_check.c — the internal API's pure parts: the request body's JSON
 * and the key comparison (payload shapes are the plugins').  No I/O; unit-tested
 * (test/unit/test_api.c) and fuzzed (test/fuzz/fuzz_api_body.c).
 */
#include "api.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

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

int pav_api_key_ok(char *const *keys, size_t nkeys, const char *presented)
{
	size_t plen = strlen(presented);
	int ok = 0;

	/* every key is compared, each in constant time for its length */
	for (size_t i = 0; i < nkeys; i++) {
		size_t klen = strlen(keys[i]);

		if (klen == plen && !CRYPTO_memcmp(keys[i], presented, klen))
			ok = 1;
	}
	return ok;
}

