/*
 * test_plugin_subscription.c — the subscription plugin's handlers
 * (plugins/subscription/subscription.c) with a fake host
 * (plugin_host.c): payload checks (1002), the channel grammar (1003),
 * access (1004; the decisions themselves are test_acl.c's), and the
 * hand-over of an allowed subscribe to host->subscribe with a deferred
 * reply; what a token renewal keeps (check_renewed: the new claims, or
 * the subscription token a subscription was granted by).  Options are
 * checked at creation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_host.h"

extern const struct pav_plugin pavilion_plugin;

static void *inst;
static pav_conn *c;

static int create(const char *options)
{
	return ph_start(&pavilion_plugin, options,
			"{\"zones\":[\"z1\"],\"chats\":[\"*\"]}", NULL, &inst,
			&c);
}

static int setup(void **state)
{
	(void)state;
	return create("{}");
}

static int setup_open(void **state)
{
	(void)state;
	return create("{\"policy\":\"open\"}");
}

static int sub(const char *payload, const char **why)
{
	return ph_handle(inst, c, "subscribe", "r1", payload, NULL, why);
}

/* A subscribe that must be refused with code; nothing subscribed. */
static void refused(const char *payload, int code)
{
	const char *why = NULL;
	size_t subs = ph_count("subscribe "), defers = ph_count("defer ");
	int rc = sub(payload, &why);

	if (rc != code)
		fail_msg("%s: got %d, want %d", payload, rc, code);
	assert_non_null(why);
	assert_int_equal(ph_count("subscribe "), subs);
	assert_int_equal(ph_count("defer "), defers);
}

/* ---- creation ---- */

static void registers_subscribe_and_unsubscribe(void **state)
{
	void *i2;
	char err[128];

	(void)state;
	ph_forget_registrations();
	assert_int_equal(ph_create(&pavilion_plugin, "{}", &i2, err,
				   sizeof(err)),
			 0);
	assert_non_null(ph_handler("subscribe"));
	assert_non_null(ph_handler("unsubscribe"));
	assert_int_equal(ph_count("register_route"), 0);
	ph_destroy(&pavilion_plugin, i2);
}

