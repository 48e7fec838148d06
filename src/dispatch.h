/* dispatch.h — a complete client message: rate limit, envelope, the
 * gateway's own types (heartbeat_ack, auth), then the handler the vhost
 * registered for the type; acks and errors carry the client's id. */
#ifndef PAV_DISPATCH_H
#define PAV_DISPATCH_H

#include <stddef.h>

struct pav_session;

/* Handles one complete client message of the session. */
void pav_dispatch(struct pav_session *s, const char *buf, size_t len,
		  int binary);

/* Is rc a valid handler return (0, PAV_PENDING or a protocol code)? */
int pav_dispatch_valid_return(int rc);

#endif
