/*
 * test_hub.c — channel membership (src/hub.c): the two-sided index that
 * makes subscribe/unsubscribe O(1) must stay consistent under any order of
 * operations.  Publishing needs live sockets: the integration tests cover
 * it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gateway.h"

struct pav_gateway *pav_gw;
static struct pav_gateway gw;
static struct pav_vhost_config vc;
static struct pav_vhost vh;

#define NCONN 40
#define NCHAN 12
static struct pav_conn conns[NCONN];
static int model[NCONN][NCHAN];

static int setup(void **state)
{
	(void)state;
	memset(&gw, 0, sizeof(gw));
	pav_gw = &gw;
	gw.chans = pav_map_new();
	pav_limits_default(&vc.limits);
	vc.limits.max_subscriptions = NCHAN;
	vc.ns = "default";
	vh.cfg = &vc;
	memset(conns, 0, sizeof(conns));
	memset(model, 0, sizeof(model));
	for (int i = 0; i < NCONN; i++) {
		conns[i].vh = &vh;
		conns[i].id = (uint64_t)i + 1;
		snprintf(conns[i].user, sizeof(conns[i].user), "u%d", i % 7);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NCONN; i++)
		pav_hub_unsubscribe_all(&conns[i]);
	assert_int_equal(pav_map_count(gw.chans), 0);
	pav_hub_free();
	return 0;
}

static const char *chan(int k)
{
	static char buf[NCHAN][32];

	snprintf(buf[k], sizeof(buf[k]), "zone:z%d", k);
	return buf[k];
}

static void subscribe_is_idempotent(void **state)
{
	(void)state;
	assert_int_equal(pav_hub_subscribe(&conns[0], "zone:a"), 0);
	assert_int_equal(pav_hub_subscribe(&conns[0], "zone:a"), 1);
	assert_int_equal(pav_hub_count("default", "zone:a"), 1);
	assert_int_equal(pav_hub_unsubscribe(&conns[0], "zone:a"), 0);
	assert_int_equal(pav_hub_unsubscribe(&conns[0], "zone:a"), 1);
	assert_int_equal(pav_hub_count("default", "zone:a"), 0);
}

static void empty_channels_are_freed(void **state)
{
	(void)state;
	pav_hub_subscribe(&conns[0], "zone:a");
	pav_hub_subscribe(&conns[1], "zone:a");
	assert_int_equal(pav_map_count(gw.chans), 1);
	pav_hub_unsubscribe(&conns[0], "zone:a");
	assert_int_equal(pav_map_count(gw.chans), 1);
	pav_hub_unsubscribe(&conns[1], "zone:a");
	assert_int_equal(pav_map_count(gw.chans), 0);
}

static void namespaces_are_separate(void **state)
{
	static struct pav_vhost_config vc2;
	static struct pav_vhost vh2;

	(void)state;
	vc2 = vc;
	vc2.ns = "other";
	vh2.cfg = &vc2;
	conns[1].vh = &vh2;
	pav_hub_subscribe(&conns[0], "zone:a");
	pav_hub_subscribe(&conns[1], "zone:a");
	assert_int_equal(pav_hub_count("default", "zone:a"), 1);
	assert_int_equal(pav_hub_count("other", "zone:a"), 1);
	pav_hub_unsubscribe_all(&conns[1]);
	conns[1].vh = &vh;
}

static void max_subscriptions_counts_the_user_channel_extra(void **state)
{
	(void)state;
	for (int k = 0; k < NCHAN; k++)
		assert_int_equal(pav_hub_subscribe(&conns[0], chan(k)), 0);
	/* + 1 for the automatic user channel */
	assert_int_equal(pav_hub_subscribe(&conns[0], "user:u0"), 0);
	assert_int_equal(pav_hub_subscribe(&conns[0], "zone:one-more"), -ENOSPC);
	assert_int_equal(pav_hub_subscribe(&conns[0], chan(3)), 1);
}

static int collect(struct pav_conn *c, void *arg)
{
	int *seen = arg;

	seen[c->id - 1]++;
	return 0;
}

/* Random operations against a plain matrix. */
static void membership_matches_a_model(void **state)
{
	(void)state;
	srand(7);
	for (int step = 0; step < 20000; step++) {
		int i = rand() % NCONN, k = rand() % NCHAN;

		if (rand() % 3) {
			assert_int_equal(pav_hub_subscribe(&conns[i], chan(k)),
					 model[i][k]);
			model[i][k] = 1;
		} else {
			assert_int_equal(pav_hub_unsubscribe(&conns[i], chan(k)),
					 !model[i][k]);
			model[i][k] = 0;
		}
		if (step % 997)
			continue;
		for (int kk = 0; kk < NCHAN; kk++) {
			int seen[NCONN] = {0}, n = 0;

			pav_hub_each("default", chan(kk), collect, seen);
			for (int ii = 0; ii < NCONN; ii++) {
				assert_int_equal(seen[ii], model[ii][kk]);
				assert_int_equal(pav_hub_is_subscribed(&conns[ii], chan(kk)),
						 model[ii][kk]);
				n += model[ii][kk];
			}
			assert_int_equal(pav_hub_count("default", chan(kk)), n);
		}
	}
}

static void user_count_excludes_the_asking_connection(void **state)
{
	(void)state;
	/* conns 0 and 7 are both user u0 */
	pav_hub_subscribe(&conns[0], "zone:a");
	assert_int_equal(pav_hub_user_count("default", "zone:a", "u0", &conns[0]), 0);
	pav_hub_subscribe(&conns[7], "zone:a");
	assert_int_equal(pav_hub_user_count("default", "zone:a", "u0", &conns[0]), 1);
	assert_int_equal(pav_hub_user_count("default", "zone:a", "u0", NULL), 2);
	assert_int_equal(pav_hub_user_count("default", "zone:a", "u1", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(subscribe_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_channels_are_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(namespaces_are_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(max_subscriptions_counts_the_user_channel_extra, setup, teardown),
		cmocka_unit_test_setup_teardown(membership_matches_a_model, setup, teardown),
		cmocka_unit_test_setup_teardown(user_count_excludes_the_asking_connection, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
