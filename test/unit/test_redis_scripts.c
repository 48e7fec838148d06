/*
 * test_redis_scripts.c — every Lua script of the "redis" backend
 * (src/redis_scripts.c) against a real redis-server, started here on a
 * free loopback port for the whole run and flushed before each test.  The
 * scripts are run with EVAL through a plain synchronous hiredis
 * connection; a second connection subscribes where a script publishes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "redis_scripts.h"
#include "redis_server.h"

static pid_t redis_pid;
static int redis_port;
static redisContext *R;   /* commands */
static redisContext *SUB; /* pub/sub, when a test listens */

/* ---- the server ----------------------------------------------------------- */

static redisContext *connect_redis(void)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);

	if (c && !c->err) {
		redisSetTimeout(c, tv);
		return c;
	}
	if (c)
		redisFree(c);
	return NULL;
}

static int group_setup(void **state)
{
	(void)state;
	redis_port = redis_server_free_port();
	redis_pid = redis_port > 0 ? redis_server_start(redis_port, NULL) : -1;
	if (redis_pid < 0 || !(R = connect_redis())) {
		fprintf(stderr, "redis-server did not start (installed?)\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (R)
		redisFree(R);
	redis_server_kill(&redis_pid);
	return 0;
}

static int setup(void **state)
{
	redisReply *r;

	(void)state;
	r = redisCommand(R, "FLUSHALL");
	assert_non_null(r);
	freeReplyObject(r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (SUB)
		redisFree(SUB);
	SUB = NULL;
	return 0;
}

/* ---- calling ---------------------------------------------------------------- */

#define MAX_ARGS 64

/* EVAL of script s: nkeys keys, then arguments; the list ends with NULL. */
static redisReply *ev(enum pav_rb_script s, int nkeys, ...)
{
	const char *argv[MAX_ARGS];
	char nk[8];
	int argc = 0;
	va_list ap;
	redisReply *r;

	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = pav_rb_lua[s];
	argv[argc++] = nk;
	va_start(ap, nkeys);
	for (const char *a = va_arg(ap, const char *); a && argc < MAX_ARGS;
	     a = va_arg(ap, const char *))
		argv[argc++] = a;
	va_end(ap);
	r = redisCommandArgv(R, argc, argv, NULL);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("script %d failed: %s", (int)s, r->str);
	return r;
}

static long long cmd_int(const char *fmt, ...)
{
	va_list ap;
	redisReply *r;
	long long v;

	va_start(ap, fmt);
	r = redisvCommand(R, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	else
		v = -1; /* nil */
	freeReplyObject(r);
	return v;
}

/* The string reply of a command, "" for nil. */
static void cmd_str(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(R, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	snprintf(out, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

static long long el_int(const redisReply *r, size_t i)
{
	assert_true(i < r->elements);
	if (r->element[i]->type == REDIS_REPLY_INTEGER)
		return r->element[i]->integer;
	if (r->element[i]->type == REDIS_REPLY_STRING)
		return strtoll(r->element[i]->str, NULL, 10);
	return -1;
}

static const char *el_str(const redisReply *r, size_t i)
{
	assert_true(i < r->elements);
	return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str
							  : NULL;
}

static void listen_to(const char *channel)
{
	redisReply *r;

	SUB = connect_redis();
	assert_non_null(SUB);
	r = redisCommand(SUB, "SUBSCRIBE %s", channel);
	assert_non_null(r);
	freeReplyObject(r);
}

/* The data of the next message on SUB, copied into out. */
static void next_message(char *out, size_t len)
{
	redisReply *r = NULL;

	assert_int_equal(redisGetReply(SUB, (void **)&r), REDIS_OK);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 3);
	assert_string_equal(r->element[0]->str, "message");
	snprintf(out, len, "%.*s", (int)r->element[2]->len, r->element[2]->str);
	freeReplyObject(r);
}

#define UC "pav:{u:ns:alice}:conns"
#define NU "pav:{n:A}:users"
#define UP "pav:{u:ns:alice}:presence"
#define UR "pav:{u:ns:alice}:revoked"
#define IAT "1800000000" /* a token's iat, of no revocation here */

/* ---- connections ------------------------------------------------------------ */

static void conn_add_counts_once_and_stops_at_max(void **state)
{
	redisReply *r;

	(void)state;
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:1", "A", "2",
	       "ns\x1f" "alice", IAT, NULL);
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(el_int(r, 1), 1);
	freeReplyObject(r);
	/* the same id again: not counted twice */
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:1", "A", "2",
	       "ns\x1f" "alice", IAT, NULL);
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(el_int(r, 1), 1);
	assert_string_equal(el_str(r, 2), ""); /* no status yet */
	freeReplyObject(r);
	/* a node counting a user's connection learns the stored status */
	cmd_int("HSET %s status away", UP);
	r = ev(PAV_RB_CONN_ADD, 4, UC, "pav:{n:B}:users", UP, UR, "B:7", "B", "2",
	       "ns\x1f" "alice", IAT, NULL);
	assert_int_equal(el_int(r, 1), 2);
	assert_string_equal(el_str(r, 2), "away");
	freeReplyObject(r);
	/* over the cap: refused, nothing added */
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:2", "A", "2",
	       "ns\x1f" "alice", IAT, NULL);
	assert_int_equal(el_int(r, 0), 0);
	assert_int_equal(el_int(r, 1), 2);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HLEN %s", UC), 2);
	assert_int_equal(cmd_int("HEXISTS %s A:2", UC), 0);
	assert_int_equal(cmd_int("SISMEMBER %s ns\x1f" "alice", NU), 1);
	/* max 0: no cap */
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:3", "A", "0",
	       "ns\x1f" "alice", IAT, NULL);
	assert_int_equal(el_int(r, 1), 3);
	freeReplyObject(r);
}

/* A token revocation refuses, in the same step, a token issued at or
 * before its time, or without iat; a later one, or none asked about
 * ('-'), is counted. */
static void conn_add_refuses_a_token_the_revocation_covers(void **state)
{
	static const char *const refused[] = {"1800000000", "1799999999.5",
					      ""};
	redisReply *r;

	(void)state;
	cmd_int("SET %s 1800000000000 EX 60", UR);
	for (size_t i = 0; i < 3; i++) {
		r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:1", "A", "0",
		       "ns\x1f" "alice", refused[i], NULL);
		assert_int_equal(el_int(r, 0), -1);
		assert_int_equal(el_int(r, 1), 0);
		freeReplyObject(r);
	}
	assert_int_equal(cmd_int("EXISTS %s", UC), 0);
	assert_int_equal(cmd_int("SISMEMBER %s ns\x1f" "alice", NU), 0);
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:1", "A", "0",
	       "ns\x1f" "alice", "1800000000.001", NULL);
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(el_int(r, 1), 1);
	freeReplyObject(r);
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:2", "A", "0",
	       "ns\x1f" "alice", "-", NULL);
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(el_int(r, 1), 2);
	freeReplyObject(r);
	/* once the key has gone, the old token counts again */
	cmd_int("DEL %s", UR);
	r = ev(PAV_RB_CONN_ADD, 4, UC, NU, UP, UR, "A:3", "A", "0",
	       "ns\x1f" "alice", "", NULL);
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(el_int(r, 1), 3);
	freeReplyObject(r);
}

