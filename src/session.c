/*
 * session.c — a connection's life above its socket (see session.h).
 *
 * Everything that asks the store is asynchronous: a step's callback finds
 * the session again by id (it may have closed meanwhile) and goes on.
 * Subscribing is the longest chain:
 *
 *   join the hub (and hold, on a history channel)
 *   → the broker's feed of the channel is live (one request per channel
 *     and node; later joiners wait on the same request)
 *   → (opening, on "user:<id>") the store counts the connection
 *   → the store counts the member (subscribers, user_first)
 *   → history: epoch, offset and, with "recover", the missed publications
 *   → ack, replay, release of what arrived meanwhile (none twice)
 *   → on_subscribed hooks.
 *
 * The hooks of one connection run from here only: on_open, on_subscribed
 * (the automatic "user:<id>" first), on_unsubscribed, on_close; and so
 * does the question a renewal asks (check_renewed).
 */
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "channel.h"
#include "clock.h"
#include "conn.h"
#include "core.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "msg.h"
#include "pav_limits.h"
#include "vhost.h"

/* pav_sub.tag bits */
#define TAG_COUNTED 1u /* the store counts this membership */
#define TAG_PENDING 2u /* its subscribe is not answered yet */
/* the upper bits: the membership's serial, so that an answer for one
 * that was left is not taken for a newer one of the same channel */
#define TAG_SERIAL_SHIFT 8
#define TAG_SERIAL(tag) ((tag) >> TAG_SERIAL_SHIFT)

/* what a channel a token renewal took away is answered with (1004) */
#define REVOKED_MESSAGE "subscription revoked"

#define STATE(s) ((s)->core->store.be->state)
#define STATE_SELF(s) ((s)->core->store.state)
#define BROKER(s) ((s)->core->store.be->broker)
#define BROKER_SELF(s) ((s)->core->store.broker)
#define NS(s) ((s)->vh->cfg->ns)

static void id_key(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIx64, id);
}

struct pav_session *pav_session_find(struct pav_core *core, uint64_t id)
{
	char key[24];
	struct pav_session *s;

	id_key(id, key, sizeof(key));
	s = pav_map_get(core->sessions, key);
	return s && s->state != PAV_SESSION_GONE ? s : NULL;
}

/* A new connection's messages wait while the store counts it and its user
 * channel goes live (until on_open has run): with a network store, whose
 * answers come later, a client message could otherwise overtake its own
 * opening (a "presence" undone by on_open's "online", say). */
static void rx_hold(struct pav_session *s, int hold)
{
	pav_conn_rx_pause(s->hc.conn, hold);
}

/* ---- hooks: the one place that calls them ----------------------------- */

/* A connection closed by one plugin's on_open gets no more; a stand-in
 * (pav_session_user_back) has none to lose. */
static void hook_open(struct pav_session *s, int first)
{
	int stand_in = !s->hc.conn;

	for (size_t i = 0; i < s->vh->ninsts; i++) {
		struct pav_instance *in = &s->vh->insts[i];

		if (in->plugin->on_open && (stand_in || s->hc.conn))
			in->plugin->on_open(in->state, s, first);
	}
}

static void hook_subscribed(struct pav_session *s,
			    const struct pav_subscribed *ev)
{
	for (size_t i = 0; i < s->vh->ninsts; i++) {
		struct pav_instance *in = &s->vh->insts[i];

		if (in->plugin->on_subscribed && s->hc.conn &&
		    pav_hub_is_member(&s->hc, ev->channel))
			in->plugin->on_subscribed(in->state, s, ev);
	}
}

static void hook_unsubscribed(struct pav_session *s, const char *channel)
{
	for (size_t i = 0; i < s->vh->ninsts; i++) {
		struct pav_instance *in = &s->vh->insts[i];

		if (in->plugin->on_unsubscribed)
			in->plugin->on_unsubscribed(in->state, s, channel);
	}
}

static void hook_close(struct pav_session *s, int last)
{
	for (size_t i = 0; i < s->vh->ninsts; i++) {
		struct pav_instance *in = &s->vh->insts[i];

		if (in->plugin->on_close)
			in->plugin->on_close(in->state, s, last);
	}
}

/* May the connection keep channel under its renewed claims?  0, or the
 * first instance's refusal. */
static int check_renewed(struct pav_session *s, const char *channel)
{
	for (size_t i = 0; i < s->vh->ninsts; i++) {
		struct pav_instance *in = &s->vh->insts[i];
		int rc;

		if (!in->plugin->check_renewed)
			continue;
		rc = in->plugin->check_renewed(in->state, s, channel);
		if (rc)
			return rc;
	}
	return 0;
}

/* Does any plugin reject these subscribe parameters?  0, 1002, or 2000
 * (they need the store, which cannot serve now). */
static int check_parameters(struct pav_session *s, const char *channel,
			    json_object *params, const char **why)
{
	for (size_t i = 0; params && i < s->vh->ninsts; i++) {
		struct pav_instance *in = &s->vh->insts[i];
		int rc;

		if (!in->plugin->check_parameters)
			continue;
		rc = in->plugin->check_parameters(in->state, s, channel, params,
						  why);
		if (rc)
			return rc == PAV_ERR_INTERNAL ? rc : PAV_ERR_FORMAT;
	}
	return 0;
}

/* ---- answers ----------------------------------------------------------- */

static const char *default_message(int code)
{
	switch (code) {
	case PAV_ERR_AUTH:
		return "authentication error";
	case PAV_ERR_FORMAT:
		return "invalid message format";
	case PAV_ERR_SUBSCRIPTION:
		return "invalid subscription";
	case PAV_ERR_PERMISSION:
		return "permission denied";
	case PAV_ERR_RATE:
		return "rate limit exceeded";
	default:
		return "internal server error";
	}
}

