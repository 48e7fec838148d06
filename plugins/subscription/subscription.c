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
 * The automatic "user:<id>" subscription of every connection is the core's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#include "acl.h"

#define PLUGIN_NAME "subscription"

struct subscription {
	const struct pav_host *host;
	enum pav_acl_policy policy;
};

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

/* The subscription-token route of access control: parameters.token (a
 * string, read_parameters() saw to that) must verify and name this user
 * and channel.  Which check failed is never told to the client. */
static int check_token(const struct pav_host *host, pav_conn *c,
		       struct pav_request *req, json_object *params,
		       const char *channel)
{
	json_object *tok, *claims = NULL;
	int ok;

	req->error_message = "permission denied";
	if (!params || !json_object_object_get_ex(params, "token", &tok))
		return PAV_ERR_PERMISSION;
	if (host->verify_token(c, json_object_get_string(tok), &claims) < 0)
		return PAV_ERR_PERMISSION;
	ok = pav_acl_token_grants(claims, host->conn_user(c), channel);
	json_object_put(claims);
	if (!ok)
		return PAV_ERR_PERMISSION;
	req->error_message = NULL;
	return 0;
}

/* 0 when the connection may subscribe to the canonical channel. */
static int check_access(struct subscription *s, pav_conn *c,
			struct pav_request *req, json_object *params,
			const char *channel)
{
	const struct pav_host *host = s->host;

	switch (pav_acl_check(s->policy, host->conn_claims(c),
			      host->conn_user(c), channel)) {
	case PAV_ACL_ALLOW:
		return 0;
	case PAV_ACL_NEED_TOKEN:
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
	int rc;

	rc = read_channel(s->host, c, req, channel, sizeof(channel));
	if (rc == 0)
		rc = read_parameters(req, &params);
	if (rc == 0)
		rc = check_access(s, c, req, params, channel);
	if (rc != 0)
		return rc;
	reply = s->host->defer(c, req);
	if (!reply)
		return PAV_ERR_INTERNAL;
	s->host->subscribe(c, channel, params, reply);
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
	free(instance);
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
	rc = read_options(s, options, err, errlen);
	if (rc == 0)
		rc = host->register_handler(vh, "subscribe", on_subscribe);
	if (rc == 0)
		rc = host->register_handler(vh, "unsubscribe", on_unsubscribe);
	if (rc < 0) {
		free(s);
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
};
