/*
 * test_dispatch.c — a complete client message (src/dispatch.c): the rate
 * limit, the envelope, the gateway's own types (heartbeat_ack, auth), the
 * handler a plugin registered and what its return value makes of the
 * answer (ack with the id, silence without, errors, PAV_PENDING and a
 * later reply, 2000 for a plugin bug).  Built on session_fixture.c; the
 * clock is fake, so the rate limit is exact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "fake_clock.h"
#include "session_fixture.h"

static struct fake_conn fc;
static struct pav_session *s;

/* What the last handler call saw. */
static struct {
	int calls;
	char type[32];
	char id[80];
	int has_id;
	char payload[256];
	struct pav_reply *reply;
} h;

static int h_echo(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)c;
	assert_string_equal((const char *)inst, "A");
	h.calls++;
	snprintf(h.type, sizeof(h.type), "%s", req->type);
	h.has_id = req->id != NULL;
	snprintf(h.id, sizeof(h.id), "%s", req->id ? req->id : "");
	snprintf(h.payload, sizeof(h.payload), "%s",
		 req->payload ? json_object_to_json_string_ext(
					req->payload, JSON_C_TO_STRING_PLAIN)
			      : "-");
	req->ack = json_object_new_object();
	json_object_object_add(req->ack, "x", json_object_new_int(1));
	return 0;
}

static int h_refuse(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)inst;
	(void)c;
	h.calls++;
	req->error_message = "not yours";
	return PAV_ERR_PERMISSION;
}

static int h_refuse_quietly(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)inst;
	(void)c;
	(void)req;
	h.calls++;
	return PAV_ERR_FORMAT;
}

static int h_errno(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)inst;
	(void)c;
	h.calls++;
	req->ack = json_object_new_object(); /* dropped with the answer */
	req->error_message = "should not be shown";
	return -ENOMEM;
}

static int h_odd(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)inst;
	(void)c;
	(void)req;
	h.calls++;
	return 1999;
}

static int h_later(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)inst;
	h.calls++;
	h.reply = pav_session_defer(c, req->type, req->id);
	assert_non_null(h.reply);
	return PAV_PENDING;
}

static int setup(void **state)
{
	int rc = fx_setup(state);

	memset(&h, 0, sizeof(h));
	fx_vc.limits.burst = 3;
	fx_vc.limits.messages_per_s = 1;
	fx_vc.limits.abuse_close_after = 5;
	assert_int_equal(fx_register("echo", h_echo), 0);
	assert_int_equal(fx_register("refuse", h_refuse), 0);
	assert_int_equal(fx_register("refuse_quietly", h_refuse_quietly), 0);
	assert_int_equal(fx_register("errno", h_errno), 0);
	assert_int_equal(fx_register("odd", h_odd), 0);
	assert_int_equal(fx_register("later", h_later), 0);
	s = fx_open(&fc, "u1", NULL);
	assert_non_null(s);
	return rc;
}

static int teardown(void **state)
{
	int rc = fx_teardown(state);

	fake_conn_free(&fc);
	return rc;
}

static void send_text(const char *text)
{
	pav_dispatch(s, text, strlen(text), 0);
}

/* Frame i is an error: code, message (when given) and id (or none). */
static void error_is(size_t i, int code, const char *message, const char *id)
{
	fx_error_is(&fc, i, code, message, id);
}

/* Frame i is {"type":"ack","id":id,"payload":{"for":type,...}}; returns
 * the payload (a new reference). */
static json_object *ack_is(size_t i, const char *id, const char *type)
{
	return fx_ack_is(&fc, i, id, type);
}

/* ---- the gateway's own types ---- */

static void heartbeat_ack_is_answered_with_nothing(void **state)
{
	(void)state;
	send_text("{\"type\":\"heartbeat_ack\"}");
	send_text("{\"type\":\"heartbeat_ack\",\"id\":\"h1\"}");
	/* with an id it is acked like any message */
	assert_int_equal(fc.n, 1);
	json_object_put(ack_is(0, "h1", "heartbeat_ack"));
}

