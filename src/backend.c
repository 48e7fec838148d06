/*
 * backend.c — the registry of store backends, and opening one by the
 * name the configuration gives.  A new backend is one line in `backends`.
 */
#include "backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memory.h"
#include "redis_backend.h"

static const struct pav_backend backends[] = {
	{"memory", &pav_memory_state, &pav_memory_broker},
	{"redis", &pav_redis_state, &pav_redis_broker},
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

const struct pav_backend *pav_backend_find(const char *name)
{
	for (size_t i = 0; name && i < NBACKENDS; i++)
		if (!strcmp(backends[i].name, name))
			return &backends[i];
	return NULL;
}

const char *pav_backend_names(void)
{
	static char names[128];
	size_t n = 0;

	if (names[0])
		return names;
	for (size_t i = 0; i < NBACKENDS && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
				      i ? ", " : "", backends[i].name);
	return names;
}

int pav_store_open(struct pav_store *st, const struct pav_store_config *cfg,
		   const struct pav_backend_env *env, char *err, size_t errlen)
{
	char why[512] = "";
	int rc;

	memset(st, 0, sizeof(*st));
	st->be = pav_backend_find(cfg->backend);
	if (!st->be) {
		snprintf(err, errlen, "%s: store.backend: no backend \"%s\" "
			 "(have %s)", cfg->file ? cfg->file : "config",
			 cfg->backend ? cfg->backend : "", pav_backend_names());
		return -ENOENT;
	}
	rc = st->be->state->create(cfg, env, &st->state, why, sizeof(why));
	if (!rc)
		rc = st->be->broker->create(cfg, env, st->state, &st->broker,
					    why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: store: %s",
			 cfg->file ? cfg->file : "config", why);
		pav_store_close(st);
	}
	return rc;
}

void pav_store_shutdown(struct pav_store *st)
{
	if (st->be && st->be->state->shutdown)
		st->be->state->shutdown(st->state);
}

void pav_store_close(struct pav_store *st)
{
	if (!st->be)
		return;
	if (st->broker)
		st->be->broker->destroy(st->broker);
	if (st->state)
		st->be->state->destroy(st->state);
	memset(st, 0, sizeof(*st));
}
