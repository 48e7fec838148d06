/*
 * test_redis_parse.c — the Redis client's readers of what is no reply
 * stream (src/redis_parse.c): sentinel addresses and master names from the
 * configuration, and the answers of SENTINEL get-master-addr-by-name,
 * ROLE and SUBSCRIBE +switch-master, each built from its RESP bytes by hiredis'
 * own reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis.h"

/* The one reply in resp (the test fails unless it is whole). */
static redisReply *reply_of(const char *resp)
{
	redisReader *rd = redisReaderCreate();
	void *rep = NULL;

	assert_non_null(rd);
	assert_int_equal(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &rep), REDIS_OK);
	assert_non_null(rep);
	redisReaderFree(rd);
	return rep;
}

/* pav_redis_sentinel_reply of resp: its result, host and port. */
static int master_of(const char *resp, char *host, size_t size, int *port)
{
	redisReply *rep = reply_of(resp);
	int rc = pav_redis_sentinel_reply(rep, host, size, port);

	freeReplyObject(rep);
	return rc;
}

static int role_of(const char *resp)
{
	redisReply *rep = reply_of(resp);
	int master = pav_redis_role_is_master(rep);

	freeReplyObject(rep);
	return master;
}

static void sentinel_addresses_are_parsed_with_a_default_port(void **state)
{
	struct pav_redis_sentinel s;
	char err[128];

	(void)state;
	assert_int_equal(pav_redis_parse_sentinel("10.0.0.1:26380", &s, err,
						  sizeof(err)), 0);
	assert_string_equal(s.host, "10.0.0.1");
	assert_int_equal(s.port, 26380);
	assert_int_equal(pav_redis_parse_sentinel("sentinel-1.internal", &s,
						  err, sizeof(err)), 0);
	assert_string_equal(s.host, "sentinel-1.internal");
	assert_int_equal(s.port, PAV_REDIS_SENTINEL_DEF_PORT);
	assert_int_equal(pav_redis_parse_sentinel("[::1]:7000", &s, err,
						  sizeof(err)), 0);
	assert_string_equal(s.host, "::1");
	assert_int_equal(s.port, 7000);
}

static void bad_sentinel_addresses_are_refused_with_a_reason(void **state)
{
	static const char *const bad[] = {
		"", ":26379", "h:0", "h:65536", "h:", "h:x", "a b:1", "h/1",
		"[::1", "[::1]x", "[10.0.0.1]:1", "user@h:1",
	};
	struct pav_redis_sentinel s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[128] = "";

		if (!pav_redis_parse_sentinel(bad[i], &s, err, sizeof(err)))
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(err[0]);
	}
	assert_int_equal(pav_redis_parse_sentinel(NULL, &s, NULL, 0), -EINVAL);
}

static void user_names_are_1_to_127_bytes(void **state)
{
	char longest[PAV_REDIS_USER_MAX + 2];

	(void)state;
	assert_true(pav_redis_user_ok("gw-1"));
	assert_true(pav_redis_user_ok("al:ce d@x")); /* as a URL's, decoded */
	assert_false(pav_redis_user_ok(""));
	assert_false(pav_redis_user_ok(NULL));
	memset(longest, 'u', sizeof(longest));
	longest[PAV_REDIS_USER_MAX] = '\0';
	assert_true(pav_redis_user_ok(longest));
	longest[PAV_REDIS_USER_MAX] = 'u';
	longest[PAV_REDIS_USER_MAX + 1] = '\0';
	assert_false(pav_redis_user_ok(longest));
}

/* pav_redis_switch_master of a C string for master "pavilion". */
static int switch_of(const char *msg, char *host, size_t size, int *port)
{
	return pav_redis_switch_master(msg, strlen(msg), "pavilion", host,
				       size, port);
}

