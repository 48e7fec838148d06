/*
 * pavbench — WebSocket load generator for pavilion-gateway (and, for
 * comparison, nginx + nchan).  One thread, one epoll set, loopback only.
 *
 *   pavbench idle   -n N [--tls] --secret FILE [--server-pid PID] [--hold S]
 *   pavbench fanout -n N -m M [--rate R] --secret FILE --api-key-file FILE
 *                   [--api-port P] [--size BYTES] [--server-pid PID]
 *   add --target nchan (no secret, no API key) to run the same load
 *   against nchan's /sub/<chan> and /pub/<chan> locations.
 *
 * Every client socket is bound to a source address in 127/8 before
 * connect, so ephemeral ports never run out.  Output: "key: value" lines
 * only.  Everything is bounded: --timeout caps the whole run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- options ------------------------------------------------------------ */

enum target { T_PAVILION, T_NCHAN };
enum mode { M_IDLE, M_FANOUT };

static struct {
	enum mode mode;
	enum target target;
	const char *host;
	int port, api_port;
	const char *path;      /* pavilion websocket path */
	const char *channel;   /* pavilion: chat:<channel>; nchan: /sub/<channel> */
	const char *secret_file, *api_key_file, *api_key;
	int n, m, tls, sources, concurrency, size, id_offset;
	int listen_only; /* fanout: publish nothing, count what another sends */
	double rate, hold_s, timeout_s, drain_s, settle_s;
	long server_pid;
} opt = {
	.target = T_PAVILION,
	.host = "127.0.0.1",
	.port = 8080,
	.api_port = 8081,
	.path = "/ws",
	.channel = "bench",
	.n = 1000,
	.m = 100,
	.sources = 200,
	.concurrency = 200,
	.size = 100,
	.hold_s = 2,
	.timeout_s = 300,
	.drain_s = 30,
	.settle_s = 0.5,
};

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "pavbench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- JWT (HS256, minted here) ------------------------------------------- */

static unsigned char secret[4096];
static size_t secret_len;

static void read_secret(const char *path)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		die("%s: %s", path, strerror(errno));
	secret_len = fread(secret, 1, sizeof(secret), f);
	fclose(f);
	if (secret_len && secret[secret_len - 1] == '\n') /* as the gateway */
		secret_len--;
	if (!secret_len)
		die("%s: empty secret", path);
}

static size_t b64url(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* HS256 token with sub=u<i>, exp=now+3600 and chats ["*"]. */
static void mint(int i, char *out, size_t cap)
{
	char claims[256], buf[1024];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t o;

	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"u%d\",\"exp\":%lld,\"chats\":[\"*\"]}", i,
		 (long long)time(NULL) + 3600);
	o = b64url((const unsigned char *)"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
		   27, buf);
	buf[o++] = '.';
	o += b64url((const unsigned char *)claims, strlen(claims), buf + o);
	if (!HMAC(EVP_sha256(), secret, (int)secret_len,
		  (const unsigned char *)buf, o, mac, &maclen))
		die("HMAC failed");
	buf[o++] = '.';
	b64url(mac, maclen, buf + o);
	if (strlen(buf) >= cap)
		die("token too long");
	memcpy(out, buf, strlen(buf) + 1);
}

/* ---- connections ---------------------------------------------------------- */

enum state {
	S_FREE,
	S_CONNECTING,
	S_TLS,
	S_UPGRADE,  /* request sent, waiting for the 101 */
	S_WAIT_ACK, /* subscribe sent, waiting for its ack */
	S_READY,
	S_DEAD,
};

enum kind { K_WS, K_PUB };

struct conn {
	enum kind kind;
	enum state state;
	int fd;
	int idx;
	SSL *ssl;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_cap;
	uint32_t received;
};

static struct conn *conns;
static int epfd;
static SSL_CTX *ssl_ctx;

/* counters */
static int n_started, n_inflight, n_ready, n_failed, n_closed_after_ready;
static int64_t t_connect0, t_connect_last;
static uint64_t deliveries, dup_or_late, stale, frames_other;
static uint32_t *lat_us;
static uint64_t lat_cap, lat_n;
static int64_t t_first_pub, t_last_delivery;
static int64_t t_min_sent; /* --listen-only: the earliest send time seen */
static int fail_reasons[8];
enum { FR_CONNECT, FR_STATUS, FR_CLOSED, FR_ERROR, FR_TIMEOUT, FR_TLS, FR_IO };
static const char *const fr_names[] = {"connect", "http_status", "closed",
				       "error_frame", "timeout", "tls", "io"};

