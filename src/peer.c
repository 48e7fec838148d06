/*
 * peer.c — per-IP accounting.  A record lives while its IP has open
 * connections or handshakes in the current second; pav_peer_sweep() drops
 * the rest, so the table is bounded by recent activity, not by history.
 * A held record (conns > 0) is never dropped, so its address stays valid
 * for the connection that holds it.  IPv6 clients are counted by /64.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

struct pav_peer {
	int conns;
	int handshakes;
	int64_t window_ms;
};

static struct pav_map *peers;

/*
 * What a limit counts: an IPv4 address, or an IPv6 address's /64 (the
 * least a host is given: counting its addresses one by one would give it
 * 2^64 allowances).  An IPv4-mapped IPv6 address is its IPv4 address.
 */
static const char *limit_unit(const char *ip, char *buf, size_t len)
{
	struct in6_addr a;
	char text[INET6_ADDRSTRLEN];

	if (!strchr(ip, ':') || inet_pton(AF_INET6, ip, &a) != 1 ||
	    IN6_IS_ADDR_V4MAPPED(&a))
		return ip;
	memset(a.s6_addr + 8, 0, 8);
	if (!inet_ntop(AF_INET6, &a, text, sizeof(text)))
		return ip;
	snprintf(buf, len, "%s/64", text);
	return buf;
}

static int key(char *buf, size_t len, const char *vhost, const char *ip)
{
	char unit[INET6_ADDRSTRLEN + 4];
	int n = snprintf(buf, len, "%s\x1f%s", vhost,
			 limit_unit(ip, unit, sizeof(unit)));

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct pav_peer *get(const char *vhost, const char *ip, int make)
{
	char k[192];
	struct pav_peer *p;

	if (key(k, sizeof(k), vhost, ip))
		return NULL;
	if (!peers && !(peers = pav_map_new()))
		return NULL;
	p = pav_map_get(peers, k);
	if (p || !make)
		return p;
	p = calloc(1, sizeof(*p));
	if (p && pav_map_put(peers, k, p)) {
		free(p);
		p = NULL;
	}
	return p;
}

int pav_peer_conns(const char *vhost, const char *ip)
{
	struct pav_peer *p = get(vhost, ip, 0);

	return p ? p->conns : 0;
}

struct pav_peer *pav_peer_hold(const char *vhost, const char *ip)
{
	struct pav_peer *p = get(vhost, ip, 1);

	if (p)
		p->conns++;
	return p;
}

void pav_peer_release(struct pav_peer *p)
{
	if (p)
		p->conns--;
}

int pav_peer_count(const struct pav_peer *p)
{
	return p->conns;
}

int pav_peer_handshake(struct pav_peer *p, const struct pav_limits *l,
		       int64_t now_ms)
{
	if (now_ms - p->window_ms >= 1000) {
		p->window_ms = now_ms;
		p->handshakes = 0;
	}
	return ++p->handshakes > l->handshakes_per_s_per_ip ? 429 : 0;
}

struct sweep {
	int64_t now;
	char *dead[64];
	size_t n;
};

static int collect(const char *k, void *val, void *arg)
{
	struct pav_peer *p = val;
	struct sweep *s = arg;

	if (p->conns <= 0 && s->now - p->window_ms >= 1000) {
		s->dead[s->n++] = (char *)k;
		return s->n == 64;
	}
	return 0;
}

size_t pav_peer_sweep(int64_t now_ms)
{
	struct sweep s;

	if (!peers)
		return 0;
	do { /* the map may not change during each(): collect, then drop */
		s.now = now_ms;
		s.n = 0;
		pav_map_each(peers, collect, &s);
		for (size_t i = 0; i < s.n; i++) {
			char k[192];

			snprintf(k, sizeof(k), "%s", s.dead[i]);
			free(pav_map_del(peers, k));
		}
	} while (s.n == 64);
	return pav_map_count(peers);
}

void pav_peer_free(void)
{
	if (peers)
		pav_map_free(peers, free);
	peers = NULL;
}
