/*
 * metrics.c — process counters.  Client messages name their own type, so
 * an incoming type is counted under its name only when some vhost has a
 * handler for it (pav_metrics_known_type) or it is the gateway's own;
 * anything else counts as "other".  Outgoing types are the gateway's, the
 * plugins' and the backend's; past PAV_METRIC_TYPES distinct types they
 * count as "other" too.  The two directions keep separate tables: the
 * backend's types, however many, never push a client type into "other".
 * Label values are escaped as the Prometheus text format says.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "msg.h"

#define PAV_METRIC_TYPES 48
#define PAV_METRIC_KNOWN 64 /* registered handler types remembered */
#define PAV_METRIC_CODES 24
#define TYPE_LEN 32
#define OTHER "other"
/* every incoming type that can have a name: the known ones, "auth",
 * "heartbeat_ack" and "invalid" */
#define PAV_METRIC_IN_TYPES (PAV_METRIC_KNOWN + 3)

struct type_count {
	char type[TYPE_LEN];
	uint64_t n;
};

/* One direction's types: named slots (as many as type_slot()'s caller
 * allows that direction), then the overflow slot "other" at the end. */
struct type_table {
	struct type_count t[PAV_METRIC_IN_TYPES + 1];
	size_t n;
};
_Static_assert(PAV_METRIC_TYPES <= PAV_METRIC_IN_TYPES,
	       "the outgoing types share the table's size");

struct code_count {
	int code;
	uint64_t n;
};

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
				 0.025,  0.05,  0.1,    0.25,  1.0};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static struct {
	int64_t conns;
	uint64_t conns_total;
	struct type_table in, out;
	struct code_count errors[PAV_METRIC_CODES], closes[PAV_METRIC_CODES];
	uint64_t auth_failures, rate_limited;
	uint64_t fan_buckets[NBUCKETS];
	uint64_t fan_count;
	uint64_t fan_direct, fan_queued;
	double fan_sum;
} m;

/* Types a handler is registered for, on any vhost. */
static char known[PAV_METRIC_KNOWN][TYPE_LEN];
static size_t nknown;

void pav_metrics_reset(void)
{
	memset(&m, 0, sizeof(m));
	nknown = 0;
}

static int is_known(const char *type)
{
	/* the gateway's own: handled by dispatch.c, or its parse failures */
	if (pav_envelope_own_type(type) || !strcmp(type, "invalid"))
		return 1;
	for (size_t i = 0; i < nknown; i++)
		if (!strcmp(type, known[i]))
			return 1;
	return 0;
}

void pav_metrics_known_type(const char *type)
{
	if (!type || strlen(type) >= TYPE_LEN || is_known(type) ||
	    nknown == PAV_METRIC_KNOWN)
		return;
	snprintf(known[nknown++], TYPE_LEN, "%s", type);
}

static struct type_count *type_slot(struct type_table *tt, size_t cap,
				    const char *type)
{
	struct type_count *other = &tt->t[PAV_METRIC_IN_TYPES];

	for (size_t i = 0; i < tt->n; i++)
		if (!strcmp(tt->t[i].type, type))
			return &tt->t[i];
	/* "other" itself is the overflow slot, never a second line */
	if (tt->n < cap && strlen(type) < TYPE_LEN && strcmp(type, OTHER)) {
		snprintf(tt->t[tt->n].type, TYPE_LEN, "%s", type);
		return &tt->t[tt->n++];
	}
	snprintf(other->type, TYPE_LEN, OTHER);
	return other;
}

static void code_inc(struct code_count *arr, int code)
{
	for (size_t i = 0; i < PAV_METRIC_CODES; i++) {
		if (arr[i].code == code || !arr[i].code) {
			arr[i].code = code;
			arr[i].n++;
			return;
		}
	}
}

void pav_metrics_conn(int delta)
{
	m.conns += delta;
}

void pav_metrics_conn_accepted(void)
{
	m.conns_total++;
}

void pav_metrics_in(const char *type)
{
	const char *name = is_known(type) ? type : OTHER;

	type_slot(&m.in, PAV_METRIC_IN_TYPES, name)->n++;
}

void pav_metrics_out(const char *type, unsigned n)
{
	/* a publication that reached nobody takes no label */
	if (n)
		type_slot(&m.out, PAV_METRIC_TYPES, type)->n += n;
}

void pav_metrics_out_msg(struct pav_msg *m)
{
	char type[TYPE_LEN];

	pav_metrics_out(pav_msg_type(m, type, sizeof(type)) ? OTHER : type, 1);
}

void pav_metrics_error(int code)
{
	code_inc(m.errors, code);
}

void pav_metrics_close(int code)
{
	code_inc(m.closes, code);
}

void pav_metrics_auth_failure(void)
{
	m.auth_failures++;
}

