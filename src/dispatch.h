/* dispatch.h — routing client messages to the core and the plugins. */
#ifndef PAV_DISPATCH_H
#define PAV_DISPATCH_H

#include <stddef.h>

#include <json-c/json.h>

#include "pavilion/plugin.h"

struct pav_conn;
struct pav_vhost;

/* Handles one complete client message. */
void pav_dispatch(struct pav_conn *c, const char *buf, size_t len,
		  int binary);

/* Runs the plugins' on_subscribed hooks, after the message being handled
 * has been answered (or at once outside a dispatch). parameters borrowed. */
void pav_dispatch_subscribed(struct pav_conn *c, const char *channel,
			     json_object *parameters, int user_first);

/* The vhost's handler table: register from vhost_create(). */
int pav_dispatch_register(struct pav_vhost *vh, const char *type,
			  pav_handler_fn fn);

struct pav_reply *pav_dispatch_defer(struct pav_conn *c,
				     const struct pav_request *req);
void pav_dispatch_reply(struct pav_reply *r, int code, const char *message,
			json_object *ack);

#endif
