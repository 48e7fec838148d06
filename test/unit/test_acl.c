/*
 * test_acl.c — the subscription plugin's access decisions (acl.c), rule by
 * rule as DESIGN section 2 "Access control" states them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acl.h"

/* Claims from JSON text; the test owns the reference. */
static json_object *claims(const char *text)
{
	json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

/* The default policy's verdict for user "u1" holding `text` claims. */
static enum pav_acl_verdict verdict(const char *text, const char *channel)
{
	json_object *c = claims(text);
	enum pav_acl_verdict v =
		pav_acl_check(PAV_ACL_POLICY_CLAIMS, c, "u1", channel);

	json_object_put(c);
	return v;
}

static void policy_names_parse(void **state)
{
	enum pav_acl_policy p = PAV_ACL_POLICY_OPEN;

	(void)state;
	assert_int_equal(pav_acl_policy_parse("claims", &p), 0);
	assert_int_equal(p, PAV_ACL_POLICY_CLAIMS);
	assert_int_equal(pav_acl_policy_parse("open", &p), 0);
	assert_int_equal(p, PAV_ACL_POLICY_OPEN);
	assert_int_equal(pav_acl_policy_parse("closed", &p), -EINVAL);
	assert_int_equal(pav_acl_policy_parse("", &p), -EINVAL);
	assert_int_equal(pav_acl_policy_parse("Claims", &p), -EINVAL);
}

static void claim_for_maps_kinds_to_claims(void **state)
{
	const char *id = NULL;

	(void)state;
	assert_string_equal(pav_acl_claim_for("zone:z1", &id), "zones");
	assert_string_equal(id, "z1");
	assert_string_equal(pav_acl_claim_for("channel:c-2", &id), "channels");
	assert_string_equal(id, "c-2");
	assert_string_equal(pav_acl_claim_for("chat:r_3", &id), "chats");
	assert_string_equal(id, "r_3");
	assert_null(pav_acl_claim_for("user:u1", &id));
	assert_null(pav_acl_claim_for("zones:z1", &id));
	assert_null(pav_acl_claim_for("zone", &id));
}

static void own_user_channel_allowed(void **state)
{
	(void)state;
	assert_int_equal(verdict("{}", "user:u1"), PAV_ACL_ALLOW);
}

static void other_user_channel_denied_even_with_wildcards(void **state)
{
	const char *all = "{\"zones\":[\"*\"],\"channels\":[\"*\"],"
			  "\"chats\":[\"*\"]}";

	(void)state;
	assert_int_equal(verdict(all, "user:u2"), PAV_ACL_DENY);
	assert_int_equal(verdict(all, "user:u10"), PAV_ACL_DENY);
	assert_int_equal(verdict(all, "user:u"), PAV_ACL_DENY);
	assert_int_equal(verdict(all, "user:"), PAV_ACL_DENY);
}

static void zones_claim_containing_id_allows(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"zones\":[\"a\",\"z1\"]}", "zone:z1"),
			 PAV_ACL_ALLOW);
}

static void zones_claim_wildcard_allows_any_zone(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"zones\":[\"*\"]}", "zone:anything"),
			 PAV_ACL_ALLOW);
}

