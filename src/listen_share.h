/*
 * listen_share.h — a vhost's listen address shared with other processes
 * (SO_REUSEPORT: the kernel spreads new connections over them), for
 * vhosts with "reuse_port": true.
 */
#ifndef PAV_LISTEN_SHARE_H
#define PAV_LISTEN_SHARE_H

struct lws_context;
struct lws_vhost;
struct sockaddr_storage;

/*
 * Looks at a connection just accepted for `target`, before lws has it, as
 * lws' FILTER_NETWORK_CONNECTION does for its own listeners (which it
 * calls for none of these): nonzero refuses it, and it is closed.  peer is
 * its client's address, as accept() gave it.
 */
typedef int (*pav_accept_filter)(struct lws_vhost *target, int fd,
				 const struct sockaddr_storage *peer);

/*
 * Listens on host:port (a numeric address, or an interface: its first
 * IPv4 address, else its first IPv6 one, as lws binds) with SO_REUSEPORT
 * and hands every accepted connection that `filter` (if any) lets through
 * to `target`, an lws vhost created with CONTEXT_PORT_NO_LISTEN_SERVER.
 * The socket lives until the context goes.  0, or -errno (-EADDRINUSE:
 * taken by a process without SO_REUSEPORT, or by another user; -ENODEV:
 * the interface has no address).
 */
int pav_listen_share(struct lws_context *ctx, struct lws_vhost *target,
		     const char *host, int port, pav_accept_filter filter);

#endif
