/* peer.h — per-client-IP limits (Debian's lws lacks LWS_WITH_PEER_LIMITS):
 * concurrent connections, counted from accept, and WebSocket handshakes
 * per second, per vhost.  "ip" is an IPv4 address or an IPv6 address's
 * /64 (the addresses of one /64 share one count). */
#ifndef PAV_PEER_H
#define PAV_PEER_H

#include <stdint.h>

#include "config.h"

struct pav_peer;

/* Connections from ip on vhost now (0 when none). */
int pav_peer_conns(const char *vhost, const char *ip);
/* A connection from ip was accepted on vhost: counts it until
 * pav_peer_release() and returns its record (NULL: out of memory). */
struct pav_peer *pav_peer_hold(const char *vhost, const char *ip);
void pav_peer_release(struct pav_peer *p);
/* Connections of p's IP, the holder's own included. */
int pav_peer_count(const struct pav_peer *p);
/* A WebSocket handshake by p's IP: 0 to go on, or 429 past
 * handshakes_per_s_per_ip in the current second. */
int pav_peer_handshake(struct pav_peer *p, const struct pav_limits *l,
		       int64_t now_ms);
/* Forgets idle peers; returns how many remain. */
size_t pav_peer_sweep(int64_t now_ms);
void pav_peer_free(void);

#endif
