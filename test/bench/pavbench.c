/*
 * pavbench — WebSocket load generator for pavilion-gateway (and, for
 * comparison, nginx + nchan).  One thread, one epoll set, loopback only.
 *
 *   pavbench idle      -n N [--tls] --secret FILE [--hold S]
 *                      (then all N close at once: the server's CPU per close)
 *   pavbench fanout    -n N -m M [--publishers P] [--rate R] [--batch K]
 *                      --secret FILE --api-key-file FILE [--api-port P]
 *   pavbench joinstorm -n N --secret FILE [--snapshot]
 *   add --target nchan (no secret, no API key) to run idle or fanout
 *   against nchan's /sub/<chan> and /pub/<chan> locations.
 *
 * Every client socket is bound to a source address in 127/8 before
 * connect, so ephemeral ports never run out.  Output: "key: value" lines
 * only (progress notes go to stderr).  Everything is bounded: --timeout
 * caps the whole run, --request-timeout each publish request, --drain the
 * wait for deliveries, and a dead server ends the run with failures.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include "wakeups.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* The gateway's internal API refuses bodies above 64 KiB. */
#define API_BODY_MAX 65536
/* Consecutive failed publish requests before pavbench gives up. */
#define PUB_FAIL_RUN_MAX 10
/* Exit status when the gateway refuses batch publishing. */
#define EXIT_NO_BATCH 3

/* ---- options ------------------------------------------------------------ */

enum target { T_PAVILION, T_NCHAN };
enum mode { M_IDLE, M_FANOUT, M_JOINSTORM };

static struct {
	enum mode mode;
	enum target target;
	const char *host;
	int port, api_port; /* api_port 0: the default (check_args) */
	const char *path;    /* pavilion websocket path */
	const char *channel; /* the channel id: <kind>:<id> or /sub/<id> */
	const char *kind;    /* pavilion channel kind: zone, channel, chat */
	const char *secret_file, *api_key_file, *api_key;
	int n, m, tls, sources, concurrency, size, id_offset;
	int publishers, batch, presence;
	int listen_only; /* fanout: publish nothing, count what another sends */
	int per_publication; /* fanout: each one's last delivery, in order */
	double rate, hold_s, timeout_s, drain_s, settle_s, quiet_s, quiet_max_s;
	double request_timeout_s;
	long server_pid;
	const char *server_pid_from; /* "option", "port" or NULL */
} opt = {
	.target = T_PAVILION,
	.host = "127.0.0.1",
	.port = 8080,
	.path = "/ws",
	.channel = "bench",
	.kind = "zone",
	.n = 1000,
	.m = 100,
	.sources = 200,
	.concurrency = 200,
	.size = 100,
	.publishers = 1,
	.batch = 1,
	.presence = 0,
	.hold_s = 2,
	.timeout_s = 300,
	.drain_s = 30,
	.settle_s = 0.5,
	.quiet_s = 0.5,
	.quiet_max_s = 60,
	.request_timeout_s = 10,
};

static char chan_full[160]; /* "zone:bench" */

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

/*
 * HS256 token with sub=u<i>, exp=now+3600 and the claim that grants the
 * bench channel under the gateway's default access policy ("claims"):
 * "zones", "channels" or "chats" holding exactly that id.
 */
static void mint(int i, char *out, size_t cap)
{
	char claims[512], buf[1024];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t o;

	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"u%d\",\"exp\":%lld,\"%ss\":[\"%s\"]}", i,
		 (long long)time(NULL) + 3600, opt.kind, opt.channel);
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
	int64_t t_start; /* connect() called */
};

static struct conn *conns;
static int epfd;
static SSL_CTX *ssl_ctx;

/* counters */
static int n_started, n_inflight, n_ready, n_failed, n_closed_after_ready;
/* of n_failed: before the 101 (TCP, TLS, HTTP), after it (before the ack) */
static int n_failed_handshake, n_failed_upgraded;
static int64_t t_connect0, t_connect_last, t_last_frame;
static uint64_t deliveries, dup_or_late, stale, frames;
static uint32_t *lat_us;
static uint64_t lat_cap, lat_n;
static uint32_t *join_us; /* connect → ack, per subscriber */
static uint64_t join_n;
static int64_t t_first_pub, t_last_delivery;
/* each publication (one send time) and its last delivery: what sets p99
 * is how long the slowest publications take to reach everyone */
struct pub_spread {
	int64_t sent;
	uint32_t last_us;
};
static struct pub_spread *spread;
static size_t spread_n, spread_cap, spread_hint;
static int64_t t_min_sent; /* --listen-only: the earliest send time seen */
static int fail_reasons[8];
enum { FR_CONNECT, FR_STATUS, FR_CLOSED, FR_ERROR, FR_TIMEOUT, FR_TLS, FR_IO };
static const char *const fr_names[] = {"connect", "http_status", "closed",
				       "error_frame", "timeout", "tls", "io"};

/* close frames received, by code */
#define MAX_CLOSE_CODES 32
static struct {
	int code;
	int n;
} close_codes[MAX_CLOSE_CODES];
static int n_close_codes, n_closes, n_eof_no_close;

/* messages received, by envelope "type" */
#define MAX_TYPES 32
static struct {
	char name[32];
	uint64_t n;
} types[MAX_TYPES];
static int n_types;

static void count_close(int code)
{
	n_closes++;
	for (int i = 0; i < n_close_codes; i++)
		if (close_codes[i].code == code) {
			close_codes[i].n++;
			return;
		}
	if (n_close_codes < MAX_CLOSE_CODES) {
		close_codes[n_close_codes].code = code;
		close_codes[n_close_codes++].n = 1;
	}
}

static int closes_with(int code)
{
	for (int i = 0; i < n_close_codes; i++)
		if (close_codes[i].code == code)
			return close_codes[i].n;
	return 0;
}

/* Counts a message under its "type" (the gateway's envelope puts it first;
 * nchan's raw bodies have none: "untyped"). */
