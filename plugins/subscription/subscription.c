/*
 * subscription.c — the "subscribe" and "unsubscribe" messages: channel
 * grammar (through pav_host.channel_parse), access control (decisions in
 * acl.c) and the subscription itself (pav_host.subscribe).
 *
 *   subscribe   {"channel": "<name>", "parameters": {...}?}
 *               → ack {"channel": "<canonical name>"}
 *   unsubscribe {"channel": "<name>"} → ack {"channel": "<canonical name>"}
 *
 * Errors: payload.channel missing or not a string, parameters not an
 * object, parameters.token not a string → 1002 (other plugins check their
 * own parameters); an invalid channel name or too many subscriptions →
 * 1003; another user's channel, or a zone:/
 * channel:/chat: channel neither the JWT claims nor a subscription token
 * grant → 1004 (the connection stays open).
 *
 * Options (the vhost's "plugins": {"subscription": {...}}):
 *   "policy"  "claims" (default): zone:/channel:/chat: need the JWT claim
 *             "zones"/"channels"/"chats" (an array of ids, "*" = all) or
 *             a subscription token in parameters.token (a JWT signed with
 *             the vhost's key, with "sub" = the user and "channel" = the
 *             canonical channel);
 *             "open": every authenticated user may subscribe to any
 *             zone:/channel:/chat: channel (user: stays private).
 *
 * After a token renewal (the `auth` message) the gateway asks
 * check_renewed about each subscription: a zone:/channel:/chat: channel
 * is kept when the new claims grant it as they would a fresh subscribe,
 * or when a subscription token granted it (that token, not the claims,
 * was its ground, and a renewal does not change it); else the gateway
 * revokes it (1004 "subscription revoked" with the channel).  Which
 * subscriptions a token granted is recorded here, per connection.
 *
 * The automatic "user:<id>" subscription of every connection is the core's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#include "acl.h"

#define PLUGIN_NAME "subscription"
/* "<conn id in hex> <channel>" */
#define GRANT_KEY_BUF (16 + 1 + PAV_CHANNEL_BUF)

struct subscription {
	const struct pav_host *host;
	enum pav_acl_policy policy;
	/* The subscriptions of this instance's connections that a
	 * subscription token granted, as keys made by grant_key(): a json-c
	 * object is the hash set at hand.  Forgotten when the connection
	 * leaves the channel (unsubscribe, revocation, a subscribe the store
	 * failed) or closes.  Usually empty, and then closing and
	 * unsubscribing cost nothing more. */
	json_object *by_token;
};

/* ---- subscriptions a subscription token granted ------------------ */

static void grant_key(const struct pav_host *host, const pav_conn *c,
		      const char *channel, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIx64 " %s", host->conn_id(c), channel);
}

static int granted_by_token(struct subscription *s, const pav_conn *c,
			    const char *channel)
{
	char key[GRANT_KEY_BUF];

	if (json_object_object_length(s->by_token) == 0)
		return 0;
	grant_key(s->host, c, channel, key, sizeof(key));
	return json_object_object_get_ex(s->by_token, key, NULL);
}

static void remember_grant(struct subscription *s, const pav_conn *c,
			   const char *channel)
{
	char key[GRANT_KEY_BUF];

	grant_key(s->host, c, channel, key, sizeof(key));
	if (json_object_object_add(s->by_token, key, NULL) < 0)
		s->host->log(PAV_LOG_WARN, PLUGIN_NAME,
			     "out of memory: %s, granted by a subscription "
			     "token, will not outlive a token renewal",
			     channel);
}

static void forget_grant(struct subscription *s, const pav_conn *c,
			 const char *channel)
{
	char key[GRANT_KEY_BUF];

	if (json_object_object_length(s->by_token) == 0)
		return;
	grant_key(s->host, c, channel, key, sizeof(key));
	json_object_object_del(s->by_token, key);
}

/* ---- subscribe and unsubscribe ------------------------------------ */

/* A 1002 with its message. */
static int bad_format(struct pav_request *req, const char *message)
{
	req->error_message = message;
	return PAV_ERR_FORMAT;
}

/* Reads payload.channel into out as a canonical name.  0, or the error
 * code with req->error_message set. */
static int read_channel(const struct pav_host *host, pav_conn *c,
			struct pav_request *req, char *out, size_t outlen)
{
	json_object *v;

