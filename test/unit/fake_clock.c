/* fake_clock.c — see fake_clock.h. */
#include "fake_clock.h"

int64_t __real_pav_now_ms(void);
int64_t __wrap_pav_now_ms(void);
int64_t __real_pav_mono_ms(void);
int64_t __wrap_pav_mono_ms(void);

static int64_t now_ms = -1, wall_step_ms;

int64_t __wrap_pav_now_ms(void)
{
	return now_ms >= 0 ? now_ms + wall_step_ms : __real_pav_now_ms();
}

int64_t __wrap_pav_mono_ms(void)
{
	return now_ms >= 0 ? now_ms : __real_pav_mono_ms();
}

void fake_clock_set(int64_t ms)
{
	now_ms = ms;
	wall_step_ms = 0;
}

void fake_clock_step_wall(int64_t ms)
{
	wall_step_ms += ms;
}

void fake_clock_advance(int64_t ms)
{
	now_ms += ms;
}

void fake_clock_real(void)
{
	now_ms = -1;
}
