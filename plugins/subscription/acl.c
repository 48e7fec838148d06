/*
 * acl.c — channel access decisions for the subscription plugin (DESIGN
 * section 2, "Access control"); see acl.h.  No I/O, no host calls.
 */
#include "acl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Which claim grants which channel kind. */
static const struct {
	const char *prefix; /* with the colon */
	const char *claim;
} kinds[] = {
	{"zone:", "zones"},
	{"channel:", "channels"},
	{"chat:", "chats"},
};

int pav_acl_policy_parse(const char *name, enum pav_acl_policy *policy)
{
	if (strcmp(name, "claims") == 0)
		*policy = PAV_ACL_POLICY_CLAIMS;
	else if (strcmp(name, "open") == 0)
		*policy = PAV_ACL_POLICY_OPEN;
	else
		return -EINVAL;
	return 0;
}

const char *pav_acl_claim_for(const char *channel, const char **id)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(channel, kinds[i].prefix, n) == 0) {
			*id = channel + n;
			return kinds[i].claim;
		}
	}
	return NULL;
}

/* Issuers often write numeric ids as JSON numbers: 123 grants "123".  Only
 * integers, so that 1.0 or 1e2 never match anything by accident. */
static int element_matches(json_object *el, const char *id)
{
	char buf[32];

	if (json_object_is_type(el, json_type_string)) {
		const char *s = json_object_get_string(el);

		return strcmp(s, "*") == 0 || strcmp(s, id) == 0;
	}
	if (json_object_is_type(el, json_type_int)) {
		snprintf(buf, sizeof(buf), "%" PRId64,
			 json_object_get_int64(el));
		return strcmp(buf, id) == 0;
	}
	return 0;
}

int pav_acl_claim_grants(json_object *claims, const char *claim,
			 const char *id)
{
	json_object *arr;

	if (!claims || !json_object_object_get_ex(claims, claim, &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (element_matches(json_object_array_get_idx(arr, i), id))
			return 1;
	return 0;
}

/* "user:<user>" exactly: the channel grammar already canonicalised the
 * aliases, so anything else names another user. */
static int is_own_user_channel(const char *user, const char *channel)
{
	return strncmp(channel, "user:", 5) == 0 && user &&
	       strcmp(channel + 5, user) == 0;
}

enum pav_acl_verdict pav_acl_check(enum pav_acl_policy policy,
				   json_object *claims, const char *user,
				   const char *channel)
{
	const char *id;
	const char *claim;

	if (strncmp(channel, "user:", 5) == 0)
		return is_own_user_channel(user, channel) ? PAV_ACL_ALLOW
							  : PAV_ACL_DENY;
	claim = pav_acl_claim_for(channel, &id);
	if (!claim || !*id)
		return PAV_ACL_DENY;
	if (policy == PAV_ACL_POLICY_OPEN ||
	    pav_acl_claim_grants(claims, claim, id))
		return PAV_ACL_ALLOW;
	return PAV_ACL_NEED_TOKEN;
}

/* claims[name] is a string equal to want. */
static int string_claim_is(json_object *claims, const char *name,
			   const char *want)
{
	json_object *v;

	return json_object_object_get_ex(claims, name, &v) &&
	       json_object_is_type(v, json_type_string) &&
	       strcmp(json_object_get_string(v), want) == 0;
}

int pav_acl_token_grants(json_object *token_claims, const char *user,
			 const char *channel)
{
	if (!token_claims || !user || !channel)
		return 0;
	return string_claim_is(token_claims, "sub", user) &&
	       string_claim_is(token_claims, "channel", channel);
}
