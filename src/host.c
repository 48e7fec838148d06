/*
 * host.c — the services handed to plugins (struct pav_host, ABI 2): thin,
 * checked wrappers that turn a vhost into its namespace and a connection
 * into its session, over the session layer, the hub and the store.
 */
#include "host.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "channel.h"
#include "clock.h"
#include "conn.h"
#include "core.h"
#include "hub.h"
#include "ids.h"
#include "log.h"
#include "pav_limits.h"
#include "session.h"
#include "timer.h"
#include "vhost.h"

#define STATE(vh) ((vh)->core->store.be->state)
#define STATE_SELF(vh) ((vh)->core->store.state)

static void host_log(enum pav_log_level level, const char *plugin,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pav_vlog(level, plugin, fmt, ap);
	va_end(ap);
}

static const char *vhost_name(const pav_vhost *vh)
{
	return vh->cfg->name;
}

/* ---- connections ---- */

static uint64_t conn_id(const pav_conn *c)
{
	return c->id;
}

static pav_conn *conn_find(pav_vhost *vh, uint64_t id)
{
	struct pav_session *s = pav_session_find(vh->core, id);

	return s && s->vh == vh && pav_conn_is_open(s->hc.conn) ? s : NULL;
}

static const char *conn_user(const pav_conn *c)
{
	return c->user;
}

/* Parsed on demand: what changes is a cache, not the connection. */
static json_object *conn_claims(const pav_conn *c)
{
	return pav_session_claims((struct pav_session *)c);
}

static pav_vhost *conn_vhost(const pav_conn *c)
{
	return c->vh;
}

static int64_t conn_closed_ms(const pav_conn *c)
{
	return c->closed_ms;
}

static int send_msg(pav_conn *c, const char *channel, const char *type,
		    json_object *payload)
{
	if (!c->hc.conn)
		return -EPIPE;
	return pav_conn_send(c->hc.conn, type, NULL, channel, payload);
}

static int send_replay(pav_conn *c, const char *channel, const char *type,
		       json_object *payload)
{
	if (!c->hc.conn)
		return -EPIPE;
	return pav_conn_send_replay(c->hc.conn, type, channel, payload);
}

static int send_replay_within(pav_conn *c, const char *channel,
			      const char *type, json_object *payload,
			      size_t spare)
{
	if (!c->hc.conn)
		return -EPIPE;
	return pav_conn_send_replay_within(c->hc.conn, type, channel, payload,
					   spare);
}

/* ---- channels ---- */

static int channel_parse(const pav_conn *c, const char *in, char *out,
			 size_t outlen)
{
	return pav_channel_parse(c->user, in, out, outlen);
}

static int is_subscribed(const pav_conn *c, const char *channel)
{
	return pav_hub_is_member(&c->hc, channel);
}

static void user_channels(pav_vhost *vh, const char *user,
			  void (*fn)(const char *channel, void *arg), void *arg)
{
	pav_hub_user_channels(vh->core->hub, vh->cfg->ns, user, fn, arg);
}

static void hold(pav_conn *c, const char *channel)
{
	pav_hub_hold(&c->hc, channel);
}

static void release(pav_conn *c, const char *channel,
		    const char *const *skip, size_t nskip)
{
	pav_hub_release(&c->hc, channel, 0, skip, nskip);
}

/* ---- publishing ---- */

static void outgoing(pav_vhost *vh, const struct pav_publication *pub,
		     struct pav_outgoing *out)
{
	*out = (struct pav_outgoing){
		.channels = pub->channels,
		.nchannels = pub->nchannels,
		.type = pub->type,
		.payload = pub->payload,
		.except = pub->except ? pub->except->id : 0,
		.key = pub->key,
	};
	if (pub->nchannels == 1 && !pub->transient)
		out->history = pav_ns_history(vh->ns, pub->channels[0]);
}

static int id_ok(const char *s)
{
	return s && *s && strlen(s) <= PAV_MAX_ID_LEN;
}

static void publish(pav_vhost *vh, const struct pav_publication *pub,
		    pav_published_fn done, void *arg)
{
	struct pav_outgoing out;

	/* type and key as the API takes them: an empty one would not cross
	 * Redis (an empty field of the broker's header), nor would a long
	 * one (a header past what a node reads); refused on every store */
	if (!pub->nchannels || !id_ok(pub->type) ||
	    (pub->key && !id_ok(pub->key))) {
		if (done)
			done(arg, -EINVAL, NULL);
		return;
	}
	outgoing(vh, pub, &out);
	vh->core->store.be->broker->publish(vh->core->store.broker,
					    vh->cfg->ns, &out, done, arg);
}

static pav_reply *defer(pav_conn *c, const struct pav_request *req)
{
	return pav_session_defer(c, req->type, req->id);
}

/* ---- shared state ---- */

