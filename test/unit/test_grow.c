/* test_grow.c — the growing buffer (src/grow.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "grow.h"

static void room_doubles_from_first_and_stops_at_the_limit(void **state)
{
	char *buf = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(pav_grow(&buf, &cap, 10, 64, 1000), 0);
	assert_non_null(buf);
	assert_int_equal(cap, 64);
	assert_int_equal(pav_grow(&buf, &cap, 64, 64, 1000), 0);
	assert_int_equal(cap, 64); /* fits: nothing moves */
	assert_int_equal(pav_grow(&buf, &cap, 65, 64, 1000), 0);
	assert_int_equal(cap, 128);
	assert_int_equal(pav_grow(&buf, &cap, 300, 64, 1000), 0);
	assert_int_equal(cap, 512);
	assert_int_equal(pav_grow(&buf, &cap, 513, 64, 1000), 0);
	assert_int_equal(cap, 1000); /* not 1024 */
	assert_int_equal(pav_grow(&buf, &cap, 1000, 64, 1000), 0);
	assert_int_equal(cap, 1000);
	memset(buf, 'x', cap); /* the whole room is there (ASan) */
	free(buf);
}

static void contents_survive_the_moves(void **state)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;

	(void)state;
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(pav_grow(&buf, &cap, len + 3, 16, 1 << 20), 0);
		memcpy(buf + len, "abc", 3);
		len += 3;
	}
	assert_int_equal(cap, 32768);
	for (size_t i = 0; i < len; i += 3)
		assert_memory_equal(buf + i, "abc", 3);
	free(buf);
}

static void a_first_size_of_zero_still_grows(void **state)
{
	char *buf = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(pav_grow(&buf, &cap, 5, 0, 100), 0);
	assert_int_equal(cap, 8);
	free(buf);
}

static void a_limit_near_the_top_of_size_t_does_not_overflow(void **state)
{
	char *buf = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(pav_grow(&buf, &cap, 100, 64, SIZE_MAX), 0);
	assert_int_equal(cap, 128);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(room_doubles_from_first_and_stops_at_the_limit),
		cmocka_unit_test(contents_survive_the_moves),
		cmocka_unit_test(a_first_size_of_zero_still_grows),
		cmocka_unit_test(a_limit_near_the_top_of_size_t_does_not_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