static void switch_master_gives_the_new_address_of_our_master(void **state)
{
	char host[48];
	int port = 0;

	(void)state;
	assert_int_equal(switch_of("pavilion 10.0.0.1 6379 10.0.0.2 6380",
				   host, sizeof(host), &port), 0);
	assert_string_equal(host, "10.0.0.2");
	assert_int_equal(port, 6380);
	assert_int_equal(switch_of("pavilion ::1 6379 fe80::2 7000", host,
				   sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::2");
	assert_int_equal(port, 7000);
	/* not NUL-terminated: only len bytes are read */
	assert_int_equal(pav_redis_switch_master("pavilion 1.1.1.1 1 2.2.2.2 "
						 "22xyz", 29, "pavilion", host,
						 sizeof(host), &port), 0);
	assert_int_equal(port, 22);
}

static void switch_master_of_another_master_or_unusable_is_refused(
	void **state)
{
	static const char *const bad[] = {
		"", "pavilion", "pavilion 10.0.0.1 6379 10.0.0.2",
		"pavilion 10.0.0.1 6379 10.0.0.2 6380 x",
		"pavilion 10.0.0.1 6379 10.0.0.2 6380 ",
		"pavilion  10.0.0.1 6379 10.0.0.2 6380",
		"pavilion 10.0.0.1 6379 redis-2 6380",
		"pavilion 10.0.0.1 6379 10.0.0.2 0",
		"pavilion 10.0.0.1 6379 10.0.0.2 65536",
		"pavilion 10.0.0.1 6379 10.0.0.2 63x0",
		"pavilion 10.0.0.1 6379 10.0.0.2 -1",
	};
	char host[48], small[8];
	int port = 0;

	(void)state;
	assert_int_equal(switch_of("other 10.0.0.1 6379 10.0.0.2 6380", host,
				   sizeof(host), &port), -ENOENT);
	assert_int_equal(switch_of("pavilion2 10.0.0.1 6379 10.0.0.2 6380",
				   host, sizeof(host), &port), -ENOENT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (switch_of(bad[i], host, sizeof(host), &port) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
	/* an address longer than the buffer */
	assert_int_equal(switch_of("pavilion ::1 1 2001:db8::1 6380", small,
				   sizeof(small), &port), -EINVAL);
	assert_int_equal(pav_redis_switch_master(NULL, 0, "pavilion", host,
						 sizeof(host), &port),
			 -EINVAL);
}

static void master_names_are_letters_digits_dot_dash_underscore(void **state)
{
	char longest[PAV_REDIS_MASTER_NAME_MAX + 2];

	(void)state;
	assert_true(pav_redis_master_name_ok("pavilion"));
	assert_true(pav_redis_master_name_ok("my_master-1.eu"));
	assert_false(pav_redis_master_name_ok(""));
	assert_false(pav_redis_master_name_ok(NULL));
	assert_false(pav_redis_master_name_ok("my master"));
	assert_false(pav_redis_master_name_ok("a\r\nb"));
	memset(longest, 'm', sizeof(longest));
	longest[PAV_REDIS_MASTER_NAME_MAX] = '\0';
	assert_true(pav_redis_master_name_ok(longest));
	longest[PAV_REDIS_MASTER_NAME_MAX] = 'm';
	longest[PAV_REDIS_MASTER_NAME_MAX + 1] = '\0';
	assert_false(pav_redis_master_name_ok(longest));
}

static void sentinel_answer_gives_a_numeric_address_and_port(void **state)
{
	char host[64];
	int port = 0;

	(void)state;
	assert_int_equal(master_of("*2\r\n$8\r\n10.0.0.7\r\n$4\r\n6380\r\n",
				   host, sizeof(host), &port), 0);
	assert_string_equal(host, "10.0.0.7");
	assert_int_equal(port, 6380);
	assert_int_equal(master_of("*2\r\n$7\r\nfd00::7\r\n$5\r\n65535\r\n",
				   host, sizeof(host), &port), 0);
	assert_string_equal(host, "fd00::7");
	assert_int_equal(port, 65535);
}

static void sentinel_answer_nil_is_an_unknown_master(void **state)
{
	char host[64];
	int port;

	(void)state;
	assert_int_equal(master_of("*-1\r\n", host, sizeof(host), &port),
			 -ENOENT);
	assert_int_equal(master_of("$-1\r\n", host, sizeof(host), &port),
			 -ENOENT);
}

/* RESP bytes, NULs included */
#define RESP(lit) {lit, sizeof(lit) - 1}

static void sentinel_answers_it_cannot_use_are_refused(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		RESP("-ERR unknown command 'SENTINEL'\r\n"),
		RESP("+OK\r\n"),
		RESP(":1\r\n"),
		RESP("*0\r\n"),
		RESP("*1\r\n$8\r\n10.0.0.7\r\n"),
		RESP("*3\r\n$8\r\n10.0.0.7\r\n$4\r\n6380\r\n$1\r\nx\r\n"),
		RESP("*2\r\n$0\r\n\r\n$4\r\n6380\r\n"),
		RESP("*2\r\n$13\r\nredis.example\r\n$4\r\n6380\r\n"),
		RESP("*2\r\n$8\r\n10.0.0.7\r\n$1\r\n0\r\n"),
		RESP("*2\r\n$8\r\n10.0.0.7\r\n$5\r\n65536\r\n"),
		RESP("*2\r\n$8\r\n10.0.0.7\r\n$5\r\n-6380\r\n"),
		RESP("*2\r\n$8\r\n10.0.0.7\r\n$0\r\n\r\n"),
		RESP("*2\r\n$8\r\n10.0.0.7\r\n:6380\r\n"),
		RESP("*2\r\n$9\r\n10.0.0.7\0\r\n$4\r\n6380\r\n"),
		RESP("*2\r\n*1\r\n$1\r\nx\r\n$4\r\n6380\r\n"),
	};
	char host[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		redisReader *rd = redisReaderCreate();
		redisReply *rep = NULL;
		int port = 0;

		assert_int_equal(redisReaderFeed(rd, bad[i].s, bad[i].len),
				 REDIS_OK);
		assert_int_equal(redisReaderGetReply(rd, (void **)&rep),
				 REDIS_OK);
		assert_non_null(rep);
		if (pav_redis_sentinel_reply(rep, host, sizeof(host), &port) !=
		    -EINVAL)
			fail_msg("answer %zu accepted", i);
		freeReplyObject(rep);
		redisReaderFree(rd);
	}
}

static void sentinel_answer_longer_than_the_buffer_is_refused(void **state)
{
	char host[8];
	int port;

	(void)state;
	assert_int_equal(master_of("*2\r\n$8\r\n10.0.0.7\r\n$4\r\n6380\r\n",
				   host, sizeof(host), &port), -EINVAL);
	assert_int_equal(pav_redis_sentinel_reply(NULL, host, sizeof(host),
						  &port), -EINVAL);
}

static void role_is_master_only_for_a_master(void **state)
{
	(void)state;
	assert_true(role_of("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"));
	assert_false(role_of("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n"
			     ":6379\r\n$9\r\nconnected\r\n:0\r\n"));
	assert_false(role_of("*2\r\n$8\r\nsentinel\r\n*0\r\n"));
	assert_false(role_of("*0\r\n"));
	assert_false(role_of("-NOPERM no ROLE for you\r\n"));
	assert_false(role_of("+master\r\n"));
	assert_false(role_of("*1\r\n$7\r\nmasters\r\n"));
	assert_false(pav_redis_role_is_master(NULL));
}

static int subscribed_of(const char *resp)
{
	redisReply *rep = reply_of(resp);
	int yes = pav_redis_switch_subscribed(rep);

	freeReplyObject(rep);
	return yes;
}

/* The URL after pav_redis_url_forget_password(), and no byte of the
 * password left in its allocation (the old length's bytes). */
static void forgets(const char *url, const char *want, const char *pw)
{
	size_t n = strlen(url);
	char buf[128];

	assert_true(n < sizeof(buf));
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, url, n + 1);
	pav_redis_url_forget_password(buf);
	assert_string_equal(buf, want);
	for (size_t i = strlen(buf); i <= n; i++)
		assert_int_equal(buf[i], '\0');
	if (pw)
		assert_null(memmem(buf, n + 1, pw, strlen(pw)));
	assert_int_equal(buf[n + 1], 'x'); /* nothing written past it */
}

static void a_url_forgets_its_password_only(void **state)
{
	struct pav_redis_config cfg;

	(void)state;
	forgets("redis://u:s3cret@h:6380/2", "redis://u@h:6380/2", "s3cret");
	/* no user: the '@' goes too (an empty user info is refused) */
	forgets("rediss://:s3cret@[::1]", "rediss://[::1]", "s3cret");
	forgets("redis://:s@h/3", "redis://h/3", NULL);
	forgets("redis://gw%2D1:a%40b@h", "redis://gw%2D1@h", "a%40b");
	forgets("redis://u:a@b@h", "redis://u@h", "a@b"); /* the last @ */
	forgets("redis://u:@h", "redis://u@h", NULL);
	forgets("redis://u@h", "redis://u@h", NULL);
	forgets("redis://h:6379", "redis://h:6379", NULL);
	pav_redis_url_forget_password(NULL);
	/* what is left still reads: the user, no password */
	assert_int_equal(pav_redis_parse_url("redis://u@h:6380/2", &cfg, NULL,
					     0), 0);
	assert_string_equal(cfg.user, "u");
	assert_null(cfg.password);
	assert_int_equal(cfg.port, 6380);
}

/* What redis-server 7.0's sentinel answers to each SUBSCRIBE +switch-master
 * (the first and every one after), and nothing else. */
static void switch_subscribed_is_that_confirmation_only(void **state)
{
	(void)state;
	assert_true(subscribed_of("*3\r\n$9\r\nsubscribe\r\n"
				  "$14\r\n+switch-master\r\n:1\r\n"));
	assert_false(subscribed_of("*3\r\n$9\r\nsubscribe\r\n"
				   "$14\r\n+switch-master\r\n:2\r\n"));
	assert_false(subscribed_of("*3\r\n$9\r\nSUBSCRIBE\r\n"
				   "$14\r\n+switch-master\r\n:1\r\n"));
	assert_false(subscribed_of("*3\r\n$11\r\nunsubscribe\r\n"
				   "$14\r\n+switch-master\r\n:0\r\n"));
	assert_false(subscribed_of("*3\r\n$9\r\nsubscribe\r\n"
				   "$14\r\n+switch-mastex\r\n:1\r\n"));
	assert_false(subscribed_of("*3\r\n$9\r\nsubscribe\r\n"
				   "$14\r\n+switch-master\r\n$1\r\n1\r\n"));
	assert_false(subscribed_of("*3\r\n+subscribe\r\n"
				   "$14\r\n+switch-master\r\n:1\r\n"));
	assert_false(subscribed_of("*2\r\n$9\r\nsubscribe\r\n"
				   "$14\r\n+switch-master\r\n"));
	assert_false(subscribed_of("*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
	assert_false(subscribed_of("-NOPERM no\r\n"));
	assert_false(pav_redis_switch_subscribed(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sentinel_addresses_are_parsed_with_a_default_port),
		cmocka_unit_test(bad_sentinel_addresses_are_refused_with_a_reason),
		cmocka_unit_test(master_names_are_letters_digits_dot_dash_underscore),
		cmocka_unit_test(user_names_are_1_to_127_bytes),
		cmocka_unit_test(
			switch_master_gives_the_new_address_of_our_master),
		cmocka_unit_test(
			switch_master_of_another_master_or_unusable_is_refused),
		cmocka_unit_test(sentinel_answer_gives_a_numeric_address_and_port),
		cmocka_unit_test(sentinel_answer_nil_is_an_unknown_master),
		cmocka_unit_test(sentinel_answers_it_cannot_use_are_refused),
		cmocka_unit_test(sentinel_answer_longer_than_the_buffer_is_refused),
		cmocka_unit_test(role_is_master_only_for_a_master),
		cmocka_unit_test(switch_subscribed_is_that_confirmation_only),
		cmocka_unit_test(a_url_forgets_its_password_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
