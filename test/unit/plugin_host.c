/* plugin_host.c — see plugin_host.h. */
#include "plugin_host.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "channel.h"
#include "clock.h"
#include "ids.h"

struct pav_vhost ph_vh = {"public"};
struct ph_answers ph;
char *ph_log[PH_LOG];
size_t ph_nlog;

struct pav_reply {
	int n;
};

struct pav_api_call {
	int n;
};

struct pav_timer {
	int n;
};

/* ---- the log ---- */

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logf_(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	assert_true(ph_nlog < PH_LOG);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ph_log[ph_nlog++] = strdup(buf);
}

const char *ph_json(json_object *o)
{
	return o ? json_object_to_json_string_ext(
			   o, JSON_C_TO_STRING_PLAIN |
				      JSON_C_TO_STRING_NOSLASHESCAPE)
		 : "-";
}

int ph_find(const char *prefix, size_t from)
{
	for (size_t i = from; i < ph_nlog; i++)
		if (!strncmp(ph_log[i], prefix, strlen(prefix)))
			return (int)i;
	return -1;
}

const char *ph_at(size_t i)
{
	return i < ph_nlog ? ph_log[i] : "";
}

size_t ph_count(const char *prefix)
{
	size_t n = 0;

	for (size_t i = 0; i < ph_nlog; i++)
		n += !strncmp(ph_log[i], prefix, strlen(prefix));
	return n;
}

void ph_log_clear(void)
{
	for (size_t i = 0; i < ph_nlog; i++)
		free(ph_log[i]);
	ph_nlog = 0;
}

void ph_dump(void)
{
	for (size_t i = 0; i < ph_nlog; i++)
		fprintf(stderr, "  %zu: %s\n", i, ph_log[i]);
}

/* channels as "[a,b]" */
static const char *chan_list(const char *const *ch, size_t n)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "[");
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s",
			 i ? "," : "", ch[i]);
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "]");
	return buf;
}

static const char *conn_name(const pav_conn *c)
{
	static char buf[4][24];
	static int k;
	char *b = buf[k++ % 4];

	if (!c)
		return "-";
	snprintf(b, 24, "c%" PRIu64, c->id);
	return b;
}

/* ---- store answers, now or later ---- */

enum thunk_kind { T_JSON, T_DONE, T_PRESENCE, T_COUNTS, T_USERS, T_PUB };

struct thunk {
	enum thunk_kind kind;
	union {
		pav_json_fn json;
		pav_done_fn done;
		pav_presence_fn presence;
		pav_counts_fn counts;
		pav_users_fn users;
		pav_published_fn pub;
	} cb;
	void *arg;
	int err;
	char *json;
	char user[PAV_ID_MAX + 1];
	char status[16];
	int64_t last_active;
	int connections;
	int64_t counts[16];
	size_t n;
	struct thunk *next;
};

static struct thunk *q_head, *q_tail;

static void run_thunk(struct thunk *t)
{
	json_object *j;
	struct pav_presence p;
	struct pav_published res;
	char names[16][24];
	const char *users[16];

	switch (t->kind) {
	case T_JSON:
		j = t->json ? json_tokener_parse(t->json) : NULL;
		t->cb.json(t->arg, t->err, j);
		json_object_put(j);
		break;
	case T_DONE:
		t->cb.done(t->arg, t->err);
		break;
	case T_PRESENCE:
		p = (struct pav_presence){t->user, t->status, t->last_active,
					  t->connections};
		t->cb.presence(t->arg, t->err, t->err && t->err != -EALREADY
						       ? NULL : &p);
		break;
	case T_COUNTS:
		t->cb.counts(t->arg, t->err, t->err ? NULL : t->counts,
			     t->err ? 0 : t->n);
		break;
	case T_USERS:
		for (size_t i = 0; i < t->n; i++) {
			snprintf(names[i], sizeof(names[i]), "p%zu", i);
			users[i] = names[i];
		}
		t->cb.users(t->arg, t->err, users, t->n);
		break;
	case T_PUB:
		res = (struct pav_published){0, NULL, ph.publish_recipients};
		t->cb.pub(t->arg, t->err, t->err ? NULL : &res);
		break;
	}
	free(t->json);
	free(t);
}

