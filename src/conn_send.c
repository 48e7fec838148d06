/*
 * conn_send.c — the messages the gateway itself writes to a connection
 * (acks, errors, heartbeats, server messages; see conn.h): built here,
 * queued through pav_conn_enqueue() and counted.  Apart from conn.c's
 * socket I/O, so that the unit tests' stand-in for conn.c sends through
 * this same code.
 */
#include "conn.h"

#include <errno.h>

#include "metrics.h"
#include "msg.h"

int pav_conn_send(struct pav_conn *c, const char *type, const char *id,
		  const char *channel, json_object *payload)
{
	struct pav_msg *m = pav_msg_build(type, id, channel, payload);
	int rc;

	if (!m)
		return -ENOMEM;
	rc = pav_conn_enqueue(c, m);
	pav_msg_unref(m);
	if (!rc)
		pav_metrics_out(type, 1);
	return rc;
}

void pav_conn_error(struct pav_conn *c, int code, const char *msg,
		    const char *id)
{
	struct pav_msg *m = pav_msg_error(code, msg, id);

	if (!m)
		return;
	if (!pav_conn_enqueue(c, m)) {
		pav_metrics_out("error", 1);
		pav_metrics_error(code);
	}
	pav_msg_unref(m);
}
