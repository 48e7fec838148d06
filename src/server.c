/*
 * server.c — libwebsockets glue: the context, one lws vhost per configured
 * vhost and hostname, the public protocol's callback (a short dispatcher
 * to conn.c, session.c and dispatch.c), signals and the service loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#ifdef PAV_WITH_UV
#include <uv.h>
#endif
#include <ev.h>

#include "server.h"

#include "api.h"
#include "backend.h"
#include "clock.h"
#include "conn.h"
#include "core.h"
#include "dispatch.h"
#include "iface.h"
#include "listen_share.h"
#include "log.h"
#include "map.h"
#include "pav_build.h"
#include "pav_limits.h"
#include "peer.h"
#include "proxy.h"
#include "session.h"
#include "vhost.h"

/* Who a connection is, from the upgrade until the session takes it: on
 * the heap for those few calls, not in every connection's data. */
struct handshake {
	json_object *claims;
	char user[PAV_ID_MAX + 1];
	int64_t exp_ms;
	const char *auth_why; /* non-NULL: refused */
	char peer[48];
};

/* The public protocol's per-connection data. */
struct pav_pss {
	struct pav_conn conn;
	struct pav_session *s; /* NULL until established, or refused */
	struct handshake *hs;  /* from the upgrade to ESTABLISHED */
};

static struct pav_core *core; /* for the signal and lws callbacks */

static volatile sig_atomic_t sig_stop, sig_reload;
static struct lws_context *sig_ctx;
static SSL_CTX **creating_ssl_ctx; /* where the next vhost's SSL_CTX goes */
static lws_sorted_usec_list_t shutdown_sul;

/*
 * The TLS floor of every vhost, public and internal: TLS 1.2 or later and,
 * over TLS 1.2, only forward-secret AEAD suites (TLS 1.3 has no others).
 * Set here rather than left to OpenSSL's defaults, which a host's
 * openssl.cnf may lower (MinProtocol, @SECLEVEL=0) down to TLS 1.0.
 */
#define PAV_TLS_MIN_VERSION TLS1_2_VERSION
#define PAV_TLS12_CIPHERS                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"        \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static int harden_tls(SSL_CTX *ctx)
{
	return SSL_CTX_set_min_proto_version(ctx, PAV_TLS_MIN_VERSION) == 1 &&
	       SSL_CTX_set_cipher_list(ctx, PAV_TLS12_CIPHERS) == 1;
}

/* Remembers a TLS vhost's SSL_CTX while it is being created; one that
 * could not be hardened is not remembered, and create_vhost() fails (lws
 * ignores what this callback returns). */
static void note_ssl_ctx(void *ssl_ctx)
{
	int hardened = harden_tls(ssl_ctx);

	/* idle TLS connections give their read/write buffers back (~34 KiB
	 * each otherwise) */
	SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	if (creating_ssl_ctx && hardened)
		*creating_ssl_ctx = ssl_ctx;
}

static struct pav_vhost *vhost_of(struct lws *wsi)
{
	return lws_vhost_user(lws_get_vhost(wsi));
}

static int header(struct lws *wsi, enum lws_token_indexes t, char *buf,
		  int len)
{
	int n = lws_hdr_copy(wsi, buf, len, t);

	if (n < 0)
		buf[0] = '\0';
	return n;
}

/* Was the header sent at all, even empty?  (lws' total length is 0 for
 * both; its first fragment, copied into one byte, is there only if so.) */
static int header_sent(struct lws *wsi, enum lws_token_indexes t)
{
	char c;

	return lws_hdr_total_length(wsi, t) > 0 ||
	       lws_hdr_copy_fragment(wsi, &c, 1, t, 0) == 0;
}

static const char *status_reason(unsigned code)
{
	switch (code) {
	case HTTP_STATUS_FORBIDDEN:
		return "Forbidden";
	case HTTP_STATUS_NOT_FOUND:
		return "Not Found";
	case 429:
		return "Too Many Requests";
	default:
		return "Service Unavailable";
	}
}

/*
 * An HTTP refusal, then hang up (-1).  Written here rather than with
 * lws_return_http_status(): before lws_http_action() has run (at
 * CONFIRM_UPGRADE) lws 4.1 has not read the request's version and answers
 * "HTTP/1.0", which strict clients refuse to read.  A partial write is
 * kept and flushed by lws before it closes.
 */
static int refuse(struct lws *wsi, unsigned code)
{
	unsigned char buf[LWS_PRE + 256];
	char *p = (char *)buf + LWS_PRE;
	const char *why = status_reason(code);
	int n = snprintf(p, 256,
			 "HTTP/1.1 %u %s\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n"
			 "Connection: close\r\n"
			 "\r\n"
			 "%u %s\n",
			 code, why, strlen(why) + 5, code, why);

	lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_HTTP_HEADERS);
	return -1;
}

/* With allowed_origins, an exact match; or no Origin header at all when
 * allow_missing_origin says so (one sent empty is not missing). */
static int origin_allowed(struct lws *wsi, const struct pav_vhost_config *vc)
{
	char origin[256];

	if (!vc->nallowed_origins)
		return 1;
	if (!header_sent(wsi, WSI_TOKEN_ORIGIN))
		return vc->allow_missing_origin;
	if (header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)) <= 0)
		return 0;
	for (size_t i = 0; i < vc->nallowed_origins; i++)
		if (!strcmp(origin, vc->allowed_origins[i]))
			return 1;
	return 0;
}