static void answer(struct thunk *t)
{
	if (!ph.async) {
		run_thunk(t);
		return;
	}
	if (q_tail)
		q_tail->next = t;
	else
		q_head = t;
	q_tail = t;
}

static struct thunk *thunk(enum thunk_kind kind, void *arg, int err)
{
	struct thunk *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->kind = kind;
	t->arg = arg;
	t->err = err;
	return t;
}

int ph_run(void)
{
	int n = 0;

	while (q_head) {
		struct thunk *t = q_head;

		q_head = t->next;
		if (!q_head)
			q_tail = NULL;
		run_thunk(t);
		n++;
	}
	return n;
}

/* ---- registrations ---- */

#define REGS 16
static struct {
	char type[64];
	pav_handler_fn fn;
} handlers[REGS];
static struct {
	char method[8], pattern[128];
	pav_route_fn fn;
} routes[REGS];
static struct {
	char type[64];
	pav_payload_check_fn fn;
} checks[REGS];
static size_t nhandlers, nroutes, nchecks;

static int reg_handler(pav_vhost *vh, const char *type, pav_handler_fn fn)
{
	assert_ptr_equal(vh, &ph_vh);
	logf_("register_handler %s", type);
	if (ph_handler(type))
		return -EEXIST;
	assert_true(nhandlers < REGS);
	snprintf(handlers[nhandlers].type, 64, "%s", type);
	handlers[nhandlers++].fn = fn;
	return 0;
}

static int reg_route(pav_vhost *vh, const char *method, const char *pattern,
		     pav_route_fn fn)
{
	assert_ptr_equal(vh, &ph_vh);
	logf_("register_route %s %s", method, pattern);
	if (ph_route(method, pattern))
		return -EEXIST;
	assert_true(nroutes < REGS);
	snprintf(routes[nroutes].method, 8, "%s", method);
	snprintf(routes[nroutes].pattern, 128, "%s", pattern);
	routes[nroutes++].fn = fn;
	return 0;
}

static int reg_check(pav_vhost *vh, const char *type, pav_payload_check_fn fn)
{
	assert_ptr_equal(vh, &ph_vh);
	logf_("register_payload_check %s", type);
	if (ph_check(type))
		return -EEXIST;
	assert_true(nchecks < REGS);
	snprintf(checks[nchecks].type, 64, "%s", type);
	checks[nchecks++].fn = fn;
	return 0;
}

void ph_forget_registrations(void)
{
	nhandlers = nroutes = nchecks = 0;
}

pav_handler_fn ph_handler(const char *type)
{
	for (size_t i = 0; i < nhandlers; i++)
		if (!strcmp(handlers[i].type, type))
			return handlers[i].fn;
	return NULL;
}

pav_route_fn ph_route(const char *method, const char *pattern)
{
	for (size_t i = 0; i < nroutes; i++)
		if (!strcmp(routes[i].method, method) &&
		    !strcmp(routes[i].pattern, pattern))
			return routes[i].fn;
	return NULL;
}

pav_payload_check_fn ph_check(const char *type)
{
	for (size_t i = 0; i < nchecks; i++)
		if (!strcmp(checks[i].type, type))
			return checks[i].fn;
	return NULL;
}

/* ---- the host table ---- */

static void host_log(enum pav_log_level level, const char *plugin,
		     const char *fmt, ...)
{
	(void)level;
	(void)plugin;
	(void)fmt;
}

static const char *vhost_name(const pav_vhost *vh)
{
	return vh->name;
}

static uint64_t conn_id(const pav_conn *c)
{
	return c->id;
}

