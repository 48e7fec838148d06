/*
 * server.h — libwebsockets glue: the context, one lws vhost per configured
 * vhost and hostname, the protocols' callbacks (short dispatchers to
 * conn.c, session.c, dispatch.c and api.c), signals and the service loop.
 */
#ifndef PAV_SERVER_H
#define PAV_SERVER_H

struct pav_core;

/* Runs the gateway until SIGTERM/SIGINT; 0 or -errno. */
/* From the start of the process: SIGTERM and SIGINT are noted, not
 * fatal, so a stop asked for while configuration, plugins and keys load
 * ends in the shutdown of pav_server_run() (exit 0); SIGHUP is ignored
 * until then (what it would reload is being loaded anyway). */
void pav_server_catch_stop(void);
int pav_server_run(struct pav_core *core);

#endif