static void source_addr(int i, struct sockaddr_in *sa)
{
	int k = i % opt.sources;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	/* 127.0.1.1 ... 127.0.x.y: 250 hosts per third octet */
	sa->sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(1 + k / 250) << 8 |
				    (uint32_t)(1 + k % 250));
}

static int tcp_connect(int i, int port)
{
	struct sockaddr_in src, dst;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	source_addr(i, &src);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
		close(fd);
		return -1;
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1)
		die("bad host %s", opt.host);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void buf_add(char **b, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap : 512;

		while (nc < *len + n)
			nc *= 2;
		*b = realloc(*b, nc);
		if (!*b)
			die("out of memory");
		*cap = nc;
	}
	memcpy(*b + *len, p, n);
	*len += n;
}

static void conn_free_bufs(struct conn *c)
{
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_len = c->in_cap = c->out_len = c->out_cap = 0;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	conn_free_bufs(c);
}

static void ws_fail(struct conn *c, int why)
{
	if (c->state == S_READY) {
		n_closed_after_ready++;
	} else if (c->state != S_DEAD) {
		n_failed++;
		fail_reasons[why]++;
		n_inflight--;
	}
	c->state = S_DEAD;
	conn_close(c);
}

/* Writes what is pending; 0 ok (maybe partial), -1 error. */
static int flush_out(struct conn *c)
{
	while (c->out_len) {
		ssize_t n;

		if (c->ssl) {
			int r = SSL_write(c->ssl, c->out, (int)c->out_len);

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	return 0;
}

static int send_bytes(struct conn *c, const void *p, size_t n)
{
	buf_add(&c->out, &c->out_len, &c->out_cap, p, n);
	return flush_out(c);
}

/* A masked client frame. */
static int ws_send(struct conn *c, int opcode, const void *p, size_t n)
{
	unsigned char hdr[14];
	unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t h = 0;
	char *tmp;

	hdr[h++] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		hdr[h++] = (unsigned char)(0x80 | n);
	} else if (n < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(n >> 8);
		hdr[h++] = (unsigned char)n;
	} else {
		die("frame too big");
	}
	memcpy(hdr + h, mask, 4);
	h += 4;
	tmp = malloc(h + n);
	if (!tmp)
		die("out of memory");
	memcpy(tmp, hdr, h);
	for (size_t i = 0; i < n; i++)
		tmp[h + i] = (char)(((const unsigned char *)p)[i] ^ mask[i & 3]);
	int rc = send_bytes(c, tmp, h + n);

	free(tmp);
	return rc;
}

static void send_upgrade(struct conn *c)
{
	char req[2048], token[1024];
	int n;

	if (opt.target == T_NCHAN) {
		n = snprintf(req, sizeof(req),
			     "GET /sub/%s HTTP/1.1\r\nHost: %s:%d\r\n"
			     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			     "Sec-WebSocket-Version: 13\r\n\r\n",
			     opt.channel, opt.host, opt.port);
	} else {
		mint(opt.id_offset + c->idx, token, sizeof(token));
		n = snprintf(req, sizeof(req),
			     "GET %s?token=%s HTTP/1.1\r\nHost: %s:%d\r\n"
			     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			     "Sec-WebSocket-Version: 13\r\n\r\n",
			     opt.path, token, opt.host, opt.port);
	}
	c->state = S_UPGRADE;
	if (send_bytes(c, req, (size_t)n))
		ws_fail(c, FR_IO);
}

static void became_ready(struct conn *c)
{
	c->state = S_READY;
	n_ready++;
	n_inflight--;
	t_connect_last = now_ns();
}

static void after_upgrade(struct conn *c)
{
	char msg[160];
	int n;

	if (opt.target == T_NCHAN) {
		became_ready(c); /* nchan subscribes at the upgrade */
		return;
	}
	/* idle: confirm authentication with an idempotent subscribe to
	 * "user"; fanout: subscribe to the bench channel */
	n = snprintf(msg, sizeof(msg),
		     "{\"type\":\"subscribe\",\"id\":\"s\",\"payload\":"
		     "{\"channel\":\"%s%s\"}}",
		     opt.mode == M_IDLE ? "user" : "chat:",
		     opt.mode == M_IDLE ? "" : opt.channel);
	c->state = S_WAIT_ACK;
	if (ws_send(c, 1, msg, (size_t)n))
		ws_fail(c, FR_IO);
}

static void on_text(struct conn *c, const char *p, size_t n)
{
	const char *t = memmem(p, n, "\"t\":", 4);

	if (t) {
		int64_t sent = strtoll(t + 4, NULL, 10), now = now_ns();
		int64_t us = (now - sent) / 1000;

		if (!t_first_pub || sent < t_first_pub) {
			stale++; /* a message published before this run */
			return;
		}
		if (c->received >= (uint32_t)opt.m) {
			dup_or_late++;
			return;
		}
		c->received++;
		deliveries++;
		t_last_delivery = now;
		if (!t_min_sent || sent < t_min_sent)
			t_min_sent = sent;
		if (lat_n < lat_cap)
			lat_us[lat_n++] = us < 0 ? 0 : (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
		return;
	}
	if (c->state == S_WAIT_ACK) {
		if (memmem(p, n, "\"type\":\"ack\"", 12))
			became_ready(c);
		else if (memmem(p, n, "\"type\":\"error\"", 14)) {
			if (getenv("PAVBENCH_DEBUG"))
				fprintf(stderr, "conn %d: %.*s\n", c->idx, (int)n, p);
			ws_fail(c, FR_ERROR);
		}
		return;
	}
	frames_other++;
}

/* Parses whole frames out of c->in. */
static void parse_frames(struct conn *c)
{
	size_t off = 0;

	while (c->state != S_DEAD) {
		unsigned char *b = (unsigned char *)c->in + off;
		size_t avail = c->in_len - off, h = 2;
		uint64_t len;

		if (avail < 2)
			break;
		len = b[1] & 0x7f;
		if (len == 126) {
			h = 4;
			if (avail < h)
				break;
			len = (uint64_t)b[2] << 8 | b[3];
		} else if (len == 127) {
			h = 10;
			if (avail < h)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | b[2 + i];
		}
		if (b[1] & 0x80)
			h += 4; /* a server must not mask; skip the key anyway */
		if (avail < h + len)
			break;
		int op = b[0] & 0x0f;
		const char *pl = (const char *)b + h;

		off += h + len;
		switch (op) {
		case 0:
		case 1:
		case 2:
			on_text(c, pl, (size_t)len);
			break;
		case 8: /* close */
			if (getenv("PAVBENCH_DEBUG"))
				fprintf(stderr, "conn %d closed %d\n", c->idx,
					len >= 2 ? (unsigned char)pl[0] << 8 |
							   (unsigned char)pl[1]
						 : 0);
			ws_fail(c, FR_CLOSED);
			return;
		case 9: /* ping */
			if (ws_send(c, 10, pl, (size_t)len))
				ws_fail(c, FR_IO);
			break;
		default:
			break;
		}
	}
	if (c->state == S_DEAD)
		return;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void on_http_response(struct conn *c)
{
	char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	size_t hl;

	if (!end) {
		if (c->in_len > 8192)
			ws_fail(c, FR_STATUS);
		return;
	}
	hl = (size_t)(end - c->in) + 4;
	if (c->in_len < 12 || memcmp(c->in + 9, "101", 3)) {
		if (getenv("PAVBENCH_DEBUG"))
			fprintf(stderr, "conn %d: %.*s\n", c->idx, (int)hl, c->in);
		ws_fail(c, FR_STATUS);
		return;
	}
	memmove(c->in, c->in + hl, c->in_len - hl);
	c->in_len -= hl;
	after_upgrade(c);
	if (c->state != S_DEAD && c->in_len)
		parse_frames(c);
}

/* Reads everything available; returns -1 on EOF/error. */
static int read_all(struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->in_cap - c->in_len < 4096) {
			size_t nc = c->in_cap ? c->in_cap * 2 : 8192;

			c->in = realloc(c->in, nc);
			if (!c->in)
				die("out of memory");
			c->in_cap = nc;
		}
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->in + c->in_len,
					 (int)(c->in_cap - c->in_len));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_READ ||
				    e == SSL_ERROR_WANT_WRITE)
					return 0;
				return -1;
			}
			n = r;
		} else {
			n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len,
				 0);
			if (n == 0)
				return -1;
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
		}
		c->in_len += (size_t)n;
		if (c->state == S_UPGRADE)
			on_http_response(c);
		else
			parse_frames(c);
		if (c->state == S_DEAD)
			return 0;
	}
}

