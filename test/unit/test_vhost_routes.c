/*
 * test_vhost_routes.c — what plugins register on a vhost (src/vhost.c):
 * internal-API routes ("{id}" segments, bad ids, methods, the same plugin
 * on several vhosts, conflicts between plugins), message handlers and
 * payload checks, a namespace's history by channel kind, and the plugins'
 * timers at teardown.
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

#include "core.h"
#include "fake_api.h"
#include "map.h"
#include "vhost.h"

static const struct pav_plugin alpha = {.name = "alpha"};
static const struct pav_plugin beta = {.name = "beta"};

static struct pav_ns ns;
static struct pav_vhost vh;
static struct pav_instance a1, a2, b1;

static void route_fn(void *inst, pav_api_call *call,
		     const struct pav_api_request *req)
{
	(void)inst;
	(void)call;
	(void)req;
}

static void route_fn2(void *inst, pav_api_call *call,
		      const struct pav_api_request *req)
{
	(void)inst;
	(void)call;
	(void)req;
}

static int handler_fn(void *inst, pav_conn *c, struct pav_request *req)
{
	(void)inst;
	(void)c;
	(void)req;
	return 0;
}

static int check_fn(void *inst, const char *channel, json_object *payload,
		    const char **why)
{
	(void)inst;
	(void)channel;
	(void)payload;
	(void)why;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	memset(&ns, 0, sizeof(ns));
	memset(&vh, 0, sizeof(vh));
	ns.name = "default";
	ns.checks = pav_map_new();
	vh.ns = &ns;
	vh.handlers = pav_map_new();
	a1 = (struct pav_instance){&alpha, "a1", &vh};
	a2 = (struct pav_instance){&alpha, "a2", &vh};
	b1 = (struct pav_instance){&beta, "b1", &vh};
	return ns.checks && vh.handlers ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < ns.nroutes; i++)
		free(ns.routes[i].pattern);
	free(ns.routes);
	pav_map_free(ns.checks, free);
	pav_map_free(vh.handlers, free);
	return 0;
}

/* Registers as instance `in` would from its vhost_create(). */
static int route_as(struct pav_instance *in, const char *method,
		    const char *pattern, pav_route_fn fn)
{
	int rc;

	vh.creating = in;
	vh.conflict[0] = '\0';
	rc = pav_vhost_register_route(&vh, method, pattern, fn);
	vh.creating = NULL;
	return rc;
}

/* The route for method + path, with its arguments. */
static char buf[512];
static const char *args[PAV_ROUTE_MAX_SEGS];
static size_t nargs;
static int bad;

static const struct pav_route *find(const char *method, const char *path)
{
	nargs = 99;
	bad = -1;
	return pav_ns_route(&ns, method, path, buf, sizeof(buf), args, &nargs,
			    &bad);
}

#define INBOX "/v1/users/{id}/notifications"

/* ---- routes ---- */

static void route_with_an_id_segment_matches_and_captures_it(void **state)
{
	const struct pav_route *r;

	(void)state;
	assert_int_equal(route_as(&a1, "GET", INBOX, route_fn), 0);
	r = find("GET", "/v1/users/u-1_X/notifications");
	assert_non_null(r);
	assert_ptr_equal(r->fn, route_fn);
	assert_ptr_equal(r->inst, &a1);
	assert_int_equal(bad, 0);
	assert_int_equal(nargs, 1);
	assert_string_equal(args[0], "u-1_X");
}

static void every_id_segment_is_captured_in_order(void **state)
{
	(void)state;
	route_as(&a1, "DELETE", "/v1/rooms/{id}/members/{id}", route_fn);
	assert_non_null(find("DELETE", "/v1/rooms/r1/members/u2"));
	assert_int_equal(nargs, 2);
	assert_string_equal(args[0], "r1");
	assert_string_equal(args[1], "u2");
}

