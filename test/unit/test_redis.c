/*
 * test_redis.c — the asynchronous Redis client (src/redis.c) against a real
 * redis-server, started here on a free loopback port for each test and
 * killed after it.  Each test drives an lws context's service loop with
 * bounded waits; one test puts a freezing TCP proxy (a child process)
 * between the client and Redis.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/evp.h>
#ifdef PAV_WITH_UV
#include <uv.h>
#endif

#include "clock.h"
#include "log.h"
#include "redis.h"
#include "redis_server.h"

#define PASSWORD "hunter2-test"
#define MAX_MSGS 4096

/* ---- fixture ------------------------------------------------------------- */

struct fx {
	struct lws_context *ctx;
	void *uv; /* uv_loop_t * when the context runs on libuv */
	struct pav_redis *r;
	pid_t redis, proxy;
	int port, proxy_port;
	const char *password;
	int ups, downs, resyncs;
	int up_at_down; /* pav_redis_is_up() inside `down` */
	char *msgs[MAX_MSGS];
	int nmsgs;
	char refused[8][64]; /* the channels told to `refused` */
	int nrefused;
	int refused_noperm;  /* each with Redis' NOPERM */
};

static struct fx F;
static lws_sorted_usec_list_t wake_sul;

static void wake(lws_sorted_usec_list_t *sul)
{
	/* the service loop returns at least this often */
	lws_sul_schedule(F.ctx, 0, sul, wake, 20 * LWS_US_PER_MS);
}

static void spin(void)
{
#ifdef PAV_WITH_UV
	if (F.uv) {
		uv_run(F.uv, UV_RUN_ONCE);
		return;
	}
#endif
	lws_service(F.ctx, 0);
}

/* Services the loop until cond holds or ms have passed. */
#define WAIT_FOR(cond, ms)                                           \
	do {                                                         \
		int64_t end_ = pav_mono_ms() + (ms);                 \
		while (!(cond) && pav_mono_ms() < end_)              \
			spin();                                      \
	} while (0)

static void run_for(int ms)
{
	int64_t end = pav_mono_ms() + ms;

	while (pav_mono_ms() < end)
		spin();
}

static int free_port(void)
{
	int port = redis_server_free_port();

	assert_true(port > 0);
	return port;
}

static void start_redis(void)
{
	F.redis = redis_server_start(F.port, F.password);
	if (F.redis < 0)
		fail_msg("redis-server did not start (is it installed?)");
}

static void stop_redis(void)
{
	redis_server_kill(&F.redis);
}

static struct lws_context *make_context(void *uv_loop)
{
	struct lws_context_creation_info info;
	void *loops[1] = {uv_loop};

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	if (uv_loop) {
		info.options |= LWS_SERVER_OPTION_LIBUV;
		info.foreign_loops = loops;
	}
	return lws_create_context(&info);
}

static int setup_common(void **state, int with_redis)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	memset(&wake_sul, 0, sizeof(wake_sul));
	lws_set_log_level(LLL_ERR, NULL);
	pav_log_setup(PAV_LOG_WARN, 0);
	F.ctx = make_context(NULL);
	assert_non_null(F.ctx);
	wake(&wake_sul);
	F.port = free_port();
	if (with_redis)
		start_redis();
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, 1);
}

static int setup_no_redis(void **state)
{
	return setup_common(state, 0);
}

static int setup_auth(void **state)
{
	setup_common(state, 0);
	F.password = PASSWORD;
	start_redis();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (F.redis > 0)
		kill(F.redis, SIGCONT);
	pav_redis_destroy(F.r);
	F.r = NULL;
	lws_sul_cancel(&wake_sul);
	if (F.ctx)
		lws_context_destroy(F.ctx);
	F.ctx = NULL;
	redis_server_kill(&F.proxy);
	stop_redis();
	for (int i = 0; i < F.nmsgs; i++)
		free(F.msgs[i]);
	return 0;
}

/* ---- events and replies ------------------------------------------------- */

static void ev_up(void *arg)
{
	(void)arg;
	F.ups++;
}

static void ev_down(void *arg)
{
	(void)arg;
	F.downs++;
	F.up_at_down = pav_redis_is_up(F.r);
}

static void ev_resync(void *arg)
{
	(void)arg;
	F.resyncs++;
}

static void ev_message(void *arg, const char *channel, size_t clen,
		       const char *data, size_t dlen)
{
	char *m;

	(void)arg;
	if (F.nmsgs >= MAX_MSGS)
		return;
	m = malloc(clen + dlen + 2);
	memcpy(m, channel, clen);
	m[clen] = ' ';
	memcpy(m + clen + 1, data, dlen);
	m[clen + dlen + 1] = '\0';
	F.msgs[F.nmsgs++] = m;
}

static void ev_refused(void *arg, const char *channel, size_t clen,
		       const redisReply *reply)
{
	(void)arg;
	if (reply && reply->str && strstr(reply->str, "NOPERM"))
		F.refused_noperm++;
	if (F.nrefused < 8)
		snprintf(F.refused[F.nrefused++], sizeof(F.refused[0]), "%.*s",
			 (int)clen, channel);
}

static const struct pav_redis_events events = {
	.up = ev_up,
	.down = ev_down,
	.message = ev_message,
	.resync = ev_resync,
	.refused = ev_refused,
};

struct rep {
	int calls;
	int err;
	int type;
	long long integer;
	char str[256];
	size_t len;
	size_t elements;
	long long first; /* an array's first element, as an integer */
	int order;
};

static int order_seq;

static void on_reply(void *arg, int err, const redisReply *reply)
{
	struct rep *x = arg;

	x->calls++;
	x->err = err;
	x->order = order_seq++;
	if (!reply)
		return;
	x->type = reply->type;
	x->integer = reply->integer;
	x->elements = reply->elements;
	x->first = reply->elements ? reply->element[0]->integer : 0;
	x->len = reply->str ? (size_t)reply->len : 0;
	if (reply->str)
		snprintf(x->str, sizeof(x->str), "%.*s", (int)reply->len,
			 reply->str);
}

static int cmd_argv(struct rep *x, const char *first, va_list ap)
{
	const char *argv[32];
	int argc = 0;

	for (const char *a = first; a && argc < 32; a = va_arg(ap, const char *))
		argv[argc++] = a;
	return pav_redis_command(F.r, on_reply, x, argc, argv, NULL);
}

/* Queues a command (C strings, NULL-terminated list). */
static int cmd(struct rep *x, const char *first, ...)
{
	va_list ap;
	int rc;

	va_start(ap, first);
	rc = cmd_argv(x, first, ap);
	va_end(ap);
	return rc;
}

/* Runs one command to its answer. */
static void sync_cmd(struct rep *x, const char *first, ...)
{
	va_list ap;
	int rc;

	memset(x, 0, sizeof(*x));
	va_start(ap, first);
	rc = cmd_argv(x, first, ap);
	va_end(ap);
	assert_int_equal(rc, 0);
	WAIT_FOR(x->calls, 5000);
	assert_int_equal(x->calls, 1);
	assert_int_equal(x->err, 0);
}