static void ws_event(struct conn *c, uint32_t ev)
{
	if (c->state == S_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err)
			return ws_fail(c, FR_CONNECT);
		if (opt.tls) {
			c->ssl = SSL_new(ssl_ctx);
			SSL_set_fd(c->ssl, c->fd);
			SSL_set_connect_state(c->ssl);
			c->state = S_TLS;
		} else {
			send_upgrade(c);
			if (c->state == S_DEAD)
				return;
		}
	}
	if (c->state == S_TLS) {
		int r = SSL_do_handshake(c->ssl);

		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			return ws_fail(c, FR_TLS);
		}
		send_upgrade(c);
		if (c->state == S_DEAD)
			return;
	}
	if ((ev & EPOLLOUT) && c->out_len && flush_out(c))
		return ws_fail(c, FR_IO);
	if (read_all(c))
		return ws_fail(c, (ev & EPOLLERR) ? FR_IO : FR_CLOSED);
	/* idle connections keep no input buffer around */
	if (opt.mode == M_IDLE && c->state == S_READY && !c->in_len && c->in) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static void start_conn(int i)
{
	struct conn *c = &conns[i];
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
				.data.ptr = c};

	c->kind = K_WS;
	c->idx = i;
	c->fd = tcp_connect(i, opt.port);
	n_started++;
	n_inflight++;
	if (c->fd < 0) {
		c->state = S_CONNECTING;
		ws_fail(c, FR_CONNECT);
		return;
	}
	c->state = S_CONNECTING;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e))
		die("epoll_ctl: %s", strerror(errno));
}

