/*
 * core.h — one gateway process: its configuration, vhosts, sessions, hub
 * and store, handed around as a context pointer (no module globals).
 */
#ifndef PAV_CORE_H
#define PAV_CORE_H

#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "conn.h"

struct lws_context;
struct pav_hub;
struct pav_map;
struct pav_vhost;
struct pav_ns;

struct pav_core {
	struct pav_config cfg;
	struct lws_context *lws;
	struct pav_vhost *vhosts;
	size_t nvhosts;
	struct pav_ns *nss;
	size_t nns;
	struct pav_map *sessions; /* id (hex) -> struct pav_session */
	struct pav_map *live;     /* "ns\x1fchannel" -> waiters for the feed */
	uint64_t next_id;
	uint32_t joins; /* subscriptions made, for their serials (session.c) */
	size_t closing; /* closed sessions whose close the store still runs */
	struct pav_hub *hub;
	struct pav_store store;
	struct pav_conn_env conn_env;
	struct pav_session *claims_turn; /* sessions whose claims are parsed */
	int shutting_down;
	int64_t shutdown_deadline_ms;
};

#endif
