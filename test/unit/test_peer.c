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

/* A handshake by ip on vhost through a held record, released again. */
static int handshake(const char *vhost, const char *ip,
		     const struct pav_limits *l, int64_t now_ms)
{
	struct pav_peer *p = pav_peer_hold(vhost, ip);
	int rc;

	assert_non_null(p);
	rc = pav_peer_handshake(p, l, now_ms);
	pav_peer_release(p);
	return rc;
}

static void handshakes_per_second_are_capped(void **state)
{
	struct pav_limits l = limits(100, 3);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(handshake("v", "10.0.0.1", &l, 1000), 0);
	assert_int_equal(handshake("v", "10.0.0.1", &l, 1500), 429);
	/* a new second, a new allowance */
	assert_int_equal(handshake("v", "10.0.0.1", &l, 2000), 0);
}

static void other_ips_and_vhosts_are_unaffected(void **state)
{
	struct pav_limits l = limits(100, 1);

	(void)state;
	assert_int_equal(handshake("v", "10.0.0.1", &l, 1000), 0);
	assert_int_equal(handshake("v", "10.0.0.1", &l, 1000), 429);
	assert_int_equal(handshake("v", "10.0.0.2", &l, 1000), 0);
	assert_int_equal(handshake("w", "10.0.0.1", &l, 1000), 0);
}

/* A host is given a /64 at least: its addresses share one count. */
static void ipv6_addresses_of_one_64_share_a_count(void **state)
{
	struct pav_limits l = limits(100, 1);
	struct pav_peer *a, *b;

	(void)state;
	assert_int_equal(handshake("v", "2001:db8:1:2::1", &l, 1000), 0);
	assert_int_equal(handshake("v", "2001:db8:1:2:ffff:1:2:3", &l, 1000),
			 429);
	assert_int_equal(handshake("v", "2001:db8:1:3::1", &l, 1000), 0);
	a = pav_peer_hold("v", "fd00::1");
	b = pav_peer_hold("v", "fd00::abcd:1");
	assert_ptr_equal(a, b);
	assert_int_equal(pav_peer_conns("v", "fd00::9"), 2);
	assert_int_equal(pav_peer_conns("v", "fd00:0:0:1::1"), 0);
	pav_peer_release(a);
	pav_peer_release(b);
	/* an IPv4-mapped address counts as its IPv4 address, alone */
	assert_int_equal(handshake("v", "::ffff:10.0.0.1", &l, 1000), 0);
	assert_int_equal(handshake("v", "::ffff:10.0.0.2", &l, 1000), 0);
	assert_int_equal(handshake("v", "::ffff:10.0.0.1", &l, 1000), 429);
}

static void connections_are_counted_while_held(void **state)
{
	struct pav_peer *a, *b;

	(void)state;
	assert_int_equal(pav_peer_conns("v", "10.0.0.1"), 0);
	a = pav_peer_hold("v", "10.0.0.1");
	b = pav_peer_hold("v", "10.0.0.1");
	assert_ptr_equal(a, b);
	assert_int_equal(pav_peer_count(a), 2);
	assert_int_equal(pav_peer_conns("v", "10.0.0.1"), 2);
	assert_int_equal(pav_peer_conns("w", "10.0.0.1"), 0);
	pav_peer_release(b);
	assert_int_equal(pav_peer_conns("v", "10.0.0.1"), 1);
	pav_peer_release(a);
	assert_int_equal(pav_peer_conns("v", "10.0.0.1"), 0);
}

static void sweep_forgets_idle_peers_only(void **state)
{
	struct pav_limits l = limits(10, 10);
	struct pav_peer *held;

	(void)state;
	for (int i = 0; i < 200; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		handshake("v", ip, &l, 1000);
	}
	held = pav_peer_hold("v", "10.9.9.9");
	assert_int_equal(pav_peer_sweep(1500), 201); /* same second: kept */
	assert_int_equal(pav_peer_sweep(3000), 1);   /* the held one */
	assert_int_equal(pav_peer_count(held), 1);
	pav_peer_release(held);
	assert_int_equal(pav_peer_sweep(3000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(handshakes_per_second_are_capped, teardown),
		cmocka_unit_test_teardown(other_ips_and_vhosts_are_unaffected, teardown),
		cmocka_unit_test_teardown(ipv6_addresses_of_one_64_share_a_count, teardown),
		cmocka_unit_test_teardown(connections_are_counted_while_held, teardown),
		cmocka_unit_test_teardown(sweep_forgets_idle_peers_only, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
