/* loader.h — plugin loader settings (its main calls are in gateway.h). */
#ifndef PAV_LOADER_H
#define PAV_LOADER_H

#include "pavilion/plugin.h" /* enum pav_log_level */

/* The level of the lines that name "*.so" files of plugin_dirs which are
 * not loaded (no vhost enables them): PAV_LOG_INFO by default, --check
 * sets PAV_LOG_WARN.  Call before pav_loader_load(). */
void pav_loader_unused_level(enum pav_log_level level);

#endif