void pav_session_answer(struct pav_session *s, const char *type,
			const char *id, int code, const char *message,
			json_object *ack)
{
	json_object *p;

	if (!s->hc.conn) {
		json_object_put(ack);
		return;
	}
	if (code) {
		pav_conn_error(s->hc.conn, code,
			       message ? message : default_message(code), id);
		json_object_put(ack);
		return;
	}
	if (!id) {
		json_object_put(ack);
		return;
	}
	p = ack ? ack : json_object_new_object();
	json_object_object_add(p, "for", json_object_new_string(type));
	pav_conn_send(s->hc.conn, "ack", id, NULL, p);
	json_object_put(p);
}

struct pav_reply *pav_session_defer(struct pav_session *s, const char *type,
				    const char *id)
{
	struct pav_reply *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->core = s->core;
	r->sid = s->id;
	r->type = strdup(type);
	r->id = id ? strdup(id) : NULL;
	if (!r->type || (id && !r->id)) {
		free(r->type);
		free(r->id);
		free(r);
		return NULL;
	}
	return r;
}

void pav_session_reply(struct pav_reply *r, int code, const char *message,
		       json_object *ack)
{
	struct pav_session *s;

	if (!r) {
		json_object_put(ack);
		return;
	}
	s = pav_session_find(r->core, r->sid);
	if (s)
		pav_session_answer(s, r->type, r->id, code, message, ack);
	else
		json_object_put(ack);
	free(r->type);
	free(r->id);
	free(r);
}

/* ---- leaving a channel ------------------------------------------------- */

static struct sub_op *repeats_take(struct pav_session *s,
				   const char *channel);
static void repeats_answer(struct sub_op *op, int code, const char *message);

/* Takes the session out of a channel here, in the store, and (for the
 * node's last member) off the broker's feed.  0, or 1 when not in it. */
static int leave(struct pav_session *s, const char *channel)
{
	uint32_t tag;
	int last;

	if (pav_hub_leave(s->core->hub, &s->hc, channel, &last, &tag))
		return 1;
	if (tag & TAG_PENDING) /* answered as the first will be */
		repeats_answer(repeats_take(s, channel), 0, NULL);
	if (tag & TAG_COUNTED)
		STATE(s)->member_remove(STATE_SELF(s), NS(s), channel, s->user);
	if (last)
		BROKER(s)->unsubscribe(BROKER_SELF(s), NS(s), channel);
	return 0;
}

int pav_session_unsubscribe(struct pav_session *s, const char *channel)
{
	char own[PAV_CHANNEL_BUF];

	/* the user channel is held for the connection's life: revocation,
	 * presence and the subscription count go through it */
	if (pav_channel_user(s->user, own, sizeof(own)) == 0 &&
	    strcmp(channel, own) == 0)
		return -EPERM;
	if (leave(s, channel) == 0)
		hook_unsubscribed(s, channel);
	return 0;
}

/* ---- subscribing ------------------------------------------------------- */

struct sub_op {
	struct pav_core *core;
	uint64_t sid;
	struct pav_reply *reply; /* NULL: the automatic user channel */
	json_object *params;
	char channel[PAV_CHANNEL_BUF];
	const struct pav_history_cfg *hist;
	int joined;     /* a new membership, not a repeat */
	uint32_t serial; /* (joined) the membership's */
	int opening;    /* the automatic user channel: on_open first */
	int first_conn; /* (opening) the user's first connection */
	int recover;
	uint64_t rec_offset;
	char rec_epoch[64];
	int64_t subscribers, user_count;
	struct sub_op *repeat_next; /* on its session's repeats */
};

static void op_free(struct sub_op *op)
{
	json_object_put(op->params);
	free(op);
}

/* The session of an op, if it is still there and still in the channel
 * (for a new membership: still in the one it made). */
static struct pav_session *op_session(struct sub_op *op)
{
	struct pav_session *s = pav_session_find(op->core, op->sid);

	if (!s || !pav_hub_is_member(&s->hc, op->channel))
		return NULL;
	if (op->joined &&
	    TAG_SERIAL(pav_hub_tags(&s->hc, op->channel)) != op->serial)
		return NULL;
	return s;
}

/* ---- subscribes a renewal revoked on their way ------------------------ */