static pav_conn *conns[8];
static size_t nconns;

static pav_conn *conn_find(pav_vhost *vh, uint64_t id)
{
	assert_ptr_equal(vh, &ph_vh);
	for (size_t i = 0; i < nconns; i++)
		if (conns[i]->id == id && conns[i]->open)
			return conns[i];
	return NULL;
}

static const char *conn_user(const pav_conn *c)
{
	return c->user;
}

static json_object *conn_claims(const pav_conn *c)
{
	return c->claims;
}

static pav_vhost *conn_vhost(const pav_conn *c)
{
	(void)c;
	return &ph_vh;
}

static void conn_channels(const pav_conn *c,
			  void (*fn)(const char *channel, void *arg), void *arg)
{
	logf_("conn_channels %s", conn_name(c));
	for (size_t i = 0; i < c->nchannels; i++)
		fn(c->channels[i], arg);
}

static int64_t conn_closed_ms(const pav_conn *c)
{
	return c->closed_ms;
}

static int send_msg(pav_conn *c, const char *channel, const char *type,
		    json_object *payload)
{
	if (!c->open)
		return -EPIPE;
	if (c->send_limit && c->nsent >= c->send_limit)
		return -ENOBUFS;
	c->nsent++;
	logf_("send %s %s %s %s", conn_name(c), channel ? channel : "-", type,
	      ph_json(payload));
	return 0;
}

static int send_replay_within(pav_conn *c, const char *channel,
			      const char *type, json_object *payload,
			      size_t spare)
{
	c->replay_spare = spare;
	if (c->open && c->replay_bounded && !c->replay_room)
		return -ENOSPC;
	if (c->replay_bounded && c->open)
		c->replay_room--;
	return send_msg(c, channel, type, payload);
}

static int channel_parse(const pav_conn *c, const char *in, char *out,
			 size_t outlen)
{
	return pav_channel_parse(c->user, in, out, outlen);
}

static struct pav_reply *replies[64];
static int nreplies;

static int channel_index(const pav_conn *c, const char *channel)
{
	for (size_t i = 0; i < c->nchannels; i++)
		if (!strcmp(c->channels[i], channel))
			return (int)i;
	return -1;
}

/* Joins at once, as the gateway does (its answer comes later), unless
 * ph.subscribe_refused. */
static void subscribe(pav_conn *c, const char *channel, json_object *params,
		      pav_reply *reply)
{
	logf_("subscribe %s %s params=%s reply=%d", conn_name(c), channel,
	      ph_json(params), reply ? reply->n : -1);
	if (!ph.subscribe_refused && channel_index(c, channel) < 0 &&
	    c->nchannels < 16)
		c->channels[c->nchannels++] = strdup(channel);
}

static int unsubscribe(pav_conn *c, const char *channel)
{
	int i = channel_index(c, channel);

	logf_("unsubscribe %s %s", conn_name(c), channel);
	if (ph.unsubscribe_rc == 0 && i >= 0) {
		free(c->channels[i]);
		c->channels[i] = c->channels[--c->nchannels];
	}
	return ph.unsubscribe_rc;
}

static int is_subscribed(const pav_conn *c, const char *channel)
{
	return channel_index(c, channel) >= 0;
}

static void user_channels(pav_vhost *vh, const char *user,
			  void (*fn)(const char *channel, void *arg), void *arg)
{
	assert_ptr_equal(vh, &ph_vh);
	logf_("user_channels %s", user);
	for (size_t i = 0; i < 16 && ph.user_channels[i]; i++)
		fn(ph.user_channels[i], arg);
}

static void hold(pav_conn *c, const char *channel)
{
	logf_("hold %s %s", conn_name(c), channel);
}

static void release(pav_conn *c, const char *channel,
		    const char *const *skip, size_t nskip)
{
	char buf[512] = "";

	for (size_t i = 0; i < nskip; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s",
			 i ? "," : "", skip[i]);
	logf_("release %s %s skip=%s", conn_name(c), channel,
	      nskip ? buf : "-");
}