/* A revocation never lowers the cut-off its key holds; a later one (or,
 * from the API, the same) replaces time and end; a write-back of the
 * same one (keep_equal) leaves the key as it is. */
static void tokens_revoke_never_lowers_the_cut_off(void **state)
{
	redisReply *r;
	long long pttl;
	char msg[16];

	(void)state;
	listen_to("pav:revoked");
	r = ev(PAV_RB_TOKENS_REVOKE, 1, UR, "1800000000000", "60000", "0",
	       "pav:revoked", "m1", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(cmd_int("GET %s", UR), 1800000000000LL);
	pttl = cmd_int("PTTL %s", UR);
	assert_true(pttl > 59000 && pttl <= 60000);
	/* older: kept as it is */
	r = ev(PAV_RB_TOKENS_REVOKE, 1, UR, "1799999999999", "900000", "0",
	       "pav:revoked", "m2", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_int_equal(cmd_int("GET %s", UR), 1800000000000LL);
	assert_true(cmd_int("PTTL %s", UR) <= 60000);
	/* the same, written back: kept; from the API: its new end */
	r = ev(PAV_RB_TOKENS_REVOKE, 1, UR, "1800000000000", "900000", "1",
	       "pav:revoked", "m3", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_true(cmd_int("PTTL %s", UR) <= 60000);
	r = ev(PAV_RB_TOKENS_REVOKE, 1, UR, "1800000000000", "900000", "0",
	       "pav:revoked", "m4", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_true(cmd_int("PTTL %s", UR) > 60000);
	/* later: replaces time and end */
	r = ev(PAV_RB_TOKENS_REVOKE, 1, UR, "1800000000001", "5000", "1",
	       "pav:revoked", "m5", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(cmd_int("GET %s", UR), 1800000000001LL);
	assert_true(cmd_int("PTTL %s", UR) <= 5000);
	/* what was written was published, in order, and nothing else */
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, "m1");
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, "m4");
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, "m5");
}

/* The catch-up's step answers each revocation key with its value and
 * PTTL, nil for a key of another type (the step goes on), and walks the
 * whole keyspace with SCAN's cursor. */
static void revoked_scan_reads_each_key_with_its_end(void **state)
{
	char cursor[24] = "0", key[64];
	int seen[2500] = {0};
	size_t keys = 0, others = 0;
	redisReply *r;

	(void)state;
	for (int i = 0; i < 2500; i++)
		cmd_int("SET pav:{u:ns:u%d}:revoked %d PX 60000", i, 1000 + i);
	cmd_int("HSET pav:{u:ns:h}:revoked a b");
	cmd_int("SET pav:{u:ns:x}:inbox 1");
	do {
		r = ev(PAV_RB_REVOKED_SCAN, 0, cursor, "pav:{u:*}:revoked",
		       "1000", NULL);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_true(r->elements >= 1 && (r->elements - 1) % 3 == 0);
		assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 1; i < r->elements; i += 3) {
			const redisReply *k = r->element[i];
			const redisReply *v = r->element[i + 1];
			const redisReply *t = r->element[i + 2];
			int n;

			assert_int_equal(k->type, REDIS_REPLY_STRING);
			assert_int_equal(t->type, REDIS_REPLY_INTEGER);
			if (!strcmp(k->str, "pav:{u:ns:h}:revoked")) {
				assert_int_equal(v->type, REDIS_REPLY_NIL);
				assert_int_equal(t->integer, -1);
				others = 1; /* SCAN may answer it twice */
				continue;
			}
			assert_int_equal(sscanf(k->str, "pav:{u:ns:u%d}", &n),
					 1);
			assert_true(n >= 0 && n < 2500);
			snprintf(key, sizeof(key), "%d", 1000 + n);
			assert_int_equal(v->type, REDIS_REPLY_STRING);
			assert_string_equal(v->str, key);
			assert_true(t->integer > 59000 && t->integer <= 60000);
			keys += !seen[n]; /* SCAN may answer a key twice */
			seen[n] = 1;
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0"));
	assert_int_equal(keys, 2500);
	assert_int_equal(others, 1);
}

static void conn_remove_leaves_node_set_with_its_last(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("HSET %s A:1 A A:2 A B:1 B", UC);
	cmd_int("SADD %s ns\x1f" "alice", NU);
	r = ev(PAV_RB_CONN_REMOVE, 2, UC, NU, "A:1", "A", "ns\x1f" "alice",
	       NULL);
	assert_int_equal(r->integer, 2);
	freeReplyObject(r);
	assert_int_equal(cmd_int("SISMEMBER %s ns\x1f" "alice", NU), 1);
	r = ev(PAV_RB_CONN_REMOVE, 2, UC, NU, "A:2", "A", "ns\x1f" "alice",
	       NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(cmd_int("SISMEMBER %s ns\x1f" "alice", NU), 0);
	/* an unknown id changes nothing */
	r = ev(PAV_RB_CONN_REMOVE, 2, UC, NU, "A:9", "A", "ns\x1f" "alice",
	       NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
}

/* ---- presence ------------------------------------------------------------------ */

/* an applied status also goes to the user's feed, for the other nodes */
#define SH "P1 0 - S - status "
#define UF "pav:p:ns:user:alice"

static void presence_get_of_an_unknown_user_is_empty(void **state)
{
	redisReply *r;

	(void)state;
	r = ev(PAV_RB_PRESENCE_GET, 2, UP, UC, NULL);
	assert_int_equal(r->elements, 3);
	assert_int_equal(r->element[0]->type, REDIS_REPLY_NIL);
	assert_int_equal(r->element[1]->type, REDIS_REPLY_NIL);
	assert_int_equal(el_int(r, 2), 0);
	freeReplyObject(r);
	cmd_int("HSET %s status busy last 1234", UP);
	cmd_int("HSET %s A:1 A", UC);
	r = ev(PAV_RB_PRESENCE_GET, 2, UP, UC, NULL);
	assert_string_equal(el_str(r, 0), "busy");
	assert_int_equal(el_int(r, 1), 1234);
	assert_int_equal(el_int(r, 2), 1);
	freeReplyObject(r);
}

static void presence_set_checks_when_and_unchanged(void **state)
{
	redisReply *r;
	char msg[64];

	(void)state;
	/* if connected, with none: not applied */
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "online", "1", "0", "1000", SH,
	       UF, NULL);
	assert_int_equal(el_int(r, 0), 0);
	assert_string_equal(el_str(r, 1), "offline");
	freeReplyObject(r);
	assert_int_equal(cmd_int("EXISTS %s", UP), 0);
	/* two connections (maybe on two nodes): the status goes to the
	 * user's feed too */
	cmd_int("HSET %s A:1 A B:1 B", UC);
	listen_to(UF);
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "online", "1", "5000", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 1);
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, SH "0\nonline");
	assert_string_equal(el_str(r, 1), "online");
	assert_int_equal(el_int(r, 2), 5000);
	assert_int_equal(el_int(r, 3), 2);
	freeReplyObject(r);
	assert_true(cmd_int("PTTL %s", UP) > 90000);
	/* unchanged: not applied, the stored one answered */
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "online", "0", "9000", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 0);
	assert_int_equal(el_int(r, 2), 5000);
	freeReplyObject(r);
	/* if disconnected, with one: not applied */
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "offline", "2", "0", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 0);
	freeReplyObject(r);
	cmd_int("DEL %s", UC);
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "offline", "2", "0", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 1);
	/* at 0: Redis' clock */
	assert_true(llabs(el_int(r, 2) - pav_now_ms()) < 5000);
	freeReplyObject(r);
}