static void count_type(const char *p, size_t n)
{
	const char *t = memmem(p, n < 96 ? n : 96, "\"type\":\"", 8);
	char name[32] = "untyped";

	if (t) {
		size_t k = 0;

		t += 8;
		while (t < p + n && *t != '"' && k < sizeof(name) - 1) {
			char ch = *t++;

			name[k++] = isalnum((unsigned char)ch) || ch == '_' ? ch : '_';
		}
		name[k] = '\0';
	}
	for (int i = 0; i < n_types; i++)
		if (!strcmp(types[i].name, name)) {
			types[i].n++;
			return;
		}
	if (n_types < MAX_TYPES) {
		snprintf(types[n_types].name, sizeof(types[n_types].name), "%s",
			 name);
		types[n_types++].n = 1;
	}
}

static uint64_t messages_of(const char *name)
{
	for (int i = 0; i < n_types; i++)
		if (!strcmp(types[i].name, name))
			return types[i].n;
	return 0;
}

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

/* At least `room` free bytes at the end of c's input buffer (it doubles). */
static void in_room(struct conn *c, size_t room)
{
	size_t nc;

	if (c->in_cap - c->in_len >= room)
		return;
	nc = c->in_cap ? c->in_cap * 2 : 2 * room;
	c->in = realloc(c->in, nc);
	if (!c->in)
		die("out of memory");
	c->in_cap = nc;
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
		if (c->state == S_WAIT_ACK)
			n_failed_upgraded++;
		else
			n_failed_handshake++;
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
	int64_t now = now_ns();

	c->state = S_READY;
	n_ready++;
	n_inflight--;
	t_connect_last = now;
	if (join_us)
		join_us[join_n++] = (uint32_t)((now - c->t_start) / 1000);
}

static void after_upgrade(struct conn *c)
{
	char msg[256];
	int n;

	if (opt.target == T_NCHAN) {
		became_ready(c); /* nchan subscribes at the upgrade */
		return;
	}
	/* idle: confirm authentication with an idempotent subscribe to
	 * "user"; fanout and joinstorm: subscribe to the bench channel */
	if (opt.mode == M_IDLE)
		n = snprintf(msg, sizeof(msg),
			     "{\"type\":\"subscribe\",\"id\":\"s\",\"payload\":"
			     "{\"channel\":\"user\"}}");
	else
		n = snprintf(msg, sizeof(msg),
			     "{\"type\":\"subscribe\",\"id\":\"s\",\"payload\":"
			     "{\"channel\":\"%s\"%s}}", chan_full,
			     opt.mode == M_JOINSTORM && opt.presence
				     ? ",\"parameters\":{\"presence\":true}"
				     : "");
	c->state = S_WAIT_ACK;
	if (ws_send(c, 1, msg, (size_t)n))
		ws_fail(c, FR_IO);
}

/* The entry of the publication sent at `sent` (kept in order of send
 * time; deliveries come mostly in that order), NULL when full. */
static struct pub_spread *spread_of(int64_t sent)
{
	size_t lo = 0, hi = spread_n;

	if (spread_hint < spread_n && spread[spread_hint].sent == sent)
		return &spread[spread_hint];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (spread[mid].sent < sent)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == spread_n || spread[lo].sent != sent) {
		if (spread_n == spread_cap)
			return NULL;
		memmove(&spread[lo + 1], &spread[lo],
			(spread_n - lo) * sizeof(*spread));
		spread[lo] = (struct pub_spread){sent, 0};
		spread_n++;
	}
	spread_hint = lo;
	return &spread[lo];
}