static void unknown_option_is_refused(void **state)
{
	void *i2;
	char err[128];

	(void)state;
	assert_int_equal(ph_create(&pavilion_plugin, "{\"polcy\":\"open\"}",
				   &i2, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "polcy: unknown option");
}

static void policy_other_than_claims_or_open_is_refused(void **state)
{
	void *i2;
	char err[128];

	(void)state;
	assert_int_equal(ph_create(&pavilion_plugin, "{\"policy\":\"all\"}",
				   &i2, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "policy"));
	assert_int_equal(ph_create(&pavilion_plugin, "{\"policy\":1}", &i2,
				   err, sizeof(err)),
			 -EINVAL);
}

/* ---- payloads ---- */

static void subscribe_payload_without_a_channel_string_is_1002(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(ph_handle(inst, c, "subscribe", "r1", NULL, NULL,
				   &why),
			 PAV_ERR_FORMAT);
	refused("{}", PAV_ERR_FORMAT);
	refused("{\"channel\":7}", PAV_ERR_FORMAT);
	refused("{\"channel\":null}", PAV_ERR_FORMAT);
	refused("{\"channel\":[\"zone:z1\"]}", PAV_ERR_FORMAT);
}

static void parameters_not_an_object_is_1002(void **state)
{
	(void)state;
	refused("{\"channel\":\"zone:z1\",\"parameters\":[]}", PAV_ERR_FORMAT);
	refused("{\"channel\":\"zone:z1\",\"parameters\":\"x\"}",
		PAV_ERR_FORMAT);
}

static void token_parameter_not_a_string_is_1002(void **state)
{
	(void)state;
	refused("{\"channel\":\"zone:z9\",\"parameters\":{\"token\":1}}",
		PAV_ERR_FORMAT);
}

static void channel_outside_the_grammar_is_1003(void **state)
{
	(void)state;
	refused("{\"channel\":\"\"}", PAV_ERR_SUBSCRIPTION);
	refused("{\"channel\":\"zone:\"}", PAV_ERR_SUBSCRIPTION);
	refused("{\"channel\":\"room:r1\"}", PAV_ERR_SUBSCRIPTION);
	refused("{\"channel\":\"zone:a b\"}", PAV_ERR_SUBSCRIPTION);
	refused("{\"channel\":\"zone:z1:x\"}", PAV_ERR_SUBSCRIPTION);
}

/* ---- access ---- */

static void another_users_channel_is_1004(void **state)
{
	(void)state;
	refused("{\"channel\":\"user:u2\"}", PAV_ERR_PERMISSION);
}

static void channel_no_claim_grants_is_1004_without_a_token(void **state)
{
	(void)state;
	refused("{\"channel\":\"zone:z2\"}", PAV_ERR_PERMISSION);
	refused("{\"channel\":\"channel:c1\"}", PAV_ERR_PERMISSION);
	assert_int_equal(ph_count("verify_token"), 0);
}

static void token_that_does_not_verify_is_1004(void **state)
{
	(void)state;
	ph.good_token = "good";
	ph.token_claims = "{\"sub\":\"u1\",\"channel\":\"zone:z2\"}";
	refused("{\"channel\":\"zone:z2\",\"parameters\":{\"token\":\"bad\"}}",
		PAV_ERR_PERMISSION);
	assert_int_equal(ph_count("verify_token c1 bad"), 1);
}

static void token_for_another_channel_or_user_is_1004(void **state)
{
	(void)state;
	ph.good_token = "good";
	ph.token_claims = "{\"sub\":\"u1\",\"channel\":\"zone:z3\"}";
	refused("{\"channel\":\"zone:z2\",\"parameters\":{\"token\":\"good\"}}",
		PAV_ERR_PERMISSION);
	ph.token_claims = "{\"sub\":\"u2\",\"channel\":\"zone:z2\"}";
	refused("{\"channel\":\"zone:z2\",\"parameters\":{\"token\":\"good\"}}",
		PAV_ERR_PERMISSION);
}

/* ---- the hand-over ---- */

static void allowed_subscribe_goes_to_the_host_with_a_deferred_reply(
	void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(sub("{\"channel\":\"zone:z1\","
			     "\"parameters\":{\"presence\":true}}",
			     &why),
			 PAV_PENDING);
	assert_int_equal(ph_nlog, 2);
	assert_string_equal(ph_at(0), "defer c1 subscribe r1");
	assert_string_equal(ph_at(1), "subscribe c1 zone:z1 "
				      "params={\"presence\":true} reply=1");
}

static void own_user_channel_is_subscribed_by_its_canonical_name(
	void **state)
{
	(void)state;
	assert_int_equal(sub("{\"channel\":\"user\"}", NULL), PAV_PENDING);
	assert_string_equal(ph_at(1), "subscribe c1 user:u1 params=- reply=1");
	assert_int_equal(sub("{\"channel\":\"user:u1\"}", NULL), PAV_PENDING);
	assert_string_equal(ph_at(3), "subscribe c1 user:u1 params=- reply=2");
}

static void valid_subscription_token_grants_the_channel(void **state)
{
	(void)state;
	ph.good_token = "good";
	ph.token_claims = "{\"sub\":\"u1\",\"channel\":\"zone:z2\"}";
	assert_int_equal(sub("{\"channel\":\"zone:z2\","
			     "\"parameters\":{\"token\":\"good\"}}",
			     NULL),
			 PAV_PENDING);
	assert_true(ph_find("subscribe c1 zone:z2 ", 0) >= 0);
}

static void open_policy_needs_no_claim(void **state)
{
	(void)state;
	assert_int_equal(sub("{\"channel\":\"channel:c9\"}", NULL),
			 PAV_PENDING);
	/* user: channels stay private */
	refused("{\"channel\":\"user:u2\"}", PAV_ERR_PERMISSION);
}

static void deferral_failure_is_2000(void **state)
{
	(void)state;
	ph.defer_fails = 1;
	assert_int_equal(sub("{\"channel\":\"zone:z1\"}", NULL),
			 PAV_ERR_INTERNAL);
	assert_int_equal(ph_count("subscribe "), 0);
}

/* ---- unsubscribe ---- */

static void unsubscribe_leaves_and_acks_the_canonical_channel(void **state)
{
	json_object *ack = NULL;

	(void)state;
	assert_int_equal(ph_handle(inst, c, "unsubscribe", "u1",
				   "{\"channel\":\"zone:z2\"}", &ack, NULL),
			 0);
	assert_string_equal(ph_at(0), "unsubscribe c1 zone:z2");
	assert_string_equal(ph_json(ack), "{\"channel\":\"zone:z2\"}");
	json_object_put(ack);
	assert_int_equal(ph_handle(inst, c, "unsubscribe", NULL,
				   "{\"channel\":\"user\"}", &ack, NULL),
			 0);
	assert_string_equal(ph_json(ack), "{\"channel\":\"user:u1\"}");
	json_object_put(ack);
}

static void unsubscribe_checks_the_channel(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(ph_handle(inst, c, "unsubscribe", "u1", "{}", NULL,
				   &why),
			 PAV_ERR_FORMAT);
	assert_int_equal(ph_handle(inst, c, "unsubscribe", "u1",
				   "{\"channel\":\"bogus\"}", NULL, &why),
			 PAV_ERR_SUBSCRIPTION);
	assert_int_equal(ph_count("unsubscribe "), 0);
}

static void unsubscribe_failure_is_2000(void **state)
{
	(void)state;
	ph.unsubscribe_rc = -ENOMEM;
	assert_int_equal(ph_handle(inst, c, "unsubscribe", "u1",
				   "{\"channel\":\"zone:z1\"}", NULL, NULL),
			 PAV_ERR_INTERNAL);
}

/* ---- renewal ---- */

static int renewed(pav_conn *conn, const char *channel)
{
	return pavilion_plugin.check_renewed(inst, conn, channel);
}

/* A token subscribe of channel that passes (good token, no claim). */
static void token_subscribe(pav_conn *conn, const char *channel)
{
	char payload[256], claims[160];

	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"%s\",\"channel\":\"%s\"}", conn->user, channel);
	ph.good_token = "good";
	ph.token_claims = claims;
	snprintf(payload, sizeof(payload),
		 "{\"channel\":\"%s\",\"parameters\":{\"token\":\"good\"}}",
		 channel);
	assert_int_equal(ph_handle(inst, conn, "subscribe", "r1", payload, NULL,
				   NULL),
			 PAV_PENDING);
}

