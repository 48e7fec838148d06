/*
 * server.h — libwebsockets glue: the context, one lws vhost per configured
 * vhost and hostname, the protocols' callbacks (short dispatchers to
 * conn.c, session.c, dispatch.c and api.c), signals and the service loop.
 */
#ifndef PAV_SERVER_H
#define PAV_SERVER_H

#include <stddef.h>

#include <libwebsockets.h>

struct pav_core;

/* Runs the gateway until SIGTERM/SIGINT; 0 or -errno. */
int pav_server_run(struct pav_core *core);

/* Remembers a TLS vhost's SSL_CTX while it is being created. */
void pav_server_note_ssl_ctx(void *ssl_ctx);
/* Acts on SIGHUP/SIGTERM/SIGINT noted by the signal handler. */
void pav_server_handle_signals(void);
/* Is the request's Upgrade header "websocket"? (never reads lws' `in`) */
int pav_server_upgrade_is_websocket(struct lws *wsi);

#endif
