/* log.c — stderr logging, text or JSON lines. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "clock.h"
#include "utf8.h"

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

/*
 * One event, one line, in UTF-8.  A message can carry what a plugin or a
 * peer put in it: a control character (a newline forging a line, an
 * escape sequence for a terminal) becomes a space and a byte that is not
 * UTF-8 a '?'.  A message cut at the buffer's end loses the character
 * it cut in two.
 */
static void make_printable(char *msg, size_t len, int cut)
{
	unsigned char *p = (unsigned char *)msg, *end = p + len, *last = end;
	size_t n;

	if (cut) {
		while (last > p && last > end - 4 && (last[-1] & 0xc0) == 0x80)
			last--;
		if (last > p && last[-1] >= 0xc0 && !pav_utf8_seq(last - 1, end))
			*(end = last - 1) = '\0';
	}
	while (p < end) {
		if (*p >= 0x80 && (n = pav_utf8_seq(p, end))) {
			p += n;
			continue;
		}
		if (*p >= 0x80)
			*p = '?';
		else if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
		p++;
	}
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
	int n;

	if (!pav_log_enabled(level))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	make_printable(msg, (size_t)n < sizeof(msg) ? (size_t)n
						    : sizeof(msg) - 1,
		       (size_t)n >= sizeof(msg));
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
