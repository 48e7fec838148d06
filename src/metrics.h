/* metrics.h — counters for GET /metrics (Prometheus text format). */
#ifndef PAV_METRICS_H
#define PAV_METRICS_H

#include <stddef.h>

/* A message type some vhost has a handler for: client messages of this
 * type are counted under its name (others as "other").  Called at handler
 * registration; types of 32 characters or more, or past 64 of them, stay
 * "other". */
void pav_metrics_known_type(const char *type);
/* A session opened (1) or closed (-1): pavilion_connections. */
void pav_metrics_conn(int delta);
/* A connection whose token was accepted, by the store's token revocation
 * too: pavilion_connections_total. */
void pav_metrics_conn_accepted(void);
void pav_metrics_in(const char *type);
void pav_metrics_out(const char *type, unsigned n);
struct pav_msg;
/* One message sent outside a fan-out's count (a replay, a held one
 * released), under the type its text names. */
void pav_metrics_out_msg(struct pav_msg *m);
void pav_metrics_error(int code);
void pav_metrics_close(int code);
void pav_metrics_auth_failure(void);
void pav_metrics_rate_limited(void);
void pav_metrics_fanout_seconds(double s);
/* One publication's fan-out: written during its walk (direct) or not. */
void pav_metrics_fanout_mode(int direct);
/* The exposition text (malloc'd, *len set) or NULL. */
char *pav_metrics_render(size_t *len);
/* Zeroes every counter and forgets the registered types. */
void pav_metrics_reset(void);

#endif