static void auth_with_a_fresh_token_of_the_same_user_is_acked(void **state)
{
	char msg[1024], *tok = fx_token("{\"sub\":\"u1\",\"exp\":1800007200}");

	(void)state;
	snprintf(msg, sizeof(msg),
		 "{\"type\":\"auth\",\"id\":\"a1\",\"payload\":{\"token\":\"%s\"}}",
		 tok);
	free(tok);
	send_text(msg);
	assert_int_equal(fc.n, 1);
	json_object_put(ack_is(0, "a1", "auth"));
	assert_true(fc.exp_ms == 1800007200000LL);
}

/* The renewal is acked first; then come the errors of the subscriptions
 * its claims no longer allow (here: that a plugin refuses). */
static void auth_acks_the_renewal_before_the_revocations(void **state)
{
	char msg[1024], first[PAV_CHANNEL_BUF];
	char *tok = fx_token("{\"sub\":\"u1\"}");

	(void)state;
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_subscribe(s, "chat:c1", NULL, "r2");
	fx_renew_refused[0] = "zone:z1";
	fx_renew_refused[1] = "chat:c1";
	snprintf(msg, sizeof(msg),
		 "{\"type\":\"auth\",\"id\":\"a1\",\"payload\":{\"token\":\"%s\"}}",
		 tok);
	free(tok);
	send_text(msg);
	assert_int_equal(fc.n, 5);
	json_object_put(ack_is(2, "a1", "auth"));
	error_is(3, PAV_ERR_PERMISSION, "subscription revoked", NULL);
	error_is(4, PAV_ERR_PERMISSION, "subscription revoked", NULL);
	snprintf(first, sizeof(first), "%s", fx_payload_str(&fc, 3, "channel"));
	assert_true(!strcmp(first, "zone:z1") || !strcmp(first, "chat:c1"));
	assert_string_not_equal(first, fx_payload_str(&fc, 4, "channel"));
	assert_false(pav_hub_is_member(&s->hc, "zone:z1"));
	assert_false(pav_hub_is_member(&s->hc, "chat:c1"));
}

/* Without an id nothing acks the renewal; the revocations still come. */
static void auth_without_an_id_still_revokes(void **state)
{
	char msg[1024], *tok = fx_token("{\"sub\":\"u1\"}");

	(void)state;
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_renew_refused[0] = "zone:z1";
	snprintf(msg, sizeof(msg),
		 "{\"type\":\"auth\",\"payload\":{\"token\":\"%s\"}}", tok);
	free(tok);
	send_text(msg);
	assert_int_equal(fc.n, 2);
	error_is(1, PAV_ERR_PERMISSION, "subscription revoked", NULL);
	assert_string_equal(fx_payload_str(&fc, 1, "channel"), "zone:z1");
}

/* A refused renewal asks the plugins nothing and leaves nothing. */
static void refused_auth_revokes_nothing(void **state)
{
	char msg[1024], *tok = fx_token("{\"sub\":\"u2\"}");

	(void)state;
	fx_subscribe(s, "zone:z1", NULL, "r1");
	fx_renew_refused[0] = "zone:z1";
	fx_events_clear();
	snprintf(msg, sizeof(msg),
		 "{\"type\":\"auth\",\"id\":\"a1\",\"payload\":{\"token\":\"%s\"}}",
		 tok);
	free(tok);
	send_text(msg);
	assert_int_equal(fc.n, 2);
	error_is(1, PAV_ERR_AUTH, "token is for another user", "a1");
	assert_int_equal(fx_nevents, 0);
	assert_true(pav_hub_is_member(&s->hc, "zone:z1"));
}

static void auth_with_a_bad_token_is_1001_and_the_connection_stays(
	void **state)
{
	char msg[1024], *tok = fx_token("{\"sub\":\"u2\"}");

	(void)state;
	snprintf(msg, sizeof(msg),
		 "{\"type\":\"auth\",\"id\":\"a1\",\"payload\":{\"token\":\"%s\"}}",
		 tok);
	free(tok);
	send_text(msg);
	error_is(0, PAV_ERR_AUTH, "token is for another user", "a1");
	send_text("{\"type\":\"auth\",\"id\":\"a2\","
		  "\"payload\":{\"token\":\"x.y.z\"}}");
	error_is(1, PAV_ERR_AUTH, NULL, "a2");
	assert_int_equal(fc.c.close_code, 0);
}