static void publish(pav_vhost *vh, const struct pav_publication *pub,
		    pav_published_fn done, void *arg)
{
	struct thunk *t;

	assert_ptr_equal(vh, &ph_vh);
	logf_("publish %s %s key=%s except=%s transient=%d %s",
	      chan_list(pub->channels, pub->nchannels), pub->type,
	      pub->key ? pub->key : "-", conn_name(pub->except),
	      pub->transient, ph_json(pub->payload));
	if (!done)
		return;
	t = thunk(T_PUB, arg, ph.publish_err);
	t->cb.pub = done;
	answer(t);
}

static pav_reply *defer(pav_conn *c, const struct pav_request *req)
{
	struct pav_reply *r;

	logf_("defer %s %s %s", conn_name(c), req->type,
	      req->id ? req->id : "-");
	if (ph.defer_fails)
		return NULL;
	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_true(nreplies < 64);
	r->n = ++nreplies;
	replies[r->n - 1] = r;
	return r;
}

static void reply(pav_reply *r, int code, const char *message,
		  json_object *ack)
{
	assert_non_null(r);
	assert_ptr_equal(replies[r->n - 1], r); /* answered once */
	logf_("reply %d code=%d msg=%s ack=%s", r->n, code,
	      message ? message : "-", ph_json(ack));
	replies[r->n - 1] = NULL;
	free(r);
	json_object_put(ack);
}

static void presence_answer(const char *user, const char *status, int err,
			    pav_presence_fn cb, void *arg)
{
	struct thunk *t = thunk(T_PRESENCE, arg, err);

	t->cb.presence = cb;
	snprintf(t->user, sizeof(t->user), "%s", user);
	snprintf(t->status, sizeof(t->status), "%s", status);
	t->last_active = ph.presence_last_active;
	t->connections = ph.presence_connections;
	answer(t);
}

static void presence_get(pav_vhost *vh, const char *user, pav_presence_fn cb,
			 void *arg)
{
	assert_ptr_equal(vh, &ph_vh);
	logf_("presence_get %s", user);
	presence_answer(user, ph.presence_status ? ph.presence_status
						 : "offline",
			ph.presence_get_err, cb, arg);
}

static void presence_set(pav_vhost *vh, const struct pav_presence_change *ch,
			 pav_presence_fn cb, void *arg)
{
	const struct pav_publication *a = &ch->announce;

	assert_ptr_equal(vh, &ph_vh);
	logf_("presence_set %s %s when=%d at=%lld stamp=%s announce=%s %s "
	      "except=%s transient=%d %s",
	      ch->user, ch->status, (int)ch->when, (long long)ch->at_ms,
	      ch->stamp_member ? ch->stamp_member : "-",
	      chan_list(a->channels, a->nchannels), a->type ? a->type : "-",
	      conn_name(a->except), a->transient, ph_json(a->payload));
	if (cb)
		presence_answer(ch->user, ch->status, ph.presence_set_err, cb,
				arg);
}

static int note_seq;

static void inbox_add(pav_vhost *vh, const char *user, json_object *n,
		      pav_json_fn cb, void *arg)
{
	struct thunk *t = thunk(T_JSON, arg, ph.inbox_err);
	json_object *copy = NULL;
	char id[24];

	assert_ptr_equal(vh, &ph_vh);
	logf_("inbox_add %s %s", user, ph_json(n));
	t->cb.json = cb;
	if (!ph.inbox_err) {
		assert_int_equal(json_object_deep_copy(n, &copy, NULL), 0);
		snprintf(id, sizeof(id), "n%016x", ++note_seq);
		json_object_object_add(copy, "id", json_object_new_string(id));
		json_object_object_add(copy, "createdAt",
				       json_object_new_string(PH_T0_TEXT));
		json_object_object_add(copy, "isRead",
				       json_object_new_boolean(0));
		t->json = strdup(ph_json(copy));
		json_object_put(copy);
	}
	answer(t);
}