/* Its answer is still to come (the store's): listed, it will be 1004. */
static int revoked_add(struct pav_session *s, uint32_t serial)
{
	uint32_t *r = realloc(s->revoked, (s->nrevoked + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	r[s->nrevoked++] = serial;
	s->revoked = r;
	return 0;
}

/* 1 when a renewal revoked the membership op made (taken off the list:
 * each op asks once, when it is answered). */
static int op_revoked(const struct sub_op *op)
{
	struct pav_session *s;

	if (!op->joined || !(s = pav_session_find(op->core, op->sid)))
		return 0;
	for (size_t i = 0; i < s->nrevoked; i++) {
		if (s->revoked[i] != op->serial)
			continue;
		s->revoked[i] = s->revoked[--s->nrevoked];
		return 1;
	}
	return 0;
}

/* A subscribe whose channel a renewal revoked: 1004 with its id, or
 * nothing without one (the revocation's own error, which names the
 * channel, told already). */
static void reply_revoked(struct pav_reply *r)
{
	if (r && r->id)
		pav_session_reply(r, PAV_ERR_PERMISSION, REVOKED_MESSAGE, NULL);
	else
		pav_session_reply(r, 0, NULL, NULL);
}

/* Answers op's subscribe with code, message and ack (taken), unless a
 * renewal revoked it on its way. */
static void op_answer(struct sub_op *op, int code, const char *message,
		      json_object *ack)
{
	if (op_revoked(op)) {
		json_object_put(ack);
		reply_revoked(op->reply);
	} else {
		pav_session_reply(op->reply, code, message, ack);
	}
	op->reply = NULL;
}

/* Gives up: out of the channel again, the client told why.  A membership
 * it made is left as an unsubscribe leaves it, on_unsubscribed included:
 * what a plugin recorded at the subscribe (a subscription token's grant)
 * must not outlive it.  The user channel of a connection still opening
 * had no on_open, and gets no hook either. */
static void op_fail(struct sub_op *op, int code, const char *message)
{
	struct pav_session *s = op_session(op);
	struct sub_op *repeats = NULL;

	if (s && op->joined) {
		repeats = repeats_take(s, op->channel);
		if (leave(s, op->channel) == 0 && !op->opening)
			hook_unsubscribed(s, op->channel);
	}
	if (s && op->opening) {
		rx_hold(s, 0);
		pav_conn_error(s->hc.conn, PAV_ERR_INTERNAL, message, NULL);
		pav_conn_close(s->hc.conn, 1011, "store unavailable");
	}
	op_answer(op, code, message, NULL);
	op_free(op);
	repeats_answer(repeats, code, message);
}

/* The ack of a subscribe: {"channel", "offset"?, "epoch"?, "recovered"?}. */
static json_object *op_ack(const struct sub_op *op, const struct pav_history *h,
			   int recovered)
{
	json_object *ack = json_object_new_object();

	if (!ack)
		return NULL;
	json_object_object_add(ack, "channel",
			       json_object_new_string(op->channel));
	if (h) {
		json_object_object_add(ack, "offset",
				       json_object_new_int64((int64_t)h->offset));
		json_object_object_add(ack, "epoch",
				       json_object_new_string(h->epoch));
	}
	if (op->recover)
		json_object_object_add(ack, "recovered",
				       json_object_new_boolean(recovered));
	return ack;
}

/* A replay larger than a connection may hold unsent would close it 4008,
 * and so again at each reconnect: it is refused as a recovery instead
 * (recovered false, the client refetches). */
static int replay_fits(const struct pav_session *s,
		       const struct pav_history *h)
{
	size_t bytes = 0;

	for (size_t i = 0; i < h->n; i++)
		bytes += h->msgs[i]->len;
	return bytes <= pav_conn_replay_max(s->hc.conn);
}

static void op_done(struct sub_op *op, const struct pav_history *h)
{
	struct pav_session *s = op_session(op);
	int recovered = s && h && op->recover && op->joined && h->complete &&
			!strcmp(op->rec_epoch, h->epoch) && replay_fits(s, h);
	struct pav_subscribed ev = {
		.channel = op->channel,
		.parameters = op->params,
		.user_first = op->joined && op->user_count == 1,
		.subscribers = op->subscribers,
	};

	if (!s) { /* closed, or left the channel meanwhile */
		op_answer(op, 0, NULL, op->reply ? op_ack(op, NULL, 0) : NULL);
		op_free(op);
		return;
	}
	if (op->reply)
		pav_session_reply(op->reply, 0, NULL, op_ack(op, h, recovered));
	op->reply = NULL;
	for (size_t i = 0; recovered && i < h->n; i++) {
		if (pav_conn_enqueue_kept(s->hc.conn, h->msgs[i]))
			break; /* closing */
		pav_metrics_out_msg(h->msgs[i]);
	}
	if (op->hist && op->joined)
		pav_hub_release(&s->hc, op->channel, recovered ? h->offset : 0,
				NULL, 0);
	if (op->opening) {
		s->opened = 1;
		hook_open(s, op->first_conn);
		rx_hold(s, 0);
	}
	hook_subscribed(s, &ev);
	s = op->joined ? op_session(op) : NULL; /* a hook may have left */
	if (s) {
		pav_hub_untag(&s->hc, op->channel, TAG_PENDING);
		repeats_answer(repeats_take(s, op->channel), 0, NULL);
	}
	op_free(op);
}

static void op_history(void *arg, int err, const struct pav_history *h)
{
	struct sub_op *op = arg;

	if (err)
		return op_fail(op, PAV_ERR_INTERNAL, "session store unavailable");
	op_done(op, h);
}

static void op_counted(void *arg, int err, int64_t subscribers,
		       int64_t user_count)
{
	struct sub_op *op = arg;
	struct pav_session *s = op_session(op);
	uint64_t after;

	if (!s)
		return op_done(op, NULL);
	if (err) {
		/* not counted (or not known to be): leaving must not take
		 * away someone else's count; a network store re-registers
		 * this node's counts when it comes back */
		pav_hub_untag(&s->hc, op->channel, TAG_COUNTED);
		return op_fail(op, PAV_ERR_INTERNAL, "session store unavailable");
	}
	op->subscribers = subscribers;
	op->user_count = user_count;
	if (!op->hist)
		return op_done(op, NULL);
	after = op->recover && op->joined ? op->rec_offset : 0;
	STATE(s)->history_read(STATE_SELF(s), NS(s), op->channel, op->hist,
			       after,
			       op->recover && op->joined
				       ? (size_t)op->hist->size : 0,
			       op_history, op);
}

static void count_conn(struct pav_session *s, struct sub_op *op);

/* The broker's feed of the channel is live (or failed). */
static void op_live(struct sub_op *op, int err)
{
	struct pav_session *s = op_session(op);

	if (!s)
		return op_done(op, NULL);
	if (err)
		return op_fail(op, PAV_ERR_INTERNAL, "session store unavailable");
	if (op->opening && !s->counted)
		return count_conn(s, op);
	if (!op->joined)
		return op_counted(op, 0, -1, -1);
	/* counted from now on: a close while the store is still answering
	 * must take the member out again (the store sees both in order) */
	pav_hub_tag(&s->hc, op->channel, TAG_COUNTED);
	STATE(s)->member_add(STATE_SELF(s), NS(s), op->channel, s->user,
			     op_counted, op);
}

/* Subscribe requests of one channel waiting for the broker's feed. */
struct live_wait {
	struct pav_core *core;
	char *key;
	struct sub_op **ops;
	size_t n, cap;
};

static int wait_add(struct live_wait *w, struct sub_op *op)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4;
		struct sub_op **ops = realloc(w->ops, cap * sizeof(*ops));

		if (!ops)
			return -ENOMEM;
		w->ops = ops;
		w->cap = cap;
	}
	w->ops[w->n++] = op;
	return 0;
}