	if (!req->payload ||
	    !json_object_object_get_ex(req->payload, "channel", &v) ||
	    !json_object_is_type(v, json_type_string))
		return bad_format(req, "payload.channel must be a string");
	if (host->channel_parse(c, json_object_get_string(v), out, outlen) <
	    0) {
		req->error_message = "invalid channel";
		return PAV_ERR_SUBSCRIPTION;
	}
	return 0;
}

/* payload.parameters: absent -> *params NULL; else an object whose
 * "token" (a subscription token) is a string.  Other members belong to
 * the plugins that act on them (their check_parameters hooks) and to the
 * gateway ("recover"). */
static int read_parameters(struct pav_request *req, json_object **params)
{
	json_object *v;

	*params = NULL;
	if (!json_object_object_get_ex(req->payload, "parameters", params))
		return 0;
	if (!json_object_is_type(*params, json_type_object))
		return bad_format(req, "payload.parameters must be an object");
	if (json_object_object_get_ex(*params, "token", &v) &&
	    !json_object_is_type(v, json_type_string))
		return bad_format(req,
				  "payload.parameters.token must be a string");
	return 0;
}

/* 1 when parameters.token is a subscription token that verifies and
 * names this user and channel. */
static int token_grants(const struct pav_host *host, pav_conn *c,
			json_object *params, const char *channel)
{
	json_object *tok, *claims = NULL;
	int ok;

	if (!params || !json_object_object_get_ex(params, "token", &tok) ||
	    !json_object_is_type(tok, json_type_string))
		return 0;
	if (host->verify_token(c, json_object_get_string(tok), &claims) < 0)
		return 0;
	ok = pav_acl_token_grants(claims, host->conn_user(c), channel);
	json_object_put(claims);
	return ok;
}

/* The subscription-token route of access control.  Which check failed is
 * never told to the client. */
static int check_token(const struct pav_host *host, pav_conn *c,
		       struct pav_request *req, json_object *params,
		       const char *channel)
{
	if (token_grants(host, c, params, channel))
		return 0;
	req->error_message = "permission denied";
	return PAV_ERR_PERMISSION;
}

/* 0 when the connection may subscribe to the canonical channel;
 * *by_token: its subscription token, not the claims, allowed it. */
static int check_access(struct subscription *s, pav_conn *c,
			struct pav_request *req, json_object *params,
			const char *channel, int *by_token)
{
	const struct pav_host *host = s->host;

	*by_token = 0;
	switch (pav_acl_check(s->policy, host->conn_claims(c),
			      host->conn_user(c), channel)) {
	case PAV_ACL_ALLOW:
		return 0;
	case PAV_ACL_NEED_TOKEN:
		*by_token = 1;
		return check_token(host, c, req, params, channel);
	case PAV_ACL_DENY:
	default:
		req->error_message = "permission denied";
		return PAV_ERR_PERMISSION;
	}
}

/* The ack's extra members: {"channel": "<canonical>"}. */
static json_object *channel_ack(const char *channel)
{
	json_object *ack = json_object_new_object();

	if (ack)
		json_object_object_add(ack, "channel",
				       json_object_new_string(channel));
	return ack;
}

/* Checks, then hands the request to the gateway, which subscribes,
 * answers (ack {"channel", ...}, or 1003 past the limit) and runs the
 * on_subscribed hooks. */
static int on_subscribe(void *instance, pav_conn *c, struct pav_request *req)
{
	struct subscription *s = instance;
	char channel[PAV_CHANNEL_BUF];
	json_object *params;
	pav_reply *reply;
	int rc, by_token;

	rc = read_channel(s->host, c, req, channel, sizeof(channel));
	if (rc == 0)
		rc = read_parameters(req, &params);
	if (rc == 0)
		rc = check_access(s, c, req, params, channel, &by_token);
	if (rc != 0)
		return rc;
	reply = s->host->defer(c, req);
	if (!reply)
		return PAV_ERR_INTERNAL;
	s->host->subscribe(c, channel, params, reply);
	/* recorded from the start, so that a renewal that overtakes the
	 * subscribe on its way finds it too.  One refused at once (1003)
	 * joined nothing; one the store fails later is left, and the
	 * gateway's on_unsubscribed for it forgets the record. */
	if (by_token && s->host->is_subscribed(c, channel))
		remember_grant(s, c, channel);
	return PAV_PENDING;
}

/* Leaving is never access-controlled: one can only leave what one joined,
 * and leaving anything else is an idempotent success; but `user`, joined
 * automatically, is kept while the connection lasts (1003). */