/* ---- publisher (one request at a time, Connection: close) ---------------- */

static struct conn pub = {.kind = K_PUB, .fd = -1};
static int n_pub_sent, n_pub_ok, n_pub_failed;
static long recipients_first = -1, recipients_last = -1;
static int64_t next_pub_ns;
static char api_key[512];
static char pad[70000];

static int pub_fail_run; /* consecutive failures */

static void pub_done(int ok)
{
	if (ok) {
		n_pub_ok++;
		pub_fail_run = 0;
	} else {
		n_pub_failed++;
		pub_fail_run++;
	}
	conn_close(&pub);
	pub.state = S_FREE;
}

static long find_recipients(const char *body)
{
	const char *p;

	if (opt.target == T_NCHAN) {
		p = strstr(body, "active subscribers:");
		return p ? strtol(p + 19, NULL, 10) : -1;
	}
	p = strstr(body, "\"recipients\":");
	return p ? strtol(p + 13, NULL, 10) : -1;
}

static void pub_response(void)
{
	char *end, *cl;
	size_t hl, want;
	int status;

	buf_add(&pub.in, &pub.in_len, &pub.in_cap, "", 1); /* NUL */
	pub.in_len--;
	end = strstr(pub.in, "\r\n\r\n");
	if (!end)
		return;
	hl = (size_t)(end - pub.in) + 4;
	cl = strcasestr(pub.in, "\r\ncontent-length:");
	want = cl && cl < end ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
	if (pub.in_len < hl + want)
		return;
	status = atoi(pub.in + 9);
	if (status < 200 || status > 299) {
		if (n_pub_failed < 5)
			fprintf(stderr, "pavbench: publish answered %d: %.*s\n",
				status, (int)want, pub.in + hl);
		return pub_done(0);
	}
	long r = find_recipients(pub.in + hl);

	if (recipients_first < 0)
		recipients_first = r;
	recipients_last = r;
	pub_done(1);
}

