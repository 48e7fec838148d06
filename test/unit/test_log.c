/* test_log.c — the budget of log lines a client can cause (src/log.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(budget_holds_lines_past_per_s),
		cmocka_unit_test(budget_counts_held_lines_into_the_next),
		cmocka_unit_test(budget_second_starts_at_a_line_after_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
