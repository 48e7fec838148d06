/* timer.c — one-shot timers on the lws event loop (see timer.h). */
#include "timer.h"

#include <stdlib.h>

#include <libwebsockets.h>

struct pav_timer {
	lws_sorted_usec_list_t sul; /* first: lws hands this back */
	struct pav_timer *prev, *next;
	struct pav_timers *owner;
	void (*fn)(void *arg);
	void *arg;
};

static void unlink_timer(struct pav_timer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		t->owner->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
}

static void fire(lws_sorted_usec_list_t *sul)
{
	struct pav_timer *t = (struct pav_timer *)sul;
	void (*fn)(void *arg) = t->fn;
	void *arg = t->arg;

	unlink_timer(t);
	free(t);
	fn(arg);
}

struct pav_timer *pav_timer_start(struct pav_timers *owner,
				  struct lws_context *ctx, int64_t delay_ms,
				  void (*fn)(void *arg), void *arg)
{
	struct pav_timer *t;

	if (!ctx || !fn || !(t = calloc(1, sizeof(*t))))
		return NULL;
	t->owner = owner;
	t->fn = fn;
	t->arg = arg;
	t->next = owner->head;
	if (t->next)
		t->next->prev = t;
	owner->head = t;
	lws_sul_schedule(ctx, 0, &t->sul, fire,
			 (lws_usec_t)(delay_ms > 0 ? delay_ms : 0) *
				 LWS_US_PER_MS);
	return t;
}

void pav_timer_cancel(struct pav_timer *t)
{
	if (!t)
		return;
	lws_sul_cancel(&t->sul);
	unlink_timer(t);
	free(t);
}

void pav_timers_cancel_all(struct pav_timers *owner)
{
	while (owner->head)
		pav_timer_cancel(owner->head);
}
