/*
 * host.c — the services handed to plugins (struct pav_host): thin,
 * checked wrappers over the core.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "clock.h"
#include "dispatch.h"
#include "gateway.h"
#include "pav_limits.h"
#include "log.h"

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

static const char *vhost_namespace(const pav_vhost *vh)
{
	return vh->cfg->ns;
}

static uint64_t conn_id(const pav_conn *c)
{
	return c->id;
}

static pav_conn *conn_find(uint64_t id)
{
	pav_conn *c = pav_conn_find(id);

	return c && c->state == PAV_CONN_OPEN ? c : NULL;
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
	return c->vh;
}

static int send_msg(pav_conn *c, const char *type, json_object *payload)
{
	return pav_conn_send(c, type, NULL, payload);
}

static int send_channel(pav_conn *c, const char *channel, const char *type,
			json_object *payload)
{
	return pav_conn_send_on(c, channel, type, payload);
}

static int channel_parse(const pav_conn *c, const char *in, char *out,
			 size_t outlen)
{
	return pav_channel_parse(c->user, in, out, outlen);
}

static int subscribe(pav_conn *c, const char *channel,
		     json_object *parameters)
{
	int user_first, rc;

	user_first = !pav_hub_user_count(c->vh->cfg->ns, channel, c->user, c);
	rc = pav_hub_subscribe(c, channel);
	/* a repeated subscribe still runs the hooks (since-replay, presence
	 * snapshot), but announces nothing new */
	if (rc >= 0)
		pav_dispatch_subscribed(c, channel, parameters,
					rc == 0 && user_first);
	return rc;
}

static int unsubscribe(pav_conn *c, const char *channel)
{
	int rc = pav_hub_unsubscribe(c, channel);

	for (size_t i = 0; rc == 0 && i < c->vh->ninsts; i++) {
		struct pav_instance *in = &c->vh->insts[i];

		if (in->plugin->on_unsubscribed)
			in->plugin->on_unsubscribed(in->state, c, channel);
	}
	return rc < 0 ? rc : 0;
}

static int is_subscribed(const pav_conn *c, const char *channel)
{
	return pav_hub_is_subscribed(c, channel);
}

static void conn_channels(const pav_conn *c,
			  void (*fn)(const char *channel, void *arg), void *arg)
{
	for (uint32_t i = 0; i < c->nsubs; i++)
		fn(pav_hub_sub_name(&c->subs[i]), arg);
}

struct each_ctx {
	int (*fn)(pav_conn *c, void *arg);
	void *arg;
};

static int each_open(struct pav_conn *c, void *arg)
{
	struct each_ctx *x = arg;

	return c->state == PAV_CONN_OPEN ? x->fn(c, x->arg) : 0;
}

static void channel_conns(const char *ns, const char *channel,
			  int (*fn)(pav_conn *c, void *arg), void *arg)
{
	struct each_ctx x = {fn, arg};

	pav_hub_each(ns, channel, each_open, &x);
}

static int publish(const char *ns, const char *const *channels,
		   size_t nchannels, const char *type, json_object *payload,
		   const pav_conn *except)
{
	return pav_hub_publish(ns, channels, nchannels, type, payload, except);
}

static int verify_token(const pav_conn *c, const char *token,
			json_object **claims)
{
	const char *why;

	return pav_auth_verify(&c->vh->auth, token, pav_now_ms() / 1000,
			       claims, &why);
}

static int register_handler(pav_vhost *vh, const char *type,
			    pav_handler_fn fn)
{
	return pav_dispatch_register(vh, type, fn);
}

struct pav_host pav_host_api = {
	.version = PAV_HOST_VERSION,
	.size = sizeof(struct pav_host),
	.log = host_log,
	.register_handler = register_handler,
	.vhost_name = vhost_name,
	.vhost_namespace = vhost_namespace,
	.conn_id = conn_id,
	.conn_find = conn_find,
	.conn_user = conn_user,
	.conn_claims = conn_claims,
	.conn_vhost = conn_vhost,
	.send = send_msg,
	.channel_parse = channel_parse,
	.subscribe = subscribe,
	.unsubscribe = unsubscribe,
	.is_subscribed = is_subscribed,
	.conn_channels = conn_channels,
	.channel_conns = channel_conns,
	.publish = publish,
	.defer = pav_dispatch_defer,
	.reply = pav_dispatch_reply,
	.store = NULL, /* set at start, once the backend is chosen */
	.now_ms = pav_now_ms,
	.format_time = pav_format_time,
	.parse_time = pav_parse_time,
	.verify_token = verify_token,
	.send_channel = send_channel,
};
