/* loader.h — finds, checks and loads the plugins the configuration
 * enables. */
#ifndef PAV_LOADER_H
#define PAV_LOADER_H

#include "config.h"
#include "pavilion/plugin.h"

/* Loads the plugins; *refused counts those refused (logged). */
int pav_loader_load(const struct pav_config *cfg, int *refused);
const struct pav_plugin *pav_loader_find(const char *name);
void pav_loader_unload(void);

#endif