static struct pav_redis_config config(void)
{
	struct pav_redis_config c;

	pav_redis_config_defaults(&c);
	c.port = F.port;
	return c;
}

static void connect_with(struct pav_redis_config *c)
{
	F.r = pav_redis_create(F.ctx, c, &events);
	assert_non_null(F.r);
	assert_int_equal(F.ups, 0); /* never inside create */
	WAIT_FOR(pav_redis_is_up(F.r), 5000);
	assert_true(pav_redis_is_up(F.r));
	assert_int_equal(F.ups, 1);
}

static void connect_default(void)
{
	struct pav_redis_config c = config();

	connect_with(&c);
}

static void subscribe_sync(const char *channel)
{
	struct rep x = {0};

	assert_int_equal(pav_redis_subscribe(F.r, channel, strlen(channel),
					     on_reply, &x), 0);
	assert_int_equal(x.calls, 0);
	WAIT_FOR(x.calls, 5000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.err, 0);
}

static int has_msg(const char *m)
{
	for (int i = 0; i < F.nmsgs; i++)
		if (!strcmp(F.msgs[i], m))
			return 1;
	return 0;
}

/* ---- URLs ------------------------------------------------------------------ */

#define P41_10 "%41%41%41%41%41%41%41%41%41%41"
#define P41_50 P41_10 P41_10 P41_10 P41_10 P41_10
static void url_forms_are_parsed(void **state)
{
	struct pav_redis_config c;
	char err[128];

	(void)state;
	assert_int_equal(pav_redis_parse_url("redis://10.1.2.3", &c, err,
					     sizeof(err)), 0);
	assert_string_equal(c.host, "10.1.2.3");
	assert_int_equal(c.port, 6379);
	assert_int_equal(c.db, 0);
	assert_null(c.password);
	assert_int_equal(c.command_timeout_ms, 2000);
	assert_int_equal(c.max_pending, 10000);
	assert_int_equal(c.probe_interval_ms, 1000);
	assert_int_equal(c.tls, 0);

	/* rediss: TLS, the rest as redis:// */
	assert_int_equal(pav_redis_parse_url("rediss://u:pw@cache.local:6380/4",
					     &c, err, sizeof(err)), 0);
	assert_int_equal(c.tls, 1);
	assert_string_equal(c.host, "cache.local");
	assert_int_equal(c.port, 6380);
	assert_int_equal(c.db, 4);
	assert_string_equal(c.user, "u");
	assert_string_equal(c.password, "pw");
	assert_null(c.tls_ctx); /* the caller's to set */
	pav_redis_config_clear(&c);
	assert_int_equal(pav_redis_parse_url("rediss://[::1]", &c, err,
					     sizeof(err)), 0);
	assert_int_equal(c.tls, 1);
	assert_string_equal(c.host, "::1");

	assert_int_equal(pav_redis_parse_url("redis://:s3cr%40t@cache.local:6380/2",
					     &c, err, sizeof(err)), 0);
	assert_string_equal(c.host, "cache.local");
	assert_int_equal(c.port, 6380);
	assert_int_equal(c.db, 2);
	assert_string_equal(c.password, "s3cr@t");
	pav_redis_config_clear(&c);
	assert_null(c.password);

	assert_int_equal(pav_redis_parse_url("redis://:p@ss/w?rd@h/1", &c, err,
					     sizeof(err)), 0);
	assert_string_equal(c.password, "p@ss/w?rd");
	assert_string_equal(c.host, "h");
	assert_int_equal(c.db, 1);
	pav_redis_config_clear(&c);

	assert_int_equal(pav_redis_parse_url("redis://[::1]:7000/", &c, err,
					     sizeof(err)), 0);
	assert_string_equal(c.host, "::1");
	assert_int_equal(c.port, 7000);
	assert_int_equal(c.db, 0);
	assert_string_equal(c.user, "");

	assert_int_equal(pav_redis_parse_url("redis://[fe80::1%lo]:7001", &c,
					     err, sizeof(err)), 0);
	assert_string_equal(c.host, "fe80::1%lo");
	assert_int_equal(c.port, 7001);

	/* Redis 6 ACL users: with a password, or with none (password_file) */
	assert_int_equal(pav_redis_parse_url("redis://gw%2D1:s3cr%40t:x@h/3", &c,
					     err, sizeof(err)), 0);
	assert_string_equal(c.user, "gw-1");
	assert_string_equal(c.password, "s3cr@t:x");
	assert_string_equal(c.host, "h");
	assert_int_equal(c.db, 3);
	pav_redis_config_clear(&c);
	assert_int_equal(pav_redis_parse_url("redis://al%3Ace@h", &c, err,
					     sizeof(err)), 0);
	assert_string_equal(c.user, "al:ce");
	assert_null(c.password);
	/* the limit is the name's, not its spelling's (the fuzzer's find) */
	assert_int_equal(pav_redis_parse_url("redis://" P41_50 "@h", &c, err,
					     sizeof(err)), 0);
	assert_int_equal(strlen(c.user), 50);
}

