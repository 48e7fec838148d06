/* host.h — the services handed to plugins (struct pav_host, ABI 2). */
#ifndef PAV_HOST_H
#define PAV_HOST_H

#include "pavilion/plugin.h"

extern const struct pav_host pav_host_table;

#endif