/* ---- accepted connections ---------------------------------------------
 *
 * lws keeps one pool of header buffers for the whole process, and a
 * connection holds one from accept (plain) or the end of its TLS handshake
 * until it is upgraded or answered.  The per-IP limits used to run only at
 * the upgrade, so sockets that never got there (a POST whose body trickles
 * in, which lws drains with a timeout that every byte renews) could hold
 * the whole pool: the internal vhost's /healthz and every new handshake
 * waited.  So every
 * connection accepted on a public vhost gets a record, from accept to
 * WSI_DESTROY (the wsi's opaque user data), that
 *  - counts it against its IP's max_connections_per_ip: past the limit it
 *    is answered 429 at its request, far past it closed at accept;
 *  - counts it, until its upgrade, against the public share of the pool:
 *    PAV_HEADER_POOL_RESERVE buffers stay for the internal vhosts, and new
 *    public connections are closed at accept while the rest is taken (the
 *    pool is large enough that one IP within max_connections_per_ip, 256
 *    by default, cannot take the public share; lws allocates a buffer only
 *    while a connection holds it);
 *  - times it: the request must be upgraded or answered within the
 *    vhost's handshake_timeout_s from accept, however its bytes trickle.
 * A plain HTTP request on a public vhost is answered 404 and closed; its
 * body, if any, is never read.
 *
 * A connection of an internal vhost gets a record too, with only its
 * vhost.  By a request's Host, lws may move it to another vhost of its
 * port, one of the other kind included (vhosts on one port at different
 * addresses, every reuse_port vhost): that vhost refuses it as another
 * listener's (pav_api_own_listener()), and whichever callback sees the end
 * releases the record by the rules of the vhost that accepted it.
 */
#define PAV_HEADER_POOL 1024
#define PAV_HEADER_POOL_RESERVE 64
#define PAV_PUBLIC_PENDING_MAX (PAV_HEADER_POOL - PAV_HEADER_POOL_RESERVE)
/* connections past max_connections_per_ip that still get their 429 */
#define PAV_PEER_OVER_ANSWERED 16

struct accepted {
	struct pav_vhost *vh;     /* the vhost whose listener accepted it */
	struct pav_wheel_node tw; /* the request deadline, until upgraded */
	struct lws *wsi;
	struct pav_peer *peer;
	char ip[INET6_ADDRSTRLEN]; /* the client's address, for the logs */
	int over;     /* past max_connections_per_ip: answered 429 */
	int upgraded; /* no longer counted as pending */
	int proxied;  /* from a trusted proxy: the client is known at the
		       * request (trusted_proxies_header), counted from
		       * there */
};

static unsigned public_pending; /* accepted, not yet upgraded or gone */
static struct pav_wheel request_wheel; /* struct accepted deadlines */
static struct pav_log_budget accept_refused_log = {.per_s = 1};
static struct pav_log_budget over_limit_log = {.per_s = 1};
static struct pav_log_budget other_listener_log = {.per_s = 1};
static struct pav_log_budget other_host_log = {.per_s = 1};

/* An accepted socket's client address as text, v4-mapped shown as v4. */
static int peer_text(const struct sockaddr_storage *ss, char *buf,
		     size_t len)
{
	const void *a;

	if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	else if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	else
		return -EAFNOSUPPORT;
	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
		return -errno;
	if (!strncmp(buf, "::ffff:", 7)) /* v4-mapped: use the v4 form */
		memmove(buf, buf + 7, strlen(buf + 7) + 1);
	return 0;
}

/* Closes at accept write one log line a second at most (an attack would
 * otherwise write one per socket). */
static int refuse_accept(const struct pav_vhost *vh, const char *ip,
			 const char *why)
{
	pav_warn_budgeted(&accept_refused_log, "vhost %s peer=%s: connection "
			  "closed at accept (%s)", vh->cfg->name, ip, why);
	return 1;
}

/*
 * What screen_accept() found of the socket it let through, for the record
 * accepted_new() makes of it, so that the address is turned into text
 * once.  In lws 4.1.6 the screen is followed, within the same call, by the
 * new wsi's SERVER_NEW_CLIENT_INSTANTIATED (the accept handler of lws'
 * listener, or of listen_share.c's, adopts the socket right after), or by
 * nothing when the adoption fails; the next accept's screen then starts
 * afresh.  Kept with its fd, which the record must match.  Not always on
 * the same lws vhost: on TLS, lws runs the handshake before that callback,
 * and when it completes there (the client's answer came while the server
 * was still at it: seen under ASan) lws moves the wsi to the vhost whose
 * certificate the client's SNI chose; trusted_proxies is then that
 * vhost's.
 */
static struct {
	int kept; /* 0: nothing kept */
	int fd;
	/* the vhost that screened it, by whose trusted_proxies proxied is */
	const struct lws_vhost *vh;
	int proxied;
	char ip[INET6_ADDRSTRLEN];
} filtered;

/*
 * A public vhost's new socket, accepted by lws' listener or by a
 * reuse_port vhost's (listen_share.c), before lws makes a connection of
 * it: nonzero closes it.  lv is the lws vhost it goes to, peer its
 * client's address as accept() gave it.
 */
static int screen_accept(struct lws_vhost *lv, int fd,
			 const struct sockaddr_storage *peer)
{
	struct pav_vhost *vh = lws_vhost_user(lv);
	char *ip = filtered.ip;

	filtered.kept = 0;
	if (peer_text(peer, ip, sizeof(filtered.ip)))
		return 1;
	if (public_pending >= PAV_PUBLIC_PENDING_MAX)
		return refuse_accept(vh, ip, "header pool reserve");
	/* a trusted proxy carries many clients: each is counted at its
	 * request */
	filtered.proxied = pav_cidr_any(vh->proxies, vh->nproxies, ip);
	if (!filtered.proxied &&
	    pav_peer_conns(vh->cfg->name, ip) >=
		    vh->cfg->limits.max_connections_per_ip +
			    PAV_PEER_OVER_ANSWERED)
		return refuse_accept(vh, ip, "per-IP limit");
	filtered.kept = 1;
	filtered.vh = lv;
	filtered.fd = fd;
	return 0;
}

/* FILTER_NETWORK_CONNECTION on an lws listener (wsi): lws 4.1.6 passes
 * the accepted socket and its client's address in `user`. */
static int filter_accept(struct lws *wsi, void *user)
{
	const struct lws_filter_network_conn_args *f = user;

	return screen_accept(lws_get_vhost(wsi), f->accept_fd, &f->cli_addr);
}

