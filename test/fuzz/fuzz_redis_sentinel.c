/*
 * fuzz_redis_sentinel.c — libFuzzer target for what the Redis client reads
 * when it follows Sentinel (redis_parse.c).  Each input is used twice:
 *
 * - as RESP bytes (the answers a sentinel or a server could send; with no
 *   multi-bulk count above 4096): every whole reply hiredis' reader makes
 *   of them is handed to pav_redis_sentinel_reply,
 *   pav_redis_role_is_master and pav_redis_switch_subscribed.  An accepted
 *   master address is a NUL-terminated numeric address shorter than the
 *   buffer, with a port 1..65535; a refused one is -ENOENT or -EINVAL;
 * - up to its first NUL, as a configured sentinel address and as a master
 *   name: an accepted address has a host that fits and a port 1..65535, a
 *   refused one a reason; an accepted name is 1..64 bytes; and as an ACL
 *   user name (store.sentinel's master_user, sentinel_user): an accepted
 *   one is 1..127 bytes;
 * - whole, as a +switch-master message for master "pavilion": an accepted
 *   one gives a NUL-terminated numeric address shorter than the buffer and
 *   a port 1..65535; a refused one is -ENOENT or -EINVAL.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "fuzz.h"
#include "redis.h"

#define TEXT_MAX 1024
#define MAX_REPLIES 64
#define MAX_ELEMENTS 4096

static void check_reply(const redisReply *rep)
{
	char host[48];
	int port = 0;
	int rc = pav_redis_sentinel_reply(rep, host, sizeof(host), &port);

	CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
	if (!rc) {
		CHECK(memchr(host, '\0', sizeof(host)) && host[0]);
		CHECK(port >= 1 && port <= 65535);
	}
	(void)pav_redis_role_is_master(rep);
	(void)pav_redis_switch_subscribed(rep);
}

/* hiredis 0.14's reader allocates a multi-bulk's element array as soon
 * as it reads the count (no maxelements before hiredis 1.0): an input
 * that announces more than MAX_ELEMENTS anywhere is not read as replies,
 * since it would test hiredis' allocation, not the gateway's reading. */
static int counts_small(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		unsigned long long n = 0;
		size_t j = i + 1;

		if (data[i] != '*')
			continue;
		if (j < size && data[j] == '-')
			continue;
		for (; j < size && data[j] >= '0' && data[j] <= '9'; j++)
			if ((n = n * 10 + (data[j] - '0')) > MAX_ELEMENTS)
				return 0;
	}
	return 1;
}

static void as_replies(const uint8_t *data, size_t size)
{
	redisReader *rd;

	if (!counts_small(data, size) || !(rd = redisReaderCreate()))
		return;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
		for (int i = 0; i < MAX_REPLIES; i++) {
			void *rep = NULL;

			if (redisReaderGetReply(rd, &rep) != REDIS_OK || !rep)
				break;
			check_reply(rep);
			freeReplyObject(rep);
		}
	}
	redisReaderFree(rd);
}

static void as_text(const uint8_t *data, size_t size)
{
	char text[TEXT_MAX + 1], err[160];
	struct pav_redis_sentinel s;
	size_t n = size < TEXT_MAX ? size : TEXT_MAX;

	memcpy(text, data, n);
	text[n] = '\0';
	err[0] = '\0';
	if (!pav_redis_parse_sentinel(text, &s, err, sizeof(err))) {
		CHECK(s.host[0] && memchr(s.host, '\0', sizeof(s.host)));
		CHECK(s.port >= 1 && s.port <= 65535);
	} else {
		CHECK(err[0]);
	}
	if (pav_redis_master_name_ok(text))
		CHECK(strlen(text) >= 1 &&
		      strlen(text) <= PAV_REDIS_MASTER_NAME_MAX);
	if (pav_redis_user_ok(text))
		CHECK(strlen(text) >= 1 && strlen(text) <= PAV_REDIS_USER_MAX);
}

static void as_switch_message(const uint8_t *data, size_t size)
{
	char host[48];
	int port = 0;
	int rc = pav_redis_switch_master((const char *)data, size, "pavilion",
					 host, sizeof(host), &port);

	CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
	if (!rc) {
		CHECK(memchr(host, '\0', sizeof(host)) && host[0]);
		CHECK(port >= 1 && port <= 65535);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_replies(data, size);
	as_text(data, size);
	as_switch_message(data, size);
	return 0;
}