static void feed_live(void *arg, int err)
{
	struct live_wait *w = arg;

	/* a newer request may hold the key by now (see feed_want) */
	if (pav_map_get(w->core->live, w->key) == w)
		pav_map_del(w->core->live, w->key);
	for (size_t i = 0; i < w->n; i++)
		op_live(w->ops[i], err);
	free(w->ops);
	free(w->key);
	free(w);
}

/* Goes on once the node receives the channel's publications: at once
 * when it already did, else with (or after) the one broker request. */
static void feed_want(struct pav_session *s, struct sub_op *op, int first)
{
	char key[PAV_CHANNEL_BUF + 160];
	struct live_wait *w;

	snprintf(key, sizeof(key), "%s\x1f%s", NS(s), op->channel);
	w = pav_map_get(s->core->live, key);
	/* first with a request pending: the members that made it left and
	 * the broker was told to stop the feed, which may cancel that
	 * request; this joiner needs a request of its own */
	if (w && !first) {
		if (wait_add(w, op))
			op_fail(op, PAV_ERR_INTERNAL, "out of memory");
		return;
	}
	if (!first)
		return op_live(op, 0);
	w = calloc(1, sizeof(*w));
	if (!w || !(w->key = strdup(key)) || wait_add(w, op) ||
	    pav_map_put(s->core->live, key, w)) {
		if (w) {
			free(w->ops);
			free(w->key);
		}
		free(w);
		return op_fail(op, PAV_ERR_INTERNAL, "out of memory");
	}
	w->core = s->core;
	BROKER(s)->subscribe(BROKER_SELF(s), NS(s), op->channel, feed_live, w);
}

/* parameters.recover: {"offset": n >= 0, "epoch": "…"}.  0 or 1002. */
static int read_recover(struct sub_op *op, const char **why)
{
	json_object *r, *o, *e;
	int64_t off;

	if (!op->params ||
	    !json_object_object_get_ex(op->params, "recover", &r))
		return 0;
	if (!json_object_is_type(r, json_type_object) ||
	    !json_object_object_get_ex(r, "offset", &o) ||
	    !json_object_is_type(o, json_type_int) ||
	    (off = json_object_get_int64(o)) < 0 ||
	    !json_object_object_get_ex(r, "epoch", &e) ||
	    !json_object_is_type(e, json_type_string) ||
	    (size_t)json_object_get_string_len(e) >= sizeof(op->rec_epoch)) {
		*why = "payload.parameters.recover must be {\"offset\": n, "
		       "\"epoch\": \"...\"}";
		return PAV_ERR_FORMAT;
	}
	op->recover = 1;
	op->rec_offset = (uint64_t)off;
	snprintf(op->rec_epoch, sizeof(op->rec_epoch), "%s",
		 json_object_get_string(e));
	return 0;
}

static struct sub_op *op_new(struct pav_session *s, const char *channel,
			     json_object *params, struct pav_reply *reply)
{
	struct sub_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->core = s->core;
	op->sid = s->id;
	op->reply = reply;
	op->params = json_object_get(params);
	op->subscribers = op->user_count = -1;
	snprintf(op->channel, sizeof(op->channel), "%s", channel);
	op->hist = pav_ns_history(s->vh->ns, channel);
	return op;
}

/* ---- repeats of a subscribe on its way ---------------------------------- */

/*
 * A subscribe of a channel whose first subscribe is not answered yet
 * waits for that answer: acked at once, it would tell the client it is in
 * a channel the first may still fail to join.  Then it goes on as the
 * repeat of a standing subscription, fails as the first did, or (the
 * connection left the channel, or closed) is answered as the first is.
 */
static void repeat_wait(struct pav_session *s, struct sub_op *op)
{
	struct sub_op **p = &s->repeats;

	while (*p)
		p = &(*p)->repeat_next;
	op->repeat_next = NULL;
	*p = op;
}

/* Takes the channel's repeats off the session's list, oldest first. */
static struct sub_op *repeats_take(struct pav_session *s, const char *channel)
{
	struct sub_op *taken = NULL, **tail = &taken, **p = &s->repeats, *op;

	while ((op = *p)) {
		if (strcmp(op->channel, channel)) {
			p = &op->repeat_next;
			continue;
		}
		*p = op->repeat_next;
		op->repeat_next = NULL;
		*tail = op;
		tail = &op->repeat_next;
	}
	return taken;
}

/* Answers taken repeats: failed with code as the first was, else going
 * on as repeats of it (its feed is live: the first got that far), which,
 * when the connection left the channel or closed, answers them as the
 * first is then. */
static void repeats_answer(struct sub_op *op, int code, const char *message)
{
	struct sub_op *next;

	for (; op; op = next) {
		next = op->repeat_next;
		if (code)
			op_fail(op, code, message);
		else
			op_live(op, 0);
	}
}

