/*
 * fuzz_redis_wire.c — libFuzzer target for the header line of the Redis
 * broker's messages ("P1 <pub_id> <except> <kind> <key> <type> <offset>",
 * redis_broker.c) and its token revocations ("V1 <ns> <user> <at_ms>
 * <ttl_ms>"), which every node reads from pub/sub.  Each input is used
 * four times:
 *
 * - as a header line (at most the 511 bytes a node reads) handed to
 *   pav_rb_wire_parse: a refused one is -EINVAL; an accepted one does not
 *   end with a space, and has kind 'F', 'R' or 'S' and a type, or kind 'V'
 *   with a namespace, a user and times within their bounds;
 * - as the parts of a publication: byte 0 chooses a NULL key and an except,
 *   bytes 1-8 are the pub_id, the rest is "key\0type".  For a non-empty
 *   key and type, the header that pav_rb_header writes, with an offset
 *   after it, parses back to the same fields; for a key and type of at
 *   most 64 bytes (what host publish lets through), it is shorter than
 *   what a node reads;
 * - as a revocation: the same "key\0type" as user and namespace, bytes 1-8
 *   as at_ms and ttl_ms (kept within their bounds): within the bounds of
 *   names, the message pav_rb_revocation_msg writes parses back to the
 *   same fields and is shorter than what a node reads;
 * - as a revocation's key read back from Redis: bytes 1-8 its PTTL, the
 *   rest "key\0value" handed to pav_rb_revoked_parse: a refused one is
 *   -EINVAL; an accepted one has names of the gateway's grammar, times
 *   within their bounds, and its key is the one pav_rb_ukey builds from
 *   them.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "redis_node.h"

#define HEADER_MAX 512 /* as redis_broker.c reads */
#define NODE "00c0ffee00c0ffee"

static void as_header(const uint8_t *data, size_t size)
{
	char hdr[HEADER_MAX];
	struct rb_wire w;
	int rc;

	if (size >= sizeof(hdr))
		size = sizeof(hdr) - 1;
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	rc = pav_rb_wire_parse(NODE, hdr, size, &w);
	if (rc && rc != -EINVAL)
		abort();
	if (!rc && (!strchr("FRSV", w.kind) || !w.type ||
		    (size && data[size - 1] == ' ')))
		abort();
	if (!rc && w.kind == 'V' &&
	    (!w.key || !*w.key || strlen(w.key) > PAV_MAX_ID_LEN ||
	     !*w.type || strlen(w.type) >= RB_NS_LEN || w.at_ms < 0 ||
	     w.ttl_ms < 1 || w.ttl_ms > RB_REVOKE_TTL_MAX_MS))
		abort();
}

/* user and ns as round_trip takes key and type */
static void revocation_trip(const uint8_t *data, size_t size)
{
	char parts[1100], *user = parts, *ns, *m;
	int64_t at_ms, ttl_ms;
	uint32_t a, t;
	struct rb_wire w;

	if (size < 9 || size - 9 >= sizeof(parts))
		return;
	memcpy(&a, data + 1, sizeof(a));
	memcpy(&t, data + 5, sizeof(t));
	at_ms = (int64_t)a * 1000003;
	ttl_ms = 1 + (int64_t)t % RB_REVOKE_TTL_MAX_MS;
	memcpy(parts, data + 9, size - 9);
	parts[size - 9] = '\0';
	if (strlen(user) == size - 9)
		return; /* no namespace */
	ns = user + strlen(user) + 1;
	if (!*user || strlen(user) > PAV_MAX_ID_LEN || !*ns ||
	    strlen(ns) >= RB_NS_LEN || ns + strlen(ns) != parts + (size - 9))
		return;
	m = pav_rb_revocation_msg(ns, user, at_ms, ttl_ms);
	if (!m || strlen(m) >= HEADER_MAX)
		abort();
	if (pav_rb_wire_parse(NODE, m, strlen(m), &w) || w.kind != 'V' ||
	    strcmp(w.key, user) || strcmp(w.type, ns) || w.at_ms != at_ms ||
	    w.ttl_ms != ttl_ms) {
		fprintf(stderr, "fuzz_redis_wire: a revocation did not parse "
			"back\n");
		abort();
	}
	free(m);
}