/* The client's address, and whether it is a trusted proxy, as the screen
 * found them.  Every public connection is screened right before it is
 * made (see filtered): one without a match is refused rather than
 * counted nowhere. */
static int accepted_peer(struct lws *wsi, struct accepted *a)
{
	if (!filtered.kept || filtered.fd != lws_get_socket_fd(wsi))
		return -1;
	memcpy(a->ip, filtered.ip, sizeof(a->ip));
	a->proxied = filtered.vh == lws_get_vhost(wsi) ?
			     filtered.proxied :
			     pav_cidr_any(a->vh->proxies, a->vh->nproxies, a->ip);
	filtered.kept = 0;
	return 0;
}

/* A public vhost's record of the connection; NULL for none, or for one an
 * internal vhost accepted (moved here by its Host). */
static struct accepted *public_record(struct lws *wsi)
{
	struct accepted *a = lws_get_opaque_user_data(wsi);

	return a && a->vh->cfg->kind != PAV_VHOST_INTERNAL ? a : NULL;
}

/* Counts the connection against ip's max_connections_per_ip (once: a
 * proxied connection's client may change from request to request). */
static int hold_peer(struct accepted *a, const char *ip)
{
	pav_peer_release(a->peer);
	if (!(a->peer = pav_peer_hold(a->vh->cfg->name, ip)))
		return -ENOMEM;
	a->over = pav_peer_count(a->peer) >
		  a->vh->cfg->limits.max_connections_per_ip;
	return 0;
}

/* SERVER_NEW_CLIENT_INSTANTIATED on a public vhost: the record. */
static int accepted_new(struct lws *wsi)
{
	struct pav_vhost *vh = vhost_of(wsi);
	const struct pav_limits *l = &vh->cfg->limits;
	struct accepted *a = calloc(1, sizeof(*a));
	int64_t due_ms;

	if (!a)
		return -1;
	a->vh = vh;
	if (accepted_peer(wsi, a)) {
		free(a);
		return -1;
	}
	if (!a->proxied && hold_peer(a, a->ip)) {
		free(a);
		return -1;
	}
	a->wsi = wsi;
	public_pending++;
	/* never before the timeout: on the first tick at or after it */
	due_ms = pav_mono_ms() + (int64_t)l->handshake_timeout_s * 1000;
	pav_wheel_add(&request_wheel, &a->tw, pav_wheel_second_of(due_ms));
	lws_set_opaque_user_data(wsi, a);
	return 0;
}

/* Upgraded (or gone): no longer pending, no request deadline. */
static void accepted_done(struct accepted *a)
{
	if (!a || a->upgraded)
		return;
	a->upgraded = 1;
	public_pending--;
	pav_wheel_del(&a->tw);
}

/* SERVER_NEW_CLIENT_INSTANTIATED on an internal vhost: the record. */
static int api_accepted(struct lws *wsi)
{
	struct accepted *a = calloc(1, sizeof(*a));

	if (!a)
		return -1;
	a->vh = vhost_of(wsi);
	pav_api_conn_add(a->vh, wsi);
	lws_set_opaque_user_data(wsi, a);
	return 0;
}

/* WSI_DESTROY, on either kind of vhost: every wsi, with a record or not. */
static void accepted_gone(struct lws *wsi)
{
	struct accepted *a = lws_get_opaque_user_data(wsi);

	if (!a)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	if (a->vh->cfg->kind == PAV_VHOST_INTERNAL) {
		pav_api_conn_gone(a->vh, wsi);
	} else {
		accepted_done(a);
		pav_peer_release(a->peer);
	}
	free(a);
}