#define X16 "xxxxxxxxxxxxxxxx"
#define USER_128 "redis://" X16 X16 X16 X16 X16 X16 X16 X16
static void bad_urls_are_refused_with_a_reason(void **state)
{
	static const char *const bad[] = {
		NULL, "", "http://h", "redis://", "redis://@h",
		"redis://%zz:pw@h", "redis://u%00:pw@h", USER_128 ":pw@h",
		"redis://h:0", "redis://h:65536", "redis://h:12x",
		"redis://h:", "redis://h/abc", "redis://h/-1",
		"redis://h/1?x=1", "redis://h#f", "redis://[::1",
		"redis://[::1]x", "redis://:%zz@h", "redis://:%00@h",
		"redis://:%4@h", "rediss://", "redisss://h", "REDIS://h",
		"rediss:/h", "redis:/h",
		/* in brackets: an IPv6 address (and a zone), nothing else */
		"redis://[2%D]:6", "redis://[abc]", "redis://[::1%]",
		"redis://[::1%e th0]", "redis://[]", "redis://[1.2.3.4]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pav_redis_config c;
		char err[128] = "";

		assert_int_equal(pav_redis_parse_url(bad[i], &c, err,
						     sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		assert_null(c.password);
	}
}

static void tls_contexts_are_made_or_refused_with_a_reason(void **state)
{
	struct pav_redis_config c;
	char err[256] = "";
	SSL_CTX *ctx = pav_redis_tls_ctx(NULL, NULL, NULL, err, sizeof(err));

	(void)state;
	assert_non_null(ctx); /* the system's certificates */
	SSL_CTX_free(ctx);
	assert_null(pav_redis_tls_ctx(NULL, "/nonexistent/c.pem", NULL, err,
				      sizeof(err)));
	assert_non_null(strstr(err, "together"));
	assert_null(pav_redis_tls_ctx("/nonexistent/ca.pem", NULL, NULL, err,
				      sizeof(err)));
	assert_non_null(strstr(err, "tls_ca_file: /nonexistent/ca.pem: "));
	assert_null(pav_redis_tls_ctx(NULL, "/nonexistent/c.pem",
				      "/nonexistent/k.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "tls_cert_file: /nonexistent/c.pem: "));
	/* rediss:// without a context is a configuration a client refuses */
	assert_int_equal(pav_redis_parse_url("rediss://127.0.0.1", &c, err,
					     sizeof(err)), 0);
	assert_null(pav_redis_create(F.ctx, &c, &events));
}

static void unescape_decodes_in_place_and_refuses_bad_escapes(void **state)
{
	static const char *const bad[] = {"%", "a%", "%4", "%4g", "%g4",
					  "%00", "x%0"};
	char s[32];

	(void)state;
	strcpy(s, "a%41b%2f%2Fc");
	assert_int_equal(pav_redis_unescape(s, strlen(s)), 0);
	assert_string_equal(s, "aAb//c");
	strcpy(s, "plain");
	assert_int_equal(pav_redis_unescape(s, strlen(s)), 0);
	assert_string_equal(s, "plain");
	strcpy(s, "%7e");
	assert_int_equal(pav_redis_unescape(s, strlen(s)), 0);
	assert_string_equal(s, "~");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(s, bad[i]);
		if (pav_redis_unescape(s, strlen(s)) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
	}
}

/* ---- commands ---------------------------------------------------------------- */

static void commands_answer_later_and_redis_errors_are_err_0(void **state)
{
	struct rep set = {0}, get = {0}, bad = {0}, bin = {0};
	const char *argv[3] = {"SET", "bin", "a\0b"};
	const size_t lens[3] = {3, 3, 3};

	(void)state;
	connect_default();
	assert_int_equal(cmd(&set, "SET", "k", "v", NULL), 0);
	assert_int_equal(cmd(&get, "GET", "k", NULL), 0);
	assert_int_equal(cmd(&bad, "NOSUCHCOMMAND", "x", NULL), 0);
	assert_int_equal(pav_redis_command(F.r, on_reply, &bin, 3, argv, lens),
			 0);
	assert_int_equal(set.calls + get.calls + bad.calls + bin.calls, 0);
	WAIT_FOR(bin.calls, 5000);
	assert_int_equal(set.type, REDIS_REPLY_STATUS);
	assert_string_equal(get.str, "v");
	assert_int_equal(bad.calls, 1);
	assert_int_equal(bad.err, 0);
	assert_int_equal(bad.type, REDIS_REPLY_ERROR);
	sync_cmd(&get, "STRLEN", "bin", NULL);
	assert_int_equal(get.integer, 3);
	assert_int_equal(pav_redis_command(F.r, on_reply, &get, 0, argv, NULL),
			 -EINVAL);
}

#define NPIPE 10000

static void many_commands_in_flight_are_answered_in_order(void **state)
{
	struct pav_redis_config c = config();
	static struct rep reps[NPIPE];

	(void)state;
	c.max_pending = NPIPE;
	connect_with(&c);
	memset(reps, 0, sizeof(reps));
	order_seq = 0;
	for (int i = 0; i < NPIPE; i++)
		assert_int_equal(cmd(&reps[i], "INCR", "ctr", NULL), 0);
	WAIT_FOR(reps[NPIPE - 1].calls, 20000);
	for (int i = 0; i < NPIPE; i++) {
		assert_int_equal(reps[i].calls, 1);
		assert_int_equal(reps[i].err, 0);
		assert_int_equal(reps[i].integer, i + 1);
		assert_int_equal(reps[i].order, i);
	}
}

#define BIG (6 * 1024 * 1024)
#define NITEMS 200000

static char *big_value(void)
{
	char *v = malloc(BIG);

	for (size_t i = 0; i < BIG; i++)
		v[i] = (char)('a' + i % 23);
	return v;
}

static int big_ok;

static void on_big(void *arg, int err, const redisReply *reply)
{
	const char *want = arg;

	big_ok = !err && reply->type == REDIS_REPLY_STRING &&
		 reply->len == BIG && !memcmp(reply->str, want, BIG) ? 1 : -1;
}

static void on_items(void *arg, int err, const redisReply *reply)
{
	int *ok = arg;
	char want[32];

	*ok = -1;
	if (err || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != NITEMS)
		return;
	for (size_t i = 0; i < NITEMS; i++) {
		snprintf(want, sizeof(want), "item-%zu", i);
		if (strcmp(reply->element[i]->str, want))
			return;
	}
	*ok = 1;
}

static void push_items(void)
{
	const char *argv[1002];
	static char names[1000][32];
	struct rep x;

	argv[0] = "RPUSH";
	argv[1] = "items";
	for (int b = 0; b < NITEMS / 1000; b++) {
		for (int i = 0; i < 1000; i++) {
			snprintf(names[i], sizeof(names[i]), "item-%d",
				 b * 1000 + i);
			argv[i + 2] = names[i];
		}
		memset(&x, 0, sizeof(x));
		assert_int_equal(pav_redis_command(F.r, on_reply, &x, 1002,
						   argv, NULL), 0);
		WAIT_FOR(x.calls, 5000); /* names[] is reused */
		assert_int_equal(x.err, 0);
	}
}

static void large_replies_are_parsed_across_reads(void **state)
{
	char *v = big_value();
	const char *argv[3] = {"SET", "big", v};
	const size_t lens[3] = {3, 3, BIG};
	struct rep x = {0};
	int items = 0;

	(void)state;
	connect_default();
	assert_int_equal(pav_redis_command(F.r, on_reply, &x, 3, argv, lens),
			 0);
	big_ok = 0;
	assert_int_equal(pav_redis_command(F.r, on_big, v, 2,
					   (const char *[]){"GET", "big"},
					   NULL), 0);
	WAIT_FOR(big_ok, 20000);
	assert_int_equal(x.err, 0);
	assert_int_equal(big_ok, 1);
	push_items();
	assert_int_equal(pav_redis_command(F.r, on_items, &items, 4,
					   (const char *[]){"LRANGE", "items",
							    "0", "-1"},
					   NULL), 0);
	WAIT_FOR(items, 20000);
	assert_int_equal(items, 1);
	assert_true(pav_redis_is_up(F.r));
	assert_int_equal(F.downs, 0);
	free(v);
}

#define HUGE (32 * 1024 * 1024)

/* More than the socket buffers take while Redis is stopped: the write
 * stops at EAGAIN and must go on when the socket drains. */
static void a_write_larger_than_the_socket_buffers_completes(void **state)
{
	struct pav_redis_config c = config();
	char *v = calloc(1, HUGE);
	const char *argv[3] = {"SET", "huge", v};
	const size_t lens[3] = {3, 4, HUGE};
	struct rep x = {0};

	(void)state;
	/* no health request comes to re-arm a stalled write */
	c.command_timeout_ms = 60000;
	c.probe_interval_ms = 30000;
	connect_with(&c);
	kill(F.redis, SIGSTOP);
	assert_int_equal(pav_redis_command(F.r, on_reply, &x, 3, argv, lens),
			 0);
	run_for(300);
	kill(F.redis, SIGCONT);
	WAIT_FOR(x.calls, 20000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.err, 0);
	sync_cmd(&x, "STRLEN", "huge", NULL);
	assert_int_equal(x.integer, HUGE);
	free(v);
}

static void a_reply_over_max_buffer_resets_the_connection(void **state)
{
	struct pav_redis_config c = config();
	struct rep x, get = {0};

	(void)state;
	c.max_buffer_bytes = 1 << 20;
	connect_with(&c);
	sync_cmd(&x, "SETRANGE", "huge", "2097151", "x", NULL);
	assert_int_equal(cmd(&get, "GET", "huge", NULL), 0);
	WAIT_FOR(get.calls, 5000);
	assert_int_equal(get.calls, 1);
	assert_int_equal(get.err, -EIO);
	assert_int_equal(F.downs, 1);
	WAIT_FOR(pav_redis_is_up(F.r), 5000); /* back by itself */
	sync_cmd(&x, "STRLEN", "huge", NULL);
	assert_int_equal(x.integer, 2097152);
}

static void commands_over_max_buffer_bytes_are_refused(void **state)
{
	struct pav_redis_config c = config();
	size_t n = 2 << 20;
	char *v = calloc(1, n);
	const char *argv[3] = {"SET", "k", v};
	size_t lens[3] = {3, 1, n};
	struct rep x = {0};

	(void)state;
	c.max_buffer_bytes = 1 << 20;
	connect_with(&c);
	assert_int_equal(pav_redis_command(F.r, on_reply, &x, 3, argv, lens),
			 -ENOBUFS);
	lens[2] = 100000;
	assert_int_equal(pav_redis_command(F.r, on_reply, &x, 3, argv, lens),
			 0);
	WAIT_FOR(x.calls, 5000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.err, 0);
	free(v);
}

/* ---- failures -------------------------------------------------------------------- */

static void a_stopped_redis_times_commands_out(void **state)
{
	struct pav_redis_config c = config();
	struct rep a = {0}, b = {0}, d = {0}, x;

	(void)state;
	c.command_timeout_ms = 1000;
	connect_with(&c);
	kill(F.redis, SIGSTOP);
	assert_int_equal(cmd(&a, "GET", "a", NULL), 0);
	assert_int_equal(cmd(&b, "GET", "b", NULL), 0);
	assert_int_equal(cmd(&d, "PING", NULL), 0);
	WAIT_FOR(d.calls, 1000 + 1500); /* margin: a loaded machine */
	assert_int_equal(a.calls + b.calls + d.calls, 3);
	assert_int_equal(a.err, -ETIMEDOUT);
	assert_int_equal(b.err, -ETIMEDOUT);
	assert_int_equal(d.err, -ETIMEDOUT);
	assert_int_equal(F.downs, 1);
	assert_int_equal(F.up_at_down, 0);
	assert_false(pav_redis_is_up(F.r));
	assert_int_equal(cmd(&x, "PING", NULL), -EIO);
	kill(F.redis, SIGCONT);
	WAIT_FOR(pav_redis_is_up(F.r), 10000);
	assert_int_equal(F.ups, 2);
	sync_cmd(&x, "PING", NULL);
}

static void a_stopped_redis_is_noticed_with_nothing_pending(void **state)
{
	struct pav_redis_config c = config();

	(void)state;
	connect_with(&c); /* 2000 ms timeout, a health request a second */
	/* stop Redis just after the second health request was answered: the
	 * next one, a second later, would only time out 3 s after the stop */
	run_for(2050);
	assert_true(pav_redis_is_up(F.r));
	kill(F.redis, SIGSTOP);
	WAIT_FOR(!pav_redis_is_up(F.r), 2000 + 700); /* < the 3 s it would take */
	assert_false(pav_redis_is_up(F.r));
	assert_int_equal(F.downs, 1);
}

static void killed_and_restarted_redis_is_rejoined_with_auth_db_scripts_subs(
	void **state)
{
	struct pav_redis_config c = config();
	struct rep p[5], x;
	char sha[41];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const char *lua = "return 'lua:' .. ARGV[1]";
	int script;

	static char password[] = PASSWORD;

	(void)state;
	c.password = password;
	c.db = 3;
	connect_with(&c);
	script = pav_redis_script(F.r, lua);
	assert_true(script >= 0);
	subscribe_sync("news");
	memset(p, 0, sizeof(p));
	for (int i = 0; i < 5; i++)
		assert_int_equal(cmd(&p[i], "INCR", "n", NULL), 0);
	stop_redis(); /* before the loop could send or read anything */
	WAIT_FOR(F.downs, 5000);
	assert_int_equal(F.downs, 1);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(p[i].calls, 1);
		assert_int_equal(p[i].err, -EIO);
	}
	assert_int_equal(cmd(&x, "PING", NULL), -EIO);
	assert_int_equal(pav_redis_subscribe(F.r, "x", 1, NULL, NULL), -EIO);
	run_for(300); /* a few reconnects fail */
	start_redis();
	WAIT_FOR(F.ups == 2, 10000);
	assert_int_equal(F.ups, 2);
	sync_cmd(&x, "CLIENT", "INFO", NULL);
	assert_non_null(strstr(x.str, " db=3 "));
	EVP_Digest(lua, strlen(lua), md, &mdlen, EVP_sha1(), NULL);
	for (unsigned int i = 0; i < 20; i++)
		snprintf(sha + 2 * i, 3, "%02x", md[i]);
	sync_cmd(&x, "SCRIPT", "EXISTS", sha, NULL);
	assert_int_equal(x.elements, 1);
	assert_int_equal(x.first, 1); /* loaded again */
	sync_cmd(&x, "EXISTS", "n", NULL); /* nothing survived the restart */
	assert_int_equal(x.integer, 0);
	sync_cmd(&x, "PUBLISH", "news", "back", NULL);
	assert_int_equal(x.integer, 1);
	WAIT_FOR(has_msg("news back"), 5000);
	assert_true(has_msg("news back"));
	assert_int_equal(F.resyncs, 0);
}

static void a_wrong_password_never_comes_up(void **state)
{
	struct pav_redis_config c = config();
	static char password[] = "wrong";

	(void)state;
	c.password = password;
	F.r = pav_redis_create(F.ctx, &c, &events);
	assert_non_null(F.r);
	run_for(1500);
	assert_false(pav_redis_is_up(F.r));
	assert_int_equal(F.ups, 0);
	assert_int_equal(F.downs, 0);
}

/* A listener that takes each connection and closes it at once: every
 * reconnection attempt shows as two accepts close together. */
static int accept_all(int lfd, int64_t *at, int n, int max)
{
	int fd;

	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		close(fd);
		if (n < max &&
		    (!n || pav_mono_ms() - at[n - 1] > 25)) /* a new attempt */
			at[n++] = pav_mono_ms();
	}
	return n;
}

static int listen_on(int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static void reconnects_back_off_exponentially_up_to_5_s(void **state)
{
	struct pav_redis_config c = config();
	int64_t at[64], start, maxgap = 0;
	int n = 0, lfd = listen_on(F.port), big = 0;

	(void)state;
	F.r = pav_redis_create(F.ctx, &c, &events);
	start = pav_mono_ms();
	/* two capped gaps come after 100+200+...+3200 ms of smaller ones,
	 * and jitter can make each gap up to its full length: 20 s bounds
	 * the worst case (15.6 s) with room for a loaded machine */
	while (pav_mono_ms() - start < 20000 && big < 2) {
		spin();
		n = accept_all(lfd, at, n, 64);
		big = 0;
		for (int i = 1; i < n; i++)
			big += at[i] - at[i - 1] >= 2500;
	}
	close(lfd);
	assert_true(n >= 6);
	/* the first retry is quick (50-100 ms; the margin is for a loaded
	 * machine, far below the next levels' seconds) */
	assert_true(at[1] - at[0] <= 1000);
	for (int i = 1; i < n; i++)
		if (at[i] - at[i - 1] > maxgap)
			maxgap = at[i] - at[i - 1];
	assert_true(maxgap <= PAV_REDIS_BACKOFF_MAX_MS + 1000); /* capped */
	assert_int_equal(big, 2); /* and it did grow that far */
	assert_true(n <= 14);     /* nothing like a retry loop */
	assert_int_equal(F.ups, 0);
}

static void commands_are_refused_while_down(void **state)
{
	struct pav_redis_config c = config();
	struct rep x = {0};
	int script;

	(void)state;
	F.r = pav_redis_create(F.ctx, &c, &events); /* nobody listens */
	assert_non_null(F.r);
	script = pav_redis_script(F.r, "return 1");
	assert_true(script >= 0);
	run_for(300);
	assert_false(pav_redis_is_up(F.r));
	assert_int_equal(cmd(&x, "PING", NULL), -EIO);
	assert_int_equal(pav_redis_eval(F.r, script, 0, 0, NULL, NULL,
					on_reply, &x), -EIO);
	assert_int_equal(pav_redis_subscribe(F.r, "c", 1, on_reply, &x), -EIO);
	run_for(100);
	assert_int_equal(x.calls, 0);
}

static void at_most_max_pending_wait_for_a_slow_redis(void **state)
{
	struct pav_redis_config c = config();
	struct rep reps[51], w = {0};

	(void)state;
	c.max_pending = 50;
	c.command_timeout_ms = 10000;
	connect_with(&c);
	memset(reps, 0, sizeof(reps));
	kill(F.redis, SIGSTOP);
	for (int i = 0; i < 50; i++)
		assert_int_equal(cmd(&reps[i], "INCR", "n", NULL), 0);
	run_for(100);
	assert_int_equal(cmd(&reps[50], "INCR", "n", NULL), -ENOBUFS);
	assert_int_equal(pav_redis_subscribe(F.r, "c", 1, on_reply, &w),
			 -ENOBUFS);
	kill(F.redis, SIGCONT);
	WAIT_FOR(reps[49].calls, 5000);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(reps[i].calls, 1);
		assert_int_equal(reps[i].integer, i + 1);
	}
	assert_int_equal(reps[50].calls, 0);
	assert_int_equal(w.calls, 0);
	sync_cmd(&reps[50], "INCR", "n", NULL);
	assert_int_equal(reps[50].integer, 51);
}

/* ---- pub/sub -------------------------------------------------------------------- */

#define NPUB 2000

static void messages_arrive_in_publish_order(void **state)
{
	struct pav_redis_config c = config();
	static struct rep reps[NPUB];
	char payload[16], want[32];

	(void)state;
	c.max_pending = NPUB;
	connect_with(&c);
	subscribe_sync("feed");
	memset(reps, 0, sizeof(reps));
	for (int i = 0; i < NPUB; i++) {
		snprintf(payload, sizeof(payload), "m-%d", i);
		assert_int_equal(cmd(&reps[i], "PUBLISH", "feed", payload, NULL),
				 0);
	}
	/* the messages (pub/sub connection) and the replies (command
	 * connection) come on two sockets: either may be read first */
	WAIT_FOR(F.nmsgs == NPUB && reps[NPUB - 1].calls, 10000);
	assert_int_equal(F.nmsgs, NPUB);
	for (int i = 0; i < NPUB; i++) {
		snprintf(want, sizeof(want), "feed m-%d", i);
		assert_string_equal(F.msgs[i], want);
		assert_int_equal(reps[i].integer, 1);
	}
}

static void subscribe_is_idempotent_and_unsubscribe_stops_messages(
	void **state)
{
	struct rep a = {0}, b = {0}, x, late = {0};

	(void)state;
	connect_default();
	assert_int_equal(pav_redis_subscribe(F.r, "a", 1, on_reply, &a), 0);
	assert_int_equal(pav_redis_subscribe(F.r, "a", 1, on_reply, &b), 0);
	WAIT_FOR(a.calls && b.calls, 5000);
	assert_int_equal(a.err, 0);
	assert_int_equal(b.err, 0);
	sync_cmd(&x, "PUBLISH", "a", "one", NULL);
	assert_int_equal(x.integer, 1);
	WAIT_FOR(has_msg("a one"), 5000);
	assert_int_equal(F.nmsgs, 1);

	assert_int_equal(pav_redis_unsubscribe(F.r, "a", 1), 0);
	assert_int_equal(pav_redis_unsubscribe(F.r, "a", 1), 0);
	assert_int_equal(pav_redis_unsubscribe(F.r, "never", 5), 0);
	for (int i = 0; i < 50; i++) {
		sync_cmd(&x, "PUBLISH", "a", "two", NULL);
		if (!x.integer)
			break;
	}
	assert_int_equal(x.integer, 0);
	run_for(100);
	assert_int_equal(F.nmsgs, 1);

	/* unsubscribed before Redis confirmed: the confirmation is cancelled */
	assert_int_equal(pav_redis_subscribe(F.r, "b", 1, on_reply, &late), 0);
	assert_int_equal(pav_redis_unsubscribe(F.r, "b", 1), 0);
	WAIT_FOR(late.calls, 5000);
	assert_int_equal(late.calls, 1);
	assert_int_equal(late.err, -ECANCELED);
	assert_int_equal(pav_redis_subscribe(F.r, "a\0b", 3, NULL, NULL),
			 -EINVAL);
	assert_int_equal(pav_redis_subscribe(F.r, "", 0, NULL, NULL), -EINVAL);
}

/* An ACL without the channel: Redis refuses the SUBSCRIBE.  The caller
 * learns it with Redis' answer, the connections stay, the channel leaves
 * the set (a new pub/sub connection is not refused for it), and it can be
 * subscribed once allowed. */
static void a_refused_subscribe_is_told_and_the_connection_stays(
	void **state)
{
	struct rep no = {0}, x;

	(void)state;
	connect_default();
	sync_cmd(&x, "ACL", "SETUSER", "default", "resetchannels",
		 "&pav:probe:*", "&ok", NULL);
	assert_int_equal(pav_redis_subscribe(F.r, "no", 2, on_reply, &no), 0);
	subscribe_sync("ok");
	WAIT_FOR(no.calls, 5000);
	assert_int_equal(no.calls, 1);
	assert_int_equal(no.err, -EACCES);
	assert_non_null(strstr(no.str, "NOPERM"));
	sync_cmd(&x, "CLIENT", "KILL", "TYPE", "pubsub", NULL);
	WAIT_FOR(F.resyncs, 5000);
	assert_int_equal(F.resyncs, 1);
	assert_int_equal(F.downs, 0);
	sync_cmd(&x, "PUBLISH", "ok", "still", NULL);
	assert_int_equal(x.integer, 1);
	sync_cmd(&x, "ACL", "SETUSER", "default", "&no", NULL);
	subscribe_sync("no");
	sync_cmd(&x, "PUBLISH", "no", "now", NULL);
	WAIT_FOR(has_msg("no now"), 5000);
	assert_true(has_msg("no now") && has_msg("ok still"));
	assert_int_equal(F.downs, 0);
}

/* An ACL change that takes a subscribed channel away: Redis closes the
 * pub/sub connection, and refuses the replacement's SUBSCRIBE of the set
 * (more than one batch of it here) as a whole.  Each channel of the
 * refused batch goes again on its own: the one taken away is told to
 * `refused` and leaves the set, the others are restored, and the client
 * stays up. */
static void a_channel_taken_away_leaves_the_set_and_the_rest_is_restored(
	void **state)
{
	char name[16];
	struct rep x;

	(void)state;
	connect_default();
	for (int i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(pav_redis_subscribe(F.r, name, strlen(name),
						     NULL, NULL), 0);
	}
	subscribe_sync("gone");
	sync_cmd(&x, "ACL", "SETUSER", "default", "resetchannels",
		 "&pav:probe:*", "&k*", NULL);
	WAIT_FOR(F.resyncs, 5000);
	assert_int_equal(F.resyncs, 1);
	assert_int_equal(F.downs, 0);
	assert_true(pav_redis_is_up(F.r));
	assert_int_equal(F.nrefused, 1);
	assert_string_equal(F.refused[0], "gone");
	assert_int_equal(F.refused_noperm, 1);
	sync_cmd(&x, "PUBLISH", "gone", "missed", NULL);
	assert_int_equal(x.integer, 0);
	sync_cmd(&x, "PUBLISH", "k0", "restored", NULL);
	assert_int_equal(x.integer, 1);
	sync_cmd(&x, "PUBLISH", "k1499", "restored", NULL);
	assert_int_equal(x.integer, 1);
	WAIT_FOR(has_msg("k1499 restored"), 5000);
	assert_true(has_msg("k1499 restored"));
	/* out of the set: the next connection does not ask for it */
	sync_cmd(&x, "CLIENT", "KILL", "TYPE", "pubsub", NULL);
	WAIT_FOR(F.resyncs == 2, 5000);
	assert_int_equal(F.resyncs, 2);
	assert_int_equal(F.nrefused, 1);
	sync_cmd(&x, "ACL", "SETUSER", "default", "&gone", NULL);
	subscribe_sync("gone");
	sync_cmd(&x, "PUBLISH", "gone", "back", NULL);
	WAIT_FOR(has_msg("gone back"), 5000);
	assert_true(has_msg("gone back"));
	assert_int_equal(F.downs, 0);
}

/* Without its probe channel the client cannot tell a live pub/sub
 * connection: that refusal takes it down until the channel is allowed. */
static void the_probe_channel_taken_away_takes_the_client_down(void **state)
{
	struct rep x;

	(void)state;
	connect_default();
	subscribe_sync("k");
	sync_cmd(&x, "ACL", "SETUSER", "default", "resetchannels", "&k", NULL);
	WAIT_FOR(F.downs, 5000);
	assert_int_equal(F.downs, 1);
	assert_int_equal(F.nrefused, 0);
	run_for(300); /* retries, refused again */
	assert_false(pav_redis_is_up(F.r));
	assert_int_equal(F.ups, 1);
	/* a connection of our own: the client's are down */
	{
		struct redisContext *rc = redisConnect("127.0.0.1", F.port);
		redisReply *rep;

		assert_non_null(rc);
		rep = redisCommand(rc, "ACL SETUSER default &pav:probe:*");
		assert_non_null(rep);
		freeReplyObject(rep);
		redisFree(rc);
	}
	WAIT_FOR(F.ups == 2, 10000);
	assert_int_equal(F.ups, 2);
	sync_cmd(&x, "PUBLISH", "k", "again", NULL);
	WAIT_FOR(has_msg("k again"), 5000);
	assert_true(has_msg("k again"));
}

static void killed_pubsub_connection_is_replaced_and_resynced(void **state)
{
	struct rep x;

	(void)state;
	connect_default();
	subscribe_sync("k");
	sync_cmd(&x, "CLIENT", "KILL", "TYPE", "pubsub", NULL);
	assert_int_equal(x.integer, 1);
	WAIT_FOR(F.resyncs, 5000);
	assert_int_equal(F.resyncs, 1);
	assert_int_equal(F.downs, 0);
	assert_true(pav_redis_is_up(F.r));
	sync_cmd(&x, "PUBLISH", "k", "after", NULL);
	assert_int_equal(x.integer, 1);
	WAIT_FOR(has_msg("k after"), 5000);
	assert_true(has_msg("k after"));
}

static void pubsub_output_limit_kill_is_replaced_and_resynced(void **state)
{
	static char v[100000];
	const char *argv[3] = {"PUBLISH", "big", v};
	const size_t lens[3] = {7, 3, sizeof(v)};
	struct rep x, reps[5];

	(void)state;
	memset(v, 'v', sizeof(v));
	connect_default();
	subscribe_sync("big");
	sync_cmd(&x, "CONFIG", "SET", "client-output-buffer-limit",
		 "pubsub 1kb 1kb 0", NULL);
	memset(reps, 0, sizeof(reps));
	for (int i = 0; i < 5; i++)
		assert_int_equal(pav_redis_command(F.r, on_reply, &reps[i], 3,
						   argv, lens), 0);
	WAIT_FOR(F.resyncs, 5000);
	assert_int_equal(F.resyncs, 1);
	assert_int_equal(F.downs, 0);
	sync_cmd(&x, "CONFIG", "SET", "client-output-buffer-limit",
		 "pubsub 32mb 8mb 60", NULL);
	sync_cmd(&x, "PUBLISH", "big", "small", NULL);
	assert_int_equal(x.integer, 1);
	WAIT_FOR(has_msg("big small"), 5000);
	assert_true(has_msg("big small"));
}

/* ---- a proxy that can freeze the pub/sub connection ---------------------------- */

static volatile sig_atomic_t freeze_now;

static void on_usr1(int sig)
{
	(void)sig;
	freeze_now = 1;
}

struct pair {
	int fd[2]; /* client side, Redis side; -1: gone */
	int subscriber, frozen;
};

static int connect_redis(int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pair_close(struct pair *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
	p->fd[0] = p->fd[1] = -1;
}

/* Moves what is readable on side s to the other side. */
static void forward(struct pair *p, int s)
{
	char buf[65536];
	ssize_t n = read(p->fd[s], buf, sizeof(buf));

	if (n <= 0) {
		pair_close(p);
		return;
	}
	if (s == 0 && memmem(buf, (size_t)n, "SUBSCRIBE", 9))
		p->subscriber = 1;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(p->fd[!s], buf + off, (size_t)(n - off));

		if (w <= 0) {
			pair_close(p);
			return;
		}
		off += w;
	}
}

static void proxy_round(int lfd, struct pair *pairs, int *np, int redis_port)
{
	struct pollfd pfd[129];
	int map[129], n = 1;

	pfd[0].fd = lfd;
	pfd[0].events = POLLIN;
	for (int i = 0; i < *np; i++)
		for (int s = 0; s < 2; s++)
			if (pairs[i].fd[0] >= 0 && !pairs[i].frozen) {
				pfd[n].fd = pairs[i].fd[s];
				pfd[n].events = POLLIN;
				map[n++] = i * 2 + s;
			}
	if (poll(pfd, (nfds_t)n, 100) <= 0)
		return;
	if ((pfd[0].revents & POLLIN) && *np < 64) {
		struct pair *p = &pairs[*np];

		p->fd[0] = accept(lfd, NULL, NULL);
		p->fd[1] = connect_redis(redis_port);
		p->subscriber = p->frozen = 0;
		if (p->fd[0] >= 0 && p->fd[1] >= 0)
			(*np)++;
	}
	for (int k = 1; k < n; k++)
		if (pfd[k].revents && pairs[map[k] / 2].fd[0] >= 0)
			forward(&pairs[map[k] / 2], map[k] % 2);
}

static void proxy_main(int lfd, int redis_port)
{
	static struct pair pairs[64];
	struct sigaction sa = {0};
	int np = 0;

	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	for (;;) {
		if (freeze_now) { /* stop relaying, keep the sockets open */
			freeze_now = 0;
			for (int i = 0; i < np; i++)
				pairs[i].frozen |= pairs[i].subscriber;
		}
		proxy_round(lfd, pairs, &np, redis_port);
	}
}

static void start_proxy(void)
{
	int lfd;

	F.proxy_port = free_port();
	lfd = listen_on(F.proxy_port);
	F.proxy = fork();
	assert_true(F.proxy >= 0);
	if (F.proxy == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fcntl(lfd, F_SETFL, 0);
		proxy_main(lfd, F.port);
		_exit(0);
	}
	close(lfd);
}

static void a_silently_dead_pubsub_connection_is_found_by_the_probe(
	void **state)
{
	struct pav_redis_config c = config();
	struct rep x;

	(void)state;
	start_proxy();
	c.port = F.proxy_port;
	c.command_timeout_ms = 1000;
	connect_with(&c);
	subscribe_sync("p");
	run_for(600); /* a probe or two go round */
	assert_int_equal(F.resyncs, 0);
	kill(F.proxy, SIGUSR1); /* Redis' pushes stop reaching us */
	WAIT_FOR(F.resyncs, 5000);
	assert_int_equal(F.resyncs, 1);
	assert_int_equal(F.downs, 0);
	sync_cmd(&x, "PUBLISH", "p", "again", NULL);
	WAIT_FOR(has_msg("p again"), 5000);
	assert_true(has_msg("p again"));
}

/* ---- scripts -------------------------------------------------------------------- */

static void eval(int script, struct rep *x, int nkeys, int argc,
		 const char **argv)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(pav_redis_eval(F.r, script, nkeys, argc, argv, NULL,
					on_reply, x), 0);
	WAIT_FOR(x->calls, 5000);
	assert_int_equal(x->calls, 1);
	assert_int_equal(x->err, 0);
}

static void evalsha_recovers_from_noscript(void **state)
{
	const char *argv[2] = {"key1", "val1"};
	struct rep x;
	int s1, s2;

	(void)state;
	s1 = pav_redis_script(NULL, "return 1");
	assert_int_equal(s1, -EINVAL);
	connect_default();
	s1 = pav_redis_script(F.r, "return KEYS[1] .. '=' .. ARGV[1]");
	assert_int_equal(pav_redis_script(F.r,
					  "return KEYS[1] .. '=' .. ARGV[1]"),
			 s1);
	eval(s1, &x, 1, 2, argv);
	assert_string_equal(x.str, "key1=val1");
	sync_cmd(&x, "SCRIPT", "FLUSH", NULL);
	eval(s1, &x, 1, 2, argv);
	assert_int_equal(x.type, REDIS_REPLY_STRING);
	assert_string_equal(x.str, "key1=val1");
	s2 = pav_redis_script(F.r, "return 42");
	assert_true(s2 >= 0 && s2 != s1);
	eval(s2, &x, 0, 0, NULL);
	assert_int_equal(x.integer, 42);
	assert_int_equal(pav_redis_eval(F.r, 99, 0, 0, NULL, NULL, on_reply,
					&x), -EINVAL);
	assert_int_equal(pav_redis_eval(F.r, s1, 3, 2, argv, NULL, on_reply,
					&x), -EINVAL);
}

/* ---- destroy ----------------------------------------------------------------------- */

#define NFLIGHT 1000

static void destroy_cancels_everything_in_flight(void **state)
{
	static struct rep reps[NFLIGHT];
	struct rep w = {0};

	(void)state;
	connect_default();
	memset(reps, 0, sizeof(reps));
	kill(F.redis, SIGSTOP);
	assert_int_equal(pav_redis_subscribe(F.r, "w", 1, on_reply, &w), 0);
	for (int i = 0; i < NFLIGHT; i++)
		assert_int_equal(cmd(&reps[i], "INCR", "n", NULL), 0);
	run_for(100); /* written, not answered */
	pav_redis_destroy(F.r);
	F.r = NULL;
	for (int i = 0; i < NFLIGHT; i++) {
		assert_int_equal(reps[i].calls, 1);
		assert_int_equal(reps[i].err, -ECANCELED);
	}
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.err, -ECANCELED);
	kill(F.redis, SIGCONT);
	run_for(300);
	for (int i = 0; i < NFLIGHT; i++)
		assert_int_equal(reps[i].calls, 1);
	assert_int_equal(w.calls, 1);
	assert_int_equal(F.downs, 0); /* no event after destroy */
}

