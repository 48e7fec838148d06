/* metrics.h — counters for GET /metrics (Prometheus text format). */
#ifndef PAV_METRICS_H
#define PAV_METRICS_H

#include <stddef.h>

void pav_metrics_conn(int delta);
void pav_metrics_in(const char *type);
void pav_metrics_out(const char *type, unsigned n);
void pav_metrics_error(int code);
void pav_metrics_close(int code);
void pav_metrics_auth_failure(void);
void pav_metrics_rate_limited(void);
void pav_metrics_fanout_seconds(double s);
/* The exposition text (malloc'd, *len set) or NULL. */
char *pav_metrics_render(size_t *len);
void pav_metrics_reset(void);

#endif