static void request_expired(struct pav_wheel_node *n, void *arg)
{
	struct accepted *a = (struct accepted *)((char *)n -
						 offsetof(struct accepted, tw));

	(void)arg;
	pav_debug("request not upgraded or answered within the handshake "
		  "timeout: closing");
	lws_set_timeout(a->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* The header a trusted proxy names its client in (trusted_proxies_header)
 * into buf: its length, or -1 when it was not sent or is longer than
 * PAV_PROXY_HEADER_MAX.  lws 4.1.6 knows no Forwarded header: it is one
 * of its "custom" ones, of which it shows the first line only (README,
 * Known limitations). */
static int proxy_header(struct lws *wsi, int forwarded, char *buf)
{
	static const char name[] = "forwarded:"; /* as lws keeps it */
	int n;

	if (!forwarded)
		return header(wsi, WSI_TOKEN_X_FORWARDED_FOR, buf,
			      PAV_PROXY_HEADER_MAX + 1);
	n = lws_hdr_custom_length(wsi, name, sizeof(name) - 1);
	if (n < 0 || n > PAV_PROXY_HEADER_MAX)
		return -1;
	return lws_hdr_custom_copy(wsi, buf, PAV_PROXY_HEADER_MAX + 1, name,
				   sizeof(name) - 1);
}

/*
 * A request through a trusted proxy: its client is the one the header
 * named by trusted_proxies_header names (proxy.h); without a usable
 * header, the proxy itself.  From here on the connection counts against
 * that address, and logs it.
 */
static int forwarded_client(struct lws *wsi, struct accepted *a)
{
	char value[PAV_PROXY_HEADER_MAX + 1], client[INET6_ADDRSTRLEN];
	int fwd = a->vh->cfg->proxy_forwarded;
	int n = proxy_header(wsi, fwd, value);

	if (n <= 0 ||
	    (fwd ? pav_proxy_forwarded : pav_proxy_client)(
		    value, (size_t)n, a->vh->proxies, a->vh->nproxies, client,
		    sizeof(client)))
		snprintf(client, sizeof(client), "%s", a->ip);
	if (hold_peer(a, client))
		return -ENOMEM;
	memcpy(a->ip, client, sizeof(a->ip));
	return 0;
}

static int admit_peer(struct lws *wsi, struct pav_vhost *vh)
{
	struct accepted *a = public_record(wsi);
	int status;

	if (!a || (a->proxied && forwarded_client(wsi, a)))
		return refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	status = a->over ? 429 : pav_peer_handshake(a->peer, &vh->cfg->limits,
						      pav_mono_ms());
	if (!status)
		return 0;
	pav_warn_budgeted(&over_limit_log, "vhost %s peer=%s: handshake "
			  "refused with %d (per-IP limit)", vh->cfg->name,
			  a->ip, status);
	return refuse(wsi, (unsigned)status);
}

/*
 * CVE-2025-11677: on an Upgrade other than websocket/h2c, lws 4.1.6 answers
 * 403, may release the header table, and still calls us with `in` pointing
 * into it, then compares it again once we return 0.  So `in` is never
 * read here: the header is re-read through the (checked) table, and any
 * upgrade that is not "websocket" hangs up (-1) before lws touches it.
 */
static int upgrade_is_websocket(struct lws *wsi)
{
	char up[16];

	return lws_hdr_copy(wsi, up, sizeof(up), WSI_TOKEN_UPGRADE) > 0 &&
	       !strcasecmp(up, "websocket");
}

/* Before the 101: wrong path, origin or state get an HTTP status. */
static int confirm_upgrade(struct lws *wsi)
{
	struct pav_vhost *vh = vhost_of(wsi);
	const struct pav_vhost *other;
	char path[256];

	if (!upgrade_is_websocket(wsi))
		return -1;
	/* by its Host, lws may hand us another listener's request: that
	 * vhost's clients get neither our path nor our auth */
	if (!pav_api_own_listener(wsi, vh)) {
		pav_warn_budgeted(&other_listener_log, "vhost %s: an upgrade "
				  "came in through another listener: 404",
				  vh->cfg->name);
		return refuse(wsi, HTTP_STATUS_NOT_FOUND);
	}
	if ((other = pav_api_host_names_other(wsi, vh))) {
		pav_warn_budgeted(&other_host_log, "vhost %s: an upgrade whose "
				  "Host names vhost %s: 404", vh->cfg->name,
				  other->cfg->name);
		return refuse(wsi, HTTP_STATUS_NOT_FOUND);
	}
	if (core->shutting_down || !pav_store_ready(&core->store))
		return refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	if (header(wsi, WSI_TOKEN_GET_URI, path, sizeof(path)) <= 0 ||
	    strcmp(path, vh->cfg->ws_path))
		return refuse(wsi, HTTP_STATUS_NOT_FOUND);
	if (!origin_allowed(wsi, vh->cfg))
		return refuse(wsi, HTTP_STATUS_FORBIDDEN);
	return admit_peer(wsi, vh);
}

/* The token: ?token= first, else "Authorization: Bearer". */
static int find_token(struct lws *wsi, char *buf, int len)
{
	const char *arg = lws_get_urlarg_by_name(wsi, "token=", buf, len);

	if (arg && arg[0]) {
		memmove(buf, arg, strlen(arg) + 1);
		return 0;
	}
	/* no ?token=, or an empty one: the Authorization header */
	if (header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, buf, len) <= 0)
		return -ENOENT;
	if (strncasecmp(buf, "Bearer ", 7))
		return -EINVAL;
	memmove(buf, buf + 7, strlen(buf + 7) + 1);
	return 0;
}

static void handshake_free(struct pav_pss *p)
{
	if (!p || !p->hs)
		return;
	json_object_put(p->hs->claims);
	free(p->hs);
	p->hs = NULL;
}

/* At the upgrade: remember who it is.  A bad token still upgrades, so
 * the client gets error 1001 and close 4001 (DESIGN section 2). */
static int filter(struct lws *wsi, struct pav_pss *p)
{
	static char token[PAV_AUTH_MAX_TOKEN + 16];
	const struct accepted *a = public_record(wsi);
	struct handshake *hs;
	int rc;

	memset(p, 0, sizeof(*p));
	if (!(hs = p->hs = calloc(1, sizeof(*hs))))
		return -1; /* lws refuses the upgrade */
	/* read at accept (confirm_upgrade refused a socket without one) */
	if (a)
		snprintf(hs->peer, sizeof(hs->peer), "%s", a->ip);
	rc = find_token(wsi, token, sizeof(token));
	if (rc)
		hs->auth_why = rc == -ENOENT ? "token missing"
					     : "malformed token";
	else if (pav_session_verify(vhost_of(wsi), token, &hs->claims,
				    hs->user, &hs->exp_ms, &hs->auth_why))
		hs->claims = NULL;
	explicit_bzero(token, sizeof(token));
	return 0;
}

static void established(struct lws *wsi, struct pav_pss *p)
{
	struct pav_vhost *vh = vhost_of(wsi);
	struct handshake *hs = p->hs;

	pav_conn_open(&p->conn, wsi, vh->cfg, &core->conn_env,
		      hs ? hs->exp_ms : 0);
	if (!hs) { /* filter() did not run: nobody to open a session for */
		pav_conn_close(&p->conn, 1011, "out of memory");
	} else if (hs->auth_why) {
		pav_session_refuse_token(&p->conn, vh, hs->peer, hs->auth_why);
	} else {
		p->s = pav_session_open(core, vh, &p->conn, hs->user,
					hs->claims, hs->peer);
		hs->claims = NULL; /* the session's now (or freed) */
		if (!p->s)
			pav_conn_close(&p->conn, 1011, "out of memory");
	}
	handshake_free(p);
}

static void receive(struct pav_pss *p, const void *in, size_t len)
{
	const char *msg;
	size_t mlen;
	int binary;

	if (pav_conn_receive(&p->conn, in, len, &msg, &mlen, &binary) == 1 &&
	    p->s)
		pav_dispatch(p->s, msg, mlen, binary);
}

static void closed(struct pav_pss *p)
{
	if (p->s)
		pav_session_closed(p->s);
	p->s = NULL;
	pav_conn_release(&p->conn);
	handshake_free(p);
}

/* A plain HTTP request on a public vhost: 404 and close, body unread. */
static int public_http(struct lws *wsi)
{
	return refuse(wsi, HTTP_STATUS_NOT_FOUND);
}

static void begin_shutdown(void);

/* Acts on SIGHUP/SIGTERM/SIGINT noted by the signal handler. */
static void handle_signals(void)
{
	if (sig_reload) {
		sig_reload = 0;
		pav_vhosts_reload(core);
	}
	if (sig_stop && !core->shutting_down)
		begin_shutdown();
}

static int public_cb(struct lws *wsi, enum lws_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	struct pav_pss *p = user;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		note_ssl_ctx(user);
		return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return filter_accept(wsi, user);
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return accepted_new(wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi);
	case LWS_CALLBACK_HTTP:
		return public_http(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return filter(wsi, p);
	case LWS_CALLBACK_ESTABLISHED:
		accepted_done(public_record(wsi));
		established(wsi, p);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		receive(p, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return pav_conn_writeable(&p->conn);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		pav_conn_peer_closed(&p->conn, in, len);
		return 0;
	case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
		pav_conn_dropping(&p->conn);
		return 0;
	case LWS_CALLBACK_CLOSED:
		closed(p);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		accepted_gone(wsi);
		handshake_free(p); /* one that never became a connection */
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		handle_signals();
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols public_protocols[] = {
	{
		.name = "pavilion",
		.callback = public_cb,
		.per_session_data_size = sizeof(struct pav_pss),
		/* lws allocates this per connection: small, since a longer
		 * message is reassembled (conn.c) only while it is in flight;
		 * it must hold a control frame (125 bytes) */
		.rx_buffer_size = PAV_RX_BUFFER_BYTES,
		/* what one lws_write() may send at once: with 0, lws would
		 * cut every write to rx_buffer_size and send the rest from a
		 * copy, one chunk per writable callback */
		.tx_packet_size = LWS_PRE + PAV_WRITE_BATCH_BYTES,
	},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The internal vhosts: what every vhost's callback does (TLS, upgrades,
 * signals) here, the HTTP API in api.c.  No WebSocket there: 400. */
static int internal_cb(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		note_ssl_ctx(user);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!upgrade_is_websocket(wsi))
			return -1; /* CVE-2025-11677, as in confirm_upgrade() */
		lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, NULL);
		return 1;
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return api_accepted(wsi);
	case LWS_CALLBACK_WSI_DESTROY:
		accepted_gone(wsi);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		handle_signals();
		return 0;
	default:
		return pav_api_callback(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols internal_protocols[] = {
	{
		.name = "pavilion-api",
		.callback = internal_cb,
		.per_session_data_size = sizeof(void *),
		/* an answer's body goes out PAV_API_WRITE_BYTES at a time
		 * (api.c): one send each, not 4 KiB ones (see above) */
		.tx_packet_size = LWS_PRE + PAV_API_WRITE_BYTES,
	},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Off unless a vhost says "permessage_deflate": true.  Inflated messages
 * are capped like any other (conn.c counts what lws hands over). */
static const struct lws_extension deflate_exts[] = {
	{"permessage-deflate", lws_extension_callback_pm_deflate,
	 "permessage-deflate; client_no_context_takeover; "
	 "client_max_window_bits"},
	{NULL, NULL, NULL},
};

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		sig_reload = 1;
	else
		sig_stop = 1;
	if (sig_ctx)
		lws_cancel_service(sig_ctx);
}

void pav_server_catch_stop(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART; /* the files being read are read whole */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
}

static void install_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sig_stop) /* during the start: the loop's first turn stops */
		lws_cancel_service(sig_ctx);
}

/* No lws validity pings or idle hang-ups (a timer per connection in lws'
 * sorted list): the gateway's heartbeat and idle timeout do that job. */
static const lws_retry_bo_t no_idle_policy = {0};

static void fill_vhost_info(struct lws_context_creation_info *info,
			    struct pav_vhost *vh, const char *name)
{
	const struct pav_vhost_config *vc = vh->cfg;

	memset(info, 0, sizeof(*info));
	info->port = vc->port;
	info->iface = vc->listen_host;
	info->vhost_name = name;
	info->user = vh;
	info->protocols = vc->kind == PAV_VHOST_INTERNAL ? internal_protocols
							 : public_protocols;
	info->options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
			LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
			LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	/* lws 4.1 with IPv6 on binds "127.0.0.1" as [::] (every interface):
	 * an IPv4 listen address gets an IPv4 socket */
	if (!strchr(vc->listen_host, ':'))
		info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	/* several processes on one host share the port (SO_REUSEPORT): the
	 * kernel spreads new connections over them.  lws 4.1 sets that
	 * option only with several service threads: the gateway listens
	 * itself (listen_share.c) and lws serves what it accepts */
	if (vc->reuse_port)
		info->port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info->timeout_secs = (unsigned)vc->limits.handshake_timeout_s;
	info->timeout_secs_ah_idle = (unsigned)vc->limits.handshake_timeout_s;
	info->keepalive_timeout = 5;
	info->retry_and_idle_policy = &no_idle_policy;
	info->alpn = "http/1.1";
	if (vc->permessage_deflate)
		info->extensions = deflate_exts;
	if (vc->tls) {
		info->ssl_cert_filepath = vc->tls_cert;
		info->ssl_private_key_filepath = vc->tls_key;
	}
}

static int create_vhost(struct lws_context *ctx, struct pav_vhost *vh,
			const char *name)
{
	struct lws_context_creation_info info;
	struct pav_lws_vhost *slot = &vh->lws[vh->nlws];

	fill_vhost_info(&info, vh, name);
	slot->ssl_ctx = NULL;
	creating_ssl_ctx = &slot->ssl_ctx;
	slot->lv = lws_create_vhost(ctx, &info);
	creating_ssl_ctx = NULL;
	if (slot->lv && vh->cfg->tls && !slot->ssl_ctx) {
		pav_err("vhost %s: cannot set the TLS protocol floor and "
			"ciphers", vh->cfg->name);
		return -EINVAL;
	}
	if (!slot->lv ||
	    (vh->cfg->reuse_port && !vh->nlws &&
	     pav_listen_share(ctx, slot->lv, vh->cfg->listen_host,
			      vh->cfg->port,
			      vh->cfg->kind == PAV_VHOST_INTERNAL ?
			      NULL : screen_accept))) {
		pav_err("vhost %s: cannot listen on %s:%d (or bad TLS files)",
			vh->cfg->name, vh->cfg->listen_host, vh->cfg->port);
		return -EADDRINUSE;
	}
	vh->nlws++;
	return 0;
}

static int create_vhosts(struct pav_core *gw)
{
	for (size_t i = 0; i < gw->nvhosts; i++) {
		struct pav_vhost *vh = &gw->vhosts[i];
		const struct pav_vhost_config *vc = vh->cfg;
		size_t n = vc->nhostnames ? vc->nhostnames : 1;

		vh->lws = calloc(n, sizeof(*vh->lws));
		if (!vh->lws)
			return -ENOMEM;
		for (size_t k = 0; k < n; k++)
			if (create_vhost(gw->lws, vh,
					 vc->nhostnames ?
					 pav_hostname_lws(vc->hostnames[k]) :
					 vc->name))
				return -EINVAL;
		pav_info("vhost %s listening on %s:%d (%s%s)", vc->name,
			 vc->listen_host, vc->port,
			 vc->kind == PAV_VHOST_INTERNAL ? "internal API, " : "",
			 vc->tls ? "TLS" : "plain");
	}
	return 0;
}

/* lws warns for each request it cannot read, and may write several lines
 * at start: a budget that the start fits in and a flood does not. */
static struct pav_log_budget lws_log = {.per_s = 10};

static void lws_log_bridge(int level, const char *line)
{
	size_t n = strlen(line);
	char buf[512];
	unsigned held;

	if (!pav_log_budget_take(&lws_log, pav_mono_ms()))
		return;
	held = pav_log_budget_held(&lws_log);
	if (held)
		pav_log(PAV_LOG_WARN, "lws", "%u lines held back", held);
	snprintf(buf, sizeof(buf), "%.*s", (int)(n && line[n - 1] == '\n' ?
						 n - 1 : n), line);
	pav_log(level == LLL_ERR ? PAV_LOG_ERROR : PAV_LOG_WARN, "lws", "%s",
		buf);
}

/* What a direct fan-out (conn.c) lets in first. */
static int api_input_waiting(void *core)
{
	return pav_api_busy(core);
}

/*
 * Fan-out writes: slice after slice, until none is left or the backend
 * waits on us (an answer to write, a request to read); then the loop
 * serves it first, so what it publishes next shares the writes still to
 * come.  A pass that fits in one slice never looks at input mid-way, so
 * before it starts, requests already waiting are served first, for at
 * most PAV_FLUSH_DEFER_TURNS turns: publications from several publishers
 * then share one pass (one send() per connection) instead of a pass each.
 * An idle backend (a lone publication) is written at once.  1 when some
 * are left.
 */
static int flush_slices(struct pav_core *c)
{
	struct pav_conn_env *e = &c->conn_env;
	int more;

	if (!e->head && e->ndirty && e->ndirty <= PAV_FLUSH_SLICE &&
	    pav_api_busy(c) && e->deferred < PAV_FLUSH_DEFER_TURNS) {
		e->deferred++;
		return 1;
	}
	e->deferred = 0;
	do
		more = pav_conns_flush(e, PAV_FLUSH_SLICE);
	while (more && !pav_api_busy(c));
	return more;
}

/* The end of a loop turn, in every loop: the claims parsed during it are
 * let go, then the fan-out writes.  1 when some writes are left. */
static int turn_over(struct pav_core *c)
{
	pav_sessions_turn_over(c);
	return flush_slices(c);
}

#ifdef PAV_WITH_UV
static uv_loop_t uv_loop;
static uv_check_t uv_flush; /* after each turn's I/O: write what was
			       delivered during it */
static int uv_flush_on;

static uv_idle_t uv_spin; /* keeps polls from waiting while a pass runs */

static void uv_spin_cb(uv_idle_t *h)
{
	(void)h;
}

static void uv_flush_cb(uv_check_t *h)
{
	(void)h;
	if (turn_over(core))
		uv_idle_start(&uv_spin, uv_spin_cb);
	else
		uv_idle_stop(&uv_spin);
}
#endif
/*
 * The default loop: libev (epoll on Linux), which lws drives through its
 * libev plugin on a loop we own.  lws's own poll loop scans every
 * descriptor on every turn; at 10,000 connections that scan was a fifth
 * of the CPU of a fan-out.
 */
static struct ev_loop *ev_base;
static ev_check ev_flush; /* after each turn's I/O callbacks (lowest
			     priority, so it runs after them) */
static ev_idle ev_spin;	  /* keeps the loop from waiting while a pass runs */

static void ev_spin_cb(struct ev_loop *l, ev_idle *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
}

static void ev_flush_cb(struct ev_loop *l, ev_check *w, int revents)
{
	(void)w;
	(void)revents;
	if (turn_over(core))
		ev_idle_start(l, &ev_spin);
	else
		ev_idle_stop(l, &ev_spin);
}

static int use_uv, use_ev;
static int stop_loop;

static struct lws_context *create_context(const struct pav_config *cfg)
{
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	static void *loops[1];

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.max_http_header_data = 4096;
	info.max_http_header_pool = PAV_HEADER_POOL;
	/* lws times the TCP/TLS accept with the context's value: the
	 * strictest vhost's handshake timeout */
	info.timeout_secs = PAV_DEF_HANDSHAKE_TIMEOUT_S;
	for (size_t i = 0; i < cfg->nvhosts; i++)
		if ((unsigned)cfg->vhosts[i].limits.handshake_timeout_s <
		    info.timeout_secs)
			info.timeout_secs =
				(unsigned)cfg->vhosts[i].limits.handshake_timeout_s;
	info.timeout_secs_ah_idle = info.timeout_secs;
	/* lws writes NULL there once the context is wholly gone */
	info.pcontext = &core->lws;
	use_uv = cfg->event_loop && !strcmp(cfg->event_loop, "uv");
	if (use_uv) {
#ifdef PAV_WITH_UV
		/* our own loop ("foreign" to lws): we run it and stop it, and
		 * signals stay ours */
		if (uv_loop_init(&uv_loop))
			return NULL;
		loops[0] = &uv_loop;
		info.foreign_loops = loops;
		info.options |= LWS_SERVER_OPTION_LIBUV;
#else
		pav_err("event_loop \"uv\": built without libuv");
		return NULL;
#endif
	}
	use_ev = cfg->event_loop && !strcmp(cfg->event_loop, "ev");
	if (use_ev) {
		/* ours too; signals stay ours (lws watches none on a foreign
		 * loop, and libev leaves the signal mask alone) */
		ev_base = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
		if (!ev_base)
			return NULL;
		loops[0] = ev_base;
		info.foreign_loops = loops;
		info.options |= LWS_SERVER_OPTION_LIBEV;
	}
	ctx = lws_create_context(&info);
	if (ctx || !(use_ev || use_uv))
		return ctx;
	/* lws loads its event-library glue as a plugin at run time */
	pav_err("event_loop \"%s\": libwebsockets could not start its %s "
		"plugin (Debian: package libwebsockets-evlib-%s)",
		cfg->event_loop, use_ev ? "libev" : "libuv", cfg->event_loop);
	if (use_ev) {
		ev_loop_destroy(ev_base);
		ev_base = NULL;
	}
#ifdef PAV_WITH_UV
	if (use_uv)
		uv_loop_close(&uv_loop);
#endif
	return NULL;
}

/*
 * The open-file limit is the most sockets this process can hold, and lws
 * sizes its fd table by it when the context is made.  Debian's lws 4.1.6
 * is built with _DEBUG, which walks that whole table on every close:
 * ~0.6 ms at 1,048,576 entries (a close storm of 10,000 clients would
 * stop the loop for 6 s), ~70 us at 65,536.  So the soft limit is set to
 * PAV_MAX_OPEN_FILES (or the hard limit when lower): raised from a
 * shell's 1,024 as well as lowered from a unit's 1,048,576.
 */
static void set_open_file_limit(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	was = rl.rlim_cur;
	rl.rlim_cur = PAV_MAX_OPEN_FILES;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
		rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur == was)
		return;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		pav_warn("cannot set the open-file limit to %llu: %s (it "
			 "stays %llu)", (unsigned long long)rl.rlim_cur,
			 strerror(errno), (unsigned long long)was);
		return;
	}
	pav_info("open-file limit %llu (was %llu): at most that many "
		 "connections and other files", (unsigned long long)rl.rlim_cur,
		 (unsigned long long)was);
}

