/* test_clock.c — RFC 3339 formatting and parsing (src/clock.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "clock.h"

/* 2026-11-25T12:00:00Z */
#define NOON_MS INT64_C(1795608000000)

static void format(int64_t ms, char *buf)
{
	pav_format_time(ms, buf, PAV_TIME_LEN);
}

static void format_is_utc_with_milliseconds(void **state)
{
	char buf[PAV_TIME_LEN];

	(void)state;
	format(NOON_MS + 123, buf);
	assert_string_equal(buf, "2026-11-25T12:00:00.123Z");
}

static void format_pads_every_field(void **state)
{
	char buf[PAV_TIME_LEN];

	(void)state;
	format(INT64_C(7), buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.007Z");
}

static void format_of_leap_day(void **state)
{
	char buf[PAV_TIME_LEN];

	(void)state;
	format(INT64_C(951868799999), buf);
	assert_string_equal(buf, "2000-02-29T23:59:59.999Z");
}

static void format_has_fixed_length(void **state)
{
	char buf[PAV_TIME_LEN];

	(void)state;
	format(pav_now_ms(), buf);
	assert_int_equal(strlen(buf), 24);
	assert_int_equal(buf[10], 'T');
	assert_int_equal(buf[19], '.');
	assert_int_equal(buf[23], 'Z');
}

static void format_truncates_to_small_buffer(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	pav_format_time(NOON_MS, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11");
}

static void parse_utc_z(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00Z", &ms), 0);
	assert_true(ms == NOON_MS);
}

static void parse_lowercase_t_and_z(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25t12:00:00z", &ms), 0);
	assert_true(ms == NOON_MS);
}

static void parse_milliseconds(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00.123Z", &ms), 0);
	assert_true(ms == NOON_MS + 123);
}

static void parse_short_fraction_scales(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00.5Z", &ms), 0);
	assert_true(ms == NOON_MS + 500);
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00.05Z", &ms), 0);
	assert_true(ms == NOON_MS + 50);
}

static void parse_long_fraction_truncates_to_ms(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00.123999Z", &ms),
			 0);
	assert_true(ms == NOON_MS + 123);
}

static void parse_positive_offset(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T14:30:00+02:30", &ms), 0);
	assert_true(ms == NOON_MS);
}

static void parse_negative_offset(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T07:00:00.250-05:00", &ms),
			 0);
	assert_true(ms == NOON_MS + 250);
}

static void parse_zero_offset_equals_z(void **state)
{
	int64_t a = -1, b = -2;

	(void)state;
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00+00:00", &a), 0);
	assert_int_equal(pav_parse_time("2026-11-25T12:00:00-00:00", &b), 0);
	assert_true(a == NOON_MS && b == NOON_MS);
}

static void parse_epoch(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pav_parse_time("1970-01-01T00:00:00Z", &ms), 0);
	assert_true(ms == 0);
}

static const char *const invalid[] = {
	"",
	"2026",
	"2026-11-25",
	"2026-11-25T12:00:00",         /* no offset */
	"2026-11-25T12:00Z",           /* no seconds */
	"2026-11-25X12:00:00Z",        /* bad separator */
	"2026/11/25T12:00:00Z",
	"2026-11-25T12-00-00Z",
	"20a6-11-25T12:00:00Z",        /* non-digit */
	"2026-1a-25T12:00:00Z",
	"2026-11-25T1 :00:00Z",
	"2026-00-25T12:00:00Z",        /* month 0 */
	"2026-13-25T12:00:00Z",        /* month 13 */
	"2026-11-00T12:00:00Z",        /* day 0 */
	"2026-11-32T12:00:00Z",        /* day 32 */
	"2026-11-25T24:00:00Z",        /* hour 24 */
	"2026-11-25T12:60:00Z",        /* minute 60 */
	"2026-11-25T12:00:61Z",        /* second 61 */
	"2026-11-25T12:00:00.Z",       /* empty fraction */
	"2026-11-25T12:00:00.12aZ",
	"2026-11-25T12:00:00+0200",    /* offset without colon */
	"2026-11-25T12:00:00+02",
	"2026-11-25T12:00:00+02:00:00",
	"2026-11-25T12:00:00+24:00",   /* offset hour 24 */
	"2026-11-25T12:00:00+02:60",   /* offset minute 60 */
	"2026-11-25T12:00:00+a2:00",
	"2026-11-25T12:00:00ZZ",       /* trailing bytes */
	"2026-11-25T12:00:00Z ",
	" 2026-11-25T12:00:00Z",       /* leading space */
	"2026-11-25T12:00:00UTC",
};

