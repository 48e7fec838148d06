/*
 * fake_clock.h — settable clocks for tests linked with
 * -Wl,--wrap=pav_now_ms,--wrap=pav_mono_ms: every call to pav_now_ms()
 * or pav_mono_ms() outside clock.c answers the time set here (the real
 * clocks until one is set).  Both move together, except when the wall
 * clock is stepped alone, as an NTP step or `date -s` does.
 */
#ifndef PAV_TEST_FAKE_CLOCK_H
#define PAV_TEST_FAKE_CLOCK_H

#include <stdint.h>

void fake_clock_set(int64_t ms);
void fake_clock_advance(int64_t ms);
/* The wall clock jumps by ms (negative: back); the monotonic one not. */
void fake_clock_step_wall(int64_t ms);
/* Back to the real clock. */
void fake_clock_real(void);

#endif