static void auth_without_a_token_string_is_1002(void **state)
{
	(void)state;
	send_text("{\"type\":\"auth\",\"id\":\"a1\"}");
	error_is(0, PAV_ERR_FORMAT, "payload.token must be a string", "a1");
	send_text("{\"type\":\"auth\",\"id\":\"a2\",\"payload\":{\"token\":1}}");
	error_is(1, PAV_ERR_FORMAT, "payload.token must be a string", "a2");
}

/* ---- envelope ---- */

static void binary_frame_is_1002(void **state)
{
	(void)state;
	pav_dispatch(s, "{\"type\":\"echo\"}", 15, 1);
	error_is(0, PAV_ERR_FORMAT, "binary frames are not accepted", NULL);
	assert_int_equal(h.calls, 0);
}

static void malformed_envelope_is_1002_with_the_id_when_valid(void **state)
{
	(void)state;
	send_text("not json");
	error_is(0, PAV_ERR_FORMAT, NULL, NULL);
	send_text("{\"id\":\"m1\"}");
	error_is(1, PAV_ERR_FORMAT, "type is required", "m1");
	send_text("{\"type\":\"echo\",\"id\":\"m2\",\"payload\":[]}");
	error_is(2, PAV_ERR_FORMAT, "payload must be an object", "m2");
	assert_int_equal(h.calls, 0);
}

static void unknown_type_is_1002_with_the_id(void **state)
{
	(void)state;
	send_text("{\"type\":\"nope\",\"id\":\"q1\"}");
	error_is(0, PAV_ERR_FORMAT, "unknown message type", "q1");
	send_text("{\"type\":\"nope\"}");
	error_is(1, PAV_ERR_FORMAT, "unknown message type", NULL);
}

/* ---- handlers ---- */

static void handler_gets_type_id_and_payload(void **state)
{
	(void)state;
	send_text("{\"type\":\"echo\",\"id\":\"e1\",\"payload\":{\"k\":[1,2]},"
		  "\"timestamp\":\"2027-01-15T08:00:00Z\"}");
	assert_int_equal(h.calls, 1);
	assert_string_equal(h.type, "echo");
	assert_true(h.has_id);
	assert_string_equal(h.id, "e1");
	assert_string_equal(h.payload, "{\"k\":[1,2]}");
}

static void success_with_an_id_is_acked_with_the_handlers_members(
	void **state)
{
	json_object *p, *v;

	(void)state;
	send_text("{\"type\":\"echo\",\"id\":\"e1\"}");
	assert_int_equal(fc.n, 1);
	p = ack_is(0, "e1", "echo");
	assert_true(json_object_object_get_ex(p, "x", &v));
	assert_int_equal(json_object_get_int(v), 1);
	assert_int_equal(json_object_object_length(p), 2);
	json_object_put(p);
}

static void success_without_an_id_is_silent(void **state)
{
	(void)state;
	send_text("{\"type\":\"echo\"}");
	assert_int_equal(h.calls, 1);
	assert_false(h.has_id);
	assert_int_equal(fc.n, 0);
}

static void error_code_is_answered_with_the_handlers_message(void **state)
{
	(void)state;
	send_text("{\"type\":\"refuse\",\"id\":\"x1\"}");
	error_is(0, PAV_ERR_PERMISSION, "not yours", "x1");
	/* errors go out without an id too */
	send_text("{\"type\":\"refuse\"}");
	error_is(1, PAV_ERR_PERMISSION, "not yours", NULL);
}

static void error_code_without_a_message_gets_the_default_text(void **state)
{
	(void)state;
	send_text("{\"type\":\"refuse_quietly\",\"id\":\"x1\"}");
	error_is(0, PAV_ERR_FORMAT, "invalid message format", "x1");
}

static void negative_errno_from_a_handler_is_answered_2000(void **state)
{
	(void)state;
	send_text("{\"type\":\"errno\",\"id\":\"x1\"}");
	assert_int_equal(fc.n, 1);
	error_is(0, PAV_ERR_INTERNAL, "internal server error", "x1");
}