static int on_unsubscribe(void *instance, pav_conn *c,
			  struct pav_request *req)
{
	struct subscription *s = instance;
	char channel[PAV_CHANNEL_BUF];
	int rc;

	rc = read_channel(s->host, c, req, channel, sizeof(channel));
	if (rc != 0)
		return rc;
	rc = s->host->unsubscribe(c, channel);
	if (rc == -EPERM) {
		req->error_message = "the user channel cannot be left";
		return PAV_ERR_SUBSCRIPTION;
	}
	if (rc < 0) {
		s->host->log(PAV_LOG_ERROR, PLUGIN_NAME,
			     "unsubscribe %s failed: %s", channel,
			     strerror(-rc));
		return PAV_ERR_INTERNAL;
	}
	req->ack = channel_ack(channel);
	return 0;
}

/* ---- what a renewal keeps ------------------------------------------- */

/* The connection's claims (its renewed ones, in check_renewed) grant the
 * channel as they would a subscribe of it now. */
static int claims_allow(struct subscription *s, pav_conn *c,
			const char *channel)
{
	const struct pav_host *host = s->host;

	return pav_acl_check(s->policy, host->conn_claims(c),
			     host->conn_user(c), channel) == PAV_ACL_ALLOW;
}

static void subscription_on_unsubscribed(void *instance, pav_conn *c,
					 const char *channel)
{
	forget_grant(instance, c, channel);
}

struct closing {
	struct subscription *s;
	pav_conn *c;
};

static void forget_channel(const char *channel, void *arg)
{
	struct closing *x = arg;

	forget_grant(x->s, x->c, channel);
}

static void subscription_on_close(void *instance, pav_conn *c, int last)
{
	struct closing x = {instance, c};

	(void)last;
	if (json_object_object_length(x.s->by_token))
		x.s->host->conn_channels(c, forget_channel, &x);
}

/* Asked after a token renewal: kept as a subscribe would be let through
 * now, or when its own subscription token was its ground. */
static int subscription_check_renewed(void *instance, pav_conn *c,
				      const char *channel)
{
	struct subscription *s = instance;

	if (claims_allow(s, c, channel) || granted_by_token(s, c, channel))
		return 0;
	return PAV_ERR_PERMISSION;
}

/* ---- the instance -------------------------------------------------- */

static int read_options(struct subscription *s, json_object *options,
			char *err, size_t errlen)
{
	json_object_object_foreach(options, key, val) {
		if (strcmp(key, "policy") != 0) {
			snprintf(err, errlen, "%s: unknown option", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, json_type_string) ||
		    pav_acl_policy_parse(json_object_get_string(val),
					 &s->policy) < 0) {
			snprintf(err, errlen,
				 "policy: must be \"claims\" or \"open\"");
			return -EINVAL;
		}
	}
	return 0;
}

static void subscription_destroy(void *instance)
{
	struct subscription *s = instance;

	json_object_put(s->by_token);
	free(s);
}

static int subscription_create(const struct pav_host *host, pav_vhost *vh,
			       json_object *options, void **instance,
			       char *err, size_t errlen)
{
	struct subscription *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->host = host;
	s->policy = PAV_ACL_POLICY_CLAIMS;
	s->by_token = json_object_new_object();
	rc = s->by_token ? read_options(s, options, err, errlen) : -ENOMEM;
	if (rc == 0)
		rc = host->register_handler(vh, "subscribe", on_subscribe);
	if (rc == 0)
		rc = host->register_handler(vh, "unsubscribe", on_unsubscribe);
	if (rc < 0) {
		subscription_destroy(s);
		return rc;
	}
	if (s->policy == PAV_ACL_POLICY_OPEN)
		host->log(PAV_LOG_INFO, PLUGIN_NAME,
			  "vhost %s: policy \"open\": any user may subscribe "
			  "to any zone:, channel: and chat: channel",
			  host->vhost_name(vh));
	*instance = s;
	return 0;
}

PAV_PLUGIN_EXPORT = {
	.magic = PAV_PLUGIN_MAGIC,
	.abi_version = PAV_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = "1.0.0",
	.description = "subscribe/unsubscribe with channel access control",
	.vhost_create = subscription_create,
	.vhost_destroy = subscription_destroy,
	.on_unsubscribed = subscription_on_unsubscribed,
	.on_close = subscription_on_close,
	.check_renewed = subscription_check_renewed,
};
