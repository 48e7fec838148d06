/* peer.h — per-client-IP limits (Debian's lws lacks LWS_WITH_PEER_LIMITS):
 * concurrent WebSocket connections and handshakes per second, per vhost. */
#ifndef PAV_PEER_H
#define PAV_PEER_H

#include <stdint.h>

#include "config.h"

/* A handshake from ip on vhost: 0 to go on, or the HTTP status (429). */
int pav_peer_admit(const char *vhost, const char *ip,
		   const struct pav_limits *l, int64_t now_ms);
/* A WebSocket connection from ip opened (+1) or closed (-1). */
void pav_peer_conn(const char *vhost, const char *ip, int delta);
/* Forgets idle peers; returns how many remain. */
size_t pav_peer_sweep(int64_t now_ms);
void pav_peer_free(void);

#endif