static void inbox_list(pav_vhost *vh, const char *user, int64_t since_ms,
		       int unread_only, size_t limit, pav_json_fn cb, void *arg)
{
	struct thunk *t = thunk(T_JSON, arg, ph.inbox_err);

	assert_ptr_equal(vh, &ph_vh);
	logf_("inbox_list %s since=%lld unread=%d limit=%zu", user,
	      (long long)since_ms, unread_only, limit);
	t->cb.json = cb;
	if (!ph.inbox_err)
		t->json = strdup(ph.inbox_list ? ph.inbox_list : "[]");
	answer(t);
}

static void inbox_mark_read(pav_vhost *vh, const char *user, const char *id,
			    pav_done_fn cb, void *arg)
{
	struct thunk *t = thunk(T_DONE, arg, ph.mark_read_err);

	assert_ptr_equal(vh, &ph_vh);
	logf_("inbox_mark_read %s %s", user, id);
	t->cb.done = cb;
	answer(t);
}

static void channel_counts(pav_vhost *vh, const char *const *channels,
			   size_t n, pav_counts_fn cb, void *arg)
{
	struct thunk *t = thunk(T_COUNTS, arg, ph.counts_err);

	assert_ptr_equal(vh, &ph_vh);
	logf_("channel_counts %s", chan_list(channels, n));
	assert_true(n <= 16);
	t->cb.counts = cb;
	t->n = n;
	for (size_t i = 0; i < n; i++)
		t->counts[i] = (int)i < ph.ncounts_set ? ph.counts[i] : 1;
	answer(t);
}

static void channel_users(pav_vhost *vh, const char *channel, size_t max,
			  pav_users_fn cb, void *arg)
{
	struct thunk *t = thunk(T_USERS, arg, 0);

	assert_ptr_equal(vh, &ph_vh);
	logf_("channel_users %s max=%zu", channel, max);
	t->cb.users = cb;
	t->n = ph.nusers < max ? ph.nusers : max;
	if (t->n > 16)
		t->n = 16;
	answer(t);
}

static int64_t now_ms(void)
{
	return PH_T0;
}

static int id_seq;

static int random_id(char prefix, char *buf, size_t len)
{
	if (len < 18)
		return -ENOSPC;
	snprintf(buf, len, "%c%016x", prefix, ++id_seq);
	return 0;
}

static pav_timer *timer_start(pav_vhost *vh, int64_t delay_ms,
			      void (*fn)(void *arg), void *arg)
{
	(void)vh;
	(void)fn;
	(void)arg;
	logf_("timer_start %lld", (long long)delay_ms);
	return NULL;
}

static void timer_cancel(pav_timer *t)
{
	(void)t;
}

static int verify_token(const pav_conn *c, const char *token,
			json_object **claims)
{
	logf_("verify_token %s %s", conn_name(c), token);
	if (!ph.good_token || strcmp(token, ph.good_token))
		return -EACCES;
	*claims = json_tokener_parse(ph.token_claims);
	assert_non_null(*claims);
	return 0;
}

static int ncalls;
static struct pav_api_call *calls[64];

static void api_answer(pav_api_call *call, int status, json_object *body)
{
	assert_non_null(call);
	assert_ptr_equal(calls[call->n - 1], call); /* answered once */
	logf_("api_answer %d %s", status, ph_json(body));
	calls[call->n - 1] = NULL;
	free(call);
	json_object_put(body);
}

static void api_error(pav_api_call *call, int status, const char *message)
{
	assert_non_null(call);
	assert_ptr_equal(calls[call->n - 1], call);
	logf_("api_error %d %s", status, message);
	calls[call->n - 1] = NULL;
	free(call);
}

static int store_ready(pav_vhost *vh)
{
	(void)vh;
	return !ph.store_down;
}

