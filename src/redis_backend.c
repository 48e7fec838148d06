/* redis_backend.c — placeholder until the Redis backend lands. */
#include "redis_backend.h"

#include <errno.h>
#include <stdio.h>

static int not_yet(const struct pav_store_config *cfg,
		   const struct pav_backend_env *env, void **self, char *err,
		   size_t errlen)
{
	(void)cfg;
	(void)env;
	*self = NULL;
	snprintf(err, errlen, "backend \"redis\" is not available in this "
		 "build");
	return -ENOTSUP;
}

const struct pav_state_ops pav_redis_state = {.create = not_yet};
const struct pav_broker_ops pav_redis_broker = {0};