static void presence_get(pav_vhost *vh, const char *user, pav_presence_fn cb,
			 void *arg)
{
	STATE(vh)->presence_get(STATE_SELF(vh), vh->cfg->ns, user, cb, arg);
}

static void presence_set(pav_vhost *vh, const struct pav_presence_change *ch,
			 pav_presence_fn cb, void *arg)
{
	struct pav_outgoing out;

	outgoing(vh, &ch->announce, &out);
	out.history = NULL; /* presence is state, not a message stream */
	STATE(vh)->presence_set(STATE_SELF(vh), vh->cfg->ns, ch->user,
				ch->status, ch->when, ch->at_ms,
				ch->announce.nchannels ? &out : NULL,
				ch->stamp_member, cb, arg);
}

static void inbox_add(pav_vhost *vh, const char *user, json_object *n,
		      pav_json_fn cb, void *arg)
{
	STATE(vh)->inbox_add(STATE_SELF(vh), vh->cfg->ns, user, n, cb, arg);
}

static void inbox_list(pav_vhost *vh, const char *user, int64_t since_ms,
		       int unread_only, size_t limit, pav_json_fn cb,
		       void *arg)
{
	STATE(vh)->inbox_list(STATE_SELF(vh), vh->cfg->ns, user, since_ms,
			      unread_only, limit, cb, arg);
}

static void inbox_mark_read(pav_vhost *vh, const char *user, const char *id,
			    pav_done_fn cb, void *arg)
{
	STATE(vh)->inbox_mark_read(STATE_SELF(vh), vh->cfg->ns, user, id, cb,
				   arg);
}

static void channel_counts(pav_vhost *vh, const char *const *channels,
			   size_t n, pav_counts_fn cb, void *arg)
{
	STATE(vh)->channel_counts(STATE_SELF(vh), vh->cfg->ns, channels, n, cb,
				  arg);
}

static void channel_users(pav_vhost *vh, const char *channel, size_t max,
			  pav_users_fn cb, void *arg)
{
	STATE(vh)->channel_users(STATE_SELF(vh), vh->cfg->ns, channel, max, cb,
				 arg);
}

static int store_ready(pav_vhost *vh)
{
	return pav_store_ready(&vh->core->store);
}

/* ---- timers ---- */

static pav_timer *timer_start(pav_vhost *vh, int64_t delay_ms,
			      void (*fn)(void *arg), void *arg)
{
	return pav_timer_start(&vh->timers, vh->core->lws, delay_ms, fn, arg);
}

/* ---- tokens ---- */

static int verify_token(const pav_conn *c, const char *token,
			json_object **claims)
{
	const char *why;
	json_object *cl = NULL;

	if (pav_auth_verify(&c->vh->auth, token, pav_now_ms() / 1000, &cl,
			    &why))
		return -EACCES;
	/* a subscription token names its channel; a session token cannot
	 * stand in for one */
	if (!json_object_object_get_ex(cl, "channel", NULL)) {
		json_object_put(cl);
		return -EACCES;
	}
	if (claims)
		*claims = cl;
	else
		json_object_put(cl);
	return 0;
}

const struct pav_host pav_host_table = {
	.version = PAV_HOST_VERSION,
	.size = sizeof(struct pav_host),
	.log = host_log,
	.register_handler = pav_vhost_register_handler,
	.register_route = pav_vhost_register_route,
	.register_payload_check = pav_vhost_register_check,
	.vhost_name = vhost_name,
	.conn_id = conn_id,
	.conn_find = conn_find,
	.conn_user = conn_user,
	.conn_claims = conn_claims,
	.conn_vhost = conn_vhost,
	.conn_channels = pav_session_channels,
	.conn_closed_ms = conn_closed_ms,
	.send = send_msg,
	.channel_parse = channel_parse,
	.id_valid = pav_id_valid,
	.user_channel = pav_channel_user,
	.subscribe = pav_session_subscribe,
	.unsubscribe = pav_session_unsubscribe,
	.is_subscribed = is_subscribed,
	.user_channels = user_channels,
	.hold = hold,
	.release = release,
	.publish = publish,
	.defer = defer,
	.reply = pav_session_reply,
	.presence_get = presence_get,
	.presence_set = presence_set,
	.inbox_add = inbox_add,
	.inbox_list = inbox_list,
	.inbox_mark_read = inbox_mark_read,
	.channel_counts = channel_counts,
	.channel_users = channel_users,
	.now_ms = pav_now_ms,
	.format_time = pav_format_time,
	.parse_time = pav_parse_time,
	.random_id = pav_random_id,
	.timer_start = timer_start,
	.timer_cancel = pav_timer_cancel,
	.verify_token = verify_token,
	.api_answer = pav_api_answer,
	.api_error = pav_api_error,
	.query_number = pav_api_query_number,
	.store_ready = store_ready,
	.send_replay = send_replay,
	.send_replay_within = send_replay_within,
};
