/* clock.h — wall-clock time in milliseconds and RFC 3339 text. */
#ifndef PAV_CLOCK_H
#define PAV_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Length of "2026-11-25T12:00:00.123Z" plus NUL, rounded up. */
#define PAV_TIME_LEN 32

int64_t pav_now_ms(void);
/* Milliseconds since the epoch for a monotonic clock (timeouts). */
int64_t pav_mono_ms(void);
/* The same clock in microseconds (timing a fan-out pass). */
int64_t pav_mono_us(void);
/* Writes ms as RFC 3339 UTC with milliseconds ("...T12:00:00.123Z"). */
void pav_format_time(int64_t ms, char *buf, size_t len);
/* Parses RFC 3339 (fraction and offset optional: "Z" or "+hh:mm").
 * Returns 0 and *ms, or -EINVAL. */
int pav_parse_time(const char *s, int64_t *ms);

#endif