/* 'chosen': what the user set (even unchanged) or an opening set; a
 * close leaves it, for a node taken for dead to restore. */
static void presence_set_keeps_the_chosen_status(void **state)
{
	redisReply *r;
	char st[16];

	(void)state;
	cmd_int("HSET %s A:1 A", UC);
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "online", "1", "0", "100000",
	       SH, UF, NULL);
	freeReplyObject(r);
	cmd_str(st, sizeof(st), "HGET %s chosen", UP);
	assert_string_equal(st, "online");
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "away", "0", "0", "100000", SH,
	       UF, NULL);
	freeReplyObject(r);
	cmd_str(st, sizeof(st), "HGET %s chosen", UP);
	assert_string_equal(st, "away");
	cmd_int("DEL %s", UC);
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "offline", "2", "0", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 1);
	freeReplyObject(r);
	cmd_str(st, sizeof(st), "HGET %s chosen", UP);
	assert_string_equal(st, "away");
	/* unchanged, set by the user: chosen all the same */
	cmd_int("HSET %s A:1 A", UC);
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "offline", "0", "0", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 0);
	freeReplyObject(r);
	cmd_str(st, sizeof(st), "HGET %s chosen", UP);
	assert_string_equal(st, "offline");
}

/* A reaper's offline ('owed') is announced by the close that follows it,
 * though the status is offline already. */
static void presence_set_announces_an_owed_offline(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("HSET %s status offline last 7 owed 1 chosen busy", UP);
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "offline", "2", "7", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(el_int(r, 2), 7);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HEXISTS %s owed", UP), 0);
	assert_int_equal(cmd_int("HEXISTS %s chosen", UP), 1);
	/* once: the next is unchanged */
	r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "offline", "2", "9", "100000",
	       SH, UF, NULL);
	assert_int_equal(el_int(r, 0), 0);
	freeReplyObject(r);
}

/* The stamp the script writes is what pav_format_time() writes. */
static void presence_set_announces_with_its_time(void **state)
{
	static const int64_t times[] = {
		0 + 1, 951782400123LL /* 2000-02-29 */, 1709208000999LL,
		4107542400000LL /* 2100-03-01 */, 1735689599999LL,
		253402300799999LL /* 9999-12-31 */, 68169600000LL,
	};
	char at[32], msg[512], want[512], when[PAV_TIME_LEN];

	(void)state;
	listen_to("pav:p:ns:zone:z");
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		redisReply *r;

		cmd_int("DEL %s", UP);
		snprintf(at, sizeof(at), "%lld", (long long)times[i]);
		r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "away", "0", at,
		       "100000", SH, UF, "P1 9 - F - status_update ",
		       "{\"payload\":{\"lastActive\":\"", "\"}}", "1",
		       "pav:p:ns:zone:z", NULL);
		assert_int_equal(el_int(r, 0), 1);
		freeReplyObject(r);
		next_message(msg, sizeof(msg));
		pav_format_time(times[i], when, sizeof(when));
		snprintf(want, sizeof(want),
			 "P1 9 - F - status_update 0\n"
			 "{\"payload\":{\"lastActive\":\"%s\"}}", when);
		assert_string_equal(msg, want);
	}
	/* without a stamp the frame goes as it is */
	{
		redisReply *r = ev(PAV_RB_PRESENCE_SET, 2, UP, UC, "busy", "0",
				   "0", "100000", SH, UF, "H ", "{\"a\":", "1}", "0",
				   "pav:p:ns:zone:z", NULL);

		freeReplyObject(r);
		next_message(msg, sizeof(msg));
		assert_string_equal(msg, "H 0\n{\"a\":1}");
	}
}

/* ---- notifications -------------------------------------------------------------- */

#define IB "pav:{u:ns:alice}:inbox"
#define IT "pav:{u:ns:alice}:inbox:t"
#define RD "pav:{u:ns:alice}:read"
#define NW "pav:{u:ns:alice}:inbox:new"
#define NS "pav:{u:ns:alice}:inbox:s"
#define IC "pav:{u:ns:alice}:inbox:c"
#define IQ "pav:{u:ns:alice}:inbox:seq"
#define INBOX IB, IT, RD, NW, NS, IC, IQ

/* Stages a notification: its createdAt, or -1 when the id is taken. */
static long long stage_note(const char *id, const char *size)
{
	redisReply *r = ev(PAV_RB_INBOX_ADD, 7, INBOX, id,
			   "{\"type\":\"t\",\"content\":\"c\"}", size,
			   "100000", NULL);
	long long t = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
						      : -1;

	freeReplyObject(r);
	return t;
}

/* Publishes the delivery of notification id on alice's user channel. */
static void deliver_note(const char *id, const char *size)
{
	redisReply *r = ev(PAV_RB_PUBLISH, 11, "pav:{c:ns:user:alice}:meta",
			   "pav:{c:ns:user:alice}:hist",
			   "pav:{c:ns:user:alice}:seq", "pav:{c:ns:user:alice}:n",
			   INBOX, "pav:p:ns:user:alice", "P1 0 - F ", "{}", "",
			   "0", "1000", "e", "0", id, size, "100000", NULL);

	freeReplyObject(r);
}

static long long add_note(const char *id, const char *size)
{
	long long t = stage_note(id, size);

	if (t > 0)
		deliver_note(id, size);
	return t;
}

static redisReply *list(const char *since, const char *unread,
			const char *limit)
{
	return ev(PAV_RB_INBOX_LIST, 7, INBOX, since, unread, limit, "100",
		  "100000", "", "0", NULL);
}