static lws_sorted_usec_list_t housekeeping_sul;

/* Once a second: connection deadlines (on the monotonic clock, as the
 * wheels are), the store's sweeps (on the wall clock, as its records'
 * times are); every ten, forget idle peers. */
static void housekeeping(lws_sorted_usec_list_t *sul)
{
	static unsigned ticks;
	int64_t now = pav_mono_ms(), wall = pav_now_ms();

	(void)sul;
	pav_conns_tick(&core->conn_env, now, wall);
	pav_wheel_advance(&request_wheel, now / 1000, request_expired, NULL);
	if (core->store.be && core->store.be->state->tick)
		core->store.be->state->tick(core->store.state, wall);
	if (ticks++ % 10 == 0)
		pav_peer_sweep(now);
	/* aim just past the next whole second (the wheels' slots) */
	lws_sul_schedule(core->lws, 0, &housekeeping_sul, housekeeping,
			 (lws_usec_t)(1000 - now % 1000 +
				      PAV_WHEEL_TICK_PAST_MS) * LWS_US_PER_MS);
}

static void request_stop(void)
{
	stop_loop = 1;
	pav_debug("shutdown: leaving the event loop");
	/* we may be inside a service round that would wait for the next
	 * timer before returning */
	lws_cancel_service(core->lws);
#ifdef PAV_WITH_UV
	if (use_uv)
		uv_stop(&uv_loop);
#endif
	if (use_ev)
		ev_break(ev_base, EVBREAK_ALL);
}

