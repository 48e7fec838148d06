/* test_log.c — the lines written (src/log.c) and the budget of those a
 * client can cause. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "log.h"

#define T0 INT64_C(5000000)

static void budget_holds_lines_past_per_s(void **state)
{
	struct pav_log_budget b = {.per_s = 2};
	int written = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		written += pav_log_budget_take(&b, T0 + i);
	assert_int_equal(written, 2);
	assert_int_equal(b.held, 98);
}

static void budget_counts_held_lines_into_the_next(void **state)
{
	struct pav_log_budget b = {.per_s = 1};

	(void)state;
	assert_true(pav_log_budget_take(&b, T0));
	assert_int_equal(pav_log_budget_held(&b), 0);
	for (int i = 1; i <= 7; i++)
		assert_false(pav_log_budget_take(&b, T0 + i * 100));
	assert_true(pav_log_budget_take(&b, T0 + 1000));
	assert_int_equal(pav_log_budget_held(&b), 7);
	assert_int_equal(pav_log_budget_held(&b), 0);
}

static void budget_second_starts_at_a_line_after_one(void **state)
{
	struct pav_log_budget b = {.per_s = 1};

	(void)state;
	assert_true(pav_log_budget_take(&b, T0));
	assert_false(pav_log_budget_take(&b, T0 + 999));
	assert_true(pav_log_budget_take(&b, T0 + 1500));
	assert_false(pav_log_budget_take(&b, T0 + 2499));
	assert_true(pav_log_budget_take(&b, T0 + 2500));
}

/* What one pav_log() call wrote to stderr, read back into buf. */
static size_t logged(char *buf, size_t cap, int json, const char *fmt,
		     const char *arg)
{
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(f);
	assert_true(saved >= 0);
	pav_log_setup(PAV_LOG_INFO, json);
	dup2(fileno(f), 2);
	pav_log(PAV_LOG_INFO, "t", fmt, arg);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	pav_log_setup(PAV_LOG_INFO, 0);
	return n;
}

static void line_folds_every_control_character(void **state)
{
	char buf[256];
	size_t n;

	(void)state;
	n = logged(buf, sizeof(buf), 0, "peer said %s",
		   "a\nb\r\x1b[31mc\td\x7f\x01" "e");
	assert_non_null(strstr(buf, " t: peer said a b  [31mc d  e\n"));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

static void line_keeps_utf8_and_marks_other_bytes(void **state)
{
	char buf[256];

	(void)state;
	logged(buf, sizeof(buf), 0, "%s",
	       "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xff\xc0\x80"
	       "\xed\xa0\x80\xe2\x82|");
	/* é € 😀 kept; 0xff, an overlong NUL, a surrogate, a cut € marked,
	 * each byte a ? */
	assert_non_null(strstr(buf, "t: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|"
				    "????????|\n"));
}

static void line_cut_at_the_buffer_loses_the_cut_character(void **state)
{
	char arg[1100], buf[1200];
	size_t n;

	(void)state;
	/* "x: " and 1019 bytes leave one of the buffer's 1023 for the euro
	 * sign's first byte */
	memset(arg, 'a', 1019);
	strcpy(arg + 1019, "\xe2\x82\xac tail");
	n = logged(buf, sizeof(buf), 0, "x: %s", arg);
	assert_true(n > 1024);
	assert_memory_equal(buf + n - 4, "aaa\n", 4);
	assert_null(strchr(buf, '\xe2'));
}

static void json_line_is_valid_json_after_a_cut(void **state)
{
	char arg[1100], buf[1400];
	json_object *o, *msg;

	(void)state;
	memset(arg, 'a', 1017);
	strcpy(arg + 1017, "\x1b\xe2\x82\xac");
	logged(buf, sizeof(buf), 1, "xy: %s", arg);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "msg", &msg));
	/* 4 + 1017 + the escape (a space now) + the euro sign's first byte
	 * fill the buffer's 1023 bytes: that byte is dropped */
	assert_int_equal(json_object_get_string_len(msg), 1022);
	assert_int_equal(json_object_get_string(msg)[1021], ' ');
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(budget_holds_lines_past_per_s),
		cmocka_unit_test(budget_counts_held_lines_into_the_next),
		cmocka_unit_test(budget_second_starts_at_a_line_after_one),
		cmocka_unit_test(line_folds_every_control_character),
		cmocka_unit_test(line_keeps_utf8_and_marks_other_bytes),
		cmocka_unit_test(line_cut_at_the_buffer_loses_the_cut_character),
		cmocka_unit_test(json_line_is_valid_json_after_a_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