static void inbox_add_orders_evicts_and_refuses_a_taken_id(void **state)
{
	long long t[6];
	char id[8];

	(void)state;
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "n%d", i);
		t[i] = add_note(id, "4");
		assert_true(t[i] > 0);
		if (i)
			assert_true(t[i] > t[i - 1]); /* ties are bumped */
	}
	assert_true(llabs(t[0] - pav_now_ms()) < 5000);
	assert_int_equal(cmd_int("ZCARD %s", IT), 4);
	assert_int_equal(cmd_int("HLEN %s", IB), 4);
	assert_int_equal(cmd_int("HEXISTS %s n1", IB), 0); /* the oldest went */
	assert_int_equal(cmd_int("HEXISTS %s n2", IB), 1);
	assert_true(cmd_int("PTTL %s", IB) > 90000);
	assert_true(cmd_int("PTTL %s", IT) > 90000);
	assert_int_equal(cmd_int("EXISTS %s %s", NW, NS), 0);
	/* a read mark goes with its notification */
	cmd_int("SADD %s n2", RD);
	add_note("n9", "4");
	assert_int_equal(cmd_int("SISMEMBER %s n2", RD), 0);
	/* a taken id: nil, nothing changed */
	assert_int_equal(add_note("n5", "4"), -1);
	assert_int_equal(cmd_int("ZCARD %s", IT), 4);
}

/* Added is not yet listed: a notification enters the inbox in the step
 * that publishes its delivery (or 10 s later if that never happens). */
static void a_notification_enters_the_inbox_with_its_delivery(void **state)
{
	char old[24];
	redisReply *r;
	long long t;

	(void)state;
	t = stage_note("n1", "10");
	assert_true(t > 0);
	assert_int_equal(stage_note("n1", "10"), -1); /* staged: taken */
	r = list("0", "0", "0");
	assert_int_equal(r->elements, 0);
	freeReplyObject(r);
	r = ev(PAV_RB_INBOX_MARK_READ, 2, IB, RD, "n1", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	/* a publication without its key, or of another key: still staged */
	deliver_note("n2", "10");
	r = list("0", "0", "0");
	assert_int_equal(r->elements, 0);
	freeReplyObject(r);
	deliver_note("n1", "10");
	r = list("0", "0", "0");
	assert_int_equal(r->elements, 4);
	assert_string_equal(el_str(r, 0), "n1");
	assert_int_equal(el_int(r, 1), t); /* its createdAt */
	freeReplyObject(r);
	assert_int_equal(cmd_int("EXISTS %s %s", NW, NS), 0);
	/* never delivered: listed once 10 s old */
	stage_note("n3", "10");
	snprintf(old, sizeof(old), "%lld", (long long)pav_now_ms() - 11000);
	cmd_int("ZADD %s %s n3", NS, old);
	r = list("0", "0", "0");
	assert_int_equal(r->elements, 8);
	assert_string_equal(el_str(r, 0), "n3");
	freeReplyObject(r);
}

/* A list read for a replay publishes the caller's fence number last. */
static void inbox_list_publishes_its_fence(void **state)
{
	char msg[64];
	redisReply *r;

	(void)state;
	listen_to("pav:f:A");
	r = ev(PAV_RB_INBOX_LIST, 7, INBOX, "0", "0", "0", "100", "100000",
	       "pav:f:A", "42", NULL);
	freeReplyObject(r);
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, "42");
}

static void inbox_list_since_unread_and_limit(void **state)
{
	redisReply *r;
	char since[24];

	(void)state;
	cmd_int("ZADD %s 100 a 200 b 300 c 400 d", IT);
	cmd_int("HSET %s a {\"id\":\"a\"} b {\"id\":\"b\"} c {\"id\":\"c\"} d "
		"{\"id\":\"d\"}", IB);
	cmd_int("SADD %s c", RD);
	r = list("0", "0", "0");
	assert_int_equal(r->elements, 16);
	assert_string_equal(el_str(r, 0), "a"); /* oldest first */
	assert_int_equal(el_int(r, 1), 100);
	assert_string_equal(el_str(r, 2), "{\"id\":\"a\"}");
	assert_int_equal(el_int(r, 3), 0);
	assert_string_equal(el_str(r, 8), "c");
	assert_int_equal(el_int(r, 11), 1);
	freeReplyObject(r);
	/* since is exclusive */
	snprintf(since, sizeof(since), "200");
	r = list(since, "0", "0");
	assert_int_equal(r->elements, 8);
	assert_string_equal(el_str(r, 0), "c");
	freeReplyObject(r);
	/* the newest 2 unread: b and d */
	r = list("0", "1", "2");
	assert_int_equal(r->elements, 8);
	assert_string_equal(el_str(r, 0), "b");
	assert_string_equal(el_str(r, 4), "d");
	freeReplyObject(r);
	/* the newest 3 */
	r = list("0", "0", "3");
	assert_int_equal(r->elements, 12);
	assert_string_equal(el_str(r, 0), "b");
	freeReplyObject(r);
	r = ev(PAV_RB_INBOX_LIST, 7, "pav:{u:ns:x}:inbox", "pav:{u:ns:x}:inbox:t",
	       "pav:{u:ns:x}:read", "pav:{u:ns:x}:inbox:new",
	       "pav:{u:ns:x}:inbox:s", "pav:{u:ns:x}:inbox:c",
	       "pav:{u:ns:x}:inbox:seq", "0", "0", "0", "100", "100000", "",
	       "0", NULL);
	assert_int_equal(r->elements, 0);
	freeReplyObject(r);
}

/* n1 staged before n2 but entering the inbox after it: a read since n2's
 * createdAt holds n1 (older, listed first), n2 itself not (exclusive). */
static void inbox_list_since_holds_what_entered_late(void **state)
{
	char since[24];
	redisReply *r;
	long long t1, t2;

	(void)state;
	t1 = stage_note("n1", "10");
	t2 = stage_note("n2", "10");
	assert_true(t2 > t1);
	deliver_note("n2", "10");
	deliver_note("n1", "10");
	assert_true(cmd_int("PTTL %s", IC) > 90000);
	assert_true(cmd_int("PTTL %s", IQ) > 90000);
	snprintf(since, sizeof(since), "%lld", t2);
	r = list(since, "0", "0");
	assert_int_equal(r->elements, 4);
	assert_string_equal(el_str(r, 0), "n1");
	assert_int_equal(el_int(r, 1), t1);
	freeReplyObject(r);
	/* a newer one comes first within a limit */
	add_note("n3", "10");
	r = list(since, "0", "1");
	assert_int_equal(r->elements, 4);
	assert_string_equal(el_str(r, 0), "n3");
	freeReplyObject(r);
	/* since before both: each once, in createdAt order */
	snprintf(since, sizeof(since), "%lld", t1 - 1);
	r = list(since, "0", "0");
	assert_int_equal(r->elements, 12);
	assert_string_equal(el_str(r, 0), "n1");
	assert_string_equal(el_str(r, 4), "n2");
	assert_string_equal(el_str(r, 8), "n3");
	freeReplyObject(r);
	/* evicted ones leave inbox:c too */
	add_note("n4", "2");
	assert_int_equal(cmd_int("ZCARD %s", IC), 2);
}

