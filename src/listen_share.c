/*
 * listen_share.c — a listen address shared by several processes
 * (SO_REUSEPORT) for a vhost with "reuse_port" (see listen_share.h).
 *
 * Why not lws' own listener: libwebsockets 4.1 sets SO_REUSEPORT only
 * when the context runs several service threads, and Debian builds it
 * with one (LWS_MAX_SMP 1), so a second process could not bind.  Here
 * the gateway makes the listening socket itself and lws polls it as a
 * raw file on a vhost of ours; each accepted connection is adopted by the
 * vhost's lws vhost (made with CONTEXT_PORT_NO_LISTEN_SERVER), which then
 * serves it as if its own listener had accepted it (HTTP, the WebSocket
 * upgrade, TLS when the vhost has it).  lws owns the listening socket
 * once adopted and closes it with the context.  lws calls no
 * FILTER_NETWORK_CONNECTION for an adopted socket: the caller's filter
 * takes its place, between the accept and the adoption.
 */
#include "listen_share.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "iface.h"
#include "log.h"

#define HELPER_VHOST "pavilion-listen"
#define PROTOCOL_NAME "pavilion-listen"
#define ACCEPTS_PER_CALLBACK 64 /* then let the other sockets have a turn */

struct listener {
	struct lws_vhost *target; /* where accepted connections go */
	pav_accept_filter filter; /* NULL: all of them */
	int fd;
};

static void accept_some(struct listener *l)
{
	const int one = 1;

	for (int i = 0; i < ACCEPTS_PER_CALLBACK; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				pav_warn("shared listen: accept: %s",
					 strerror(errno));
			return;
		}
		if (l->filter && l->filter(l->target, fd, &peer)) {
			close(fd); /* as lws closes what its filter refuses */
			continue;
		}
		/* as lws sets it on what its own listeners accept: a frame
		 * must not wait for the ACK of the one before */
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			pav_warn("shared listen: TCP_NODELAY: %s",
				 strerror(errno));
		/* lws takes the socket (and closes it when it fails) */
		if (!lws_adopt_socket_vhost(l->target, fd))
			pav_warn("shared listen: a connection was not adopted");
	}
}

static int listen_cb(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	struct listener *l = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (l)
			accept_some(l);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		lws_set_opaque_user_data(wsi, NULL);
		free(l);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{PROTOCOL_NAME, listen_cb, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws_vhost *helper_vhost(struct lws_context *ctx)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh = lws_get_vhost_by_name(ctx, HELPER_VHOST);

	if (vh)
		return vh;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = HELPER_VHOST;
	info.protocols = protocols;
	return lws_create_vhost(ctx, &info);
}

/* Which of an interface's addresses to bind, as lws binds one for its
 * own listeners: the first IPv4 address, else the first IPv6 one. */
struct iface_pick {
	char v4[INET6_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
};

static int pick(const char *ip, void *arg)
{
	struct iface_pick *p = arg;
	char *to = strchr(ip, ':') ? p->v6 : p->v4;

	if (!*to)
		snprintf(to, INET6_ADDRSTRLEN, "%s", ip);
	return 0; /* see them all */
}

/* A bound, listening, non-blocking socket with SO_REUSEPORT on host (an
 * IP address or an interface); -errno. */
static int listen_socket(const char *host, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int one = 1, fd, family;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		family = a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		family = a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof(*a6);
	} else {
		struct iface_pick p = {"", ""};

		pav_iface_any_addr(host, pick, &p);
		if (!*p.v4 && !*p.v6)
			return -ENODEV;
		return listen_socket(*p.v4 ? p.v4 : p.v6, port);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if ((family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, SOMAXCONN)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int pav_listen_share(struct lws_context *ctx, struct lws_vhost *target,
		     const char *host, int port, pav_accept_filter filter)
{
	struct lws_vhost *helper = helper_vhost(ctx);
	struct listener *l = calloc(1, sizeof(*l));
	lws_adopt_desc_t ad;
	int fd = -EINVAL;

	if (!helper || !l || (fd = listen_socket(host, port)) < 0) {
		free(l);
		return fd < 0 ? fd : -ENOMEM;
	}
	l->target = target;
	l->filter = filter;
	l->fd = fd;
	memset(&ad, 0, sizeof(ad));
	ad.vh = helper;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = fd;
	ad.vh_prot_name = PROTOCOL_NAME;
	ad.opaque = l;
	if (!lws_adopt_descriptor_vhost_via_info(&ad)) {
		close(fd);
		free(l);
		return -EIO;
	}
	return 0;
}