static void return_value_outside_the_protocol_is_answered_2000(void **state)
{
	(void)state;
	send_text("{\"type\":\"odd\",\"id\":\"x1\"}");
	error_is(0, PAV_ERR_INTERNAL, NULL, "x1");
	assert_false(pav_dispatch_valid_return(1999));
	assert_false(pav_dispatch_valid_return(-1));
	assert_false(pav_dispatch_valid_return(1));
	assert_true(pav_dispatch_valid_return(0));
	assert_true(pav_dispatch_valid_return(PAV_PENDING));
	assert_true(pav_dispatch_valid_return(PAV_ERR_AUTH));
	assert_true(pav_dispatch_valid_return(PAV_ERR_RATE));
	assert_true(pav_dispatch_valid_return(PAV_ERR_INTERNAL));
}

static void pending_handler_is_answered_by_its_reply(void **state)
{
	json_object *ack = json_object_new_object(), *p, *v;

	(void)state;
	send_text("{\"type\":\"later\",\"id\":\"l1\"}");
	assert_int_equal(fc.n, 0);
	json_object_object_add(ack, "done", json_object_new_boolean(1));
	pav_session_reply(h.reply, 0, NULL, ack);
	assert_int_equal(fc.n, 1);
	p = ack_is(0, "l1", "later");
	assert_true(json_object_object_get_ex(p, "done", &v));
	json_object_put(p);
}

static void pending_handler_may_reply_with_an_error(void **state)
{
	(void)state;
	send_text("{\"type\":\"later\",\"id\":\"l1\"}");
	pav_session_reply(h.reply, PAV_ERR_SUBSCRIPTION, "no such channel",
			  NULL);
	error_is(0, PAV_ERR_SUBSCRIPTION, "no such channel", "l1");
}

static void pending_reply_without_an_id_is_silent(void **state)
{
	(void)state;
	send_text("{\"type\":\"later\"}");
	pav_session_reply(h.reply, 0, NULL, json_object_new_object());
	assert_int_equal(fc.n, 0);
}

static void reply_after_the_connection_closed_sends_nothing(void **state)
{
	(void)state;
	send_text("{\"type\":\"later\",\"id\":\"l1\"}");
	fx_close(s);
	s = NULL;
	pav_session_reply(h.reply, 0, NULL, json_object_new_object());
	assert_int_equal(fc.n, 0);
}

/* ---- rate limit ---- */

static void burst_passes_then_1005_at_most_once_a_second(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) /* the burst */
		send_text("{\"type\":\"echo\"}");
	assert_int_equal(h.calls, 3);
	send_text("{\"type\":\"echo\",\"id\":\"r1\"}");
	send_text("{\"type\":\"echo\",\"id\":\"r2\"}");
	assert_int_equal(h.calls, 3);
	assert_int_equal(fc.n, 1);
	/* the 1005 answers the message that drew it; r2 gets none */
	error_is(0, PAV_ERR_RATE, "rate limit exceeded", "r1");
	fake_clock_advance(999);
	send_text("{\"type\":\"echo\"}"); /* 999 milli-tokens: still none */
	assert_int_equal(h.calls, 3);
	assert_int_equal(fc.n, 1);
	assert_int_equal(fc.c.close_code, 0);
}

static void bucket_refills_at_messages_per_second(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		send_text("{\"type\":\"echo\"}");
	assert_int_equal(h.calls, 3);
	fake_clock_advance(1000);
	send_text("{\"type\":\"echo\"}"); /* one token back */
	assert_int_equal(h.calls, 4);
	send_text("{\"type\":\"echo\"}");
	assert_int_equal(h.calls, 4);
	/* a second since the last 1005: the next one is told again */
	assert_int_equal(fake_count_type(&fc, "error"), 2);
}

static void refill_stops_at_the_burst(void **state)
{
	(void)state;
	fake_clock_advance(3600 * 1000);
	for (int i = 0; i < 4; i++)
		send_text("{\"type\":\"echo\"}");
	assert_int_equal(h.calls, 3);
}

/* An NTP step or `date -s` an hour back: the bucket runs on the monotonic
 * clock, so it neither empties for the hour nor counts abuse. */