/* A publication carrying its send time: one delivery. */
static void on_delivery(struct conn *c, const char *t)
{
	int64_t sent = strtoll(t + 4, NULL, 10), now = now_ns();
	int64_t us = (now - sent) / 1000;
	uint32_t u = us < 0 ? 0 : (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
	struct pub_spread *ps;

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
		lat_us[lat_n++] = u;
	if ((ps = spread_of(sent)) && ps->last_us < u)
		ps->last_us = u;
}

static void on_text(struct conn *c, const char *p, size_t n)
{
	const char *t = memmem(p, n, "\"t\":", 4);

	frames++;
	t_last_frame = now_ns();
	count_type(p, n);
	if (t && opt.mode == M_FANOUT)
		return on_delivery(c, t);
	if (c->state == S_WAIT_ACK) {
		if (memmem(p, n, "\"type\":\"ack\"", 12))
			became_ready(c);
		else if (memmem(p, n, "\"type\":\"error\"", 14)) {
			if (getenv("PAVBENCH_DEBUG"))
				fprintf(stderr, "conn %d: %.*s\n", c->idx, (int)n, p);
			ws_fail(c, FR_ERROR);
		}
	}
}

static void on_close_frame(struct conn *c, const char *pl, uint64_t len)
{
	int code = len >= 2 ? (unsigned char)pl[0] << 8 | (unsigned char)pl[1]
			    : 1005; /* "no status received" */

	count_close(code);
	if (getenv("PAVBENCH_DEBUG"))
		fprintf(stderr, "conn %d closed %d\n", c->idx, code);
	ws_fail(c, FR_CLOSED);
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
		case 8:
			on_close_frame(c, pl, len);
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

		in_room(c, 4096);
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

/* Connected: TLS handshake next, or the upgrade request. */
static void ws_connected(struct conn *c, uint32_t ev)
{
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
	}
}

static void ws_event(struct conn *c, uint32_t ev)
{
	if (c->state == S_CONNECTING) {
		ws_connected(c, ev);
		if (c->state == S_CONNECTING || c->state == S_DEAD)
			return;
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
	if (read_all(c)) {
		if (c->state != S_DEAD)
			n_eof_no_close++;
		return ws_fail(c, (ev & EPOLLERR) ? FR_IO : FR_CLOSED);
	}
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
	c->t_start = now_ns();
	c->fd = tcp_connect(i, opt.port);
	n_started++;
	n_inflight++;
	c->state = S_CONNECTING;
	if (c->fd < 0) {
		ws_fail(c, FR_CONNECT);
		return;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e))
		die("epoll_ctl: %s", strerror(errno));
}

/* ---- publishers: keep-alive HTTP, one request in flight each ------------- */

struct pub {
	struct conn c;   /* kind K_PUB, idx = publisher number */
	int busy;        /* a request is in flight */
	int opened;      /* connections opened so far */
	int k;           /* publications in that request */
	int64_t sent_ns; /* when it was sent */
};

static struct pub *pubs;
static int n_pub_sent, n_pub_ok, n_pub_failed, n_requests, n_reconnects;
static int pub_fail_run;   /* consecutive failed requests */
static int batch_refused;  /* the gateway answered a batch with 400 */
static int pub_stop;       /* no more publications are sent */
static long recipients_first = -1, recipients_last = -1;
static char api_key[512];
static char pad[70000];
static char *req_buf; /* one request, rebuilt for each */
static size_t req_len, req_cap;

static void pub_close(struct pub *p)
{
	conn_close(&p->c);
	p->c.state = S_FREE;
}

static void pub_done(struct pub *p, int ok)
{
	if (ok) {
		n_pub_ok += p->k;
		pub_fail_run = 0;
	} else {
		n_pub_failed += p->k;
		pub_fail_run++;
		pub_close(p); /* whatever state it was in: start afresh */
	}
	p->busy = 0;
	p->k = 0;
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

/* The value of header `name` within the head h[0..hl), or NULL. */
static const char *hdr_find(const char *h, size_t hl, const char *name)
{
	size_t nl = strlen(name);

	for (const char *l = h; l && l < h + hl;) {
		const char *eol = memmem(l, (size_t)(h + hl - l), "\r\n", 2);

		if ((size_t)(h + hl - l) > nl && !strncasecmp(l, name, nl) &&
		    l[nl] == ':') {
			l += nl + 1;
			while (*l == ' ' || *l == '\t')
				l++;
			return l;
		}
		l = eol ? eol + 2 : NULL;
	}
	return NULL;
}

/*
 * 1 when c->in holds a whole HTTP answer: its status, the head's length
 * and the body's; *close_after when the server will close the connection.
 */
static int http_answer(struct conn *c, int *status, size_t *hl, size_t *bl,
		       int *close_after)
{
	char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	const char *v;

	if (!end)
		return 0;
	*hl = (size_t)(end - c->in) + 4;
	*status = c->in_len >= 12 && !strncmp(c->in, "HTTP/", 5)
		? atoi(c->in + 9) : -1;
	v = hdr_find(c->in, *hl, "connection");
	*close_after = v && !strncasecmp(v, "close", 5);
	v = hdr_find(c->in, *hl, "transfer-encoding");
	if (v && !strncasecmp(v, "chunked", 7)) {
		/* the last chunk: "0\r\n\r\n" right after a line end */
		char *last = memmem(end, c->in_len - (*hl - 4), "\r\n0\r\n\r\n", 7);

		if (!last)
			return 0;
		*bl = (size_t)(last + 7 - c->in) - *hl;
		return 1;
	}
	v = hdr_find(c->in, *hl, "content-length");
	*bl = v ? (size_t)strtoul(v, NULL, 10) : 0;
	return c->in_len >= *hl + *bl;
}

static void on_batch_refused(const char *body)
{
	batch_refused = 1;
	pub_stop = 1;
	fprintf(stderr, "pavbench: batch publish not supported by this gateway "
			"(POST /v1/publish {\"publications\":[...]} answered "
			"400: %.300s)\n", body);
}

/* The answer to p's request is in: 2xx or not. */
static void pub_answered(struct pub *p, int status, const char *body)
{
	if (status >= 200 && status <= 299) {
		long r = find_recipients(body);

		if (recipients_first < 0)
			recipients_first = r;
		recipients_last = r;
		if (opt.batch > 1 && !strstr(body, "\"results\""))
			fprintf(stderr, "pavbench: batch answer without "
					"\"results\": %.200s\n", body);
		return pub_done(p, 1);
	}
	if (status == 400 && opt.batch > 1 && opt.target == T_PAVILION &&
	    !batch_refused)
		on_batch_refused(body);
	else if (n_pub_failed < 5 && !batch_refused)
		fprintf(stderr, "pavbench: publish answered %d: %.300s\n",
			status, body);
	pub_done(p, 0);
}

/* Consumes a complete answer from p's input, if there is one. */
static void pub_read_answer(struct pub *p)
{
	int status, close_after;
	size_t hl, bl;
	char *body;

	if (!p->busy || !http_answer(&p->c, &status, &hl, &bl, &close_after))
		return;
	body = strndup(p->c.in + hl, bl);
	if (!body)
		die("out of memory");
	p->c.in_len = 0; /* one request in flight: nothing else can follow */
	pub_answered(p, status, body);
	free(body);
	if (close_after && p->c.fd >= 0)
		pub_close(p);
}

static void pub_event(struct pub *p, uint32_t ev)
{
	struct conn *c = &p->c;

	if (c->state == S_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			if (n_pub_failed < 5)
				fprintf(stderr, "pavbench: publish connect: %s\n",
					strerror(err));
			return pub_done(p, 0);
		}
		c->state = S_READY;
	}
	if (c->out_len && flush_out(c))
		return pub_done(p, 0);
	for (;;) {
		in_room(c, 2048);
		ssize_t n = recv(c->fd, c->in + c->in_len,
				 c->in_cap - c->in_len - 1, 0);

		if (n > 0) {
			c->in_len += (size_t)n;
			pub_read_answer(p);
			if (c->fd < 0)
				return;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		/* EOF or error: an answer still owed is lost */
		if (p->busy) {
			if (n_pub_failed < 5)
				fprintf(stderr, "pavbench: publish: connection "
						"closed without a complete answer\n");
			return pub_done(p, 0);
		}
		return pub_close(p);
	}
}

/* One publication's JSON object (pavilion) into req_buf. */
static void add_publication(int64_t t)
{
	char one[256];
	int n = snprintf(one, sizeof(one),
			 "{\"channel\":\"%s\",\"type\":\"bench\",\"payload\":"
			 "{\"t\":%" PRId64 ",\"pad\":\"", chan_full, t);

	buf_add(&req_buf, &req_len, &req_cap, one, (size_t)n);
	buf_add(&req_buf, &req_len, &req_cap, pad, strlen(pad));
	buf_add(&req_buf, &req_len, &req_cap, "\"}}", 3);
}

/* The body of a request carrying k publications sent at t. */
static void build_body(int k, int64_t t)
{
	char one[64];

	req_len = 0;
	if (opt.target == T_NCHAN) {
		int n = snprintf(one, sizeof(one), "{\"t\":%" PRId64 ",\"pad\":\"", t);

		buf_add(&req_buf, &req_len, &req_cap, one, (size_t)n);
		buf_add(&req_buf, &req_len, &req_cap, pad, strlen(pad));
		buf_add(&req_buf, &req_len, &req_cap, "\"}", 2);
		return;
	}
	if (opt.batch <= 1)
		return add_publication(t);
	buf_add(&req_buf, &req_len, &req_cap, "{\"publications\":[", 17);
	for (int i = 0; i < k; i++) {
		if (i)
			buf_add(&req_buf, &req_len, &req_cap, ",", 1);
		add_publication(t);
	}
	buf_add(&req_buf, &req_len, &req_cap, "]}", 2);
}

static int pub_open(struct pub *p)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
				.data.ptr = &p->c};

	p->c.fd = tcp_connect(opt.n + p->c.idx, opt.api_port);
	if (p->c.fd < 0)
		return -1;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, p->c.fd, &e))
		die("epoll_ctl: %s", strerror(errno));
	p->c.state = S_CONNECTING;
	if (p->opened++)
		n_reconnects++;
	return 0;
}