/* "/v1/users/" + an id of n 'a's + "/notifications" */
static const char *long_id_path(size_t n)
{
	static char path[256];

	snprintf(path, sizeof(path), "/v1/users/%.*s/notifications", (int)n,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	return path;
}

static void segment_that_is_not_an_id_is_flagged(void **state)
{
	(void)state;
	route_as(&a1, "GET", INBOX, route_fn);
	assert_non_null(find("GET", "/v1/users/bad.id/notifications"));
	assert_int_equal(bad, 1);
	assert_non_null(find("GET", "/v1/users/%41/notifications"));
	assert_int_equal(bad, 1);
	assert_non_null(find("GET", "/v1/users//notifications"));
	assert_int_equal(bad, 1);
	assert_non_null(find("GET", long_id_path(65)));
	assert_int_equal(bad, 1);
	assert_non_null(find("GET", long_id_path(64)));
	assert_int_equal(bad, 0);
	assert_int_equal(strlen(args[0]), 64);
	/* a segment longer than the caller's buffer still finds the route
	 * (a bad id, 400), not "no such path" (404) */
	nargs = 99;
	bad = -1;
	assert_non_null(pav_ns_route(&ns, "GET", long_id_path(65), buf, 16,
				     args, &nargs, &bad));
	assert_int_equal(bad, 1);
	assert_int_equal(nargs, 1);
}

static void literal_segments_must_match_exactly(void **state)
{
	static const char *const paths[] = {
		"/v1/users/u1/notification",
		"/v1/users/u1/notifications/",
		"/v1/users/u1/notifications/x",
		"/v1/users/u1",
		"/v1/Users/u1/notifications",
		"/v2/users/u1/notifications",
		"v1/users/u1/notifications",
		"",
	};

	(void)state;
	route_as(&a1, "GET", INBOX, route_fn);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (find("GET", paths[i]))
			fail_msg("%s matched %s", paths[i], INBOX);
}

static void method_mismatch_finds_no_route_but_the_path_is_known(
	void **state)
{
	(void)state;
	route_as(&a1, "GET", INBOX, route_fn);
	assert_null(find("POST", "/v1/users/u1/notifications"));
	assert_null(find("get", "/v1/users/u1/notifications"));
	assert_true(pav_ns_path_known(&ns, "/v1/users/u1/notifications"));
	assert_false(pav_ns_path_known(&ns, "/v1/users/u1/presence"));
}

static void same_plugin_on_another_vhost_is_ignored(void **state)
{
	(void)state;
	assert_int_equal(route_as(&a1, "GET", INBOX, route_fn), 0);
	assert_int_equal(route_as(&a2, "GET", INBOX, route_fn2), 0);
	assert_int_equal(ns.nroutes, 1);
	/* the first instance answers */
	assert_ptr_equal(find("GET", "/v1/users/u1/notifications")->inst, &a1);
	assert_string_equal(vh.conflict, "");
}

static void another_plugins_route_is_refused_naming_both(void **state)
{
	(void)state;
	route_as(&a1, "GET", INBOX, route_fn);
	assert_int_equal(route_as(&b1, "GET", INBOX, route_fn2), -EEXIST);
	assert_string_equal(vh.conflict, "GET " INBOX ": already routed to "
					 "plugin alpha");
	/* "{...}" segments are the same whatever their name */
	assert_int_equal(route_as(&b1, "GET", "/v1/users/{user}/notifications",
				  route_fn2),
			 -EEXIST);
	assert_int_equal(ns.nroutes, 1);
}

static void same_path_with_another_method_is_another_route(void **state)
{
	(void)state;
	route_as(&a1, "GET", INBOX, route_fn);
	assert_int_equal(route_as(&b1, "POST", INBOX, route_fn2), 0);
	assert_ptr_equal(find("POST", "/v1/users/u1/notifications")->inst,
			 &b1);
	assert_ptr_equal(find("GET", "/v1/users/u1/notifications")->inst,
			 &a1);
}

static void literal_and_id_segments_are_different_routes(void **state)
{
	(void)state;
	assert_int_equal(route_as(&a1, "GET", "/v1/users/me", route_fn), 0);
	assert_int_equal(route_as(&b1, "GET", "/v1/users/{id}", route_fn2),
			 0);
	assert_ptr_equal(find("GET", "/v1/users/me")->inst, &a1);
	assert_ptr_equal(find("GET", "/v1/users/u2")->inst, &b1);
	assert_string_equal(args[0], "u2");
}

static void malformed_registrations_are_einval(void **state)
{
	(void)state;
	assert_int_equal(route_as(&a1, "PUT", INBOX, route_fn), -EINVAL);
	assert_int_equal(route_as(&a1, "get", INBOX, route_fn), -EINVAL);
	assert_int_equal(route_as(&a1, NULL, INBOX, route_fn), -EINVAL);
	assert_int_equal(route_as(&a1, "GET", "/v2/x", route_fn), -EINVAL);
	assert_int_equal(route_as(&a1, "GET", "v1/x", route_fn), -EINVAL);
	assert_int_equal(route_as(&a1, "GET", NULL, route_fn), -EINVAL);
	assert_int_equal(route_as(&a1, "GET", INBOX, NULL), -EINVAL);
	assert_int_equal(route_as(&a1, "GET", "/v1/a/b/c/d/e/f/g/h", route_fn),
			 -EINVAL); /* 9 segments */
	assert_int_equal(route_as(&a1, "GET", "/v1/a/b/c/d/e/f/g", route_fn),
			 0);
	/* outside vhost_create() */
	assert_int_equal(pav_vhost_register_route(&vh, "GET", "/v1/z",
						  route_fn),
			 -EINVAL);
	assert_int_equal(ns.nroutes, 1);
}

/* ---- handlers and payload checks ---- */

static int handler_as(struct pav_instance *in, const char *type)
{
	int rc;

	vh.creating = in;
	vh.conflict[0] = '\0';
	rc = pav_vhost_register_handler(&vh, type, handler_fn);
	vh.creating = NULL;
	return rc;
}

static void gateway_types_cannot_be_handled_by_a_plugin(void **state)
{
	(void)state;
	assert_int_equal(handler_as(&a1, "auth"), -EEXIST);
	assert_string_equal(vh.conflict, "message type auth: already handled "
					 "by the gateway itself");
	assert_int_equal(handler_as(&a1, "heartbeat_ack"), -EEXIST);
	assert_int_equal(pav_map_count(vh.handlers), 0);
}

static void message_type_of_another_plugin_is_refused(void **state)
{
	struct pav_handler *h;

	(void)state;
	assert_int_equal(handler_as(&a1, "presence"), 0);
	assert_int_equal(handler_as(&b1, "presence"), -EEXIST);
	assert_string_equal(vh.conflict, "message type presence: already "
					 "handled by plugin alpha");
	h = pav_map_get(vh.handlers, "presence");
	assert_ptr_equal(h->inst, &a1);
	assert_ptr_equal(h->fn, handler_fn);
}

static void handler_needs_a_type_and_a_creating_instance(void **state)
{
	(void)state;
	assert_int_equal(handler_as(&a1, ""), -EINVAL);
	assert_int_equal(handler_as(&a1, NULL), -EINVAL);
	assert_int_equal(pav_vhost_register_handler(&vh, "x", handler_fn),
			 -EINVAL);
}

static int check_as(struct pav_instance *in, const char *type)
{
	int rc;

	vh.creating = in;
	vh.conflict[0] = '\0';
	rc = pav_vhost_register_check(&vh, type, check_fn);
	vh.creating = NULL;
	return rc;
}

static void payload_check_of_the_same_plugin_again_is_ignored(void **state)
{
	struct pav_check *c;

	(void)state;
	assert_int_equal(check_as(&a1, "notification"), 0);
	assert_int_equal(check_as(&a2, "notification"), 0);
	c = pav_map_get(ns.checks, "notification");
	assert_ptr_equal(c->inst, &a1);
	assert_int_equal(pav_map_count(ns.checks), 1);
}

static void payload_check_of_another_plugin_is_refused(void **state)
{
	(void)state;
	check_as(&a1, "notification");
	assert_int_equal(check_as(&b1, "notification"), -EEXIST);
	assert_string_equal(vh.conflict, "payload type notification: already "
					 "checked by plugin alpha");
	assert_int_equal(check_as(&b1, ""), -EINVAL);
}

/* ---- history by channel kind ---- */

static void history_is_the_namespaces_for_the_channels_kind(void **state)
{
	(void)state;
	ns.history[PAV_HISTORY_ZONE] = (struct pav_history_cfg){100, 300};
	ns.history[PAV_HISTORY_CHAT] = (struct pav_history_cfg){0, 300};
	assert_ptr_equal(pav_ns_history(&ns, "zone:z1"),
			 &ns.history[PAV_HISTORY_ZONE]);
	assert_null(pav_ns_history(&ns, "chat:c1"));    /* size 0: none */
	assert_null(pav_ns_history(&ns, "channel:c1")); /* not set */
	assert_null(pav_ns_history(&ns, "user:u1"));
	assert_null(pav_ns_history(NULL, "zone:z1"));
}

/* ---- teardown ---- */

static struct pav_timer *own_timer;
static int timer_fired;

static void on_timer(void *arg)
{
	(void)arg;
	timer_fired++;
}

/* Cancels its own timer in vhost_destroy, as plugin.h asks. */
static void destroy_tidily(void *inst)
{
	(void)inst;
	pav_timer_cancel(own_timer);
	own_timer = NULL;
}

static const struct pav_plugin tidy = {
	.name = "tidy",
	.vhost_destroy = destroy_tidily,
};

static void teardown_lets_plugins_cancel_their_timers_first(
	void **state)
{
	struct pav_core core = {0};
	struct pav_vhost *v;
	/* any loop: fake_api.c records the scheduling */
	struct lws_context *ctx = (struct lws_context *)&core;

	(void)state;
	fake_nsuls = 0;
	fake_sul_cancels = 0;
	timer_fired = 0;
	core.vhosts = calloc(1, sizeof(*core.vhosts));
	core.nss = calloc(1, sizeof(*core.nss));
	assert_non_null(core.vhosts);
	assert_non_null(core.nss);
	core.nvhosts = core.nns = 1;
	v = &core.vhosts[0];
	v->insts = calloc(1, sizeof(*v->insts));
	assert_non_null(v->insts);
	v->insts[0] = (struct pav_instance){&tidy, NULL, v};
	v->ninsts = 1;
	own_timer = pav_timer_start(&v->timers, ctx, 1000, on_timer, NULL);
	assert_non_null(own_timer);
	/* one the plugin forgets: the gateway's to cancel */
	assert_non_null(pav_timer_start(&v->timers, ctx, 1000, on_timer, NULL));
	pav_vhosts_teardown(&core);
	assert_null(own_timer);
	assert_int_equal(fake_sul_cancels, 2); /* each once */
	assert_int_equal(timer_fired, 0);
	assert_null(core.vhosts);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(route_with_an_id_segment_matches_and_captures_it),
		T(every_id_segment_is_captured_in_order),
		T(segment_that_is_not_an_id_is_flagged),
		T(literal_segments_must_match_exactly),
		T(method_mismatch_finds_no_route_but_the_path_is_known),
		T(same_plugin_on_another_vhost_is_ignored),
		T(another_plugins_route_is_refused_naming_both),
		T(same_path_with_another_method_is_another_route),
		T(literal_and_id_segments_are_different_routes),
		T(malformed_registrations_are_einval),
		T(gateway_types_cannot_be_handled_by_a_plugin),
		T(message_type_of_another_plugin_is_refused),
		T(handler_needs_a_type_and_a_creating_instance),
		T(payload_check_of_the_same_plugin_again_is_ignored),
		T(payload_check_of_another_plugin_is_refused),
		T(history_is_the_namespaces_for_the_channels_kind),
		T(teardown_lets_plugins_cancel_their_timers_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