void pav_metrics_rate_limited(void)
{
	m.rate_limited++;
}

void pav_metrics_fanout_seconds(double s)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		if (s <= buckets[i])
			m.fan_buckets[i]++;
	m.fan_count++;
	m.fan_sum += s;
}

void pav_metrics_fanout_mode(int direct)
{
	if (direct)
		m.fan_direct++;
	else
		m.fan_queued++;
}

/* A growing text buffer. */
struct out {
	char *p;
	size_t len, cap;
	int oom;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0 || o->oom)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *np = realloc(o->p, o->cap * 2 + (size_t)n);

		if (!np) {
			o->oom = 1;
			return;
		}
		o->p = np;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static void render_codes(struct out *o, const char *name, const char *help,
			 const struct code_count *arr)
{
	put(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < PAV_METRIC_CODES && arr[i].code; i++)
		put(o, "%s{code=\"%d\"} %llu\n", name, arr[i].code,
		    (unsigned long long)arr[i].n);
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void escape_label(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; *s && n + 3 <= len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			out[n++] = '\\';
		out[n++] = *s == '\n' ? 'n' : *s;
	}
	out[n] = '\0';
}

static void render_type_lines(struct out *o, const char *name,
			      const struct type_table *tt)
{
	char label[2 * TYPE_LEN + 1];

	for (size_t i = 0; i <= PAV_METRIC_IN_TYPES; i++) {
		if (!tt->t[i].type[0])
			continue;
		escape_label(tt->t[i].type, label, sizeof(label));
		put(o, "%s{type=\"%s\"} %llu\n", name, label,
		    (unsigned long long)tt->t[i].n);
	}
}

static void render_types(struct out *o)
{
	put(o, "# HELP pavilion_messages_in_total Client messages by type.\n"
	       "# TYPE pavilion_messages_in_total counter\n");
	render_type_lines(o, "pavilion_messages_in_total", &m.in);
	put(o, "# HELP pavilion_messages_out_total Server messages by type.\n"
	       "# TYPE pavilion_messages_out_total counter\n");
	render_type_lines(o, "pavilion_messages_out_total", &m.out);
}

static void render_histogram(struct out *o)
{
	const char *h = "pavilion_fanout_seconds";

	put(o, "# HELP %s Time from a publish request to its publications "
	       "queued or written to all their recipients.\n"
	       "# TYPE %s histogram\n", h, h);
	for (size_t i = 0; i < NBUCKETS; i++)
		put(o, "%s_bucket{le=\"%g\"} %llu\n", h, buckets[i],
		    (unsigned long long)m.fan_buckets[i]);
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", h,
	    (unsigned long long)m.fan_count, h, m.fan_sum, h,
	    (unsigned long long)m.fan_count);
}

char *pav_metrics_render(size_t *len)
{
	struct out o = {malloc(4096), 0, 4096, 0};

	if (!o.p)
		return NULL;
	/* a connection refused for its token is counted as an auth failure,
	 * never here: these are the ones that opened a session */
	put(&o,
	    "# HELP pavilion_connections Open WebSocket connections whose "
	    "token was accepted.\n"
	    "# TYPE pavilion_connections gauge\npavilion_connections %lld\n",
	    (long long)m.conns);
	put(&o,
	    "# HELP pavilion_connections_total WebSocket connections whose "
	    "token was accepted.\n"
	    "# TYPE pavilion_connections_total counter\n"
	    "pavilion_connections_total %llu\n",
	    (unsigned long long)m.conns_total);
	render_types(&o);
	render_codes(&o, "pavilion_errors_total", "Error messages by code.",
		     m.errors);
	render_codes(&o, "pavilion_closes_total",
		     "Connections closed by the server, by close code.",
		     m.closes);
	put(&o, "# HELP pavilion_auth_failures_total Refused tokens.\n"
		"# TYPE pavilion_auth_failures_total counter\n"
		"pavilion_auth_failures_total %llu\n",
	    (unsigned long long)m.auth_failures);
	put(&o, "# HELP pavilion_rate_limited_total Messages over the rate "
		"limit.\n# TYPE pavilion_rate_limited_total counter\n"
		"pavilion_rate_limited_total %llu\n",
	    (unsigned long long)m.rate_limited);
	render_histogram(&o);
	put(&o, "# HELP pavilion_fanouts_total Publications fanned out, by "
		"how: written during the walk (direct) or by the end-of-turn "
		"passes (queued).\n# TYPE pavilion_fanouts_total counter\n"
		"pavilion_fanouts_total{mode=\"direct\"} %llu\n"
		"pavilion_fanouts_total{mode=\"queued\"} %llu\n",
	    (unsigned long long)m.fan_direct, (unsigned long long)m.fan_queued);
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}