static void inbox_mark_read_knows_only_this_inbox(void **state)
{
	redisReply *r;

	(void)state;
	add_note("n1", "10");
	r = ev(PAV_RB_INBOX_MARK_READ, 2, IB, RD, "n2", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_int_equal(cmd_int("EXISTS %s", RD), 0);
	r = ev(PAV_RB_INBOX_MARK_READ, 2, IB, RD, "n1", NULL);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(cmd_int("SISMEMBER %s n1", RD), 1);
	assert_true(cmd_int("PTTL %s", RD) > 90000); /* expires with it */
}

/* ---- channels ---------------------------------------------------------------- */

#define CN "pav:{c:ns:zone:z}:n"
#define CM "pav:{c:ns:zone:z}:meta"
#define CH "pav:{c:ns:zone:z}:hist"
#define CUP "pav:{c:ns:zone:z}:u:"

static void member(int add, const char *node, const char *user,
		   long long *subs, long long *uc)
{
	char cu[64], nc[64];
	redisReply *r;

	snprintf(cu, sizeof(cu), CUP "%s", node);
	snprintf(nc, sizeof(nc), "pav:{n:%s}:chans", node);
	if (add) {
		r = ev(PAV_RB_MEMBER_ADD, 5, CN, cu, nc, CM, CH, node, user,
		       "ns\x1fzone:z", CUP, NULL);
		*subs = el_int(r, 0);
		*uc = el_int(r, 1);
	} else {
		r = ev(PAV_RB_MEMBER_REMOVE, 5, CN, cu, nc, CM, CH, node, user,
		       "ns\x1fzone:z", NULL);
	}
	freeReplyObject(r);
}

static void members_count_over_nodes_and_leave_nothing(void **state)
{
	long long subs = 0, uc = 0;

	(void)state;
	member(1, "A", "alice", &subs, &uc);
	assert_int_equal(subs, 1);
	assert_int_equal(uc, 1);
	member(1, "B", "alice", &subs, &uc);
	assert_int_equal(subs, 2);
	assert_int_equal(uc, 2);
	member(1, "B", "bob", &subs, &uc);
	assert_int_equal(subs, 3);
	assert_int_equal(uc, 1);
	assert_int_equal(cmd_int("SISMEMBER pav:{n:B}:chans ns\x1fzone:z"), 1);
	member(0, "B", "bob", NULL, NULL);
	member(0, "B", "alice", NULL, NULL);
	assert_int_equal(cmd_int("HEXISTS %s B", CN), 0);
	assert_int_equal(cmd_int("EXISTS " CUP "B"), 0);
	assert_int_equal(cmd_int("SISMEMBER pav:{n:B}:chans ns\x1fzone:z"), 0);
	assert_int_equal(cmd_int("HGET %s A", CN), 1);
	member(0, "A", "alice", NULL, NULL);
	/* an idle channel leaves nothing behind */
	assert_int_equal(cmd_int("EXISTS %s " CUP "A pav:{n:A}:chans", CN), 0);
}

/* A history channel's keys do not expire while it has members, and
 * expire ttl after the last one left. */
static void history_keys_live_with_members(void **state)
{
	long long subs, uc;

	(void)state;
	cmd_int("HSET %s epoch e offset 3 ttl 60000", CM);
	cmd_int("RPUSH %s f1", CH);
	cmd_int("PEXPIRE %s 60000", CM);
	cmd_int("PEXPIRE %s 60000", CH);
	member(1, "A", "alice", &subs, &uc);
	assert_int_equal(cmd_int("PTTL %s", CM), -1);
	assert_int_equal(cmd_int("PTTL %s", CH), -1);
	member(0, "A", "alice", NULL, NULL);
	assert_true(cmd_int("PTTL %s", CM) > 50000);
	assert_true(cmd_int("PTTL %s", CH) > 50000);
}

static void hash_add_removes_at_zero(void **state)
{
	redisReply *r;

	(void)state;
	r = ev(PAV_RB_HASH_ADD, 1, "h", "f", "2", NULL);
	assert_int_equal(r->integer, 2);
	freeReplyObject(r);
	r = ev(PAV_RB_HASH_ADD, 1, "h", "f", "-2", NULL);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_int_equal(cmd_int("EXISTS h"), 0);
}

static void channel_counts_sum_every_node(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("HSET %s A 2 B 5", CN);
	r = ev(PAV_RB_CHANNEL_COUNTS, 2, CN, "pav:{c:ns:zone:none}:n", NULL);
	assert_int_equal(r->elements, 2);
	assert_int_equal(el_int(r, 0), 7);
	assert_int_equal(el_int(r, 1), 0);
	freeReplyObject(r);
}

static void channel_users_are_distinct_and_bounded(void **state)
{
	redisReply *r;
	char name[16];

	(void)state;
	cmd_int("HSET %s A 2 B 600", CN);
	cmd_int("HSET " CUP "A alice 1 bob 1");
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		cmd_int("HSET " CUP "B %s 1", name);
	}
	cmd_int("HSET " CUP "B alice 1");
	r = ev(PAV_RB_CHANNEL_USERS, 1, CN, CUP, "1000", NULL);
	assert_int_equal(r->elements, 602);
	freeReplyObject(r);
	r = ev(PAV_RB_CHANNEL_USERS, 1, CN, CUP, "10", NULL);
	assert_int_equal(r->elements, 10);
	freeReplyObject(r);
	r = ev(PAV_RB_CHANNEL_USERS, 1, "pav:{c:ns:zone:none}:n", CUP, "10",
	       NULL);
	assert_int_equal(r->elements, 0);
	freeReplyObject(r);
}

/* ---- publishing and history ------------------------------------------------------ */

#define CS "pav:{c:ns:zone:z}:seq"

static redisReply *publish(const char *size, const char *epoch,
			   const char *count)
{
	return ev(PAV_RB_PUBLISH, 4, CM, CH, CS, CN, "pav:p:ns:zone:z",
		  "P1 0 - F - msg ", "{\"channel\":\"zone:z\",\"offset\":",
		  ",\"payload\":{}}", size, "60000", epoch, count, NULL);
}

static void publish_numbers_keeps_and_sends_in_one_step(void **state)
{
	char msg[256], frame[128];
	redisReply *r;

	(void)state;
	cmd_int("HSET %s A 2 B 1", CN);
	listen_to("pav:p:ns:zone:z");
	for (int i = 1; i <= 5; i++) {
		r = publish("3", i == 1 ? "e1" : "other", "1");
		assert_int_equal(el_int(r, 0), i);
		assert_string_equal(el_str(r, 1), "e1"); /* made once */
		assert_int_equal(el_int(r, 2), 3);
		freeReplyObject(r);
		next_message(msg, sizeof(msg));
		snprintf(frame, sizeof(frame),
			 "P1 0 - F - msg %d\n{\"channel\":\"zone:z\","
			 "\"offset\":%d,\"payload\":{}}", i, i);
		assert_string_equal(msg, frame);
	}
	assert_int_equal(cmd_int("LLEN %s", CH), 3); /* the newest size */
	cmd_str(frame, sizeof(frame), "LINDEX %s 0", CH);
	assert_non_null(strstr(frame, "\"offset\":3,"));
	/* members: the history does not expire */
	assert_int_equal(cmd_int("PTTL %s", CM), -1);
	/* history lost: a new epoch from the caller, offsets from 1 */
	cmd_int("DEL %s %s", CM, CH);
	r = publish("3", "e2", "1");
	assert_int_equal(el_int(r, 0), 1);
	assert_string_equal(el_str(r, 1), "e2");
	freeReplyObject(r);
	/* no member: it expires ttl after this */
	cmd_int("DEL %s", CN);
	r = publish("3", "x", "1");
	freeReplyObject(r);
	assert_true(cmd_int("PTTL %s", CM) > 50000);
	assert_true(cmd_int("PTTL %s", CH) > 50000);
}

