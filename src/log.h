/* log.h — one line per event to stderr, as text or JSON. */
#ifndef PAV_LOG_H
#define PAV_LOG_H

#include <stdarg.h>
#include <stdint.h>

#include "pavilion/plugin.h" /* enum pav_log_level */

void pav_log_setup(int level, int json);
/* Logs one line.  `who` (may be NULL) names the component or plugin.
 * Callers never pass a token; redact with "token=REDACTED". */
void pav_log(enum pav_log_level level, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pav_vlog(enum pav_log_level level, const char *who, const char *fmt,
	      va_list ap);
int pav_log_enabled(enum pav_log_level level);

/*
 * A kind of line a client can have written once per socket or request
 * without authenticating (a close at accept, a 429, a misrouted request,
 * lws' complaints about a request it cannot read): at most `per_s` of the
 * kind each second; the rest are held back and counted, and the next line
 * written says how many, so a flood costs a few lines a second.
 */
struct pav_log_budget {
	unsigned per_s;    /* lines of this kind written in one second */
	unsigned used;     /* written in the current second */
	unsigned held;     /* held back since the last line written */
	int64_t window_ms; /* when the current second began (monotonic) */
};

/* 1 when one more line may be written at now_ms; 0 when it is held back. */
int pav_log_budget_take(struct pav_log_budget *b, int64_t now_ms);
/* How many were held back before the line being written; resets it. */
unsigned pav_log_budget_held(struct pav_log_budget *b);
/* A warning of b's kind: written when the budget allows (now: the
 * monotonic clock), followed by "; N such before it since the last line". */
void pav_warn_budgeted(struct pav_log_budget *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pav_err(...) pav_log(PAV_LOG_ERROR, NULL, __VA_ARGS__)
#define pav_warn(...) pav_log(PAV_LOG_WARN, NULL, __VA_ARGS__)
#define pav_info(...) pav_log(PAV_LOG_INFO, NULL, __VA_ARGS__)
#define pav_debug(...) \
	do { \
		if (pav_log_enabled(PAV_LOG_DEBUG)) \
			pav_log(PAV_LOG_DEBUG, NULL, __VA_ARGS__); \
	} while (0)

#endif
