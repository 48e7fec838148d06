/*
 * fake_host.c — stands in for src/host.c (whose timers need a live lws
 * context) where vhost.c is linked: the table it hands to vhost_create()
 * and the timer cleanup.  The tests that link it never create plugin
 * instances through vhost.c, so the table's entries stay NULL.
 */
#include "host.h"

const struct pav_host pav_host_table = {
	.version = PAV_HOST_VERSION,
	.size = sizeof(struct pav_host),
};

void pav_host_timers_cancel(struct pav_vhost *vh)
{
	(void)vh;
}
