/* redis_backend.h — the "redis" backend: several gateway processes on one
 * (or several sharded) Redis servers are one gateway (DESIGN 7.2). */
#ifndef PAV_REDIS_BACKEND_H
#define PAV_REDIS_BACKEND_H

#include "broker.h"
#include "state.h"

extern const struct pav_state_ops pav_redis_state;
extern const struct pav_broker_ops pav_redis_broker;

#endif
