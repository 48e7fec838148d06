/* log.h — one line per event to stderr, as text or JSON. */
#ifndef PAV_LOG_H
#define PAV_LOG_H

#include <stdarg.h>

#include "pavilion/plugin.h" /* enum pav_log_level */

void pav_log_setup(int level, int json);
/* Logs one line.  `who` (may be NULL) names the component or plugin.
 * Callers never pass a token; redact with "token=REDACTED". */
void pav_log(enum pav_log_level level, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pav_vlog(enum pav_log_level level, const char *who, const char *fmt,
	      va_list ap);
int pav_log_enabled(enum pav_log_level level);

#define pav_err(...) pav_log(PAV_LOG_ERROR, NULL, __VA_ARGS__)
#define pav_warn(...) pav_log(PAV_LOG_WARN, NULL, __VA_ARGS__)
#define pav_info(...) pav_log(PAV_LOG_INFO, NULL, __VA_ARGS__)
#define pav_debug(...) \
	do { \
		if (pav_log_enabled(PAV_LOG_DEBUG)) \
			pav_log(PAV_LOG_DEBUG, NULL, __VA_ARGS__); \
	} while (0)

#endif