static void pub_start(void)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
				.data.ptr = &pub};
	char body[72000], req[74000];
	int bl, rl;
	int64_t t = now_ns();

	pub.fd = tcp_connect(0, opt.target == T_NCHAN ? opt.port : opt.api_port);
	if (pub.fd < 0)
		die("cannot connect to the publish endpoint");
	if (opt.target == T_NCHAN) {
		bl = snprintf(body, sizeof(body), "{\"t\":%" PRId64 ",\"pad\":\"%s\"}",
			      t, pad);
		rl = snprintf(req, sizeof(req),
			      "POST /pub/%s HTTP/1.1\r\nHost: %s\r\n"
			      "Content-Type: text/plain\r\nContent-Length: %d\r\n"
			      "Connection: close\r\n\r\n%s",
			      opt.channel, opt.host, bl, body);
	} else {
		bl = snprintf(body, sizeof(body),
			      "{\"channel\":\"chat:%s\",\"type\":\"bench\","
			      "\"payload\":{\"t\":%" PRId64 ",\"pad\":\"%s\"}}",
			      opt.channel, t, pad);
		rl = snprintf(req, sizeof(req),
			      "POST /v1/publish HTTP/1.1\r\nHost: %s\r\n"
			      "Authorization: Bearer %s\r\n"
			      "Content-Type: application/json\r\n"
			      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
			      opt.host, api_key, bl, body);
	}
	if (!t_first_pub)
		t_first_pub = t;
	n_pub_sent++;
	pub.state = S_CONNECTING;
	buf_add(&pub.out, &pub.out_len, &pub.out_cap, req, (size_t)rl);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, pub.fd, &e))
		die("epoll_ctl: %s", strerror(errno));
}

static void pub_event(uint32_t ev)
{
	if (pub.state == S_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(pub.fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			if (n_pub_failed < 5)
				fprintf(stderr, "pavbench: publish connect: %s\n",
					strerror(err));
			return pub_done(0);
		}
		pub.state = S_UPGRADE;
	}
	if (pub.out_len && flush_out(&pub))
		return pub_done(0);
	for (;;) {
		if (pub.in_cap - pub.in_len < 2048) {
			size_t nc = pub.in_cap ? pub.in_cap * 2 : 4096;

			pub.in = realloc(pub.in, nc);
			pub.in_cap = nc;
		}
		ssize_t n = recv(pub.fd, pub.in + pub.in_len,
				 pub.in_cap - pub.in_len - 1, 0);

		if (n > 0) {
			pub.in_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			break;
		/* EOF or error: what came is the answer */
		pub_response();
		if (pub.state != S_FREE) {
			fprintf(stderr, "pavbench: publish: connection closed "
					"without a complete answer\n");
			pub_done(0);
		}
		return;
	}
	pub_response();
}

/* ---- reporting -------------------------------------------------------- */

static long rss_kib(void)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	if (opt.server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", opt.server_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ms(double p)
{
	uint64_t i;

	if (!lat_n)
		return 0;
	i = (uint64_t)(p * (double)(lat_n - 1) + 0.5);
	return lat_us[i] / 1000.0;
}

static void print_fail_reasons(void)
{
	for (int i = 0; i <= FR_IO; i++)
		if (fail_reasons[i])
			printf("failed_%s: %d\n", fr_names[i], fail_reasons[i]);
}

/* ---- main loop ---------------------------------------------------------- */

static void poll_once(int timeout_ms)
{
	struct epoll_event ev[1024];
	int n = epoll_wait(epfd, ev, 1024, timeout_ms);

	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct conn *c = ev[i].data.ptr;

		if (c->kind == K_PUB)
			pub_event(ev[i].events);
		else if (c->state != S_DEAD && c->state != S_FREE)
			ws_event(c, ev[i].events);
	}
}

/* Opens every connection (at most opt.concurrency handshakes at once). */
static void connect_phase(int64_t deadline)
{
	int next = 0;

	t_connect0 = now_ns();
	while (n_ready + n_failed < opt.n && now_ns() < deadline) {
		while (next < opt.n && n_inflight < opt.concurrency)
			start_conn(next++);
		poll_once(10);
	}
	/* whatever is still in flight at the deadline failed */
	for (int i = 0; i < opt.n; i++)
		if (conns[i].state != S_READY && conns[i].state != S_DEAD &&
		    conns[i].state != S_FREE)
			ws_fail(&conns[i], FR_TIMEOUT);
}

static void run_for(double s)
{
	int64_t end = now_ns() + (int64_t)(s * 1e9);

	while (now_ns() < end)
		poll_once(10);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pavbench idle|fanout [options]\n"
		"  -n, --connections N     connections / subscribers (1000)\n"
		"  -m, --publications M    fanout: publications (100)\n"
		"  --rate R                fanout: publications/s (0 = back to back)\n"
		"  --size B                fanout: message body bytes (100)\n"
		"  --host H --port P       the WebSocket server (127.0.0.1:8080)\n"
		"  --api-port P            pavilion internal API port (8081)\n"
		"  --path P                pavilion websocket path (/ws)\n"
		"  --channel C             chat:C (pavilion) or /sub/C (nchan) (bench)\n"
		"  --secret FILE           HS256 secret (pavilion)\n"
		"  --api-key-file FILE     first key of an api.keys file (pavilion)\n"
		"  --api-key KEY           the key itself\n"
		"  --tls                   wss (no certificate check)\n"
		"  --target pavilion|nchan (pavilion)\n"
		"  --server-pid PID        report the server's VmRSS\n"
		"  --sources K             source addresses in 127/8 (200)\n"
		"  --concurrency C         handshakes in flight (200)\n"
		"  --hold S                idle: seconds to hold (2)\n"
		"  --settle S              pause before measuring (0.5)\n"
		"  --drain S               fanout: wait after the last publish (30)\n"
		"  --timeout S             whole run bound (300)\n"
		"  --id-offset K           user ids start at u<K> (0)\n"
		"  --listen-only           fanout: subscribe and count the M\n"
		"                          publications another pavbench sends\n"
		"                          (start this one first; prints\n"
		"                          first_sent_ns/last_delivery_ns)\n");
	exit(2);
}

