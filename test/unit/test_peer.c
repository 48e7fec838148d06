/* test_peer.c — per-IP accounting (src/peer.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "peer.h"

static struct pav_limits limits(int conns, int hs)
{
	struct pav_limits l;

	pav_limits_default(&l);
	l.max_connections_per_ip = conns;
	l.handshakes_per_s_per_ip = hs;
	return l;
}

static int teardown(void **state)
{
	(void)state;
	pav_peer_free();
	return 0;
}

static void handshakes_per_second_are_capped(void **state)
{
	struct pav_limits l = limits(100, 3);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 1000), 0);
	assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 1500), 429);
	/* a new second, a new allowance */
	assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 2000), 0);
}

static void other_ips_and_vhosts_are_unaffected(void **state)
{
	struct pav_limits l = limits(100, 1);

	(void)state;
	assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 1000), 0);
	assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 1000), 429);
	assert_int_equal(pav_peer_admit("v", "10.0.0.2", &l, 1000), 0);
	assert_int_equal(pav_peer_admit("w", "10.0.0.1", &l, 1000), 0);
}

static void concurrent_connections_are_capped(void **state)
{
	struct pav_limits l = limits(2, 1000);

	(void)state;
	pav_peer_conn("v", "10.0.0.1", 1);
	pav_peer_conn("v", "10.0.0.1", 1);
	assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 1000), 429);
	pav_peer_conn("v", "10.0.0.1", -1);
	assert_int_equal(pav_peer_admit("v", "10.0.0.1", &l, 1000), 0);
}

static void sweep_forgets_idle_peers_only(void **state)
{
	struct pav_limits l = limits(10, 10);

	(void)state;
	for (int i = 0; i < 200; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		pav_peer_admit("v", ip, &l, 1000);
	}
	pav_peer_conn("v", "10.9.9.9", 1);
	assert_int_equal(pav_peer_sweep(1500), 201); /* same second: kept */
	assert_int_equal(pav_peer_sweep(3000), 1);   /* the connected one */
	pav_peer_conn("v", "10.9.9.9", -1);
	assert_int_equal(pav_peer_sweep(3000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(handshakes_per_second_are_capped, teardown),
		cmocka_unit_test_teardown(other_ips_and_vhosts_are_unaffected, teardown),
		cmocka_unit_test_teardown(concurrent_connections_are_capped, teardown),
		cmocka_unit_test_teardown(sweep_forgets_idle_peers_only, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