static void renewal_keeps_what_the_new_claims_grant(void **state)
{
	(void)state;
	assert_int_equal(sub("{\"channel\":\"zone:z1\"}", NULL), PAV_PENDING);
	ph_set_claims(c, "{\"zones\":[\"z0\",\"z1\"]}");
	assert_int_equal(renewed(c, "zone:z1"), 0);
	ph_set_claims(c, "{\"zones\":[\"*\"],\"chats\":[7]}");
	assert_int_equal(renewed(c, "zone:z1"), 0);
	assert_int_equal(renewed(c, "chat:7"), 0);
	assert_int_equal(renewed(c, "user:u1"), 0);
	assert_int_equal(ph_count("verify_token"), 0);
}

static void renewal_revokes_what_the_new_claims_do_not_grant(void **state)
{
	(void)state;
	assert_int_equal(sub("{\"channel\":\"zone:z1\"}", NULL), PAV_PENDING);
	ph_set_claims(c, "{\"zones\":[\"z2\"],\"channels\":[\"z1\"]}");
	assert_int_equal(renewed(c, "zone:z1"), PAV_ERR_PERMISSION);
	ph_set_claims(c, NULL);
	assert_int_equal(renewed(c, "zone:z1"), PAV_ERR_PERMISSION);
	assert_int_equal(renewed(c, "chat:c1"), PAV_ERR_PERMISSION);
	assert_int_equal(renewed(c, "user:u2"), PAV_ERR_PERMISSION);
}

/* A subscription token, not the claims, was its ground: a renewal keeps
 * it, on that connection only. */
