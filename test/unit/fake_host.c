/*
 * fake_host.c — stands in for src/host.c where vhost.c is linked: the
 * table main.c hands to vhost_create().  The tests that link it never create plugin
 * instances through vhost.c, so the table's entries stay NULL.
 */
#include "host.h"

const struct pav_host pav_host_table = {
	.version = PAV_HOST_VERSION,
	.size = sizeof(struct pav_host),
};