const struct pav_host ph_host = {
	.version = PAV_HOST_VERSION,
	.size = sizeof(struct pav_host),
	.log = host_log,
	.register_handler = reg_handler,
	.register_route = reg_route,
	.register_payload_check = reg_check,
	.vhost_name = vhost_name,
	.conn_id = conn_id,
	.conn_find = conn_find,
	.conn_user = conn_user,
	.conn_claims = conn_claims,
	.conn_vhost = conn_vhost,
	.conn_channels = conn_channels,
	.conn_closed_ms = conn_closed_ms,
	.send = send_msg,
	.channel_parse = channel_parse,
	.id_valid = pav_id_valid,
	.user_channel = pav_channel_user,
	.subscribe = subscribe,
	.unsubscribe = unsubscribe,
	.is_subscribed = is_subscribed,
	.user_channels = user_channels,
	.hold = hold,
	.release = release,
	.publish = publish,
	.defer = defer,
	.reply = reply,
	.presence_get = presence_get,
	.presence_set = presence_set,
	.inbox_add = inbox_add,
	.inbox_list = inbox_list,
	.inbox_mark_read = inbox_mark_read,
	.channel_counts = channel_counts,
	.channel_users = channel_users,
	.now_ms = now_ms,
	.format_time = pav_format_time,
	.parse_time = pav_parse_time,
	.random_id = random_id,
	.timer_start = timer_start,
	.timer_cancel = timer_cancel,
	.verify_token = verify_token,
	.api_answer = api_answer,
	.api_error = api_error,
	.query_number = pav_api_query_number,
	.store_ready = store_ready,
	/* a replay is a send here: the queue it counts in is the gateway's */
	.send_replay = send_msg,
	.send_replay_within = send_replay_within,
};

/* ---- set up ---- */

void ph_setup(void)
{
	memset(&ph, 0, sizeof(ph));
	ph.publish_recipients = 1;
	ph_log_clear();
	nhandlers = nroutes = nchecks = 0;
	nconns = 0;
	nreplies = 0;
	ncalls = 0;
	note_seq = id_seq = 0;
	q_head = q_tail = NULL;
}

void ph_teardown(void)
{
	ph.async = 0;
	ph_run();
	for (size_t i = 0; i < nconns; i++) {
		json_object_put(conns[i]->claims);
		for (size_t k = 0; k < conns[i]->nchannels; k++)
			free(conns[i]->channels[k]);
		free(conns[i]);
	}
	nconns = 0;
	/* replies handed to subscribe() are the gateway's to answer */
	for (int i = 0; i < nreplies; i++)
		free(replies[i]);
	for (int i = 0; i < ncalls; i++)
		assert_null(calls[i]); /* every API call answered */
	ph_log_clear();
}

void ph_set_claims(pav_conn *c, const char *claims)
{
	json_object_put(c->claims);
	c->claims = claims ? json_tokener_parse(claims)
			   : json_object_new_object();
	assert_non_null(c->claims);
	json_object_object_add(c->claims, "sub",
			       json_object_new_string(c->user));
}

pav_conn *ph_conn(uint64_t id, const char *user, const char *claims,
		  const char *const *channels)
{
	pav_conn *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_true(nconns < 8);
	c->id = id;
	snprintf(c->user, sizeof(c->user), "%s", user);
	ph_set_claims(c, claims);
	c->open = 1;
	for (size_t i = 0; channels && channels[i]; i++)
		c->channels[c->nchannels++] = strdup(channels[i]);
	conns[nconns++] = c;
	return c;
}

int ph_create(const struct pav_plugin *p, const char *options, void **inst,
	      char *err, size_t errlen)
{
	return ph_create_with(&ph_host, p, options, inst, err, errlen);
}

