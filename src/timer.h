/* timer.h — one-shot timers on the lws event loop, kept in a list per
 * owner (a vhost's plugins) so that whatever they leave can be cancelled
 * with the owner. */
#ifndef PAV_TIMER_H
#define PAV_TIMER_H

#include <stdint.h>

struct lws_context;
struct pav_timer;

/* An owner's timers. */
struct pav_timers {
	struct pav_timer *head;
};

/* fn(arg) after delay_ms on ctx's loop; NULL when out of memory or no
 * loop.  The timer is freed when it fires or is cancelled. */
struct pav_timer *pav_timer_start(struct pav_timers *owner,
				  struct lws_context *ctx, int64_t delay_ms,
				  void (*fn)(void *arg), void *arg);
void pav_timer_cancel(struct pav_timer *t);
/* Cancels every timer of the owner. */
void pav_timers_cancel_all(struct pav_timers *owner);

#endif