/* Joins the hub and starts the chain; max: the subscription limit. */
static void op_start(struct pav_session *s, struct sub_op *op, uint32_t max)
{
	int first = 0;
	int rc = pav_hub_join(s->core->hub, &s->hc, op->channel, max, &first);

	if (rc == -ENOSPC)
		return op_fail(op, PAV_ERR_SUBSCRIPTION,
			       "too many subscriptions");
	if (rc < 0)
		return op_fail(op, PAV_ERR_INTERNAL, "out of memory");
	op->joined = rc == 0;
	if (op->joined) {
		op->serial = TAG_SERIAL(++s->core->joins << TAG_SERIAL_SHIFT);
		pav_hub_tag(&s->hc, op->channel,
			    TAG_PENDING | op->serial << TAG_SERIAL_SHIFT);
	}
	else if (pav_hub_tags(&s->hc, op->channel) & TAG_PENDING)
		return repeat_wait(s, op);
	if (op->joined && op->hist)
		pav_hub_hold(&s->hc, op->channel);
	feed_want(s, op, first);
}

void pav_session_subscribe(struct pav_session *s, const char *channel,
			   json_object *parameters, struct pav_reply *reply)
{
	const char *why = NULL;
	struct sub_op *op;
	int rc = check_parameters(s, channel, parameters, &why);

	if (rc)
		return pav_session_reply(reply, rc, why, NULL);
	op = op_new(s, channel, parameters, reply);
	if (!op)
		return pav_session_reply(reply, PAV_ERR_INTERNAL, NULL, NULL);
	rc = read_recover(op, &why);
	if (rc) {
		op->reply = NULL;
		op_free(op);
		return pav_session_reply(reply, rc, why, NULL);
	}
	/* + 1: the automatic user channel does not count */
	op_start(s, op, (uint32_t)s->vh->cfg->limits.max_subscriptions + 1);
}

/* ---- opening ----------------------------------------------------------- */

/* The connection's count, on its way: the op of its user channel. */
struct open_ctx {
	struct sub_op *op;
	uint64_t sid;
	char ns[128];
	char user[PAV_ID_MAX + 1];
};

static void tally(struct pav_session *s)
{
	if (!s->tallied)
		pav_metrics_conn_accepted();
	s->tallied = 1;
}

static void refuse_open(struct pav_session *s, int err)
{
	rx_hold(s, 0);
	if (err == -EKEYREVOKED) {
		s->tallied = 1; /* and never counted as accepted */
		return pav_session_refuse_token(s->hc.conn, s->vh, s->peer,
						"token revoked");
	}
	if (err == -EUSERS) {
		pav_warn("conn %" PRIu64 " user=%s: over %d connections per "
			 "user", s->id, s->user,
			 s->vh->cfg->limits.max_connections_per_user);
		pav_conn_error(s->hc.conn, PAV_ERR_RATE,
			       "too many connections for this user", NULL);
		pav_conn_close(s->hc.conn, 4029, "too many connections");
		return;
	}
	pav_conn_error(s->hc.conn, PAV_ERR_INTERNAL,
		       "session store unavailable", NULL);
	pav_conn_close(s->hc.conn, 1011, "store unavailable");
}

static void conn_counted(void *arg, int err, int64_t count)
{
	struct open_ctx *x = arg;
	struct sub_op *op = x->op;
	struct pav_session *s = op_session(op);

	if (!s && !err) /* it closed before the store answered: undo */
		op->core->store.be->state->conn_remove(
			op->core->store.state, x->ns, x->user, x->sid, NULL,
			NULL);
	free(x);
	if (!s)
		return op_done(op, NULL);
	if (err != -EKEYREVOKED)
		tally(s);
	if (err) {
		leave(s, op->channel);
		refuse_open(s, err);
		return op_free(op);
	}
	s->counted = 1;
	s->state = PAV_SESSION_OPEN;
	op->first_conn = count == 1;
	op_live(op, 0);
}

/* The user channel's feed is live: now the store may count the
 * connection.  In this order a revocation (which closes what the store
 * counted, through that feed) never counts a connection it cannot reach,
 * and a publication to the user made after the count arrives. */
static void count_conn(struct pav_session *s, struct sub_op *op)
{
	struct open_ctx *x = calloc(1, sizeof(*x));

	if (!x)
		return op_fail(op, PAV_ERR_INTERNAL, "out of memory");
	*x = (struct open_ctx){op, s->id, "", ""};
	snprintf(x->ns, sizeof(x->ns), "%s", NS(s));
	snprintf(x->user, sizeof(x->user), "%s", s->user);
	STATE(s)->conn_add(STATE_SELF(s), NS(s), s->user, s->id,
			   s->vh->cfg->limits.max_connections_per_user,
			   &s->iat, conn_counted, x);
}

/* ---- the claims ---------------------------------------------------------- */

/* The token's iat, a number within bounds when present (pav_auth_verify
 * refuses any other). */
static struct pav_token_iat token_iat(json_object *claims)
{
	struct pav_token_iat t = {0, 0};
	json_object *v;

	if (json_object_object_get_ex(claims, "iat", &v)) {
		t.has = 1;
		t.s = json_object_get_double(v);
	}
	return t;
}

static void claims_keep(struct pav_session *s, json_object *claims)
{
	struct pav_core *core = s->core;

	s->claims = claims;
	s->claims_next = core->claims_turn;
	if (core->claims_turn)
		core->claims_turn->claims_prev = &s->claims_next;
	s->claims_prev = &core->claims_turn;
	core->claims_turn = s;
}

static void claims_drop(struct pav_session *s)
{
	if (!s->claims)
		return;
	json_object_put(s->claims);
	s->claims = NULL;
	*s->claims_prev = s->claims_next;
	if (s->claims_next)
		s->claims_next->claims_prev = s->claims_prev;
}

static void claims_free(struct pav_session *s)
{
	claims_drop(s);
	free(s->claims_text);
	s->claims_text = NULL;
}

