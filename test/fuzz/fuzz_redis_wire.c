/*
 * fuzz_redis_wire.c — libFuzzer target for the header line of the Redis
 * broker's messages ("P1 <pub_id> <except> <kind> <key> <type> <offset>",
 * redis_broker.c), which every node reads from pub/sub.  Each input is
 * used twice:
 *
 * - as a header line (at most the 511 bytes a node reads) handed to
 *   pav_rb_wire_parse: a refused one is -EINVAL; an accepted one has kind
 *   'F', 'R' or 'S' and a type;
 * - as the parts of a publication: byte 0 chooses a NULL key and an except,
 *   bytes 1-8 are the pub_id, the rest is "key\0type".  For a non-empty
 *   key and type, the header that pav_rb_header writes, with an offset
 *   after it, parses back to the same fields; for a key and type of at
 *   most 64 bytes (what host publish lets through), it is shorter than
 *   what a node reads.
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
	if (!rc && (!strchr("FRS", w.kind) || !w.type))
		abort();
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_header(data, size);
	round_trip(data, size);
	return 0;
}