static void publish_without_history_counts_only_when_asked(void **state)
{
	char msg[256];
	redisReply *r;

	(void)state;
	listen_to("pav:p:ns:zone:z");
	r = publish("0", "e", "1");
	assert_int_equal(el_int(r, 0), 1);
	assert_int_equal(r->element[1]->type, REDIS_REPLY_NIL);
	assert_int_equal(el_int(r, 2), 0);
	freeReplyObject(r);
	next_message(msg, sizeof(msg));
	/* no offset in the frame: the head is the frame, the tail too */
	assert_string_equal(msg, "P1 0 - F - msg 0\n{\"channel\":\"zone:z\","
				 "\"offset\":");
	assert_true(cmd_int("PTTL %s", CS) > 3000000);
	r = publish("0", "e", "0");
	assert_int_equal(el_int(r, 0), 0);
	freeReplyObject(r);
	assert_int_equal(cmd_int("GET %s", CS), 1);
	assert_int_equal(cmd_int("EXISTS %s %s", CM, CH), 0);
}

static void publish_multi_sends_one_message_everywhere(void **state)
{
	char msg[64];
	redisReply *r;

	(void)state;
	listen_to("pav:p:ns:zone:z");
	r = ev(PAV_RB_PUBLISH_MULTI, 0, "M", "pav:p:ns:zone:y",
	       "pav:p:ns:zone:z", NULL);
	freeReplyObject(r);
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, "M");
}

static redisReply *history(const char *after, const char *max)
{
	return ev(PAV_RB_HISTORY_READ, 3, CM, CH, CN, after, max, "fresh",
		  "60000", "", "0", NULL);
}

static void history_read_answers_like_a_ring(void **state)
{
	redisReply *r;

	(void)state;
	/* no meta: made with the new epoch, nothing held */
	r = history("0", "10");
	assert_string_equal(el_str(r, 0), "fresh");
	assert_int_equal(el_int(r, 1), 0);
	assert_int_equal(el_int(r, 2), 1);
	assert_int_equal(r->elements, 3);
	freeReplyObject(r);
	assert_true(cmd_int("PTTL %s", CM) > 50000);
	/* offsets 1..7 published, 5..7 held */
	cmd_int("HSET %s epoch e offset 7", CM);
	cmd_int("RPUSH %s f5 f6 f7", CH);
	r = history("5", "10");
	assert_string_equal(el_str(r, 0), "e");
	assert_int_equal(el_int(r, 1), 7);
	assert_int_equal(el_int(r, 2), 1);
	assert_int_equal(el_int(r, 3), 6);
	assert_int_equal(r->elements, 6);
	assert_string_equal(el_str(r, 4), "f6");
	assert_string_equal(el_str(r, 5), "f7");
	freeReplyObject(r);
	/* a gap: 3 and 4 are gone */
	r = history("2", "10");
	assert_int_equal(el_int(r, 2), 0);
	assert_int_equal(el_int(r, 3), 5);
	assert_int_equal(r->elements, 7);
	freeReplyObject(r);
	/* more than max: not complete, the oldest max */
	r = history("4", "2");
	assert_int_equal(el_int(r, 2), 0);
	assert_int_equal(el_int(r, 3), 5);
	assert_string_equal(el_str(r, 5), "f6");
	assert_int_equal(r->elements, 6);
	freeReplyObject(r);
	/* up to date, and ahead of the channel */
	r = history("7", "10");
	assert_int_equal(el_int(r, 2), 1);
	assert_int_equal(r->elements, 3);
	freeReplyObject(r);
	r = history("9", "10");
	assert_int_equal(el_int(r, 2), 0);
	freeReplyObject(r);
	/* max 0: only epoch and offset */
	r = history("5", "0");
	assert_int_equal(r->elements, 3);
	freeReplyObject(r);
}

static void history_read_publishes_its_fence(void **state)
{
	char msg[64];
	redisReply *r;

	(void)state;
	listen_to("pav:f:A");
	r = ev(PAV_RB_HISTORY_READ, 3, CM, CH, CN, "0", "10", "e", "60000",
	       "pav:f:A", "7", NULL);
	freeReplyObject(r);
	next_message(msg, sizeof(msg));
	assert_string_equal(msg, "7");
}

/* ---- nodes ---------------------------------------------------------------------- */

static void heartbeat_says_whether_it_was_alive(void **state)
{
	redisReply *r;

	(void)state;
	r = ev(PAV_RB_HEARTBEAT, 2, "pav:nodes", "pav:{n:A}:alive", "A", "5000",
	       NULL);
	assert_int_equal(el_int(r, 0), 0);
	assert_true(llabs(el_int(r, 1) - pav_now_ms()) < 5000);
	freeReplyObject(r);
	r = ev(PAV_RB_HEARTBEAT, 2, "pav:nodes", "pav:{n:A}:alive", "A", "5000",
	       NULL);
	assert_int_equal(el_int(r, 0), 1);
	freeReplyObject(r);
	assert_true(cmd_int("PTTL pav:{n:A}:alive") > 4000);
	assert_true(cmd_int("ZSCORE pav:nodes A") > 0);
}

static void find_dead_locks_expired_nodes_once(void **state)
{
	redisReply *r;
	char old[24];

	(void)state;
	snprintf(old, sizeof(old), "%lld", (long long)pav_now_ms() - 20000);
	cmd_int("ZADD pav:nodes %s dead %s back %s me", old, old, old);
	cmd_int("SET pav:{n:back}:alive 1");
	cmd_int("ZADD pav:nodes %lld fresh", (long long)pav_now_ms());
	r = ev(PAV_RB_FIND_DEAD, 1, "pav:nodes", "10000", "30000", "me", NULL);
	assert_int_equal(r->elements, 2);
	assert_string_equal(el_str(r, 0), "dead");
	assert_string_equal(el_str(r, 1), old);
	freeReplyObject(r);
	assert_true(cmd_int("PTTL pav:reap:dead") > 20000);
	/* locked: another node takes only what is left (this one's "me") */
	r = ev(PAV_RB_FIND_DEAD, 1, "pav:nodes", "10000", "30000", "other",
	       NULL);
	assert_int_equal(r->elements, 2);
	assert_string_equal(el_str(r, 0), "me");
	freeReplyObject(r);
}