static void parse_rejects_invalid_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		int64_t ms = 42;
		int rc = pav_parse_time(invalid[i], &ms);

		if (rc != -EINVAL)
			fail_msg("accepted \"%s\"", invalid[i]);
		assert_true(ms == 42); /* untouched on error */
	}
}

static void round_trip_format_then_parse(void **state)
{
	static const int64_t samples[] = {
		0, 1, 999, 1000, NOON_MS, NOON_MS + 123,
		INT64_C(951868799999), INT64_C(4102444799999), /* 2099 */
	};
	char buf[PAV_TIME_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		int64_t back = -1;

		format(samples[i], buf);
		assert_int_equal(pav_parse_time(buf, &back), 0);
		assert_true(back == samples[i]);
	}
}

static void round_trip_of_now(void **state)
{
	char buf[PAV_TIME_LEN];
	int64_t now = pav_now_ms(), back = -1;

	(void)state;
	format(now, buf);
	assert_int_equal(pav_parse_time(buf, &back), 0);
	assert_true(back == now);
}

static void now_is_after_2020(void **state)
{
	(void)state;
	/* 2020-01-01T00:00:00Z: catches seconds/ms or epoch mix-ups. */
	assert_true(pav_now_ms() > INT64_C(1577836800000));
}

static void mono_does_not_go_backwards(void **state)
{
	int64_t a = pav_mono_ms(), b = pav_mono_ms();
	int64_t ua = pav_mono_us(), ub = pav_mono_us();

	assert_true(ub >= ua);
	/* one clock: microseconds are the milliseconds' thousandths */
	assert_true(ua / 1000 >= a && ua / 1000 <= pav_mono_ms());

	(void)state;
	assert_true(b >= a);
}

static void impossible_dates_are_rejected(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(pav_parse_time("2024-02-30T12:00:00Z", &ms), -EINVAL);
	assert_int_equal(pav_parse_time("2023-02-29T12:00:00Z", &ms), -EINVAL);
	assert_int_equal(pav_parse_time("2024-04-31T00:00:00Z", &ms), -EINVAL);
	assert_int_equal(pav_parse_time("2024-02-29T12:00:00Z", &ms), 0);
	assert_int_equal(pav_parse_time("2000-02-29T12:00:00Z", &ms), 0);
	assert_int_equal(pav_parse_time("1900-02-29T12:00:00Z", &ms), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(impossible_dates_are_rejected),
		cmocka_unit_test(format_is_utc_with_milliseconds),
		cmocka_unit_test(format_pads_every_field),
		cmocka_unit_test(format_of_leap_day),
		cmocka_unit_test(format_has_fixed_length),
		cmocka_unit_test(format_truncates_to_small_buffer),
		cmocka_unit_test(parse_utc_z),
		cmocka_unit_test(parse_lowercase_t_and_z),
		cmocka_unit_test(parse_milliseconds),
		cmocka_unit_test(parse_short_fraction_scales),
		cmocka_unit_test(parse_long_fraction_truncates_to_ms),
		cmocka_unit_test(parse_positive_offset),
		cmocka_unit_test(parse_negative_offset),
		cmocka_unit_test(parse_zero_offset_equals_z),
		cmocka_unit_test(parse_epoch),
		cmocka_unit_test(parse_rejects_invalid_inputs),
		cmocka_unit_test(round_trip_format_then_parse),
		cmocka_unit_test(round_trip_of_now),
		cmocka_unit_test(now_is_after_2020),
		cmocka_unit_test(mono_does_not_go_backwards),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
