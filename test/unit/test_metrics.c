/*
 * test_metrics.c — /metrics labels: client-chosen message types are counted
 * by name only when registered (or the gateway's own), label values are
 * escaped, and no value can start a line of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int reset(void **state)
{
	(void)state;
	pav_metrics_reset();
	return 0;
}

static char *render(void)
{
	size_t len = 0;
	char *t = pav_metrics_render(&len);

	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	return t;
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, line, n) && (p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

/* Every line is a comment or `name{labels} value` / `name value`. */
static void assert_exposition_lines(const char *text)
{
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');

		assert_non_null(e);
		if (*p != '#' && strncmp(p, "pavilion_", 9))
			fail_msg("line not a pavilion sample: %.*s", (int)(e - p), p);
		p = e + 1;
	}
}

static void registered_types_are_counted_by_name(void **state)
{
	char *t;

	(void)state;
	pav_metrics_known_type("subscribe");
	pav_metrics_known_type("subscribe"); /* once is enough */
	pav_metrics_in("subscribe");
	pav_metrics_in("subscribe");
	pav_metrics_in("heartbeat_ack");
	pav_metrics_in("auth");
	pav_metrics_in("invalid");
	t = render();
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"subscribe\"} 2"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"heartbeat_ack\"} 1"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"auth\"} 1"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"invalid\"} 1"));
	free(t);
}

static void unregistered_client_types_count_as_other(void **state)
{
	char type[32], *t;

	(void)state;
	pav_metrics_known_type("echo");
	for (int i = 0; i < 100; i++) {
		snprintf(type, sizeof(type), "junk%d", i);
		pav_metrics_in(type);
	}
	pav_metrics_in("echo");
	t = render();
	assert_null(strstr(t, "junk"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"other\"} 100"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"echo\"} 1"));
	free(t);
}

static void injection_type_adds_no_line(void **state)
{
	const char *evil = "x\"} 1\nfake_admin_up 1\n#";
	char *t;

	(void)state;
	pav_metrics_in(evil);
	pav_metrics_known_type(evil); /* even registered, it stays one label */
	pav_metrics_in(evil);
	pav_metrics_out(evil, 1);
	t = render();
	assert_null(strstr(t, "\nfake_admin_up"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"x\\\"} 1\\nfake_admin_up 1\\n#\"} 1"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"other\"} 1"));
	assert_exposition_lines(t);
	free(t);
}

static void label_values_are_escaped(void **state)
{
	char *t;

	(void)state;
	pav_metrics_out("a\\b\"c\nd", 2);
	t = render();
	assert_true(has_line(t, "pavilion_messages_out_total{type=\"a\\\\b\\\"c\\nd\"} 2"));
	assert_exposition_lines(t);
	free(t);
}

/* A type named "other" shares the overflow line instead of a second one. */
static void other_is_one_line(void **state)
{
	char type[32], *t, *p;
	int n = 0;

	(void)state;
	pav_metrics_out("other", 1);
	for (int i = 0; i < 60; i++) {
		snprintf(type, sizeof(type), "pub%d", i);
		pav_metrics_out(type, 1);
	}
	t = render();
	for (p = t; (p = strstr(p, "pavilion_messages_out_total{type=\"other\"}")); p++)
		n++;
	assert_int_equal(n, 1);
	assert_true(has_line(t, "pavilion_messages_out_total{type=\"other\"} 13"));
	free(t);
}

/* Backend types fill only the outgoing table: a client type the gateway
 * handles keeps its name however many types were published before it. */
static void published_types_leave_client_types_their_names(void **state)
{
	char type[32], *t;

	(void)state;
	pav_metrics_known_type("subscribe");
	for (int i = 0; i < 60; i++) {
		snprintf(type, sizeof(type), "pub%d", i);
		pav_metrics_out(type, 1);
	}
	pav_metrics_in("subscribe");
	pav_metrics_in("heartbeat_ack");
	t = render();
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"subscribe\"} 1"));
	assert_true(has_line(t, "pavilion_messages_in_total{type=\"heartbeat_ack\"} 1"));
	assert_null(strstr(t, "pavilion_messages_in_total{type=\"other\"}"));
	assert_null(strstr(t, "pavilion_messages_in_total{type=\"pub"));
	free(t);
}

/* A publication that reached nobody sends nothing and takes no label. */
static void unsent_types_take_no_label(void **state)
{
	char type[32], *t;

	(void)state;
	for (int i = 0; i < 60; i++) {
		snprintf(type, sizeof(type), "nobody%d", i);
		pav_metrics_out(type, 0);
	}
	pav_metrics_out("ack", 1);
	t = render();
	assert_null(strstr(t, "nobody"));
	assert_true(has_line(t, "pavilion_messages_out_total{type=\"ack\"} 1"));
	free(t);
}

static void fanouts_are_counted_by_mode(void **state)
{
	char *t;

	(void)state;
	pav_metrics_fanout_mode(1);
	pav_metrics_fanout_mode(0);
	pav_metrics_fanout_mode(0);
	t = render();
	assert_exposition_lines(t);
	assert_true(has_line(t, "# TYPE pavilion_fanouts_total counter"));
	assert_true(has_line(t, "pavilion_fanouts_total{mode=\"direct\"} 1"));
	assert_true(has_line(t, "pavilion_fanouts_total{mode=\"queued\"} 2"));
	free(t);
	pav_metrics_reset();
	t = render();
	assert_true(has_line(t, "pavilion_fanouts_total{mode=\"direct\"} 0"));
	free(t);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, reset)
	const struct CMUnitTest tests[] = {
		T(registered_types_are_counted_by_name),
		T(unregistered_client_types_count_as_other),
		T(injection_type_adds_no_line),
		T(label_values_are_escaped),
		T(other_is_one_line),
		T(published_types_leave_client_types_their_names),
		T(unsent_types_take_no_label),
		T(fanouts_are_counted_by_mode),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