static void reap_takes_the_dead_nodes_entries_in_steps(void **state)
{
	redisReply *r;
	int steps = 0;
	long long state_ = 0;
	size_t gone = 0;
	char field[32];

	(void)state;
	cmd_int("ZADD pav:nodes 1 D 2 L");
	cmd_int("SET pav:reap:D me");
	/* 700 users of D: alice also has a connection on L */
	for (int i = 0; i < 700; i++) {
		snprintf(field, sizeof(field), "u%d", i);
		cmd_int("SADD pav:{n:D}:users ns\x1f%s", field);
		cmd_int("HSET pav:{u:ns:%s}:conns D:1 D", field);
		cmd_int("HSET pav:{u:ns:%s}:chans D|zone:z 1", field);
	}
	cmd_int("SADD pav:{n:D}:users ns\x1f" "alice");
	cmd_int("HSET %s D:1 D D:2 D L:1 L", UC);
	cmd_int("HSET pav:{u:ns:alice}:chans D|zone:z 2 L|zone:z 1 D|chat:c 1");
	cmd_int("SADD pav:{n:D}:chans ns\x1fzone:z");
	cmd_int("HSET %s D 701 L 1", CN);
	cmd_int("HSET " CUP "D alice 1");
	cmd_int("HSET %s epoch e offset 1 ttl 60000", CM);
	cmd_int("PEXPIRE %s 60000", CM);
	while (state_ == 0 && steps < 10) {
		r = ev(PAV_RB_REAP, 1, "pav:nodes", "D", "500", "30000", "u",
		       "100000", NULL);
		state_ = el_int(r, 0);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			const redisReply *u = r->element[1]->element[i];

			assert_int_equal(u->elements, 3);
			assert_string_equal(u->element[0]->str, "ns");
			assert_string_not_equal(u->element[1]->str, "alice");
			assert_int_equal(u->element[2]->elements, 1);
			assert_string_equal(u->element[2]->element[0]->str,
					    "zone:z");
			gone++;
		}
		freeReplyObject(r);
		steps++;
	}
	assert_int_equal(state_, 1);
	assert_true(steps >= 3); /* 701 users at 500 a step, then channels */
	assert_int_equal(gone, 700);
	/* alice keeps L's connection and channel, loses D's */
	assert_int_equal(cmd_int("HLEN %s", UC), 1);
	assert_int_equal(cmd_int("HLEN pav:{u:ns:alice}:chans"), 1);
	assert_int_equal(cmd_int("HGET pav:{u:ns:alice}:chans L|zone:z"), 1);
	assert_int_equal(cmd_int("EXISTS pav:{u:ns:u3}:conns "
				 "pav:{u:ns:u3}:chans"), 0);
	assert_int_equal(cmd_int("HEXISTS %s D", CN), 0);
	assert_int_equal(cmd_int("EXISTS " CUP "D"), 0);
	assert_int_equal(cmd_int("EXISTS pav:{n:D}:users pav:{n:D}:chans "
				 "pav:reap:D"), 0);
	assert_int_equal(cmd_int("ZSCORE pav:nodes D"), -1);
	assert_int_equal(cmd_int("ZSCORE pav:nodes L"), 2);
	assert_int_equal(cmd_int("PTTL %s", CM), -1); /* L is still in it */
}

static void reap_stops_when_the_node_is_alive(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("ZADD pav:nodes 1 D");
	cmd_int("SET pav:reap:D me");
	cmd_int("SET pav:{n:D}:alive 1");
	cmd_int("SADD pav:{n:D}:users ns\x1f" "alice");
	cmd_int("HSET %s D:1 D", UC);
	r = ev(PAV_RB_REAP, 1, "pav:nodes", "D", "500", "30000", "u",
		       "100000", NULL);
	assert_int_equal(el_int(r, 0), 2);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HLEN %s", UC), 1);
	assert_int_equal(cmd_int("EXISTS pav:reap:D"), 0);
}

/* A user popped with no connection left is offline in that step, with
 * the dead node's last heartbeat, its announcement owed; one without a
 * presence record gets none. */
static void reap_sets_its_users_offline_in_the_step(void **state)
{
	redisReply *r;
	char st[16];
	long long state_ = 0;

	(void)state;
	cmd_int("ZADD pav:nodes 1234 D");
	cmd_int("SET pav:reap:D me");
	cmd_int("SADD pav:{n:D}:users ns\x1f" "alice ns\x1f" "bob");
	cmd_int("HSET %s D:1 D", UC);
	cmd_int("HSET pav:{u:ns:bob}:conns D:1 D");
	cmd_int("HSET %s status busy last 1 chosen busy", UP);
	for (int steps = 0; state_ == 0 && steps < 5; steps++) {
		r = ev(PAV_RB_REAP, 1, "pav:nodes", "D", "500", "30000", "u",
		       "100000", NULL);
		state_ = el_int(r, 0);
		freeReplyObject(r);
	}
	assert_int_equal(state_, 1);
	cmd_str(st, sizeof(st), "HGET %s status", UP);
	assert_string_equal(st, "offline");
	assert_int_equal(cmd_int("HGET %s last", UP), 1234);
	assert_int_equal(cmd_int("HGET %s owed", UP), 1);
	cmd_str(st, sizeof(st), "HGET %s chosen", UP);
	assert_string_equal(st, "busy");
	assert_true(cmd_int("PTTL %s", UP) > 90000);
	assert_int_equal(cmd_int("EXISTS pav:{u:ns:bob}:presence"), 0);
}

/* Mode 'c', on a shard whose lock another reaper may hold: the dead
 * node's channels only, 3 once none is left; users and lock untouched. */
static void reap_of_another_shard_takes_channels_only(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("ZADD pav:nodes 1 D");
	cmd_int("SET pav:reap:D other");
	cmd_int("SADD pav:{n:D}:users ns\x1f" "alice");
	cmd_int("HSET %s D:1 D", UC);
	cmd_int("SADD pav:{n:D}:chans ns\x1fzone:z");
	cmd_int("HSET %s D 2 L 1", CN);
	cmd_int("HSET " CUP "D alice 2");
	r = ev(PAV_RB_REAP, 1, "pav:nodes", "D", "500", "30000", "c", "100000",
	       NULL);
	assert_int_equal(el_int(r, 0), 0);
	assert_int_equal(r->element[1]->elements, 0);
	freeReplyObject(r);
	r = ev(PAV_RB_REAP, 1, "pav:nodes", "D", "500", "30000", "c", "100000",
	       NULL);
	assert_int_equal(el_int(r, 0), 3);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HEXISTS %s D", CN), 0);
	assert_int_equal(cmd_int("EXISTS " CUP "D"), 0);
	assert_int_equal(cmd_int("HLEN %s", UC), 1);
	assert_int_equal(cmd_int("SCARD pav:{n:D}:users"), 1);
	assert_int_equal(cmd_int("PTTL pav:reap:D"), -1);
	assert_int_equal(cmd_int("ZSCORE pav:nodes D"), 1);
}

/* ---- sync ------------------------------------------------------------------------- */