/* Takes claims: kept as text, and parsed for the rest of this turn. */
static int claims_set(struct pav_session *s, json_object *claims)
{
	const char *t = json_object_to_json_string_ext(
		claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *text = t ? strdup(t) : NULL;

	if (!text) {
		json_object_put(claims);
		return -ENOMEM;
	}
	claims_free(s);
	s->claims_text = text;
	claims_keep(s, claims);
	return 0;
}

json_object *pav_session_claims(struct pav_session *s)
{
	json_tokener *tok;
	json_object *o;

	if (s->claims)
		return s->claims;
	/* what verified parses again; a tokener as deep as a token may be
	 * costs half of json-c's default one (memset of its stack) */
	if (!(tok = json_tokener_new_ex(PAV_AUTH_JSON_DEPTH + 1)))
		return NULL;
	o = json_tokener_parse_ex(tok, s->claims_text, -1);
	json_tokener_free(tok);
	if (o)
		claims_keep(s, o);
	return s->claims;
}

void pav_sessions_turn_over(struct pav_core *core)
{
	while (core->claims_turn)
		claims_drop(core->claims_turn);
}

struct pav_session *pav_session_open(struct pav_core *core,
				     struct pav_vhost *vh,
				     struct pav_conn *conn, const char *user,
				     json_object *claims, const char *peer)
{
	struct pav_session *s = calloc(1, sizeof(*s));
	struct sub_op *op;
	int rc;
	char key[24];
	char chan[PAV_CHANNEL_BUF];

	if (!s)
		goto fail;
	s->core = core;
	s->vh = vh;
	s->id = ++core->next_id;
	snprintf(s->user, sizeof(s->user), "%s", user);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	conn->id = s->id;
	s->hc = (struct pav_hub_client){
		.conn = conn, .id = s->id, .ns = vh->cfg->ns,
		.hold_max = vh->cfg->limits.outbound_queue_bytes,
	};
	s->bucket = (int64_t)vh->cfg->limits.burst * 1000;
	s->bucket_ms = pav_mono_ms();
	id_key(s->id, key, sizeof(key));
	pav_channel_user(s->user, chan, sizeof(chan));
	if (!(op = op_new(s, chan, NULL, NULL)))
		goto fail;
	s->iat = token_iat(claims);
	rc = claims_set(s, claims);
	claims = NULL; /* s's now, or freed */
	if (rc) {
		op_free(op);
		goto fail;
	}
	if (pav_map_put(core->sessions, key, s)) {
		op_free(op);
		goto fail;
	}
	pav_metrics_conn(1);
	pav_info("conn %" PRIu64 " vhost=%s user=%s peer=%s open", s->id,
		 vh->cfg->name, s->user, s->peer);
	rx_hold(s, 1);
	op->opening = 1;
	op_start(s, op, (uint32_t)vh->cfg->limits.max_subscriptions + 1);
	return s;
fail:
	if (s)
		claims_free(s);
	free(s);
	json_object_put(claims);
	return NULL;
}

/* ---- closing ----------------------------------------------------------- */

static void keep_name(const char *channel, void *arg)
{
	struct pav_session *s = arg;
	char *copy = strdup(channel);

	if (copy)
		s->gone[s->ngone++] = copy;
}

static void session_free(struct pav_session *s)
{
	for (size_t i = 0; i < s->ngone; i++)
		free(s->gone[i]);
	free(s->gone);
	free(s->hc.subs);
	free(s->abuse);
	free(s->revoked);
	claims_free(s);
	free(s);
}

static void closed_counted(void *arg, int err, int64_t count)
{
	struct pav_session *s = arg;

	s->core->closing--;
	if (s->opened) /* no close without the open the plugins saw */
		hook_close(s, !err && count == 0);
	session_free(s);
}

/* The code that ended the connection, for its close line: the gateway's
 * when it closed first, else the client's, else 1006 (RFC 6455 7.1.5: the
 * connection went without a close frame). */
static int final_close_code(const struct pav_conn *c, const char **by)
{
	*by = "server";
	if (c && c->close_code)
		return c->close_code;
	*by = "client";
	return c && c->peer_code ? c->peer_code : 1006;
}

void pav_session_closed(struct pav_session *s)
{
	const char *by;
	int code = final_close_code(s->hc.conn, &by);
	char key[24];

	pav_info("conn %" PRIu64 " vhost=%s user=%s peer=%s closed code=%d "
		 "by=%s",
		 s->id, s->vh->cfg->name, s->user, s->peer, code, by);
	s->state = PAV_SESSION_GONE;
	s->hc.conn = NULL;
	s->closed_ms = pav_now_ms();
	id_key(s->id, key, sizeof(key));
	pav_map_del(s->core->sessions, key);
	pav_metrics_conn(-1);
	tally(s);
	/* the close hooks still see the channels it was in */
	s->gone = calloc(s->hc.nsubs ? s->hc.nsubs : 1, sizeof(*s->gone));
	if (s->gone)
		pav_hub_channels(&s->hc, keep_name, s);
	while (s->hc.nsubs) {
		char chan[PAV_CHANNEL_BUF];

		/* a copy: the hub frees the name with the channel.  Always
		 * the first: leaving looks it up by name, and finds the first
		 * at once (the last took a walk over all of them) */
		pav_hub_sub_channel(&s->hc, 0, chan, sizeof(chan));
		leave(s, chan);
	}
	if (!s->counted) {
		session_free(s);
		return;
	}
	s->core->closing++;
	STATE(s)->conn_remove(STATE_SELF(s), NS(s), s->user, s->id,
			      closed_counted, s);
}

void pav_session_channels(const struct pav_session *s,
			  void (*fn)(const char *channel, void *arg),
			  void *arg)
{
	if (s->state != PAV_SESSION_GONE) {
		pav_hub_channels(&s->hc, fn, arg);
		return;
	}
	for (size_t i = 0; i < s->ngone; i++)
		fn(s->gone[i], arg);
}

/* A stand-in session of `user` for the hooks of connections another node
 * dealt with: on the first public vhost of the namespace, sending nowhere,
 * already opened (it was, wherever the connections were).  NULL when no
 * vhost serves ns or out of memory. */
static struct pav_session *stand_in(struct pav_core *c, const char *ns,
				    const char *user)
{
	struct pav_session *s;
	struct pav_vhost *vh = NULL;

	for (size_t i = 0; !vh && i < c->nvhosts; i++)
		if (c->vhosts[i].cfg->kind == PAV_VHOST_PUBLIC &&
		    !strcmp(c->vhosts[i].cfg->ns, ns))
			vh = &c->vhosts[i];
	if (!vh || !(s = calloc(1, sizeof(*s))))
		return NULL;
	s->core = c;
	s->vh = vh;
	s->state = PAV_SESSION_GONE;
	s->opened = 1;
	snprintf(s->user, sizeof(s->user), "%s", user);
	return s;
}

/* A user of a dead node: the close hooks run once, for a stand-in of the
 * connections that went, whose channels are the dead node's. */
void pav_session_user_gone(void *core, const char *ns, const char *user,
			   const char *const *channels, size_t n,
			   int64_t at_ms)
{
	struct pav_session *s = stand_in(core, ns, user);

	if (!s)
		return;
	s->closed_ms = at_ms;
	s->gone = calloc(n ? n : 1, sizeof(*s->gone));
	for (size_t i = 0; s->gone && i < n; i++)
		keep_name(channels[i], s);
	pav_info("user %s of namespace %s: its node stopped; closing it "
		 "everywhere", user, ns);
	hook_close(s, 1);
	session_free(s);
}

/* A user of this node, which another took for dead: the open hooks run
 * once (first) for a stand-in of the connections that came back; its
 * user's channels are those of the user's connections on this node. */
void pav_session_user_back(void *core, const char *ns, const char *user)
{
	struct pav_session *s = stand_in(core, ns, user);

	if (!s)
		return;
	pav_info("user %s of namespace %s: this node was taken for dead; "
		 "opening it again", user, ns);
	hook_open(s, 1);
	session_free(s);
}

/* ---- renewal, revocation, resync, shutdown ---------------------------- */

void pav_session_refuse_token(struct pav_conn *c, const struct pav_vhost *vh,
			      const char *peer, const char *why)
{
	pav_info("vhost=%s peer=%s refused: %s", vh->cfg->name, peer, why);
	pav_metrics_auth_failure();
	pav_conn_error(c, PAV_ERR_AUTH, why, NULL);
	pav_conn_close(c, 4001, "authentication failed");
}

int pav_session_verify(struct pav_vhost *vh, const char *token,
		       json_object **claims, char *user, int64_t *exp_ms,
		       const char **why)
{
	json_object *v;

	if (pav_auth_verify(&vh->auth, token, pav_now_ms() / 1000, claims,
			    why))
		return -EACCES;
	if (json_object_object_get_ex(*claims, "channel", NULL)) {
		json_object_put(*claims);
		*claims = NULL;
		*why = "subscription token cannot open a session";
		return -EACCES;
	}
	json_object_object_get_ex(*claims, "sub", &v);
	snprintf(user, PAV_ID_MAX + 1, "%s", json_object_get_string(v));
	json_object_object_get_ex(*claims, "exp", &v);
	*exp_ms = (int64_t)(json_object_get_double(v) * 1000);
	return 0;
}

/* Repeats of a revoked subscribe: answered at once, as their first will
 * be. */
static void repeats_revoked(struct sub_op *op)
{
	struct sub_op *next;

	for (; op; op = next) {
		next = op->repeat_next;
		reply_revoked(op->reply);
		op->reply = NULL;
		op_free(op);
	}
}

/* Leaves a channel the renewed claims no longer allow, as an unsubscribe
 * does, then tells the client: after the leave, nothing published to the
 * channel follows the error.  A subscribe of it still on its way (and its
 * repeats) is answered 1004 too, not acked as one an unsubscribe
 * overtook: the client asked for the channel under the old claims, and
 * the new ones refuse it. */
static void revoke_channel(struct pav_session *s, const char *channel)
{
	uint32_t tag = pav_hub_tags(&s->hc, channel);
	struct sub_op *repeats = NULL;

	pav_info("conn %" PRIu64 " user=%s: %s revoked by the renewed token%s",
		 s->id, s->user, channel,
		 tag & TAG_PENDING ? " while subscribing" : "");
	if (tag & TAG_PENDING) {
		if (revoked_add(s, TAG_SERIAL(tag)))
			pav_warn("conn %" PRIu64 " user=%s: out of memory: "
				 "the subscribe of %s on its way will be "
				 "acked",
				 s->id, s->user, channel);
		repeats = repeats_take(s, channel);
	}
	pav_session_unsubscribe(s, channel);
	if (s->hc.conn)
		pav_conn_channel_error(s->hc.conn, PAV_ERR_PERMISSION,
				       REVOKED_MESSAGE, channel);
	repeats_revoked(repeats);
}

/* A renewal went through: every subscription but the user channel is
 * asked about again (check_renewed) under the new claims, and those
 * refused are revoked. */
static void recheck_subscriptions(struct pav_session *s)
{
	char own[PAV_CHANNEL_BUF], chan[PAV_CHANNEL_BUF];

	if (pav_channel_user(s->user, own, sizeof(own)))
		own[0] = '\0';
	/* from the last: leaving one moves the hub's last subscription into
	 * its slot, one already asked about */
	for (uint32_t i = s->hc.nsubs; i-- > 0;) {
		if (i >= s->hc.nsubs) /* a hook left others meanwhile */
			continue;
		pav_hub_sub_channel(&s->hc, i, chan, sizeof(chan));
		if (strcmp(chan, own) && check_renewed(s, chan))
			revoke_channel(s, chan);
	}
}

/* A verified token on its way through the store's revocation check. */
struct renewal {
	struct pav_core *core;
	uint64_t sid;
	json_object *claims;
	struct pav_token_iat iat;
	int64_t exp_ms;
	struct pav_reply *reply;
};

/* The answer to a renewal; err 0 once the token is the connection's. */
static void renew_answer(struct pav_session *s, struct pav_reply *reply,
			 int err, const char *why)
{
	if (!err) {
		pav_info("conn %" PRIu64 " user=%s: token renewed", s->id,
			 s->user);
		pav_session_reply(reply, 0, NULL, NULL);
		/* after the ack: the client hears of the renewal before of
		 * what its claims no longer grant */
		return recheck_subscriptions(s);
	}
	if (err == -ENOMEM)
		return pav_session_reply(reply, PAV_ERR_INTERNAL,
					 "out of memory", NULL);
	if (err == -EKEYREVOKED) {
		why = "token revoked";
		pav_info("conn %" PRIu64 " user=%s: renewal refused: %s",
			 s->id, s->user, why);
	}
	pav_metrics_auth_failure();
	pav_session_reply(reply, PAV_ERR_AUTH, why, NULL);
}

static struct pav_log_budget unchecked_renewal_log = {.per_s = 5};

static void renew_checked(void *arg, int err)
{
	struct renewal *x = arg;
	struct pav_session *s = pav_session_find(x->core, x->sid);

	if (!s) { /* closed meanwhile: nobody to renew or answer */
		json_object_put(x->claims);
		pav_session_reply(x->reply, 0, NULL, NULL);
		free(x);
		return;
	}
	rx_hold(s, 0);
	if (err && err != -EKEYREVOKED && err != -ENOMEM) {
		/* The store cannot say.  The session was opened with a token
		 * it checked (a revocation closes every connection it covers),
		 * and new handshakes wait for it anyway: refusing would close
		 * every client at its token's exp for as long as the outage
		 * lasts.  The new token is taken unchecked. */
		pav_warn_budgeted(&unchecked_renewal_log,
				  "conn %" PRIu64 " user=%s: renewal not "
				  "checked for revocation: session store "
				  "unavailable", s->id, s->user);
		err = 0;
	}
	if (err)
		json_object_put(x->claims);
	else if (!(err = claims_set(s, x->claims)) && s->hc.conn)
		pav_conn_set_expiry(s->hc.conn, x->exp_ms);
	renew_answer(s, x->reply, err, NULL);
	free(x);
}

/* The token, verified for the same user, or -EACCES / -ENOMEM with why. */
static int renew_verify(struct pav_session *s, const char *token,
			struct renewal *x, const char **why)
{
	char user[PAV_ID_MAX + 1];

	if (!x) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (pav_session_verify(s->vh, token, &x->claims, user, &x->exp_ms,
			       why))
		return -EACCES;
	if (strcmp(user, s->user)) {
		json_object_put(x->claims);
		*why = "token is for another user";
		return -EACCES;
	}
	x->iat = token_iat(x->claims);
	return 0;
}

int pav_session_renew(struct pav_session *s, const char *token,
		      struct pav_reply *reply, const char **why)
{
	struct renewal *x = calloc(1, sizeof(*x));
	int rc = renew_verify(s, token, x, why);

	if (rc) {
		renew_answer(s, reply, rc, *why);
		free(x);
		return rc;
	}
	x->core = s->core;
	x->sid = s->id;
	x->reply = reply;
	/* what the client sends after its auth is read with the new token's
	 * claims, as before the check went to the store */
	rx_hold(s, 1);
	STATE(s)->token_check(STATE_SELF(s), NS(s), s->user, &x->iat,
			      renew_checked, x);
	return 0;
}

void pav_session_deliver(void *core, const struct pav_delivery *d)
{
	struct pav_core *c = core;

	pav_conns_fanout_begin(&c->conn_env);
	pav_hub_deliver(c->hub, d);
	pav_conns_fanout_end(&c->conn_env);
}

void pav_session_revoke(struct pav_hub_client *c, void *core)
{
	(void)core;
	if (!pav_conn_is_open(c->conn))
		return;
	pav_conn_error(c->conn, PAV_ERR_AUTH, "connection revoked", NULL);
	pav_conn_close(c->conn, 4001, "revoked");
}

static int resync_one(const char *key, void *val, void *arg)
{
	struct pav_session *s = val;

	(void)key;
	(void)arg;
	if (pav_conn_is_open(s->hc.conn))
		pav_conn_send(s->hc.conn, "resync", NULL, NULL, NULL);
	return 0;
}

void pav_session_resync(void *core)
{
	struct pav_core *c = core;

	pav_info("store: publications may have been missed; sending resync "
		 "to %zu connections", pav_map_count(c->sessions));
	pav_map_each(c->sessions, resync_one, NULL);
}

struct close_all {
	int code;
	const char *reason;
};

static int close_one(const char *key, void *val, void *arg)
{
	struct pav_session *s = val;
	struct close_all *x = arg;

	(void)key;
	if (pav_conn_is_open(s->hc.conn))
		pav_conn_close(s->hc.conn, x->code, x->reason);
	return 0;
}

void pav_sessions_close_all(struct pav_core *core, int code,
			    const char *reason)
{
	struct close_all x = {code, reason};

	pav_map_each(core->sessions, close_one, &x);
}
