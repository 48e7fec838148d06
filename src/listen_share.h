/*
 * listen_share.h — a vhost's listen address shared with other processes
 * (SO_REUSEPORT: the kernel spreads new connections over them), for
 * vhosts with "reuse_port": true.
 */
#ifndef PAV_LISTEN_SHARE_H
#define PAV_LISTEN_SHARE_H

struct lws_context;
struct lws_vhost;

/*
 * Listens on host:port (a numeric address, or an interface: its first
 * IPv4 address, else its first IPv6 one, as lws binds) with SO_REUSEPORT
 * and hands every accepted connection to `target`, an lws vhost created
 * with CONTEXT_PORT_NO_LISTEN_SERVER.  The socket lives until the context
 * goes.  0, or -errno (-EADDRINUSE: taken by a process without
 * SO_REUSEPORT, or by another user; -ENODEV: the interface has no
 * address).
 */
int pav_listen_share(struct lws_context *ctx, struct lws_vhost *target,
		     const char *host, int port);

#endif