static void user_sync_makes_the_nodes_entries_absolute(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("HSET %s A:1 A A:2 A B:1 B", UC);
	cmd_int("HSET pav:{u:ns:alice}:chans A|zone:old 1 A|zone:z 4 "
		"B|zone:z 1");
	r = ev(PAV_RB_USER_SYNC, 4, UC, "pav:{u:ns:alice}:chans", UP, NU, "A",
	       "ns\x1f" "alice", "busy", "777", "100000", "2", "A:2", "A:3",
	       "A|zone:z", "1", "A|chat:c", "2", NULL);
	assert_int_equal(el_int(r, 0), 3);
	assert_int_equal(r->element[1]->elements, 1);
	assert_string_equal(r->element[1]->element[0]->str, "zone:old");
	assert_int_equal(el_int(r, 2), 0);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HEXISTS %s A:1", UC), 0);
	assert_int_equal(cmd_int("HEXISTS %s A:3", UC), 1);
	assert_int_equal(cmd_int("HEXISTS %s B:1", UC), 1);
	assert_int_equal(cmd_int("HGET pav:{u:ns:alice}:chans A|zone:z"), 1);
	assert_int_equal(cmd_int("HGET pav:{u:ns:alice}:chans A|chat:c"), 2);
	assert_int_equal(cmd_int("HGET pav:{u:ns:alice}:chans B|zone:z"), 1);
	assert_int_equal(cmd_int("SISMEMBER %s ns\x1f" "alice", NU), 1);
	/* presence lost: restored */
	assert_int_equal(cmd_int("HGET %s last", UP), 777);
	/* set by someone (not offline): kept */
	cmd_int("HSET %s status away last 1", UP);
	r = ev(PAV_RB_USER_SYNC, 4, UC, "pav:{u:ns:alice}:chans", UP, NU, "A",
	       "ns\x1f" "alice", "busy", "888", "100000", "1", "A:2",
	       "A|zone:z", "1", "A|chat:c", "2", NULL);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HGET %s last", UP), 1);
	/* offline with connections here (a reaper took us for dead): left
	 * to the node's open hooks, which announce it (back = 1) */
	cmd_int("HSET %s status offline chosen away", UP);
	r = ev(PAV_RB_USER_SYNC, 4, UC, "pav:{u:ns:alice}:chans", UP, NU, "A",
	       "ns\x1f" "alice", "busy", "999", "100000", "1", "A:2",
	       "A|zone:z", "1", "A|chat:c", "2", NULL);
	assert_int_equal(el_int(r, 2), 1);
	assert_string_equal(el_str(r, 3), "away"); /* what the hooks set */
	freeReplyObject(r);
	assert_int_equal(cmd_int("HGET %s last", UP), 1);
	/* offline set by the user itself: nothing to restore */
	cmd_int("HSET %s chosen offline", UP);
	r = ev(PAV_RB_USER_SYNC, 4, UC, "pav:{u:ns:alice}:chans", UP, NU, "A",
	       "ns\x1f" "alice", "offline", "999", "100000", "1", "A:2",
	       "A|zone:z", "1", "A|chat:c", "2", NULL);
	assert_int_equal(el_int(r, 2), 0);
	freeReplyObject(r);
	/* none left here */
	r = ev(PAV_RB_USER_SYNC, 4, UC, "pav:{u:ns:alice}:chans", UP, NU, "A",
	       "ns\x1f" "alice", "busy", "1", "100000", "0", NULL);
	assert_int_equal(el_int(r, 0), 1); /* B's */
	assert_int_equal(r->element[1]->elements, 2);
	freeReplyObject(r);
	assert_int_equal(cmd_int("SISMEMBER %s ns\x1f" "alice", NU), 0);
	assert_int_equal(cmd_int("HLEN pav:{u:ns:alice}:chans"), 1);
}

static void chan_sync_makes_the_nodes_members_absolute(void **state)
{
	redisReply *r;

	(void)state;
	cmd_int("HSET %s A 9 B 1", CN);
	cmd_int("HSET " CUP "A stale 9");
	r = ev(PAV_RB_CHAN_SYNC, 5, CN, CUP "A", "pav:{n:A}:chans", CM, CH, "A",
	       "ns\x1fzone:z", "3", "alice", "2", "bob", "1", NULL);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HGET %s A", CN), 3);
	assert_int_equal(cmd_int("HEXISTS " CUP "A stale"), 0);
	assert_int_equal(cmd_int("HGET " CUP "A alice"), 2);
	assert_int_equal(cmd_int("SISMEMBER pav:{n:A}:chans ns\x1fzone:z"), 1);
	r = ev(PAV_RB_CHAN_SYNC, 5, CN, CUP "A", "pav:{n:A}:chans", CM, CH, "A",
	       "ns\x1fzone:z", "0", NULL);
	freeReplyObject(r);
	assert_int_equal(cmd_int("HEXISTS %s A", CN), 0);
	assert_int_equal(cmd_int("EXISTS " CUP "A"), 0);
	assert_int_equal(cmd_int("SISMEMBER pav:{n:A}:chans ns\x1fzone:z"), 0);
	assert_int_equal(cmd_int("HGET %s B", CN), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(conn_add_counts_once_and_stops_at_max),
		T(conn_add_refuses_a_token_the_revocation_covers),
		T(tokens_revoke_never_lowers_the_cut_off),
		T(revoked_scan_reads_each_key_with_its_end),
		T(conn_remove_leaves_node_set_with_its_last),
		T(presence_get_of_an_unknown_user_is_empty),
		T(presence_set_checks_when_and_unchanged),
		T(presence_set_announces_with_its_time),
		T(presence_set_keeps_the_chosen_status),
		T(presence_set_announces_an_owed_offline),
		T(inbox_add_orders_evicts_and_refuses_a_taken_id),
		T(a_notification_enters_the_inbox_with_its_delivery),
		T(inbox_list_publishes_its_fence),
		T(inbox_list_since_unread_and_limit),
		T(inbox_list_since_holds_what_entered_late),
		T(inbox_mark_read_knows_only_this_inbox),
		T(members_count_over_nodes_and_leave_nothing),
		T(history_keys_live_with_members),
		T(hash_add_removes_at_zero),
		T(channel_counts_sum_every_node),
		T(channel_users_are_distinct_and_bounded),
		T(publish_numbers_keeps_and_sends_in_one_step),
		T(publish_without_history_counts_only_when_asked),
		T(publish_multi_sends_one_message_everywhere),
		T(history_read_answers_like_a_ring),
		T(history_read_publishes_its_fence),
		T(heartbeat_says_whether_it_was_alive),
		T(find_dead_locks_expired_nodes_once),
		T(reap_takes_the_dead_nodes_entries_in_steps),
		T(reap_stops_when_the_node_is_alive),
		T(reap_sets_its_users_offline_in_the_step),
		T(reap_of_another_shard_takes_channels_only),
		T(user_sync_makes_the_nodes_entries_absolute),
		T(chan_sync_makes_the_nodes_members_absolute),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