int ph_create_with(const struct pav_host *host, const struct pav_plugin *p,
		   const char *options, void **inst, char *err, size_t errlen)
{
	json_object *o = json_tokener_parse(options ? options : "{}");
	int rc;

	assert_non_null(o);
	assert_int_equal(p->magic, PAV_PLUGIN_MAGIC);
	assert_int_equal(p->abi_version, PAV_PLUGIN_ABI_VERSION);
	err[0] = '\0';
	*inst = NULL;
	rc = p->vhost_create(host, &ph_vh, o, inst, err, errlen);
	json_object_put(o);
	return rc;
}

void ph_destroy(const struct pav_plugin *p, void *inst)
{
	if (inst && p->vhost_destroy)
		p->vhost_destroy(inst);
}

int ph_handle(void *inst, pav_conn *c, const char *type, const char *id,
	      const char *payload, json_object **ack, const char **why)
{
	pav_handler_fn fn = ph_handler(type);
	json_object *p = payload ? json_tokener_parse(payload) : NULL;
	struct pav_request req = {type, id, p, NULL, NULL};
	int rc;

	assert_non_null(fn);
	assert_true(!payload || p);
	rc = fn(inst, c, &req);
	if (ack)
		*ack = req.ack;
	else
		json_object_put(req.ack);
	if (why)
		*why = req.error_message;
	json_object_put(p);
	return rc;
}

void ph_call_route(void *inst, const char *method, const char *pattern,
		   const char *path_arg, const char *query, const char *body)
{
	pav_route_fn fn = ph_route(method, pattern);
	json_object *b = body ? json_tokener_parse(body) : NULL;
	const char *args[] = {path_arg};
	struct pav_api_request req = {
		.method = method,
		.path = pattern,
		.query = query ? query : "",
		.args = args,
		.nargs = path_arg ? 1 : 0,
		.body = b,
	};
	struct pav_api_call *call = calloc(1, sizeof(*call));

	assert_non_null(fn);
	assert_true(!body || b);
	assert_non_null(call);
	assert_true(ncalls < 64);
	call->n = ++ncalls;
	calls[call->n - 1] = call;
	fn(inst, call, &req);
	json_object_put(b);
}

/* Runs the check of `type` on payload; its answer, *why its reason. */
static int check_payload(void *inst, const char *type, const char *channel,
			 const char *payload, const char **why)
{
	pav_payload_check_fn fn = ph_check(type);
	json_object *p = json_tokener_parse(payload);
	int rc;

	assert_non_null(fn);
	if (!p && strcmp(payload, "null"))
		fail_msg("test JSON does not parse: %s", payload);
	*why = NULL;
	rc = fn(inst, channel, p, why);
	json_object_put(p);
	return rc;
}

void ph_payload_ok(void *inst, const char *type, const char *channel,
		   const char *payload)
{
	const char *why;

	if (check_payload(inst, type, channel, payload, &why))
		fail_msg("refused on %s (%s): %s", channel, why, payload);
}

void ph_payload_refused(void *inst, const char *type, const char *channel,
			const char *payload)
{
	const char *why;
	int rc = check_payload(inst, type, channel, payload, &why);

	if (rc != -EINVAL)
		fail_msg("%s: got %d, want -EINVAL: %s", channel, rc, payload);
	assert_non_null(why);
}

/* ---- a test's fixture ---- */

static const struct pav_plugin *started;
static void *started_inst;

int ph_start(const struct pav_plugin *p, const char *options,
	     const char *claims, const char *const *channels, void **inst,
	     pav_conn **c)
{
	char err[256];
	int rc;

	ph_setup();
	rc = ph_create(p, options, inst, err, sizeof(err));
	started = p;
	started_inst = *inst;
	if (rc)
		return -1;
	*c = ph_conn(1, "u1", claims, channels);
	ph_log_clear();
	return 0;
}

int ph_end(void **state)
{
	(void)state;
	ph_destroy(started, started_inst);
	started_inst = NULL;
	ph_teardown();
	return 0;
}
