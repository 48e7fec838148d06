/*
 * acl.h — who may subscribe to which channel: pure decisions over JWT
 * claims, with no gateway behind them, so that test_acl.c can test every
 * rule directly.  subscription.c does the I/O (verifying a subscription
 * token) and maps the decisions to error codes.
 *
 * Channel names here are canonical (pav_host.channel_parse() output):
 * "user:<id>", "zone:<id>", "channel:<id>", "chat:<id>".
 */
#ifndef PAV_ACL_H
#define PAV_ACL_H

#include <json-c/json.h>

/* The vhost's access policy (subscription plugin option "policy"). */
enum pav_acl_policy {
	/* zone:/channel:/chat: need a claim or a subscription token. */
	PAV_ACL_POLICY_CLAIMS,
	/* zone:/channel:/chat: are open to every authenticated user. */
	PAV_ACL_POLICY_OPEN,
};

enum pav_acl_verdict {
	PAV_ACL_ALLOW,
	PAV_ACL_DENY,      /* final: no token can change it */
	PAV_ACL_NEED_TOKEN, /* allowed only with a valid subscription token */
};

/* "claims" / "open" → *policy; 0, or -EINVAL for any other name. */
int pav_acl_policy_parse(const char *name, enum pav_acl_policy *policy);

/*
 * The claim that grants a channel's kind ("zones" for zone:, "channels"
 * for channel:, "chats" for chat:), with *id set to the channel's id; NULL
 * for user: channels and anything unknown.
 */
const char *pav_acl_claim_for(const char *channel, const char **id);

/* 1 when claims[claim] is an array holding id (a string, or an integer
 * written the same way) or "*"; 0 otherwise, claims NULL included. */
int pav_acl_claim_grants(json_object *claims, const char *claim,
			 const char *id);

/*
 * The decision for `user` (the connection's JWT sub) holding `claims`
 * (its verified claim set) before any subscription token is looked at:
 * "user:<user>" is allowed and any other user: channel denied;
 * zone:/channel:/chat: are allowed by the policy or the claim, else need a
 * token; an unknown kind is denied.
 */
enum pav_acl_verdict pav_acl_check(enum pav_acl_policy policy,
				   json_object *claims, const char *user,
				   const char *channel);

/* 1 when a verified subscription token's claims grant `channel` to `user`:
 * "sub" equals user and "channel" equals channel (both strings). */
int pav_acl_token_grants(json_object *token_claims, const char *user,
			 const char *channel);

#endif /* PAV_ACL_H */