/* key and type: the NUL-terminated parts of data[9..size), copied */
static void round_trip(const uint8_t *data, size_t size)
{
	static struct rb b; /* pav_rb_header reads only its node */
	char parts[1100], *key = parts, *type, *end, *h, *line;
	uint64_t pub_id, except;
	struct rb_wire w;
	size_t klen, tlen;

	if (size < 9 || size - 9 >= sizeof(parts))
		return;
	memcpy(b.node, NODE, sizeof(NODE));
	memcpy(&pub_id, data + 1, sizeof(pub_id));
	except = data[0] & 2 ? pub_id ^ 0x5a5a : 0;
	memcpy(parts, data + 9, size - 9);
	end = parts + (size - 9);
	*end = '\0';
	klen = strlen(key);
	if (key + klen == end)
		return; /* no type */
	type = key + klen + 1;
	tlen = strlen(type);
	if (!klen || !tlen || type + tlen != end)
		return;
	if (data[0] & 1)
		key = NULL;
	h = pav_rb_header(&b, pub_id, except, 'F', key, type);
	line = h ? malloc(strlen(h) + 24) : NULL;
	if (!line)
		abort();
	sprintf(line, "%s%" PRIu64, h, pub_id >> 1);
	/* within what host publish lets through, a node reads it whole */
	if (klen <= PAV_MAX_ID_LEN && tlen <= PAV_MAX_ID_LEN &&
	    strlen(line) >= HEADER_MAX)
		abort();
	if (pav_rb_wire_parse(NODE, line, strlen(line), &w) ||
	    w.pub_id != pub_id || w.except != except || w.kind != 'F' ||
	    !key != !w.key || (key && strcmp(key, w.key)) ||
	    strcmp(type, w.type) || w.offset != pub_id >> 1) {
		fprintf(stderr, "fuzz_redis_wire: \"%s\" did not parse back\n",
			h);
		abort();
	}
	free(line);
	free(h);
}

/* 1 when s is a namespace as the configuration takes it. */
static int ns_ok(const char *s)
{
	size_t n = strlen(s);

	return n && n < RB_NS_LEN &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_.-") == n;
}

static void as_key(const uint8_t *data, size_t size)
{
	char parts[1100], *key = parts, *val;
	size_t klen, vlen;
	long long pttl;
	struct rb_revoked r;
	struct rb_argv a;
	int rc;

	if (size < 9 || size - 9 >= sizeof(parts))
		return;
	memcpy(&pttl, data + 1, sizeof(pttl));
	memcpy(parts, data + 9, size - 9);
	parts[size - 9] = '\0';
	/* the value is what follows the key's first NUL, NULs and all */
	klen = strlen(key);
	val = klen < size - 9 ? key + klen + 1 : key + klen;
	vlen = (size_t)(parts + (size - 9) - val);
	rc = pav_rb_revoked_parse(key, klen, val, vlen, pttl, &r);
	if (rc && rc != -EINVAL)
		abort();
	if (rc)
		return;
	if (!ns_ok(r.ns) || !pav_id_valid(r.user, strlen(r.user)) ||
	    r.at_ms < 0 || r.ttl_ms < 1 || r.ttl_ms > RB_REVOKE_TTL_MAX_MS)
		abort();
	pav_rb_av_init(&a);
	pav_rb_ukey(&a, r.ns, r.user, "revoked");
	if (a.oom || a.n != 1)
		abort();
	if (a.len[0] != klen || memcmp(a.v[0], key, klen)) {
		fprintf(stderr, "fuzz_redis_wire: \"%s\" is not the key of "
			"what it parsed to\n", key);
		abort();
	}
	pav_rb_av_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_header(data, size);
	round_trip(data, size);
	revocation_trip(data, size);
	as_key(data, size);
	return 0;
}