static void renewal_keeps_what_a_subscription_token_granted(void **state)
{
	pav_conn *c2 = ph_conn(2, "u1", "{\"zones\":[\"z2\"]}", NULL);

	(void)state;
	token_subscribe(c, "zone:z2");
	assert_int_equal(sub("{\"channel\":\"zone:z1\"}", NULL), PAV_PENDING);
	assert_int_equal(ph_handle(inst, c2, "subscribe", "r1",
				   "{\"channel\":\"zone:z2\"}", NULL, NULL),
			 PAV_PENDING);
	ph_set_claims(c, NULL);
	ph_set_claims(c2, NULL);
	assert_int_equal(renewed(c, "zone:z2"), 0);
	assert_int_equal(renewed(c, "zone:z1"), PAV_ERR_PERMISSION);
	assert_int_equal(renewed(c2, "zone:z2"), PAV_ERR_PERMISSION);
}

/* The grant of a subscription that went (left, or its connection closed)
 * does not carry over to a later one of the same channel. */
static void token_grant_ends_with_its_subscription(void **state)
{
	(void)state;
	token_subscribe(c, "zone:z2");
	token_subscribe(c, "zone:z3");
	ph_set_claims(c, NULL);
	assert_int_equal(ph_handle(inst, c, "unsubscribe", "u1",
				   "{\"channel\":\"zone:z2\"}", NULL, NULL),
			 0);
	pavilion_plugin.on_unsubscribed(inst, c, "zone:z2"); /* the host's */
	assert_int_equal(renewed(c, "zone:z2"), PAV_ERR_PERMISSION);
	assert_int_equal(renewed(c, "zone:z3"), 0);
	c->open = 0;
	pavilion_plugin.on_close(inst, c, 1);
	assert_int_equal(renewed(c, "zone:z3"), PAV_ERR_PERMISSION);
}

/* A token subscribe that joined nothing (refused at once, 1003) leaves no
 * grant behind. */
static void token_subscribe_refused_at_once_grants_nothing(void **state)
{
	(void)state;
	ph.subscribe_refused = 1;
	token_subscribe(c, "zone:z2");
	ph.subscribe_refused = 0;
	ph_set_claims(c, NULL);
	assert_int_equal(renewed(c, "zone:z2"), PAV_ERR_PERMISSION);
}

static void open_policy_renewal_keeps_every_shared_channel(void **state)
{
	(void)state;
	ph_set_claims(c, NULL);
	assert_int_equal(renewed(c, "zone:z9"), 0);
	assert_int_equal(renewed(c, "channel:c9"), 0);
	assert_int_equal(renewed(c, "chat:c9"), 0);
	assert_int_equal(renewed(c, "user:u2"), PAV_ERR_PERMISSION);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, ph_end)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(registers_subscribe_and_unsubscribe),
		T(unknown_option_is_refused),
		T(policy_other_than_claims_or_open_is_refused),
		T(subscribe_payload_without_a_channel_string_is_1002),
		T(parameters_not_an_object_is_1002),
		T(token_parameter_not_a_string_is_1002),
		T(channel_outside_the_grammar_is_1003),
		T(another_users_channel_is_1004),
		T(channel_no_claim_grants_is_1004_without_a_token),
		T(token_that_does_not_verify_is_1004),
		T(token_for_another_channel_or_user_is_1004),
		T(allowed_subscribe_goes_to_the_host_with_a_deferred_reply),
		T(own_user_channel_is_subscribed_by_its_canonical_name),
		T(valid_subscription_token_grants_the_channel),
		cmocka_unit_test_setup_teardown(open_policy_needs_no_claim,
						setup_open, ph_end),
		T(deferral_failure_is_2000),
		T(unsubscribe_leaves_and_acks_the_canonical_channel),
		T(unsubscribe_checks_the_channel),
		T(unsubscribe_failure_is_2000),
		T(renewal_keeps_what_the_new_claims_grant),
		T(renewal_revokes_what_the_new_claims_do_not_grant),
		T(renewal_keeps_what_a_subscription_token_granted),
		T(token_grant_ends_with_its_subscription),
		T(token_subscribe_refused_at_once_grants_nothing),
		cmocka_unit_test_setup_teardown(
			open_policy_renewal_keeps_every_shared_channel,
			setup_open, ph_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