static void read_api_key(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		die("%s: %s", path, strerror(errno));
	api_key[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && line[0] != '#') {
			snprintf(api_key, sizeof(api_key), "%s", line);
			break;
		}
	}
	fclose(f);
	if (!api_key[0])
		die("%s: no key", path);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{"connections", 1, 0, 'n'}, {"subscribers", 1, 0, 'n'},
		{"publications", 1, 0, 'm'}, {"rate", 1, 0, 'r'},
		{"size", 1, 0, 'z'},        {"host", 1, 0, 'H'},
		{"port", 1, 0, 'p'},        {"api-port", 1, 0, 'a'},
		{"path", 1, 0, 'P'},        {"channel", 1, 0, 'c'},
		{"secret", 1, 0, 's'},      {"api-key-file", 1, 0, 'k'},
		{"api-key", 1, 0, 'K'},     {"tls", 0, 0, 't'},
		{"target", 1, 0, 'T'},      {"server-pid", 1, 0, 'S'},
		{"sources", 1, 0, 'o'},     {"concurrency", 1, 0, 'C'},
		{"hold", 1, 0, 'h'},        {"settle", 1, 0, 'e'},
		{"drain", 1, 0, 'd'},       {"timeout", 1, 0, 'w'},
		{"id-offset", 1, 0, 'i'},   {"listen-only", 0, 0, 'l'},
		{0, 0, 0, 0},
	};
	int ch;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "idle"))
		opt.mode = M_IDLE;
	else if (!strcmp(argv[1], "fanout"))
		opt.mode = M_FANOUT;
	else
		usage();
	optind = 2;
	while ((ch = getopt_long(argc, argv, "n:m:", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': opt.n = atoi(optarg); break;
		case 'm': opt.m = atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'z': opt.size = atoi(optarg); break;
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'a': opt.api_port = atoi(optarg); break;
		case 'P': opt.path = optarg; break;
		case 'c': opt.channel = optarg; break;
		case 's': opt.secret_file = optarg; break;
		case 'k': opt.api_key_file = optarg; break;
		case 'K': opt.api_key = optarg; break;
		case 't': opt.tls = 1; break;
		case 'T':
			if (!strcmp(optarg, "nchan"))
				opt.target = T_NCHAN;
			else if (!strcmp(optarg, "pavilion"))
				opt.target = T_PAVILION;
			else
				usage();
			break;
		case 'S': opt.server_pid = atol(optarg); break;
		case 'o': opt.sources = atoi(optarg); break;
		case 'C': opt.concurrency = atoi(optarg); break;
		case 'h': opt.hold_s = atof(optarg); break;
		case 'e': opt.settle_s = atof(optarg); break;
		case 'd': opt.drain_s = atof(optarg); break;
		case 'w': opt.timeout_s = atof(optarg); break;
		case 'i': opt.id_offset = atoi(optarg); break;
		case 'l': opt.listen_only = 1; break;
		default: usage();
		}
	}
	if (opt.n < 1 || opt.m < 0 || opt.sources < 1 || opt.sources > 60000 ||
	    opt.concurrency < 1 || opt.size < 40 || opt.size > 65000)
		usage();
	if (opt.target == T_PAVILION) {
		if (!opt.secret_file)
			die("--secret FILE is needed for the pavilion target");
		read_secret(opt.secret_file);
		if (opt.mode == M_FANOUT) {
			if (opt.api_key)
				snprintf(api_key, sizeof(api_key), "%s", opt.api_key);
			else if (opt.api_key_file)
				read_api_key(opt.api_key_file);
			else
				die("--api-key-file FILE or --api-key KEY is needed");
		}
	}
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)opt.n + 32 > rl.rlim_cur)
		die("%d connections need more than the %llu open files allowed; "
		    "split the load over several processes (--id-offset)",
		    opt.n, (unsigned long long)rl.rlim_cur);
}