static void zones_claim_without_id_needs_token(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"zones\":[\"z2\",\"z10\"]}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
	/* ids are compared whole, never as prefixes */
	assert_int_equal(verdict("{\"zones\":[\"z1x\"]}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict("{\"zones\":[]}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
}

static void zones_claim_missing_needs_token(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"sub\":\"u1\"}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(pav_acl_check(PAV_ACL_POLICY_CLAIMS, NULL, "u1",
				       "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
}

static void zones_claim_not_an_array_grants_nothing(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"zones\":\"z1\"}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict("{\"zones\":\"*\"}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict("{\"zones\":{\"z1\":true}}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict("{\"zones\":null}", "zone:z1"),
			 PAV_ACL_NEED_TOKEN);
}

static void integer_ids_in_claims_match_their_decimal_form(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"zones\":[123]}", "zone:123"),
			 PAV_ACL_ALLOW);
	assert_int_equal(verdict("{\"zones\":[123]}", "zone:0123"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict("{\"zones\":[123.0, true, null, [\"1\"]]}",
				 "zone:123"),
			 PAV_ACL_NEED_TOKEN);
}

static void each_kind_uses_its_own_claim(void **state)
{
	const char *c = "{\"zones\":[\"x\"],\"channels\":[\"y\"],"
			"\"chats\":[\"z\"]}";

	(void)state;
	assert_int_equal(verdict(c, "zone:x"), PAV_ACL_ALLOW);
	assert_int_equal(verdict(c, "channel:y"), PAV_ACL_ALLOW);
	assert_int_equal(verdict(c, "chat:z"), PAV_ACL_ALLOW);
	assert_int_equal(verdict(c, "zone:y"), PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict(c, "channel:z"), PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict(c, "chat:x"), PAV_ACL_NEED_TOKEN);
}

static void channels_and_chats_wildcards(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"channels\":[\"*\"]}", "channel:c1"),
			 PAV_ACL_ALLOW);
	assert_int_equal(verdict("{\"chats\":[\"*\"]}", "chat:r1"),
			 PAV_ACL_ALLOW);
	assert_int_equal(verdict("{\"channels\":[\"*\"]}", "chat:r1"),
			 PAV_ACL_NEED_TOKEN);
	assert_int_equal(verdict("{\"chats\":\"r1\"}", "chat:r1"),
			 PAV_ACL_NEED_TOKEN);
}

static void unknown_kind_denied(void **state)
{
	(void)state;
	assert_int_equal(verdict("{\"zones\":[\"*\"]}", "room:r1"),
			 PAV_ACL_DENY);
	assert_int_equal(verdict("{\"zones\":[\"*\"]}", "zone:"),
			 PAV_ACL_DENY);
}

static void open_policy_allows_shared_channels_only(void **state)
{
	(void)state;
	assert_int_equal(pav_acl_check(PAV_ACL_POLICY_OPEN, NULL, "u1",
				       "zone:z1"),
			 PAV_ACL_ALLOW);
	assert_int_equal(pav_acl_check(PAV_ACL_POLICY_OPEN, NULL, "u1",
				       "channel:c1"),
			 PAV_ACL_ALLOW);
	assert_int_equal(pav_acl_check(PAV_ACL_POLICY_OPEN, NULL, "u1",
				       "chat:r1"),
			 PAV_ACL_ALLOW);
	assert_int_equal(pav_acl_check(PAV_ACL_POLICY_OPEN, NULL, "u1",
				       "user:u2"),
			 PAV_ACL_DENY);
}

/* pav_acl_token_grants() for user u1 and chat:r1. */
static int token(const char *text)
{
	json_object *c = claims(text);
	int ok = pav_acl_token_grants(c, "u1", "chat:r1");

	json_object_put(c);
	return ok;
}

static void token_with_matching_sub_and_channel_grants(void **state)
{
	(void)state;
	assert_true(token("{\"sub\":\"u1\",\"channel\":\"chat:r1\","
			  "\"exp\":1}"));
}

static void token_for_another_user_denied(void **state)
{
	(void)state;
	assert_false(token("{\"sub\":\"u2\",\"channel\":\"chat:r1\"}"));
	assert_false(token("{\"sub\":\"u10\",\"channel\":\"chat:r1\"}"));
}

static void token_for_another_channel_denied(void **state)
{
	(void)state;
	assert_false(token("{\"sub\":\"u1\",\"channel\":\"chat:r2\"}"));
	assert_false(token("{\"sub\":\"u1\",\"channel\":\"zone:r1\"}"));
	assert_false(token("{\"sub\":\"u1\",\"channel\":\"chat:r1x\"}"));
	/* a wildcard is a claim-array feature, not a token one */
	assert_false(token("{\"sub\":\"u1\",\"channel\":\"*\"}"));
}

static void token_missing_or_mistyped_claims_denied(void **state)
{
	(void)state;
	assert_false(token("{\"channel\":\"chat:r1\"}"));
	assert_false(token("{\"sub\":\"u1\"}"));
	assert_false(token("{\"sub\":\"u1\",\"channel\":[\"chat:r1\"]}"));
	assert_false(token("{\"sub\":1,\"channel\":\"chat:r1\"}"));
	assert_false(pav_acl_token_grants(NULL, "u1", "chat:r1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(policy_names_parse),
		cmocka_unit_test(claim_for_maps_kinds_to_claims),
		cmocka_unit_test(own_user_channel_allowed),
		cmocka_unit_test(other_user_channel_denied_even_with_wildcards),
		cmocka_unit_test(zones_claim_containing_id_allows),
		cmocka_unit_test(zones_claim_wildcard_allows_any_zone),
		cmocka_unit_test(zones_claim_without_id_needs_token),
		cmocka_unit_test(zones_claim_missing_needs_token),
		cmocka_unit_test(zones_claim_not_an_array_grants_nothing),
		cmocka_unit_test(integer_ids_in_claims_match_their_decimal_form),
		cmocka_unit_test(each_kind_uses_its_own_claim),
		cmocka_unit_test(channels_and_chats_wildcards),
		cmocka_unit_test(unknown_kind_denied),
		cmocka_unit_test(open_policy_allows_shared_channels_only),
		cmocka_unit_test(token_with_matching_sub_and_channel_grants),
		cmocka_unit_test(token_for_another_user_denied),
		cmocka_unit_test(token_for_another_channel_denied),
		cmocka_unit_test(token_missing_or_mistyped_claims_denied),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
