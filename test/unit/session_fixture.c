/* session_fixture.c — see session_fixture.h. */
#include "session_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "broker.h"
#include "fake_clock.h"
#include "hub.h"
#include "log.h"
#include "map.h"
#include "memory.h"

struct pav_core fx_core;
struct pav_vhost fx_vh;
struct pav_vhost_config fx_vc;
struct pav_ns fx_ns;
struct fx_event fx_events[FX_EVENTS];
size_t fx_nevents;
const char *fx_renew_refused[8];

static struct pav_instance insts[2];
static struct pav_state_ops state_ops; /* memory, history maybe held */
static struct pav_broker_ops broker_ops; /* memory, feeds maybe held */
static struct pav_backend backend;
static char dir[64], key_path[96];
static char *algs[] = {"HS256"};

/* ---- the recorder plugin ---- */

static void event(const struct pav_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void event(const struct pav_session *s, const char *fmt, ...)
{
	struct fx_event *e;
	va_list ap;

	assert_true(fx_nevents < FX_EVENTS);
	e = &fx_events[fx_nevents++];
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	e->frames = s->hc.conn ? fake_of(s->hc.conn)->n : 0;
}

static void rec_open(void *inst, pav_conn *c, int first)
{
	event(c, "%s open %s first=%d", (const char *)inst, c->user, first);
}

static void rec_subscribed(void *inst, pav_conn *c,
			   const struct pav_subscribed *ev)
{
	event(c, "%s subscribed %s %s first=%d subs=%lld params=%s",
	      (const char *)inst, c->user, ev->channel, ev->user_first,
	      (long long)ev->subscribers,
	      ev->parameters ? json_object_to_json_string_ext(
				       ev->parameters, JSON_C_TO_STRING_PLAIN)
			     : "-");
}

static void rec_unsubscribed(void *inst, pav_conn *c, const char *channel)
{
	event(c, "%s unsubscribed %s %s", (const char *)inst, c->user,
	      channel);
}

struct chan_list {
	char *v[32];
	size_t n;
};

static void add_chan(const char *channel, void *arg)
{
	struct chan_list *l = arg;

	if (l->n < 32)
		l->v[l->n++] = strdup(channel);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rec_close(void *inst, pav_conn *c, int last)
{
	struct chan_list l = {0};
	char buf[200] = "";

	pav_session_channels(c, add_chan, &l);
	qsort(l.v, l.n, sizeof(l.v[0]), cmp_str);
	for (size_t i = 0; i < l.n; i++) {
		if (i)
			strncat(buf, ",", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, l.v[i], sizeof(buf) - strlen(buf) - 1);
		free(l.v[i]);
	}
	event(c, "%s close %s last=%d at=%lld channels=%s",
	      (const char *)inst, c->user, last,
	      (long long)(c->closed_ms - FX_T0), buf);
}

static int rec_check(void *inst, pav_conn *c, const char *channel,
		     json_object *params, const char **why)
{
	(void)inst;
	(void)c;
	(void)channel;
	if (json_object_object_get_ex(params, "bad", NULL)) {
		*why = "bad parameter";
		return PAV_ERR_FORMAT;
	}
	return 0;
}

static int rec_renewed(void *inst, pav_conn *c, const char *channel)
{
	event(c, "%s renewed %s %s", (const char *)inst, c->user, channel);
	for (size_t i = 0; i < 8 && fx_renew_refused[i]; i++)
		if (!strcmp(fx_renew_refused[i], channel))
			return PAV_ERR_PERMISSION;
	return 0;
}

static const struct pav_plugin recorder = {
	.magic = PAV_PLUGIN_MAGIC,
	.abi_version = PAV_PLUGIN_ABI_VERSION,
	.name = "recorder",
	.version = "1",
	.on_open = rec_open,
	.on_subscribed = rec_subscribed,
	.on_unsubscribed = rec_unsubscribed,
	.on_close = rec_close,
	.check_parameters = rec_check,
	.check_renewed = rec_renewed,
};

int fx_event_find(const char *text, size_t from)
{
	for (size_t i = from; i < fx_nevents; i++)
		if (!strcmp(fx_events[i].text, text))
			return (int)i;
	return -1;
}

size_t fx_a_count(void)
{
	size_t n = 0;

	for (size_t i = 0; i < fx_nevents; i++)
		n += !strncmp(fx_events[i].text, "A ", 2);
	return n;
}

const char *fx_a(size_t i)
{
	for (size_t k = 0; k < fx_nevents; k++)
		if (!strncmp(fx_events[k].text, "A ", 2) && i-- == 0)
			return fx_events[k].text + 2;
	return "";
}

void fx_events_clear(void)
{
	fx_nevents = 0;
}

/* ---- history reads held back ---- */

struct held_read {
	char ns[32], channel[80];
	const struct pav_history_cfg *h;
	uint64_t after;
	size_t max;
	pav_history_fn cb;
	void *arg;
};

static struct held_read held[16];
static size_t nheld;
static int holding;

static void held_history_read(void *self, const char *ns, const char *channel,
			      const struct pav_history_cfg *h, uint64_t after,
			      size_t max, pav_history_fn cb, void *arg)
{
	struct held_read *x;

	if (!holding) {
		pav_memory_state.history_read(self, ns, channel, h, after, max,
					      cb, arg);
		return;
	}
	assert_true(nheld < 16);
	x = &held[nheld++];
	snprintf(x->ns, sizeof(x->ns), "%s", ns);
	snprintf(x->channel, sizeof(x->channel), "%s", channel);
	x->h = h;
	x->after = after;
	x->max = max;
	x->cb = cb;
	x->arg = arg;
}

void fx_hold_history(int on)
{
	holding = on;
}

int fx_run_history(void)
{
	int n = 0;

	for (size_t i = 0; i < nheld; i++, n++)
		pav_memory_state.history_read(fx_core.store.state, held[i].ns,
					      held[i].channel, held[i].h,
					      held[i].after, held[i].max,
					      held[i].cb, held[i].arg);
	nheld = 0;
	return n;
}

/* ---- a network store's timing: applied now, answered later ---- */

/* An answer of conn_add (count) or member_add (subscribers, user count)
 * waiting to be delivered. */
struct later {
	int member; /* 0: conn_add */
	pav_state_count_fn count_cb;
	pav_state_member_fn member_cb;
	void *arg;
	int err;
	int64_t a, b;
};

static struct later laters[32];
static size_t nlaters;
static int holding_adds, holding_members, fail_member, fail_conn;
static struct later *capturing;

static struct later *later_new(void)
{
	assert_true(nlaters < 32);
	return &laters[nlaters++];
}

static void capture_count(void *arg, int err, int64_t count)
{
	(void)arg;
	capturing->err = err;
	capturing->a = count;
}

static void capture_member(void *arg, int err, int64_t subscribers,
			   int64_t user_count)
{
	(void)arg;
	capturing->err = err;
	capturing->a = subscribers;
	capturing->b = user_count;
}

static void held_conn_add(void *self, const char *ns, const char *user,
			  uint64_t conn, int max,
			  const struct pav_token_iat *tok,
			  pav_state_count_fn cb, void *arg)
{
	if (fail_conn) {
		cb(arg, fail_conn, 0);
		return;
	}
	if (!holding_adds) {
		pav_memory_state.conn_add(self, ns, user, conn, max, tok, cb,
					  arg);
		return;
	}
	capturing = later_new();
	*capturing = (struct later){.count_cb = cb, .arg = arg};
	pav_memory_state.conn_add(self, ns, user, conn, max, tok,
				  capture_count, NULL);
}

void fx_hold_conn_add(int on)
{
	holding_adds = on;
}

void fx_hold_member_add(int on)
{
	holding_members = on;
}

/* Answers the held conn_add (member 0) or member_add (1) calls, with
 * err instead of the store's answer when err != 0. */
static int run_laters(int member, int err)
{
	int n = 0;

	for (size_t i = 0; i < nlaters; i++) {
		struct later x = laters[i];

		if (x.member != member || !(x.count_cb || x.member_cb))
			continue;
		laters[i].count_cb = NULL;
		laters[i].member_cb = NULL;
		if (err)
			x.err = err;
		n++;
		if (member)
			x.member_cb(x.arg, x.err, x.a, x.b);
		else
			x.count_cb(x.arg, x.err, x.a);
	}
	if (!n)
		return 0;
	for (size_t i = 0; i < nlaters; i++)
		if (laters[i].count_cb || laters[i].member_cb)
			return n;
	nlaters = 0;
	return n;
}

int fx_run_conn_add(void)
{
	return run_laters(0, 0);
}

int fx_run_member_add(void)
{
	return run_laters(1, 0);
}

int fx_run_member_add_err(int err)
{
	return run_laters(1, err);
}

static void failing_member_add(void *self, const char *ns, const char *channel,
			       const char *user, pav_state_member_fn cb,
			       void *arg)
{
	if (fail_member) {
		if (cb)
			cb(arg, fail_member, 0, 0);
		return;
	}
	if (!holding_members) {
		pav_memory_state.member_add(self, ns, channel, user, cb, arg);
		return;
	}
	capturing = later_new();
	*capturing = (struct later){.member = 1, .member_cb = cb, .arg = arg};
	pav_memory_state.member_add(self, ns, channel, user, capture_member,
				    NULL);
}

void fx_fail_member_add(int err)
{
	fail_member = err;
}

void fx_fail_conn_add(int err)
{
	fail_conn = err;
}

/* ---- the broker's feeds, held back ---- */

struct held_feed {
	pav_done_fn cb;
	void *arg;
};

static struct held_feed feeds[16];
static size_t nfeeds;
static int holding_feeds, feed_err;
int fx_feed_requests, fx_feed_stops;

static void held_subscribe(void *self, const char *ns, const char *channel,
			   pav_done_fn cb, void *arg)
{
	fx_feed_requests++;
	if (!holding_feeds) {
		pav_memory_broker.subscribe(self, ns, channel, cb, arg);
		return;
	}
	assert_true(nfeeds < 16);
	feeds[nfeeds++] = (struct held_feed){cb, arg};
}

static void counted_unsubscribe(void *self, const char *ns,
				const char *channel)
{
	fx_feed_stops++;
	pav_memory_broker.unsubscribe(self, ns, channel);
}

void fx_hold_feeds(int on)
{
	holding_feeds = on;
}

int fx_run_feeds(int err)
{
	size_t n = nfeeds;

	feed_err = err;
	nfeeds = 0;
	for (size_t i = 0; i < n; i++)
		if (feeds[i].cb)
			feeds[i].cb(feeds[i].arg, err);
	return (int)n;
}

/* ---- set up, tear down ---- */

static void write_key(void)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/pav-session-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(key_path, sizeof(key_path), "%s/hs256.key", dir);
	f = fopen(key_path, "w");
	assert_non_null(f);
	fputs("0123456789abcdef0123456789abcdef\n", f);
	assert_int_equal(fclose(f), 0);
}

int fx_setup(void **state)
{
	struct pav_backend_env env = {
		.deliver = pav_session_deliver,
		.resync = pav_session_resync,
		.user_gone = pav_session_user_gone,
		.arg = &fx_core,
	};
	struct pav_store_config scfg = {.backend = "memory"};
	char err[256];

	(void)state;
	pav_log_setup(PAV_LOG_ERROR, 0); /* quiet: opens and closes are info */
	fake_clock_set(FX_T0);
	fx_nevents = 0;
	memset(fx_renew_refused, 0, sizeof(fx_renew_refused));
	nheld = 0;
	holding = 0;
	nlaters = 0;
	holding_adds = holding_members = fail_member = fail_conn = 0;
	nfeeds = 0;
	holding_feeds = feed_err = 0;
	fx_feed_requests = fx_feed_stops = 0;
	memset(&fx_core, 0, sizeof(fx_core));
	memset(&fx_vh, 0, sizeof(fx_vh));
	memset(&fx_vc, 0, sizeof(fx_vc));
	memset(&fx_ns, 0, sizeof(fx_ns));

	state_ops = pav_memory_state;
	state_ops.history_read = held_history_read;
	state_ops.conn_add = held_conn_add;
	state_ops.member_add = failing_member_add;
	broker_ops = pav_memory_broker;
	broker_ops.subscribe = held_subscribe;
	broker_ops.unsubscribe = counted_unsubscribe;
	backend = (struct pav_backend){"memory", &state_ops, &broker_ops};
	fx_core.store.be = &backend;
	if (state_ops.create(&scfg, &env, &fx_core.store.state, err,
			     sizeof(err)) ||
	    pav_memory_broker.create(&scfg, &env, fx_core.store.state,
				     &fx_core.store.broker, err, sizeof(err)))
		fail_msg("store: %s", err);
	fx_core.sessions = pav_map_new();
	fx_core.live = pav_map_new();
	fx_core.hub = pav_hub_new(pav_session_revoke, &fx_core);
	assert_non_null(fx_core.sessions);
	assert_non_null(fx_core.live);
	assert_non_null(fx_core.hub);

	fx_ns.name = "default";
	fx_ns.history[PAV_HISTORY_ZONE] = (struct pav_history_cfg){10, 60};
	fx_ns.checks = pav_map_new();

	fx_vc.name = "public";
	fx_vc.kind = PAV_VHOST_PUBLIC;
	fx_vc.ns = "default";
	pav_limits_default(&fx_vc.limits);
	fx_vc.limits.max_connections_per_user = FX_MAX_PER_USER;
	fx_vc.limits.max_subscriptions = FX_MAX_SUBS;
	fx_vc.algorithms = algs;
	fx_vc.nalgorithms = 1;
	write_key();
	fx_vc.key_file = key_path;
	fx_vc.leeway_s = 30;

	insts[0] = (struct pav_instance){&recorder, "A", &fx_vh};
	insts[1] = (struct pav_instance){&recorder, "B", &fx_vh};
	fx_vh.core = &fx_core;
	fx_vh.cfg = &fx_vc;
	fx_vh.ns = &fx_ns;
	fx_vh.insts = insts;
	fx_vh.ninsts = 2;
	fx_vh.handlers = pav_map_new();
	assert_non_null(fx_vh.handlers);
	if (pav_auth_load(&fx_vh.auth, (const char *const *)algs, 1, key_path,
			  NULL, NULL, 30, err, sizeof(err)))
		fail_msg("key: %s", err);
	fx_core.vhosts = &fx_vh;
	fx_core.nvhosts = 1;
	fx_core.nss = &fx_ns;
	fx_core.nns = 1;
	return 0;
}

static int collect_session(const char *key, void *val, void *arg)
{
	struct pav_session **list = arg;

	(void)key;
	for (size_t i = 0; i < 64; i++)
		if (!list[i]) {
			list[i] = val;
			break;
		}
	return 0;
}

int fx_teardown(void **state)
{
	struct pav_session *open[64] = {0};

	(void)state;
	holding = 0;
	holding_adds = holding_members = fail_member = fail_conn = 0;
	holding_feeds = 0;
	fx_run_feeds(0);
	fx_run_history();
	fx_run_conn_add();
	fx_run_member_add();
	pav_map_each(fx_core.sessions, collect_session, open);
	for (size_t i = 0; i < 64 && open[i]; i++)
		pav_session_closed(open[i]);
	assert_int_equal(pav_map_count(fx_core.sessions), 0);
	assert_int_equal(pav_map_count(fx_core.live), 0);
	pav_hub_free(fx_core.hub);
	pav_map_free(fx_core.sessions, NULL);
	pav_map_free(fx_core.live, NULL);
	pav_memory_broker.destroy(fx_core.store.broker);
	state_ops.destroy(fx_core.store.state);
	pav_map_free(fx_vh.handlers, free);
	pav_map_free(fx_ns.checks, free);
	pav_auth_free(&fx_vh.auth);
	unlink(key_path);
	rmdir(dir);
	return 0;
}

/* ---- helpers ---- */

struct pav_session *fx_open(struct fake_conn *fc, const char *user,
			    const char *extra_claims)
{
	json_object *claims = extra_claims ? json_tokener_parse(extra_claims)
					   : json_object_new_object();

	assert_non_null(claims);
	json_object_object_add(claims, "sub", json_object_new_string(user));
	fake_conn_init(fc);
	fc->c.vc = &fx_vc;
	return pav_session_open(&fx_core, &fx_vh, &fc->c, user, claims,
				"127.0.0.1");
}

void fx_close(struct pav_session *s)
{
	pav_session_closed(s);
}

void fx_subscribe(struct pav_session *s, const char *channel,
		  const char *params, const char *id)
{
	json_object *p = params ? json_tokener_parse(params) : NULL;
	struct pav_reply *r = pav_session_defer(s, "subscribe", id);

	assert_true(!params || p);
	assert_non_null(r);
	pav_session_subscribe(s, channel, p, r);
	json_object_put(p);
}

static uint64_t published_offset;

static void on_published(void *arg, int err, const struct pav_published *res)
{
	(void)arg;
	assert_int_equal(err, 0);
	published_offset = res->offset;
}

uint64_t fx_publish(const char *channel, int n)
{
	const char *chans[] = {channel};
	json_object *p = json_object_new_object();
	struct pav_outgoing out = {
		.channels = chans,
		.nchannels = 1,
		.type = "msg",
		.payload = p,
		.history = pav_ns_history(&fx_ns, channel),
	};

	json_object_object_add(p, "n", json_object_new_int(n));
	published_offset = (uint64_t)-1;
	pav_memory_broker.publish(fx_core.store.broker, "default", &out,
				  on_published, NULL);
	json_object_put(p);
	assert_true(published_offset != (uint64_t)-1);
	return published_offset;
}

char *fx_token(const char *claims)
{
	json_object *c = json_tokener_parse(claims);
	char *t;

	assert_non_null(c);
	if (!json_object_object_get_ex(c, "exp", NULL))
		json_object_object_add(c, "exp",
				       json_object_new_int64(FX_T0 / 1000 +
							     3600));
	t = pav_auth_sign(&fx_vh.auth, c);
	json_object_put(c);
	assert_non_null(t);
	return t;
}

json_object *fx_member(const struct fake_conn *fc, size_t i, const char *key)
{
	json_object *o = fake_json(fc, i), *v = NULL;

	if (o && json_object_object_get_ex(o, key, &v))
		json_object_get(v);
	else
		v = NULL;
	json_object_put(o);
	return v;
}

const char *fx_payload_str(const struct fake_conn *fc, size_t i,
			   const char *key)
{
	static char buf[256];
	json_object *p = fx_member(fc, i, "payload"), *v;

	buf[0] = '\0';
	if (p && json_object_object_get_ex(p, key, &v))
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
	json_object_put(p);
	return buf;
}

json_object *fx_ack_is(const struct fake_conn *fc, size_t i, const char *id,
		       const char *type)
{
	json_object *p, *v;

	assert_string_equal(fake_type(fc, i), "ack");
	v = fx_member(fc, i, "id");
	assert_non_null(v);
	assert_string_equal(json_object_get_string(v), id);
	json_object_put(v);
	p = fx_member(fc, i, "payload");
	assert_non_null(p);
	assert_true(json_object_object_get_ex(p, "for", &v));
	assert_string_equal(json_object_get_string(v), type);
	return p;
}

void fx_error_is(const struct fake_conn *fc, size_t i, int code,
		 const char *message, const char *id)
{
	json_object *p = fx_member(fc, i, "payload"), *v;

	assert_string_equal(fake_type(fc, i), "error");
	assert_non_null(p);
	assert_true(json_object_object_get_ex(p, "code", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), code);
	if (message) {
		assert_true(json_object_object_get_ex(p, "message", &v));
		assert_string_equal(json_object_get_string(v), message);
	}
	json_object_put(p);
	v = fx_member(fc, i, "id");
	if (id) {
		assert_non_null(v);
		assert_string_equal(json_object_get_string(v), id);
	} else {
		assert_null(v);
	}
	json_object_put(v);
}

int fx_register(const char *type, pav_handler_fn fn)
{
	int rc;

	fx_vh.creating = &insts[0];
	rc = pav_vhost_register_handler(&fx_vh, type, fn);
	fx_vh.creating = NULL;
	return rc;
}