static void on_reply_destroy(void *arg, int err, const redisReply *reply)
{
	on_reply(arg, err, reply);
	pav_redis_destroy(F.r);
	pav_redis_destroy(F.r); /* twice is harmless */
}

static void destroy_inside_a_reply_callback(void **state)
{
	struct rep reps[100];

	(void)state;
	connect_default();
	memset(reps, 0, sizeof(reps));
	for (int i = 0; i < 100; i++)
		assert_int_equal(pav_redis_command(F.r,
						   i == 9 ? on_reply_destroy
							  : on_reply,
						   &reps[i], 1,
						   (const char *[]){"PING"},
						   NULL), 0);
	WAIT_FOR(reps[9].calls, 5000);
	F.r = NULL;
	run_for(200);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(reps[i].calls, 1);
		assert_int_equal(reps[i].err, i <= 9 ? 0 : -ECANCELED);
	}
	assert_int_equal(F.downs, 0);
}

/* ---- names, event loops ------------------------------------------------------------ */

/* A name is resolved at create; one that does not resolve is looked up
 * again at each retry. */
static void a_host_name_is_resolved_at_create(void **state)
{
	struct pav_redis_config c = config();
	struct rep x;

	(void)state;
	snprintf(c.host, sizeof(c.host), "localhost");
	connect_with(&c);
	sync_cmd(&x, "PING", NULL);
	assert_string_equal(x.str, "PONG");
	/* a name that does not resolve (yet): the client starts down, looks
	 * it up at each retry, and a destroy meanwhile leaves nothing */
	snprintf(c.host, sizeof(c.host), "no-such-host.invalid");
	{
		struct pav_redis *r = pav_redis_create(F.ctx, &c, &events);

		assert_non_null(r);
		run_for(300);
		assert_false(pav_redis_is_up(r));
		assert_int_equal(F.ups, 1); /* the first client's only */
		pav_redis_destroy(r);
	}
}

