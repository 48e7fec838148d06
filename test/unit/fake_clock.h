/*
 * fake_clock.h — a settable wall clock for tests linked with
 * -Wl,--wrap=pav_now_ms: every call to pav_now_ms() outside clock.c
 * answers the time set here (the real clock until one is set).
 */
#ifndef PAV_TEST_FAKE_CLOCK_H
#define PAV_TEST_FAKE_CLOCK_H

#include <stdint.h>

void fake_clock_set(int64_t ms);
void fake_clock_advance(int64_t ms);
/* Back to the real clock. */
void fake_clock_real(void);

#endif
