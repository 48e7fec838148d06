/*
 * server.h — libwebsockets glue: the context, one lws vhost per configured
 * vhost and hostname, the protocols' callbacks (short dispatchers to
 * conn.c, session.c, dispatch.c and api.c), signals and the service loop.
 */
#ifndef PAV_SERVER_H
#define PAV_SERVER_H

struct pav_core;

/* Runs the gateway until SIGTERM/SIGINT; 0 or -errno. */
int pav_server_run(struct pav_core *core);

#endif