/* Down, a name is looked up again on glibc's resolver thread: each retry
 * takes the answer and the next down starts another.  A destroy while one
 * is under way or unread must neither leak it nor free it under the thread
 * (the sanitizer build checks).  The integration test of the Redis store
 * moves Redis to another address. */
static void a_host_name_is_looked_up_again_while_down(void **state)
{
	struct pav_redis_config c = config();
	struct rep x;

	(void)state;
	snprintf(c.host, sizeof(c.host), "localhost");
	connect_with(&c);
	stop_redis();
	WAIT_FOR(F.downs, 5000);
	assert_int_equal(F.downs, 1);
	run_for(400); /* a few retries fail, each after a lookup */
	start_redis();
	WAIT_FOR(F.ups == 2, 10000);
	assert_int_equal(F.ups, 2);
	sync_cmd(&x, "PING", NULL);
	assert_string_equal(x.str, "PONG");
	stop_redis();
	WAIT_FOR(F.downs == 2, 5000);
	assert_int_equal(F.downs, 2);
	pav_redis_destroy(F.r); /* before the retry (50-100 ms) took its lookup */
	F.r = NULL;
}

static void two_clients_share_one_context(void **state)
{
	struct pav_redis_config c = config();
	struct pav_redis_events quiet = {0};
	struct pav_redis *other;
	struct rep x = {0};
	const char *argv[3] = {"PUBLISH", "shared", "from-other"};

	(void)state;
	connect_with(&c);
	subscribe_sync("shared");
	other = pav_redis_create(F.ctx, &c, &quiet);
	assert_non_null(other);
	WAIT_FOR(pav_redis_is_up(other), 5000);
	assert_true(pav_redis_is_up(other));
	assert_int_equal(pav_redis_command(other, on_reply, &x, 3, argv, NULL),
			 0);
	WAIT_FOR(has_msg("shared from-other"), 5000);
	assert_true(has_msg("shared from-other"));
	assert_int_equal(x.integer, 1); /* its probe channel is its own */
	pav_redis_destroy(other);
	sync_cmd(&x, "PING", NULL);
}