/* Sends the next request (k publications) on p, opening it if needed. */
static void pub_send(struct pub *p, int k)
{
	char head[1024];
	int64_t t = now_ns();
	int hn;

	p->busy = 1;
	p->k = k;
	p->sent_ns = t;
	n_pub_sent += k;
	n_requests++;
	if (!t_first_pub)
		t_first_pub = t;
	if (p->c.fd < 0 && pub_open(p)) {
		if (n_pub_failed < 5)
			fprintf(stderr, "pavbench: cannot connect to the publish "
					"endpoint\n");
		return pub_done(p, 0);
	}
	build_body(k, t);
	if (opt.target == T_NCHAN)
		hn = snprintf(head, sizeof(head),
			      "POST /pub/%s HTTP/1.1\r\nHost: %s\r\n"
			      "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
			      opt.channel, opt.host, req_len);
	else
		hn = snprintf(head, sizeof(head),
			      "POST /v1/publish HTTP/1.1\r\nHost: %s\r\n"
			      "Authorization: Bearer %s\r\n"
			      "Content-Type: application/json\r\n"
			      "Content-Length: %zu\r\n\r\n",
			      opt.host, api_key, req_len);
	buf_add(&p->c.out, &p->c.out_len, &p->c.out_cap, head, (size_t)hn);
	buf_add(&p->c.out, &p->c.out_len, &p->c.out_cap, req_buf, req_len);
	if (p->c.state == S_READY && flush_out(&p->c))
		pub_done(p, 0);
}

/* Requests older than --request-timeout fail (a hung server). */
static void pub_expire(int64_t now)
{
	for (int i = 0; i < opt.publishers; i++)
		if (pubs[i].busy &&
		    now - pubs[i].sent_ns > (int64_t)(opt.request_timeout_s * 1e9)) {
			if (n_pub_failed < 5)
				fprintf(stderr, "pavbench: publish: no answer "
						"within %g s\n", opt.request_timeout_s);
			pub_done(&pubs[i], 0);
		}
}

static int pubs_busy(void)
{
	int n = 0;

	for (int i = 0; i < opt.publishers; i++)
		n += pubs[i].busy;
	return n;
}

/* ---- the server process: CPU time, RSS, found by port -------------------- */

/* The inode of the socket listening on TCP port `port`, or 0. */
static unsigned long listen_inode(int port)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512];

	for (size_t f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "r");

		if (!fp)
			continue;
		while (fgets(line, sizeof(line), fp)) {
			char local[64];
			unsigned st;
			unsigned long inode;
			const char *colon;

			if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %*s %*s %lu",
				   local, &st, &inode) != 3 || st != 0x0a)
				continue;
			colon = strrchr(local, ':');
			if (colon && strtol(colon + 1, NULL, 16) == port) {
				fclose(fp);
				return inode;
			}
		}
		fclose(fp);
	}
	return 0;
}

/* 1 when process pid holds the socket with this inode. */
static int holds_socket(long pid, unsigned long inode)
{
	char dir[64], path[384], link[64], want[64];
	struct dirent *de;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	d = opendir(dir);
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = !strcmp(link, want);
		}
	}
	closedir(d);
	return found;
}

static long parent_of(long pid)
{
	char path[64], buf[512];
	FILE *f;
	const char *p;
	long ppid = -1;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 1, " %*c %ld", &ppid);
	fclose(f);
	return ppid;
}

/*
 * The process listening on `port`.  When several hold the socket (nginx's
 * master and its worker), the one whose parent holds it too: the worker.
 */