static int cut_one(const char *key, void *val, void *arg)
{
	struct pav_session *s = val;

	(void)key;
	(void)arg;
	/* killed on the next service round, not inside this walk */
	if (s->hc.conn)
		lws_set_timeout(s->hc.conn->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	return 0;
}

/* While stopping: every 100 ms, see whether everyone has gone; at the
 * deadline cut those who did not answer the close, then leave. */
static void shutdown_tick(lws_sorted_usec_list_t *sul)
{
	static int cut;
	int64_t now = pav_mono_ms();
	/* connections open or still in their closing handshake (every open
	 * session has one; on the uv loop the context would otherwise go
	 * before their close frames), and closed sessions the store still
	 * removes */
	size_t left = core->conn_env.live + core->closing;

	(void)sul;
	if (!left || now >= core->shutdown_deadline_ms + 1000) {
		request_stop();
		return;
	}
	if (now >= core->shutdown_deadline_ms && !cut) {
		cut = 1;
		pav_info("shutdown: cutting %zu connections that did not "
			 "answer the close", left);
		pav_map_each(core->sessions, cut_one, NULL);
	}
	lws_sul_schedule(core->lws, 0, &shutdown_sul, shutdown_tick,
			 100 * LWS_US_PER_MS);
}

/* SIGTERM/SIGINT: close everyone with 1001, then wait for them (bounded). */
static void begin_shutdown(void)
{
	pav_info("shutting down: closing %zu connections with 1001",
		 pav_map_count(core->sessions));
	core->shutting_down = 1;
	/* clients that do not answer the close frame in time are cut when
	 * the context goes: the whole exit stays well within the grace */
	core->shutdown_deadline_ms =
		pav_mono_ms() + PAV_SHUTDOWN_CLOSE_WAIT_S * 1000;
	pav_sessions_close_all(core, LWS_CLOSE_STATUS_GOINGAWAY,
			       "server shutting down");
	shutdown_tick(NULL);
}

static void run_loop(struct pav_core *c)
{
#ifdef PAV_WITH_UV
	if (use_uv) {
		while (!stop_loop)
			uv_run(&uv_loop, UV_RUN_DEFAULT);
		return;
	}
#endif
	if (use_ev) {
		while (!stop_loop)
			ev_run(ev_base, 0);
		return;
	}
	int more = 0;

	/* while a fan-out pass is unfinished, the loop looks at its input
	 * without waiting, between slices */
	while (!stop_loop && lws_service(c->lws, more ? -1 : 0) >= 0) {
		more = turn_over(c);
		handle_signals();
	}
}

static void destroy_context(struct pav_core *c)
{
	lws_context_destroy(c->lws);
	pav_conn_env_free(&c->conn_env);
#ifdef PAV_WITH_UV
	if (use_uv) {
		if (uv_flush_on) {
			uv_check_stop(&uv_flush);
			uv_close((uv_handle_t *)&uv_flush, NULL);
			uv_idle_stop(&uv_spin);
			uv_close((uv_handle_t *)&uv_spin, NULL);
			uv_flush_on = 0;
		}
		/* lws closes its handles on our loop: let them finish; a
		 * context still there then takes a last destroy outside the
		 * loop (lws 4.1's third stage: without it, everything lws
		 * holds leaked at exit on the uv loop) */
		uv_run(&uv_loop, UV_RUN_DEFAULT);
		for (int i = 0; c->lws && i < 3; i++) {
			lws_context_destroy(c->lws);
			uv_run(&uv_loop, UV_RUN_DEFAULT);
		}
		uv_loop_close(&uv_loop);
	}
#endif
	if (use_ev && ev_base) {
		/* lws stops its watchers; libev closes nothing later, but
		 * the context may need more than one destroy (as on uv) */
		ev_check_stop(ev_base, &ev_flush);
		ev_idle_stop(ev_base, &ev_spin);
		for (int i = 0; c->lws && i < 3; i++) {
			ev_run(ev_base, EVRUN_NOWAIT);
			lws_context_destroy(c->lws);
		}
		ev_loop_destroy(ev_base);
		ev_base = NULL;
	}
	c->lws = NULL;
}

static int open_store(struct pav_core *c)
{
	const struct pav_backend_env env = {
		.lws = c->lws,
		.deliver = pav_session_deliver,
		.resync = pav_session_resync,
		.user_gone = pav_session_user_gone,
		.user_back = pav_session_user_back,
		.arg = c,
	};
	char err[512];
	int rc = pav_store_open(&c->store, &c->cfg.store, &env, err,
				sizeof(err));

	if (rc)
		pav_err("%s", err);
	else
		pav_config_forget_store_passwords(&c->cfg);
	return rc;
}

/*
 * lws 4.1.6 looks every listen address up with getifaddrs() and, when that
 * fails (no netlink socket: systemd's RestrictAddressFamilies without
 * AF_NETLINK), binds the wildcard address instead and says nothing but
 * an error line: a loopback-only vhost, the internal API's included,
 * would listen on every interface.  So no start without the list.
 */
static int interfaces_listable(void)
{
	int rc = pav_iface_listable();

	if (rc)
		pav_err("cannot list the network interfaces (getifaddrs: %s), "
			"without which libwebsockets binds every address "
			"instead of a vhost's listen: not starting (allow "
			"AF_NETLINK sockets; systemd: RestrictAddressFamilies)",
			strerror(-rc));
	return rc;
}

int pav_server_run(struct pav_core *c)
{
	int rc = -EINVAL;

	core = c;
	if (interfaces_listable())
		return -EINVAL;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
	set_open_file_limit();
	c->lws = create_context(&c->cfg);
	if (!c->lws) {
		pav_err("cannot create the libwebsockets context");
		return -EINVAL;
	}
	sig_ctx = c->lws;
	install_signals();
	if (open_store(c) || create_vhosts(c))
		goto out;
	pav_wheel_init(&c->conn_env.wheel, pav_mono_ms() / 1000);
	c->conn_env.close_outside = use_uv; /* conn.c, closing */
	c->conn_env.input_waiting = api_input_waiting;
	c->conn_env.input_arg = c;
	pav_wheel_init(&request_wheel, pav_mono_ms() / 1000);
#ifdef PAV_WITH_UV
	if (use_uv) {
		uv_check_init(&uv_loop, &uv_flush);
		uv_check_start(&uv_flush, uv_flush_cb);
		uv_idle_init(&uv_loop, &uv_spin);
		uv_flush_on = 1;
	}
#endif
	if (use_ev) {
		ev_check_init(&ev_flush, ev_flush_cb);
		ev_set_priority(&ev_flush, EV_MINPRI);
		ev_check_start(ev_base, &ev_flush);
		ev_idle_init(&ev_spin, ev_spin_cb);
		ev_set_priority(&ev_spin, EV_MINPRI);
	}
	housekeeping(NULL);
	pav_info("pavilion-gateway %s ready (%s event loop, %s store)",
		 PAV_VERSION, use_uv ? "libuv" : use_ev ? "libev" : "poll",
		 c->cfg.store.backend);
	run_loop(c);
	rc = 0;
out:
	lws_sul_cancel(&shutdown_sul);
	lws_sul_cancel(&housekeeping_sul);
	sig_ctx = NULL;
	/* the store lets go of the loop first; sessions closed by the
	 * context's end then find it answering -ECANCELED */
	pav_store_shutdown(&c->store);
	destroy_context(c);
	pav_store_close(&c->store);
	core = NULL;
	pav_info("stopped");
	return rc;
}