static void print_common(void)
{
	printf("mode: %s\n", opt.mode == M_IDLE ? "idle" : "fanout");
	printf("target: %s\n", opt.target == T_NCHAN ? "nchan" : "pavilion");
	printf("transport: %s\n", opt.tls ? "wss" : "ws");
	printf("connections: %d\n", opt.n);
	printf("connected: %d\n", n_ready);
	printf("failed: %d\n", n_failed);
	print_fail_reasons();
	double cs = (double)(t_connect_last - t_connect0) / 1e9;

	printf("connect_s: %.3f\n", n_ready ? cs : 0.0);
	printf("handshakes_per_s: %.0f\n", n_ready && cs > 0 ? n_ready / cs : 0.0);
}

int main(int argc, char **argv)
{
	int64_t deadline;
	long rss0, rss1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	raise_fd_limit();
	deadline = now_ns() + (int64_t)(opt.timeout_s * 1e9);
	if (opt.tls) {
		ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (!ssl_ctx)
			die("SSL_CTX_new failed");
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					       SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}
	conns = calloc((size_t)opt.n, sizeof(*conns));
	if (!conns)
		die("out of memory");
	for (int i = 0; i < opt.n; i++)
		conns[i].fd = -1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));

	rss0 = rss_kib();
	connect_phase(deadline);

	if (opt.mode == M_IDLE) {
		run_for(opt.settle_s);
		rss1 = rss_kib();
		print_common();
		if (rss0 >= 0 && rss1 >= 0) {
			printf("server_rss_before_kib: %ld\n", rss0);
			printf("server_rss_after_kib: %ld\n", rss1);
			printf("rss_per_conn_kib: %.2f\n",
			       n_ready ? (double)(rss1 - rss0) / n_ready : 0.0);
		}
		run_for(opt.hold_s);
		printf("closed_by_server: %d\n", n_closed_after_ready);
		return n_failed || n_closed_after_ready ? 1 : 0;
	}

	/* fanout */
	{
		int body_fixed, m_req = opt.m;
		int64_t t0, drain_end = 0;

		/* {"t":<16 digits>,"pad":"..."}: the body is opt.size bytes */
		body_fixed = (int)strlen("{\"t\":,\"pad\":\"\"}") + 16;
		memset(pad, 'x', (size_t)(opt.size - body_fixed));
		pad[opt.size - body_fixed] = '\0';
		lat_cap = (uint64_t)n_ready * (uint64_t)opt.m;
		lat_us = malloc((lat_cap ? lat_cap : 1) * sizeof(*lat_us));
		if (!lat_us)
			die("out of memory for %" PRIu64 " samples", lat_cap);
		if (!n_ready) {
			fprintf(stderr, "pavbench: no subscriber connected: "
					"nothing published\n");
			opt.m = 0;
		}
		run_for(opt.settle_s);
		rss0 = rss_kib();
		t0 = now_ns();
		next_pub_ns = t0;
		if (opt.listen_only) {
			/* what was sent from now on counts */
			t_first_pub = t0;
			n_pub_ok = opt.m;
			fprintf(stderr, "pavbench: %d subscribers ready, "
					"listening\n", n_ready);
		}
		while (now_ns() < deadline) {
			int64_t now = now_ns();
			int timeout = 10;

			if (pub_fail_run >= 10 && pub.state == S_FREE &&
			    n_pub_sent < opt.m) {
				fprintf(stderr, "pavbench: 10 publications failed in "
						"a row: giving up\n");
				opt.m = n_pub_sent;
			}
			if (opt.listen_only) {
				if (deliveries >= lat_cap ||
				    (t_last_delivery &&
				     now - t_last_delivery > (int64_t)(opt.drain_s * 1e9)))
					break;
			} else if (n_pub_sent < opt.m && pub.state == S_FREE) {
				if (now >= next_pub_ns) {
					pub_start();
					next_pub_ns = opt.rate > 0
						? t0 + (int64_t)(n_pub_sent * 1e9 / opt.rate)
						: now;
					timeout = 0;
				} else {
					int64_t w = next_pub_ns - now;

					timeout = w < 1000000 ? 0 : (int)(w / 1000000);
					if (timeout > 10)
						timeout = 10;
				}
			}
			if (!opt.listen_only && n_pub_sent == opt.m &&
			    pub.state == S_FREE) {
				if (!drain_end)
					drain_end = now + (int64_t)(opt.drain_s * 1e9);
				if (deliveries >= lat_cap || now >= drain_end)
					break;
			}
			poll_once(timeout);
		}
		rss1 = rss_kib();
		uint64_t expected = (uint64_t)n_ready * (uint64_t)n_pub_ok;

		qsort(lat_us, lat_n, sizeof(*lat_us), cmp_u32);
		print_common();
		printf("subscribers: %d\n", n_ready);
		printf("publications: %d\n", m_req);
		printf("publications_ok: %d\n", n_pub_ok);
		printf("publications_failed: %d\n", n_pub_failed);
		printf("rate: %g\n", opt.rate);
		printf("body_bytes: %d\n", opt.size);
		printf("server_recipients_first: %ld\n", recipients_first);
		printf("server_recipients_last: %ld\n", recipients_last);
		printf("expected: %" PRIu64 "\n", expected);
		printf("deliveries: %" PRIu64 "\n", deliveries);
		printf("missing: %" PRId64 "\n",
		       (int64_t)expected - (int64_t)deliveries);
		printf("duplicates: %" PRIu64 "\n", dup_or_late);
		printf("stale: %" PRIu64 "\n", stale);
		double d = (double)(t_last_delivery -
				    (opt.listen_only ? t_min_sent : t_first_pub)) / 1e9;

		printf("first_sent_ns: %" PRId64 "\n",
		       opt.listen_only ? t_min_sent : t_first_pub);
		printf("last_delivery_ns: %" PRId64 "\n", t_last_delivery);

		printf("duration_s: %.3f\n", deliveries ? d : 0.0);
		printf("deliveries_per_s: %.0f\n",
		       deliveries && d > 0 ? deliveries / d : 0.0);
		printf("latency_p50_ms: %.3f\n", pct_ms(0.50));
		printf("latency_p90_ms: %.3f\n", pct_ms(0.90));
		printf("latency_p99_ms: %.3f\n", pct_ms(0.99));
		printf("latency_max_ms: %.3f\n",
		       lat_n ? lat_us[lat_n - 1] / 1000.0 : 0.0);
		printf("closed_by_server: %d\n", n_closed_after_ready);
		if (rss0 >= 0 && rss1 >= 0) {
			printf("server_rss_before_kib: %ld\n", rss0);
			printf("server_rss_after_kib: %ld\n", rss1);
		}
		return deliveries == expected && !n_failed && !n_pub_failed ? 0 : 1;
	}
}