static void wall_clock_stepping_back_changes_no_rate(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		send_text("{\"type\":\"echo\"}");
	fake_clock_step_wall(-3600 * 1000);
	fake_clock_advance(1000);
	send_text("{\"type\":\"echo\"}"); /* the token of that second */
	assert_int_equal(h.calls, 4);
	for (int i = 0; i < 10; i++) {
		fake_clock_advance(1000);
		send_text("{\"type\":\"echo\"}");
	}
	assert_int_equal(h.calls, 14);
	assert_int_equal(fake_count_type(&fc, "error"), 0);
	assert_int_equal(fc.c.close_code, 0);
}

static void rate_limit_abuse_closes_with_4029(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		send_text("{\"type\":\"echo\"}");
	for (int i = 0; i < 4; i++) /* 4 excess: not yet */
		send_text("{\"type\":\"echo\"}");
	assert_int_equal(fc.c.close_code, 0);
	send_text("{\"type\":\"echo\"}"); /* the 5th within 10 s */
	assert_int_equal(fc.c.close_code, 4029);
	assert_int_equal(h.calls, 3);
}

static void abuse_count_starts_again_after_its_window(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		send_text("{\"type\":\"echo\"}");
	for (int i = 0; i < 4; i++)
		send_text("{\"type\":\"echo\"}");
	fake_clock_advance(10100); /* the window: 10 s in 100 ms slices */
	/* ten tokens came back but the burst caps them at 3 */
	for (int i = 0; i < 3; i++)
		send_text("{\"type\":\"echo\"}");
	for (int i = 0; i < 4; i++)
		send_text("{\"type\":\"echo\"}");
	assert_int_equal(fc.c.close_code, 0);
	assert_int_equal(h.calls, 6);
}

/* The excess of the last 10 s counts, wherever a window would have begun:
 * 1 excess, 9.5 s later 3, 0.6 s later 2: 5 within 10 s (a window begun at
 * the first excess would have started again at 10 s and counted 2). */
static void abuse_is_counted_over_a_window_that_slides(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) /* 3 tokens, 1 excess */
		send_text("{\"type\":\"echo\"}");
	fake_clock_advance(9500);
	for (int i = 0; i < 6; i++) /* 3 tokens again, 3 excess */
		send_text("{\"type\":\"echo\"}");
	fake_clock_advance(600); /* the first excess leaves the window */
	send_text("{\"type\":\"echo\"}");
	assert_int_equal(fc.c.close_code, 0);
	send_text("{\"type\":\"echo\"}");
	assert_int_equal(fc.c.close_code, 4029);
	assert_int_equal(h.calls, 6);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(heartbeat_ack_is_answered_with_nothing),
		T(auth_with_a_fresh_token_of_the_same_user_is_acked),
		T(auth_acks_the_renewal_before_the_revocations),
		T(auth_without_an_id_still_revokes),
		T(refused_auth_revokes_nothing),
		T(auth_with_a_bad_token_is_1001_and_the_connection_stays),
		T(auth_without_a_token_string_is_1002),
		T(binary_frame_is_1002),
		T(malformed_envelope_is_1002_with_the_id_when_valid),
		T(unknown_type_is_1002_with_the_id),
		T(handler_gets_type_id_and_payload),
		T(success_with_an_id_is_acked_with_the_handlers_members),
		T(success_without_an_id_is_silent),
		T(error_code_is_answered_with_the_handlers_message),
		T(error_code_without_a_message_gets_the_default_text),
		T(negative_errno_from_a_handler_is_answered_2000),
		T(return_value_outside_the_protocol_is_answered_2000),
		T(pending_handler_is_answered_by_its_reply),
		T(pending_handler_may_reply_with_an_error),
		T(pending_reply_without_an_id_is_silent),
		T(reply_after_the_connection_closed_sends_nothing),
		T(burst_passes_then_1005_at_most_once_a_second),
		T(bucket_refills_at_messages_per_second),
		T(refill_stops_at_the_burst),
		T(wall_clock_stepping_back_changes_no_rate),
		T(rate_limit_abuse_closes_with_4029),
		T(abuse_count_starts_again_after_its_window),
		T(abuse_is_counted_over_a_window_that_slides),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
