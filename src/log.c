/* log.c — stderr logging, text or JSON lines. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "clock.h"

static int log_level = PAV_LOG_INFO;
static int log_json;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void pav_log_setup(int level, int json)
{
	log_level = level;
	log_json = json;
}

int pav_log_enabled(enum pav_log_level level)
{
	return (int)level <= log_level;
}

static void emit_json(const char *lvl, const char *ts, const char *who,
		      const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "level", json_object_new_string(lvl));
	/* every line has the four keys the README names: the core's own
	 * lines, which name no component, are the gateway's */
	json_object_object_add(o, "component",
			       json_object_new_string(who ? who : "gateway"));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	fprintf(stderr, "%s\n",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

void pav_log(enum pav_log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pav_vlog(level, who, fmt, ap);
	va_end(ap);
}

void pav_vlog(enum pav_log_level level, const char *who, const char *fmt,
	      va_list ap)
{
	char msg[1024], ts[PAV_TIME_LEN];

	if (!pav_log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one event, one line: fold embedded newlines */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	pav_format_time(pav_now_ms(), ts, sizeof(ts));
	if (log_json)
		emit_json(level_names[level], ts, who, msg);
	else
		fprintf(stderr, "%s %-5s %s%s%s\n", ts, level_names[level],
			who ? who : "", who ? ": " : "", msg);
}

int pav_log_budget_take(struct pav_log_budget *b, int64_t now_ms)
{
	if (now_ms - b->window_ms >= 1000) {
		b->window_ms = now_ms;
		b->used = 0;
	}
	if (b->used >= b->per_s) {
		b->held++;
		return 0;
	}
	b->used++;
	return 1;
}

unsigned pav_log_budget_held(struct pav_log_budget *b)
{
	unsigned n = b->held;

	b->held = 0;
	return n;
}

void pav_warn_budgeted(struct pav_log_budget *b, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (!pav_log_budget_take(b, pav_mono_ms()))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pav_warn("%s; %u such before it since the last line", msg,
		 pav_log_budget_held(b));
}
