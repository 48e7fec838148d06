/* fake_api.h — see fake_api.c. */
#ifndef PAV_TEST_FAKE_API_H
#define PAV_TEST_FAKE_API_H

#include <stddef.h>

#include <libwebsockets.h>

#define FAKE_SULS 16

struct fake_sul {
	lws_sorted_usec_list_t *sul;
	sul_cb_t cb;
	lws_usec_t us;
	int live; /* scheduled, not fired or cancelled */
};

extern struct fake_sul fake_suls[FAKE_SULS];
extern size_t fake_nsuls;
extern int fake_sul_cancels;

/* Runs timer i's callback as the event loop would. */
void fake_timer_fire(size_t i);

#endif
