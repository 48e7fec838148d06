/*
 * fake_api.c — stands in for what src/host.c needs besides the session
 * layer: the internal API's answers (api.c, which needs a live HTTP
 * request) and the libwebsockets timer calls.  Timers are recorded, and a
 * test fires one with fake_timer_fire().
 */
#include <errno.h>
#include <stdlib.h>

#include <libwebsockets.h>

#include "api.h"
#include "fake_api.h"

struct fake_sul fake_suls[FAKE_SULS];
size_t fake_nsuls;
int fake_sul_cancels;

void lws_sul_schedule(struct lws_context *ctx, int tsi,
		      lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
	(void)ctx;
	(void)tsi;
	if (fake_nsuls < FAKE_SULS)
		fake_suls[fake_nsuls++] = (struct fake_sul){sul, cb, us, 1};
}

void lws_sul_cancel(lws_sorted_usec_list_t *sul)
{
	fake_sul_cancels++;
	for (size_t i = 0; i < fake_nsuls; i++)
		if (fake_suls[i].sul == sul)
			fake_suls[i].live = 0;
}

void fake_timer_fire(size_t i)
{
	struct fake_sul *s = &fake_suls[i];

	if (!s->live)
		abort();
	s->live = 0;
	s->cb(s->sul);
}

void pav_api_answer(pav_api_call *call, int status, json_object *body)
{
	(void)call;
	(void)status;
	json_object_put(body);
}

void pav_api_error(pav_api_call *call, int status, const char *message)
{
	(void)call;
	(void)status;
	(void)message;
}