static long pid_from_port(int port)
{
	unsigned long inode = listen_inode(port);
	long found[16];
	int n = 0;
	struct dirent *de;
	DIR *d;

	if (!inode || !(d = opendir("/proc")))
		return -1;
	while (n < 16 && (de = readdir(d))) {
		long pid = strtol(de->d_name, NULL, 10);

		if (pid > 0 && pid != getpid() && holds_socket(pid, inode))
			found[n++] = pid;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (parent_of(found[i]) == found[j])
				return found[i];
	return n ? found[0] : -1;
}

/* A "Vm...:" line of the server's /proc status in KiB, or -1. */
static long server_vm_kib(const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	if (opt.server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", opt.server_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

static long rss_kib(void)
{
	return server_vm_kib("VmRSS");
}

/* RSS and its high-water mark (since the server started) at the end. */
static void print_rss(long before, long after)
{
	long peak = server_vm_kib("VmHWM");

	if (before < 0 || after < 0)
		return;
	printf("server_rss_before_kib: %ld\n", before);
	printf("server_rss_after_kib: %ld\n", after);
	if (peak >= 0)
		printf("server_rss_peak_kib: %ld\n", peak);
}

/* The server's user + system CPU time in seconds, or -1; its user part in
 * *user when user is not NULL.  System time is what the kernel did for the
 * server, with the softirqs that ran in its context: on loopback that is
 * also the receiving socket's TCP work for every segment the server sent. */
static double server_cpu(double *user)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *p;
	FILE *f;
	int ok = 0;

	if (opt.server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", opt.server_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	/* after "pid (comm)": state is field 3, utime 14, stime 15 */
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		ok = sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
				   "%llu %llu", &ut, &st) == 2;
	fclose(f);
	if (!ok)
		return -1;
	if (user)
		*user = (double)ut / (double)sysconf(_SC_CLK_TCK);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu_s(void)
{
	return server_cpu(NULL);
}

/* The CPU pavbench is pinned to (taskset -c K), or -1 when it may run on
 * more than one. */
static int load_cpu(void)
{
	cpu_set_t set;
	int cpu = -1;

	if (sched_getaffinity(0, sizeof(set), &set) || CPU_COUNT(&set) != 1)
		return -1;
	while (!CPU_ISSET(++cpu, &set))
		;
	return cpu;
}

static void print_cpu(const char *key, double a, double b)
{
	if (a >= 0 && b >= 0)
		printf("%s: %.2f\n", key, b - a);
}

/* ---- reporting -------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th quantile (0..1) of sorted samples in microseconds, in ms. */
static double quantile_ms(const uint32_t *v, uint64_t n, double p)
{
	if (!n)
		return 0;
	return v[(uint64_t)(p * (double)(n - 1) + 0.5)] / 1000.0;
}

static void print_quantiles(const char *prefix, uint32_t *v, uint64_t n)
{
	qsort(v, n, sizeof(*v), cmp_u32);
	printf("%s_p50_ms: %.3f\n", prefix, quantile_ms(v, n, 0.50));
	printf("%s_p90_ms: %.3f\n", prefix, quantile_ms(v, n, 0.90));
	printf("%s_p99_ms: %.3f\n", prefix, quantile_ms(v, n, 0.99));
	printf("%s_max_ms: %.3f\n", prefix, n ? v[n - 1] / 1000.0 : 0.0);
}

/* Over publications: how long after its send the last subscriber got
 * it (with one publisher at a low rate: the length of its fan-out). */
static void print_spread(void)
{
	uint32_t *v = malloc((spread_n ? spread_n : 1) * sizeof(*v));

	if (!v)
		return;
	printf("publications_timed: %zu\n", spread_n);
	for (size_t i = 0; i < spread_n; i++)
		v[i] = spread[i].last_us;
	if (opt.per_publication) {
		printf("publication_last_each_ms:");
		for (size_t i = 0; i < spread_n; i++)
			printf(" %.1f", v[i] / 1000.0);
		printf("\n");
	}
	qsort(v, spread_n, sizeof(*v), cmp_u32);
	printf("publication_last_min_ms: %.3f\n", spread_n ? v[0] / 1000.0 : 0.0);
	print_quantiles("publication_last", v, spread_n);
	free(v);
}

static void print_fail_reasons(void)
{
	for (int i = 0; i <= FR_IO; i++)
		if (fail_reasons[i])
			printf("failed_%s: %d\n", fr_names[i], fail_reasons[i]);
}

/* Close codes received (4008: slow consumer) and messages by type. */
static void print_closes_and_messages(void)
{
	printf("closes_received: %d\n", n_closes);
	printf("closed_4008: %d\n", closes_with(4008));
	for (int i = 0; i < n_close_codes; i++)
		printf("close_%d: %d\n", close_codes[i].code, close_codes[i].n);
	printf("eof_without_close: %d\n", n_eof_no_close);
	printf("messages: %" PRIu64 "\n", frames);
	for (int i = 0; i < n_types; i++)
		printf("messages_%s: %" PRIu64 "\n", types[i].name, types[i].n);
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
			pub_event(&pubs[c->idx], ev[i].events);
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

static void run_for(double s, int64_t deadline)
{
	int64_t end = now_ns() + (int64_t)(s * 1e9);

	if (end > deadline)
		end = deadline;
	while (now_ns() < end)
		poll_once(10);
}

/* Reads until no frame came for quiet_s (at most max_s); the time spent. */
static double wait_quiet(double quiet_s, double max_s, int64_t deadline)
{
	int64_t t0 = now_ns(), end = t0 + (int64_t)(max_s * 1e9);
	int64_t q = (int64_t)(quiet_s * 1e9);

	if (end > deadline)
		end = deadline;
	for (;;) {
		int64_t now = now_ns(), last = t_last_frame > t0 ? t_last_frame : t0;

		if (now - last >= q || now >= end)
			return (double)(now - t0) / 1e9;
		poll_once(10);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pavbench idle|fanout|joinstorm [options]\n"
		"  -n, --connections N     connections / subscribers (1000)\n"
		"  -m, --publications M    fanout: publications (100)\n"
		"  --publishers P          fanout: concurrent keep-alive publishers (1)\n"
		"  --rate R                fanout: publications/s in all (0 = back to back)\n"
		"  --batch K               fanout: K publications per request (1)\n"
		"  --size B                fanout: message body bytes (100)\n"
		"  --host H --port P       the WebSocket server (127.0.0.1:8080)\n"
		"  --api-port P            pavilion internal API port (8081); nchan:\n"
		"                          its plain HTTP port for publishing\n"
		"                          (default: --port; with --tls, set it)\n"
		"  --path P                pavilion websocket path (/ws)\n"
		"  --channel ID            the channel id (bench)\n"
		"  --kind zone|channel|chat  pavilion channel kind (zone)\n"
		"  --snapshot              joinstorm: subscribe with parameters.presence\n"
		"                          (each joiner also asks a presence snapshot)\n"
		"  --secret FILE           HS256 secret (pavilion)\n"
		"  --api-key-file FILE     first key of an api.keys file (pavilion)\n"
		"  --api-key KEY           the key itself\n"
		"  --tls                   wss (no certificate check)\n"
		"  --target pavilion|nchan (pavilion)\n"
		"  --server-pid PID        the server (RSS, CPU); else found by --port\n"
		"  --sources K             source addresses in 127/8 (200)\n"
		"  --concurrency C         handshakes in flight (200)\n"
		"  --hold S                idle: seconds to hold (2), then every\n"
		"                          connection closes at once\n"
		"  --settle S              pause before measuring (0.5)\n"
		"  --quiet S               silence that ends the joins' messages (0.5)\n"
		"  --quiet-max S           bound on waiting for that silence (60)\n"
		"  --drain S               fanout: bound on waiting for deliveries (30)\n"
		"  --per-publication       fanout: also print each publication's last\n"
		"                          delivery, in order of sending\n"
		"  --request-timeout S     bound on one publish answer (10)\n"
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

static void parse_mode(const char *m)
{
	if (!strcmp(m, "idle"))
		opt.mode = M_IDLE;
	else if (!strcmp(m, "fanout"))
		opt.mode = M_FANOUT;
	else if (!strcmp(m, "joinstorm"))
		opt.mode = M_JOINSTORM;
	else
		usage();
}

static void check_args(void)
{
	if (opt.n < 1 || opt.m < 0 || opt.sources < 1 || opt.sources > 60000 ||
	    opt.concurrency < 1 || opt.size < 40 || opt.size > 65000 ||
	    opt.publishers < 1 || opt.publishers > 1000 || opt.batch < 1 ||
	    opt.batch > 1000 || opt.rate < 0 || opt.request_timeout_s <= 0)
		usage();
	if (strcmp(opt.kind, "zone") && strcmp(opt.kind, "channel") &&
	    strcmp(opt.kind, "chat"))
		die("--kind must be zone, channel or chat");
	if (strlen(opt.channel) > 64 ||
	    strspn(opt.channel, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789_-") != strlen(opt.channel))
		die("--channel: 1-64 characters of [A-Za-z0-9_-]");
	snprintf(chan_full, sizeof(chan_full), "%s:%s", opt.kind, opt.channel);
	if (!opt.api_port) /* nchan publishes on its WebSocket port */
		opt.api_port = opt.target == T_NCHAN ? opt.port : 8081;
	if (opt.target == T_NCHAN && opt.batch > 1)
		die("--batch: nchan has no batch publish");
	if (opt.target == T_NCHAN && opt.mode == M_JOINSTORM)
		die("joinstorm: nchan has no presence (pavilion target only)");
	if (opt.target == T_NCHAN)
		return;
	if (!opt.secret_file)
		die("--secret FILE is needed for the pavilion target");
	read_secret(opt.secret_file);
	if (opt.mode != M_FANOUT)
		return;
	if (opt.api_key)
		snprintf(api_key, sizeof(api_key), "%s", opt.api_key);
	else if (opt.api_key_file)
		read_api_key(opt.api_key_file);
	else
		die("--api-key-file FILE or --api-key KEY is needed");
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
		{"id-offset", 1, 0, 'i'},   {"publishers", 1, 0, 'u'},
		{"listen-only", 0, 0, 'l'}, {"per-publication", 0, 0, 'E'},
		{"batch", 1, 0, 'b'},       {"kind", 1, 0, 'y'},
		{"quiet", 1, 0, 'q'},       {"snapshot", 0, 0, 'N'},
		{"request-timeout", 1, 0, 'R'}, {"quiet-max", 1, 0, 'Q'},
		{0, 0, 0, 0},
	};
	int ch;

	if (argc < 2)
		usage();
	parse_mode(argv[1]);
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
		case 'E': opt.per_publication = 1; break;
		case 'u': opt.publishers = atoi(optarg); break;
		case 'b': opt.batch = atoi(optarg); break;
		case 'y': opt.kind = optarg; break;
		case 'q': opt.quiet_s = atof(optarg); break;
		case 'N': opt.presence = 1; break;
		case 'R': opt.request_timeout_s = atof(optarg); break;
		case 'Q': opt.quiet_max_s = atof(optarg); break;
		default: usage();
		}
	}
	check_args();
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)opt.n + (rlim_t)opt.publishers + 32;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (need > rl.rlim_cur)
		die("%d connections need more than the %llu open files allowed; "
		    "split the load over several processes (--id-offset)",
		    opt.n, (unsigned long long)rl.rlim_cur);
}

static void find_server(void)
{
	if (opt.server_pid > 0) {
		opt.server_pid_from = "option";
		return;
	}
	opt.server_pid = pid_from_port(opt.port);
	if (opt.server_pid > 0)
		opt.server_pid_from = "port";
	else
		fprintf(stderr, "pavbench: no process found listening on port %d: "
				"no server RSS or CPU figures\n", opt.port);
}

static void print_common(void)
{
	static const char *const names[] = {"idle", "fanout", "joinstorm"};

	printf("mode: %s\n", names[opt.mode]);
	printf("target: %s\n", opt.target == T_NCHAN ? "nchan" : "pavilion");
	printf("transport: %s\n", opt.tls ? "wss" : "ws");
	if (opt.mode != M_IDLE)
		printf("channel: %s\n", opt.target == T_NCHAN ? opt.channel : chan_full);
	if (opt.server_pid > 0) {
		printf("server_pid: %ld\n", opt.server_pid);
		printf("server_pid_from: %s\n", opt.server_pid_from);
	}
	printf("connections: %d\n", opt.n);
	printf("connected: %d\n", n_ready);
	printf("failed: %d\n", n_failed);
	printf("failed_handshake: %d\n", n_failed_handshake);
	printf("failed_after_upgrade: %d\n", n_failed_upgraded);
	print_fail_reasons();
	double cs = (double)(t_connect_last - t_connect0) / 1e9;

	printf("connect_s: %.3f\n", n_ready ? cs : 0.0);
	printf("handshakes_per_s: %.0f\n", n_ready && cs > 0 ? n_ready / cs : 0.0);
}

/* ---- the modes ----------------------------------------------------------- */

/*
 * Every peer goes away at once: each closes its socket, with no close
 * frame (a load balancer or a network in between dropping them all).  The
 * server's CPU from then until it is idle again (its CPU time unchanged
 * over CLOSE_IDLE_SAMPLES samples 100 ms apart), and that per connection.
 */
#define CLOSE_IDLE_SAMPLES 3
static void close_storm(int64_t deadline)
{
	double cpu0 = server_cpu_s(), cpu = cpu0, last;
	int64_t end = now_ns() + (int64_t)(opt.quiet_max_s * 1e9);
	int n = 0;

	if (end > deadline)
		end = deadline;
	for (int i = 0; i < opt.n; i++)
		if (conns[i].state == S_READY) {
			conn_close(&conns[i]);
			conns[i].state = S_DEAD;
			n++;
		}
	printf("closed_at_once: %d\n", n);
	if (cpu0 < 0 || !n)
		return;
	for (int still = 0; still < CLOSE_IDLE_SAMPLES && now_ns() < end;) {
		struct timespec ts = {0, 100000000};

		nanosleep(&ts, NULL);
		last = cpu;
		cpu = server_cpu_s();
		still = cpu == last ? still + 1 : 0;
	}
	if (cpu < 0) /* the server is gone */
		return;
	print_cpu("server_cpu_close_s", cpu0, cpu);
	printf("server_cpu_us_per_close: %.1f\n", (cpu - cpu0) * 1e6 / n);
}

static int run_idle(int64_t deadline)
{
	long rss0 = rss_kib(), rss1;
	double cpu0 = server_cpu_s(), cpu1;

	connect_phase(deadline);
	run_for(opt.settle_s, deadline);
	rss1 = rss_kib();
	cpu1 = server_cpu_s();
	print_common();
	print_cpu("server_cpu_s", cpu0, cpu1);
	print_rss(rss0, rss1);
	if (rss0 >= 0 && rss1 >= 0) {
		printf("rss_per_conn_kib: %.2f\n",
		       n_ready ? (double)(rss1 - rss0) / n_ready : 0.0);
	}
	run_for(opt.hold_s, deadline);
	printf("closed_by_server: %d\n", n_closed_after_ready);
	print_closes_and_messages();
	close_storm(deadline);
	return n_failed || n_closed_after_ready ? 1 : 0;
}

static int run_joinstorm(int64_t deadline)
{
	long rss0 = rss_kib(), rss1;
	double cpu0 = server_cpu_s(), cpu_storm, cpu_end, quiet;

	join_us = calloc((size_t)opt.n, sizeof(*join_us));
	if (!join_us)
		die("out of memory");
	connect_phase(deadline);
	cpu_storm = server_cpu_s();
	/* the snapshots and join announcements still on their way */
	quiet = wait_quiet(opt.quiet_s, opt.quiet_max_s, deadline);
	cpu_end = server_cpu_s();
	rss1 = rss_kib();
	print_common();
	printf("snapshot: %s\n", opt.presence ? "true" : "false");
	printf("subscribed: %d\n", n_ready);
	printf("storm_s: %.3f\n",
	       n_ready ? (double)(t_connect_last - t_connect0) / 1e9 : 0.0);
	print_quantiles("join", join_us, join_n);
	printf("closed_by_server: %d\n", n_closed_after_ready);
	print_closes_and_messages();
	printf("messages_per_client: %.1f\n", (double)frames / opt.n);
	printf("status_update_per_client: %.1f\n",
	       (double)messages_of("status_update") / opt.n);
	printf("drain_s: %.3f\n", quiet);
	print_cpu("server_cpu_storm_s", cpu0, cpu_storm);
	print_cpu("server_cpu_total_s", cpu0, cpu_end);
	print_rss(rss0, rss1);
	return n_ready == opt.n && !n_closes && !n_closed_after_ready ? 0 : 1;
}

/* Starts every request that is due on a free publisher; the poll timeout
 * until the next one is due. */
static int publish_due(int64_t t0, int64_t *next_due)
{
	int64_t now = now_ns();

	if (!pub_stop && pub_fail_run >= PUB_FAIL_RUN_MAX) {
		fprintf(stderr, "pavbench: %d publish requests failed in a row: "
				"giving up\n", PUB_FAIL_RUN_MAX);
		pub_stop = 1;
	}
	for (int i = 0; i < opt.publishers && !pub_stop && n_pub_sent < opt.m; i++) {
		int k = opt.m - n_pub_sent < opt.batch ? opt.m - n_pub_sent : opt.batch;

		if (pubs[i].busy)
			continue;
		if (now < *next_due) {
			int64_t w = (*next_due - now) / 1000000;

			return w < 1 ? 0 : w > 10 ? 10 : (int)w;
		}
		pub_send(&pubs[i], k);
		if (opt.rate > 0)
			*next_due = t0 + (int64_t)(n_pub_sent * 1e9 / opt.rate);
	}
	return 10;
}

/* --listen-only: another pavbench publishes; count until it is quiet. */
static void listen_phase(int64_t deadline)
{
	uint64_t want = (uint64_t)n_ready * (uint64_t)opt.m;

	t_first_pub = now_ns(); /* what was sent from now on counts */
	n_pub_ok = opt.m;
	fprintf(stderr, "pavbench: %d subscribers ready, listening\n", n_ready);
	while (now_ns() < deadline && deliveries < want &&
	       !(t_last_delivery &&
		 now_ns() - t_last_delivery > (int64_t)(opt.drain_s * 1e9)))
		poll_once(10);
}

static void publish_phase(int64_t deadline)
{
	int64_t t0 = now_ns(), next_due = t0, drain_end = 0;

	if (opt.listen_only)
		return listen_phase(deadline);

	pubs = calloc((size_t)opt.publishers, sizeof(*pubs));
	if (!pubs)
		die("out of memory");
	for (int i = 0; i < opt.publishers; i++)
		pubs[i].c = (struct conn){.kind = K_PUB, .fd = -1, .idx = i};
	fprintf(stderr, "pavbench: phase publish\n");
	while (now_ns() < deadline) {
		int timeout = publish_due(t0, &next_due);
		int64_t now = now_ns();

		pub_expire(now);
		if ((n_pub_sent >= opt.m || pub_stop) && !pubs_busy()) {
			if (!drain_end)
				drain_end = now + (int64_t)(opt.drain_s * 1e9);
			if (deliveries >= (uint64_t)n_ready * (uint64_t)n_pub_ok ||
			    now >= drain_end)
				break;
		}
		poll_once(timeout);
	}
	for (int i = 0; i < opt.publishers; i++)
		pub_close(&pubs[i]);
}

/* user: the server's user CPU time of the publish phase (s); read only
 * when cpu0 and cpu1 are known */
static void print_fanout(int m_req, double quiet, double cpu0, double cpu1,
			 double user, long long ipis)
{
	uint64_t expected = (uint64_t)n_ready * (uint64_t)n_pub_ok;
	int64_t from = opt.listen_only ? t_min_sent : t_first_pub;
	double d = (double)(t_last_delivery - from) / 1e9;

	printf("first_sent_ns: %" PRId64 "\n", from);
	printf("last_delivery_ns: %" PRId64 "\n", t_last_delivery);
	printf("subscribers: %d\n", n_ready);
	printf("quiet_before_publish_s: %.3f\n", quiet);
	printf("publishers: %d\n", opt.publishers);
	printf("batch: %d\n", opt.batch);
	if (batch_refused)
		printf("batch_supported: no\n");
	printf("publications: %d\n", m_req);
	printf("publications_ok: %d\n", n_pub_ok);
	printf("publications_failed: %d\n", n_pub_failed);
	printf("requests: %d\n", n_requests);
	printf("reconnects: %d\n", n_reconnects);
	printf("rate: %g\n", opt.rate);
	printf("body_bytes: %d\n", opt.size);
	printf("server_recipients_first: %ld\n", recipients_first);
	printf("server_recipients_last: %ld\n", recipients_last);
	printf("expected: %" PRIu64 "\n", expected);
	printf("deliveries: %" PRIu64 "\n", deliveries);
	printf("missing: %" PRId64 "\n", (int64_t)expected - (int64_t)deliveries);
	printf("duplicates: %" PRIu64 "\n", dup_or_late);
	printf("stale: %" PRIu64 "\n", stale);
	printf("duration_s: %.3f\n", deliveries ? d : 0.0);
	printf("deliveries_per_s: %.0f\n", deliveries && d > 0 ? deliveries / d : 0.0);
	print_quantiles("latency", lat_us, lat_n);
	print_spread();
	print_cpu("server_cpu_s", cpu0, cpu1);
	if (cpu0 >= 0 && cpu1 >= 0 && deliveries) {
		double per = 1e6 / (double)deliveries;

		printf("server_cpu_us_per_delivery: %.2f\n",
		       (cpu1 - cpu0) * per);
		printf("server_cpu_user_us_per_delivery: %.2f\n", user * per);
		printf("server_cpu_kernel_us_per_delivery: %.2f\n",
		       (cpu1 - cpu0 - user) * per);
	}
	if (ipis >= 0 && deliveries) {
		printf("load_cpu: %d\n", load_cpu());
		printf("load_cpu_wakeup_ipis: %lld\n", ipis);
		printf("load_cpu_wakeup_ipis_per_delivery: %.3f\n",
		       (double)ipis / (double)deliveries);
	}
	printf("closed_by_server: %d\n", n_closed_after_ready);
	print_closes_and_messages();
}

static int run_fanout(int64_t deadline)
{
	int body_fixed, m_req = opt.m;
	double quiet, cpu_c0 = server_cpu_s(), cpu0, cpu1, user0 = 0, user1 = 0;
	long long ipi0, ipi1;
	long rss0, rss1;

	/* {"t":<16 digits>,"pad":"..."}: the body is opt.size bytes */
	body_fixed = (int)strlen("{\"t\":,\"pad\":\"\"}") + 16;
	memset(pad, 'x', (size_t)(opt.size - body_fixed));
	pad[opt.size - body_fixed] = '\0';
	if ((size_t)opt.batch * (size_t)(opt.size + 80) > API_BODY_MAX)
		die("--batch %d of %d-byte bodies exceeds the API's 64 KiB body "
		    "limit", opt.batch, opt.size);
	connect_phase(deadline);
	lat_cap = (uint64_t)n_ready * (uint64_t)opt.m;
	lat_us = malloc((lat_cap ? lat_cap : 1) * sizeof(*lat_us));
	spread_cap = (size_t)(opt.m > 0 ? opt.m : 1);
	spread = calloc(spread_cap, sizeof(*spread));
	if (!lat_us || !spread)
		die("out of memory for %" PRIu64 " samples", lat_cap);
	if (!n_ready) {
		fprintf(stderr, "pavbench: no subscriber connected: "
				"nothing published\n");
		opt.m = 0;
	}
	run_for(opt.settle_s, deadline);
	/* joins may set off messages (presence): publish into a quiet line */
	quiet = wait_quiet(opt.quiet_s, opt.quiet_max_s, deadline);
	cpu0 = server_cpu(&user0);
	ipi0 = wakeup_ipis(load_cpu());
	rss0 = rss_kib();
	if (opt.m)
		publish_phase(deadline);
	cpu1 = server_cpu(&user1);
	ipi1 = wakeup_ipis(load_cpu());
	rss1 = rss_kib();
	print_common();
	print_cpu("server_cpu_connect_s", cpu_c0, cpu0);
	print_fanout(m_req, quiet, cpu0, cpu1, user1 - user0,
		     ipi0 >= 0 && ipi1 >= ipi0 ? ipi1 - ipi0 : -1);
	print_rss(rss0, rss1);
	if (batch_refused)
		return EXIT_NO_BATCH;
	return deliveries == (uint64_t)n_ready * (uint64_t)n_pub_ok &&
	       !n_failed && !n_pub_failed && n_pub_ok == m_req ? 0 : 1;
}

int main(int argc, char **argv)
{
	int64_t deadline;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* SSL_write on a closed socket */
	parse_args(argc, argv);
	raise_fd_limit();
	find_server();
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
	switch (opt.mode) {
	case M_IDLE:
		return run_idle(deadline);
	case M_JOINSTORM:
		return run_joinstorm(deadline);
	default:
		return run_fanout(deadline);
	}
}
