/* test_wheel.c — the one-second timing wheel (src/wheel.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wheel.h"

#define N 500

static struct pav_wheel w;
static struct pav_wheel_node nodes[N];
static int64_t fired_at[N];
static int64_t clock_s;

/* A time's second is the one whose tick (PAV_WHEEL_TICK_PAST_MS past it)
 * is the first at or after that time. */
static void a_time_goes_to_the_first_tick_at_or_after_it(void **state)
{
	const int64_t k = 1795787313, ms = k * 1000;

	(void)state;
	assert_int_equal(PAV_WHEEL_TICK_PAST_MS, 5);
	assert_int_equal(pav_wheel_second_of(ms), k);
	assert_int_equal(pav_wheel_second_of(ms + 1), k);
	assert_int_equal(pav_wheel_second_of(ms + 5), k);
	assert_int_equal(pav_wheel_second_of(ms + 6), k + 1);
	assert_int_equal(pav_wheel_second_of(ms + 999), k + 1);
	assert_int_equal(pav_wheel_second_of(ms - 995), k - 1);
	assert_int_equal(pav_wheel_second_of(ms - 994), k);
	for (int64_t t = ms - 2000; t < ms + 2000; t++) {
		int64_t s = pav_wheel_second_of(t);

		assert_true(s * 1000 + PAV_WHEEL_TICK_PAST_MS >= t);
		assert_true((s - 1) * 1000 + PAV_WHEEL_TICK_PAST_MS < t);
	}
}

static void fire(struct pav_wheel_node *n, void *arg)
{
	(void)arg;
	assert_null(n->next); /* already off the wheel */
	fired_at[n - nodes] = clock_s;
}

static int setup(void **state)
{
	(void)state;
	memset(nodes, 0, sizeof(nodes));
	for (int i = 0; i < N; i++)
		fired_at[i] = -1;
	clock_s = 1000;
	pav_wheel_init(&w, clock_s);
	return 0;
}

static void run_until(int64_t t)
{
	while (clock_s < t)
		pav_wheel_advance(&w, ++clock_s, fire, NULL);
}

static void fires_at_its_second_not_before(void **state)
{
	(void)state;
	pav_wheel_add(&w, &nodes[0], 1005);
	run_until(1004);
	assert_int_equal(fired_at[0], -1);
	run_until(1005);
	assert_int_equal(fired_at[0], 1005);
}

static void past_deadline_fires_on_the_next_tick(void **state)
{
	(void)state;
	pav_wheel_add(&w, &nodes[0], 10);
	run_until(1001);
	assert_int_equal(fired_at[0], 1001);
}

static void deadlines_past_one_lap_wait_for_their_lap(void **state)
{
	(void)state;
	pav_wheel_add(&w, &nodes[0], 1000 + PAV_WHEEL_SLOTS + 3);
	pav_wheel_add(&w, &nodes[1], 1000 + 3 * PAV_WHEEL_SLOTS);
	run_until(1000 + PAV_WHEEL_SLOTS + 2);
	assert_int_equal(fired_at[0], -1);
	run_until(1000 + 3 * PAV_WHEEL_SLOTS);
	assert_int_equal(fired_at[0], 1000 + PAV_WHEEL_SLOTS + 3);
	assert_int_equal(fired_at[1], 1000 + 3 * PAV_WHEEL_SLOTS);
}

static void moving_and_removing(void **state)
{
	(void)state;
	pav_wheel_add(&w, &nodes[0], 1003);
	pav_wheel_add(&w, &nodes[0], 1009); /* moved */
	pav_wheel_add(&w, &nodes[1], 1004);
	pav_wheel_del(&nodes[1]);
	pav_wheel_del(&nodes[1]); /* twice is harmless */
	pav_wheel_del(&nodes[2]); /* never added: harmless */
	run_until(1020);
	assert_int_equal(fired_at[0], 1009);
	assert_int_equal(fired_at[1], -1);
}

static void a_long_stall_runs_everything_due_once(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++)
		pav_wheel_add(&w, &nodes[i], 1001 + i);
	clock_s = 1000 + 5 * PAV_WHEEL_SLOTS; /* one jump */
	assert_int_equal(pav_wheel_advance(&w, clock_s, fire, NULL), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(fired_at[i], clock_s);
}

static void rearm(struct pav_wheel_node *n, void *arg)
{
	int *count = arg;

	(*count)++;
	pav_wheel_add(&w, n, clock_s + 30);
}

static void a_callback_may_add_again(void **state)
{
	int count = 0;

	(void)state;
	pav_wheel_add(&w, &nodes[0], 1001);
	for (int i = 0; i < 100; i++)
		pav_wheel_advance(&w, ++clock_s, rearm, &count);
	assert_int_equal(count, 4); /* 1001, 1031, 1061, 1091 */
}

static void random_schedule_matches_a_model(void **state)
{
	int64_t due[N];

	(void)state;
	srand(3);
	for (int i = 0; i < N; i++) {
		due[i] = 1001 + rand() % (3 * PAV_WHEEL_SLOTS);
		pav_wheel_add(&w, &nodes[i], due[i]);
	}
	for (int step = 0; step < 4 * PAV_WHEEL_SLOTS; step++) {
		int i = rand() % N;

		if (fired_at[i] < 0 && rand() % 4 == 0) { /* move a pending one */
			due[i] = clock_s + 1 + rand() % PAV_WHEEL_SLOTS;
			pav_wheel_add(&w, &nodes[i], due[i]);
		}
		pav_wheel_advance(&w, ++clock_s, fire, NULL);
	}
	run_until(clock_s + PAV_WHEEL_SLOTS + 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(fired_at[i], due[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_time_goes_to_the_first_tick_at_or_after_it),
		cmocka_unit_test_setup(fires_at_its_second_not_before, setup),
		cmocka_unit_test_setup(past_deadline_fires_on_the_next_tick, setup),
		cmocka_unit_test_setup(deadlines_past_one_lap_wait_for_their_lap, setup),
		cmocka_unit_test_setup(moving_and_removing, setup),
		cmocka_unit_test_setup(a_long_stall_runs_everything_due_once, setup),
		cmocka_unit_test_setup(a_callback_may_add_again, setup),
		cmocka_unit_test_setup(random_schedule_matches_a_model, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