#ifdef PAV_WITH_UV
static uv_timer_t uv_tick;

static void on_uv_tick(uv_timer_t *t)
{
	(void)t; /* only wakes uv_run up */
}

static void works_on_a_libuv_context(void **state)
{
	static uv_loop_t loop;
	struct rep x;

	(void)state;
	lws_sul_cancel(&wake_sul);
	lws_context_destroy(F.ctx);
	assert_int_equal(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &uv_tick);
	uv_timer_start(&uv_tick, on_uv_tick, 20, 20);
	F.uv = &loop;
	F.ctx = make_context(&loop);
	assert_non_null(F.ctx);
	connect_default();
	sync_cmd(&x, "SET", "uv", "yes", NULL);
	sync_cmd(&x, "GET", "uv", NULL);
	assert_string_equal(x.str, "yes");
	subscribe_sync("uvchan");
	sync_cmd(&x, "PUBLISH", "uvchan", "hello", NULL);
	WAIT_FOR(has_msg("uvchan hello"), 5000);
	assert_true(has_msg("uvchan hello"));
	pav_redis_destroy(F.r);
	F.r = NULL;
	lws_context_destroy(F.ctx);
	F.ctx = NULL;
	uv_timer_stop(&uv_tick);
	uv_close((uv_handle_t *)&uv_tick, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	F.uv = NULL;
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url_forms_are_parsed),
		cmocka_unit_test(bad_urls_are_refused_with_a_reason),
		cmocka_unit_test(unescape_decodes_in_place_and_refuses_bad_escapes),
		cmocka_unit_test_setup_teardown(commands_answer_later_and_redis_errors_are_err_0, setup, teardown),
		cmocka_unit_test_setup_teardown(many_commands_in_flight_are_answered_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(large_replies_are_parsed_across_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(a_write_larger_than_the_socket_buffers_completes, setup, teardown),
		cmocka_unit_test_setup_teardown(a_reply_over_max_buffer_resets_the_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(commands_over_max_buffer_bytes_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(a_stopped_redis_times_commands_out, setup, teardown),
		cmocka_unit_test_setup_teardown(a_stopped_redis_is_noticed_with_nothing_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(killed_and_restarted_redis_is_rejoined_with_auth_db_scripts_subs, setup_auth, teardown),
		cmocka_unit_test_setup_teardown(a_wrong_password_never_comes_up, setup_auth, teardown),
		cmocka_unit_test_setup_teardown(reconnects_back_off_exponentially_up_to_5_s, setup_no_redis, teardown),
		cmocka_unit_test_setup_teardown(commands_are_refused_while_down, setup_no_redis, teardown),
		cmocka_unit_test_setup_teardown(at_most_max_pending_wait_for_a_slow_redis, setup, teardown),
		cmocka_unit_test_setup_teardown(messages_arrive_in_publish_order, setup, teardown),
		cmocka_unit_test_setup_teardown(subscribe_is_idempotent_and_unsubscribe_stops_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(a_refused_subscribe_is_told_and_the_connection_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(a_channel_taken_away_leaves_the_set_and_the_rest_is_restored, setup, teardown),
		cmocka_unit_test_setup_teardown(the_probe_channel_taken_away_takes_the_client_down, setup, teardown),
		cmocka_unit_test_setup_teardown(killed_pubsub_connection_is_replaced_and_resynced, setup, teardown),
		cmocka_unit_test_setup_teardown(pubsub_output_limit_kill_is_replaced_and_resynced, setup, teardown),
		cmocka_unit_test_setup_teardown(a_silently_dead_pubsub_connection_is_found_by_the_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(evalsha_recovers_from_noscript, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_cancels_everything_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_inside_a_reply_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(tls_contexts_are_made_or_refused_with_a_reason,
						setup_no_redis, teardown),
		cmocka_unit_test_setup_teardown(a_host_name_is_resolved_at_create, setup, teardown),
		cmocka_unit_test_setup_teardown(a_host_name_is_looked_up_again_while_down, setup,
						teardown),
		cmocka_unit_test_setup_teardown(two_clients_share_one_context, setup, teardown),
#ifdef PAV_WITH_UV
		cmocka_unit_test_setup_teardown(works_on_a_libuv_context, setup, teardown),
#endif
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
