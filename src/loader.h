/* loader.h — finds, checks and loads the plugins the configuration
 * enables. */
#ifndef PAV_LOADER_H
#define PAV_LOADER_H

#include "config.h"
#include "pavilion/plugin.h"

/* Loads "<name>.so" for every plugin some vhost enables; *refused counts
 * those refused (logged). */
int pav_loader_load(const struct pav_config *cfg, int *refused);
const struct pav_plugin *pav_loader_find(const char *name);
void pav_loader_unload(void);

/* The level of the lines that name "*.so" files of plugin_dirs which are
 * not loaded (no vhost enables them): PAV_LOG_INFO by default, --check
 * sets PAV_LOG_WARN.  Call before pav_loader_load(). */
void pav_loader_unused_level(enum pav_log_level level);

#endif
