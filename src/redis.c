/*
 * redis.c — the asynchronous Redis client (redis.h).
 *
 * I/O.  Each connection is a non-blocking TCP socket connected by us and
 * handed to lws as a raw *file* descriptor (lws_adopt_descriptor_vhost on
 * a listen-less vhost of our own): lws only polls it, on whichever event
 * loop the context runs (poll or libuv).  We read, write and check the
 * connect ourselves; hiredis only formats commands and parses replies
 * (redisReader).  Not a raw *socket*: lws' raw-socket role reads one
 * service buffer (4 KiB by default) per poll round, a thousand rounds for
 * a 4 MB reply; here one callback reads up to READS_PER_CALLBACK chunks.
 * With rediss:// the same socket carries TLS: OpenSSL (non-blocking, on
 * the socket itself) shakes hands after the connect and before AUTH, and
 * conn_send/conn_recv are SSL_write/SSL_read.
 *
 * Two lws 4.1 facts shape the write path: (1) after a raw file's
 * writable callback lws clears POLLOUT, so interest armed inside that
 * callback is lost: a partial write re-arms from a zero-delay timer
 * (rearm_sul); (2) the callback runs before the read callback of the same
 * poll round, so arming from a read callback (a reply callback queueing a
 * command) is kept.  Commands are not written when queued: they wait for
 * the writable callback, so all that one loop turn queued goes out in one
 * send().
 *
 * Closing.  We never close an adopted socket inside a call that lws may
 * still be using: the wsi is detached from us (opaque pointer NULL) and
 * killed on lws' next timer run (LWS_TO_KILL_ASYNC); lws closes the fd.
 * A callback that finds no client behind its wsi asks lws to close it.
 *
 * Reentrancy.  User callbacks may call anything, pav_redis_destroy too:
 * `depth` counts the frames of ours on the stack, a destroy inside one
 * only marks the client `dying`, and the memory goes when the outermost
 * frame leaves.  A pending entry is unlinked before its callback runs, so
 * each runs once whatever the callback does.
 */
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "log.h"
#include "map.h"

#define VHOST_NAME "pavilion-redis-client"
#define PROTOCOL_NAME "pavilion-redis"
#define READ_CHUNK (64 * 1024)
#define READS_PER_CALLBACK 16       /* then let other sockets have a turn */
#define OUT_KEEP_BYTES (256 * 1024) /* an emptied bigger write buffer goes */
#define SUBSCRIBE_BATCH 1024        /* channels per SUBSCRIBE when restoring */

#define rlog(level, ...) pav_log(level, "redis", __VA_ARGS__)

enum conn_state { CS_CLOSED, CS_CONNECTING, CS_HANDSHAKE, CS_READY };

enum pend_kind {
	PK_USER,   /* a caller's command */
	PK_EVAL,   /* a caller's EVALSHA: retried once on NOSCRIPT */
	PK_WAITER, /* a subscribe confirmation (in a channel, not a FIFO) */
	PK_SETUP,  /* AUTH or SELECT while connecting: an error is fatal */
	PK_SETUP_LOAD, /* SCRIPT LOAD while connecting: an error is logged */
	PK_ROLE,   /* ROLE while connecting (sentinels): not master is fatal */
	PK_SENTINEL, /* SENTINEL get-master-addr-by-name, to a sentinel */
	PK_LOAD,   /* SCRIPT LOAD at other times */
	PK_PING,   /* health request (on the watch: its SUBSCRIBE again) */
	PK_PROBE,  /* health request that also publishes a pub/sub probe */
	PK_SUB,    /* SUBSCRIBE of one channel: a refusal is told to it */
	PK_UNSUB,  /* UNSUBSCRIBE of one channel */
	PK_RESTORE, /* SUBSCRIBE of a batch of the set on a new connection */
	PK_RESUB,  /* SUBSCRIBE of one channel of a refused PK_RESTORE */
};

struct pending {
	struct pending *next;
	enum pend_kind kind;
	pav_redis_reply_fn cb;
	void *arg;
	int err;          /* a waiter's result, once it is due */
	int64_t deadline; /* monotonic ms */
	uint64_t seq;     /* PK_PROBE: probe number; PK_EVAL: script handle;
			   * PK_RESTORE: confirmations still owed */
	unsigned gen;     /* PK_PROBE: the pub/sub connection it tests */
	char *again;      /* PK_EVAL: the formatted command, for the retry */
	size_t again_len;
	char *chan;       /* PK_SUB, PK_UNSUB, PK_RESUB: the channel;
			   * PK_RESTORE: its channels, each NUL-ended */
	size_t chan_len;  /* PK_RESTORE: the bytes of chan */
	int retried;
};

struct fifo {
	struct pending *head, *tail;
};

struct outbuf {
	char *data;
	size_t off, len, cap;
	int secret; /* holds (or held) an AUTH: wiped before it is let go */
};

struct conn {
	struct pav_redis *r;
	const char *name;
	struct lws *wsi; /* NULL: no socket of ours */
	int fd;
	enum conn_state state;
	unsigned gen;    /* bumped on every connect */
	redisReader *reader;
	size_t unparsed; /* bytes of the reply being read */
	struct outbuf out;
	struct fifo fifo;   /* sent or queued, oldest first */
	int setup_owed;     /* handshake replies (and restore acks) owed */
	int64_t setup_deadline;
	int64_t last_rx;
	int health_out;     /* a PING/PROBE is unanswered */
	int want_write, in_writable;
	lws_sorted_usec_list_t rearm_sul;
	SSL *ssl;           /* rediss: from the connect on */
	int tls_up;         /* its handshake is done */
	int read_wants_write, write_wants_read; /* SSL asked for the other */
	char tls_why[160];  /* the last TLS error, for the log */
};

struct channel {
	int wanted;    /* in the caller's set */
	int acks_owed; /* SUBSCRIBE/UNSUBSCRIBE sent, not yet confirmed */
	struct fifo waiters;
};

struct script {
	char *lua;
	char sha[41];
};

/* A lookup of the host name again, on glibc's resolver thread. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char port[8];
};

/* What the host stands for: its addresses, in the resolver's order. */
#define MAX_ADDRS 8
struct addrs {
	struct sockaddr_storage a[MAX_ADDRS];
	socklen_t len[MAX_ADDRS];
	unsigned n;
};
/* the text of one address with its scope, and of a whole list */
#define ADDR_TEXT 64
#define ADDRS_TEXT (MAX_ADDRS * (ADDR_TEXT + 2))

struct pav_redis {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct pav_redis_config cfg;
	struct pav_redis_events ev;
	struct addrs addrs;
	unsigned at;           /* the address a retry tries */
	int named;             /* cfg.host is a name, not an address */
	struct lookup *lookup; /* of that name, running or done */
	struct conn cmd, sub;
	struct conn sen;       /* to a sentinel, while asking it */
	struct conn watch;     /* to a sentinel: SUBSCRIBE +switch-master */
	unsigned watch_sen;    /* which one (an index of sen_addrs) */
	unsigned watch_n;      /* its failures in a row, for the backoff */
	int64_t watch_at;      /* closed: when to open it again; 0 never */
	int64_t watch_probe_at; /* subscribed: when its next check goes */
	/* each sentinel's addresses (none: a name not resolved yet, and
	 * sen_gai its lookup's error), sen_ai the one tried next */
	struct addrs sen_addrs[PAV_REDIS_MAX_SENTINELS];
	unsigned sen_ai[PAV_REDIS_MAX_SENTINELS];
	int sen_gai[PAV_REDIS_MAX_SENTINELS];
	unsigned nsen;         /* the sentinels used */
	unsigned sen_cfg[PAV_REDIS_MAX_SENTINELS]; /* their index in cfg */
	int sen_named[PAV_REDIS_MAX_SENTINELS]; /* given by name */
	struct lookup *sen_lookup[PAV_REDIS_MAX_SENTINELS]; /* of that name */
	unsigned sen_at;       /* the one asked next */
	unsigned sen_asked;    /* in this round */
	int master_known;      /* cfg.host and port: a sentinel's answer */
	int up;
	int depth, dying;
	unsigned retry_n, sub_retry_n;
	int sub_replaced; /* since up: `resync` when the new one is ready */
	uint64_t rnd;
	struct pav_map *channels; /* name -> struct channel */
	struct fifo firing;       /* waiters whose callback is due */
	size_t nwaiting;          /* caller commands and waiters */
	size_t again_bytes;       /* kept for EVALSHA retries */
	struct script *scripts;
	int nscripts;
	char probe_chan[40];
	uint64_t probe_seq, probe_seen, probe_wait;
	int64_t probe_deadline, next_health;
	lws_sorted_usec_list_t tick_sul, retry_sul, sub_retry_sul, fire_sul;
};

static void conn_fail(struct conn *c, int err, const char *why);
static void sentinel_failed(struct pav_redis *r, const char *why);
static void watch_open(struct pav_redis *r, int after_loss);
static void watch_lost(struct pav_redis *r, const char *why);
static int send_auth(struct conn *c);
static int reply_is(const redisReply *rep, const char *s);
static void tick_cb(lws_sorted_usec_list_t *sul);
static void tls_step(struct conn *c);

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_ms(void)
{
	return pav_mono_ms();
}

static void sched(struct pav_redis *r, lws_sorted_usec_list_t *sul,
		  sul_cb_t cb, int64_t ms)
{
	lws_sul_schedule(r->ctx, 0, sul, cb, (lws_usec_t)ms * LWS_US_PER_MS);
}

static uint64_t rnd_next(struct pav_redis *r)
{
	/* xorshift64*: jitter and probe names, nothing secret */
	r->rnd ^= r->rnd >> 12;
	r->rnd ^= r->rnd << 25;
	r->rnd ^= r->rnd >> 27;
	return r->rnd * 0x2545F4914F6CDD1DULL;
}

static void fifo_push(struct fifo *f, struct pending *p)
{
	p->next = NULL;
	if (f->tail)
		f->tail->next = p;
	else
		f->head = p;
	f->tail = p;
}

static struct pending *fifo_pop(struct fifo *f)
{
	struct pending *p = f->head;

	if (p) {
		f->head = p->next;
		if (!f->head)
			f->tail = NULL;
		p->next = NULL;
	}
	return p;
}

/* Moves every entry of from to the end of to, each with err. */
static void fifo_move(struct fifo *to, struct fifo *from, int err)
{
	struct pending *p;

	while ((p = fifo_pop(from))) {
		p->err = err;
		fifo_push(to, p);
	}
}

static struct pending *pending_new(enum pend_kind kind, pav_redis_reply_fn cb,
				   void *arg, int64_t timeout_ms)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p) {
		p->kind = kind;
		p->cb = cb;
		p->arg = arg;
		p->deadline = now_ms() + timeout_ms;
	}
	return p;
}

static int is_callers(const struct pending *p)
{
	return p->kind == PK_USER || p->kind == PK_EVAL || p->kind == PK_WAITER;
}

/* Unlinked p: frees it, then runs its callback (if it has one). */
static void complete(struct pav_redis *r, struct pending *p, int err,
		     const redisReply *reply)
{
	pav_redis_reply_fn cb = p->cb;
	void *arg = p->arg;

	if (p->again) {
		r->again_bytes -= p->again_len;
		redisFreeCommand(p->again);
	}
	if (is_callers(p))
		r->nwaiting--;
	free(p->chan);
	free(p);
	if (cb)
		cb(arg, err, reply);
}

static void leave(struct pav_redis *r);

/* Runs the waiters that are due; err < 0 overrides theirs. */
static void run_firing(struct pav_redis *r, int err)
{
	struct pending *p;

	while ((p = fifo_pop(&r->firing)))
		complete(r, p, err < 0 ? err : p->err, NULL);
}

static void fire_cb(lws_sorted_usec_list_t *sul)
{
	struct pav_redis *r = lws_container_of(sul, struct pav_redis, fire_sul);

	r->depth++;
	run_firing(r, 0);
	leave(r);
}

/* ---- the write buffer --------------------------------------------------- */

static size_t out_pending(const struct outbuf *o)
{
	return o->len - o->off;
}

/* A password goes from memory once sent: the whole room, as what was
 * sent may have been moved about by compaction. */
static void out_wipe(struct outbuf *o)
{
	if (o->secret && o->data)
		explicit_bzero(o->data, o->cap);
	o->secret = 0;
}

/* Room for cap bytes; realloc() would free the old block unwiped. */
static int out_resize(struct outbuf *o, size_t cap)
{
	char *d;

	if (!o->secret || !o->data) {
		d = realloc(o->data, cap);
	} else if ((d = malloc(cap))) {
		memcpy(d, o->data, o->len);
		explicit_bzero(o->data, o->cap);
		free(o->data);
	}
	if (!d)
		return -ENOMEM;
	o->data = d;
	o->cap = cap;
	return 0;
}

static int out_append(struct outbuf *o, const char *p, size_t n)
{
	if (o->off && o->len + n > o->cap) { /* compact before growing */
		memmove(o->data, o->data + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4096;

		while (cap < o->len + n)
			cap *= 2;
		if (out_resize(o, cap))
			return -ENOMEM;
	}
	memcpy(o->data + o->len, p, n);
	o->len += n;
	return 0;
}

static void out_free(struct outbuf *o)
{
	out_wipe(o);
	free(o->data);
	memset(o, 0, sizeof(*o));
}

/* Bytes held for writing or retrying, against max_buffer_bytes. */
static size_t held_bytes(const struct pav_redis *r)
{
	return out_pending(&r->cmd.out) + r->again_bytes;
}

/* ---- writing ------------------------------------------------------------ */

static void arm_write(struct conn *c)
{
	/* inside the writable callback lws would drop the interest: the
	 * callback flushes what is queued and re-arms by timer instead */
	if (!c->wsi || c->in_writable || c->want_write)
		return;
	c->want_write = 1;
	lws_callback_on_writable(c->wsi);
}

static void rearm_cb(lws_sorted_usec_list_t *sul)
{
	struct conn *c = lws_container_of(sul, struct conn, rearm_sul);

	if (out_pending(&c->out) || c->read_wants_write)
		arm_write(c);
}

/* Queues a formatted command (copied) and its pending entry (may be NULL). */
static int enqueue(struct conn *c, struct pending *p, const char *cmd,
		   size_t len)
{
	if (out_append(&c->out, cmd, len))
		return -ENOMEM;
	if (p)
		fifo_push(&c->fifo, p);
	arm_write(c);
	return 0;
}

static int send_argv(struct conn *c, struct pending *p, int argc,
		     const char **argv, const size_t *lens)
{
	char *cmd;
	int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	int rc;

	if (len < 0)
		return -ENOMEM;
	rc = enqueue(c, p, cmd, (size_t)len);
	if (c->out.secret) /* this may be the AUTH itself */
		explicit_bzero(cmd, (size_t)len);
	redisFreeCommand(cmd);
	return rc;
}

/* An internal command, answered into an entry of `kind`. */
static int send_internal(struct conn *c, enum pend_kind kind, int argc,
			 const char **argv)
{
	struct pending *p = pending_new(kind, NULL, NULL,
					c->r->cfg.command_timeout_ms);
	int rc;

	if (!p)
		return -ENOMEM;
	rc = send_argv(c, p, argc, argv, NULL);
	if (rc)
		free(p);
	return rc;
}

/* ---- the socket, plain or TLS (rediss://) ------------------------------- */

/* Why a TLS call failed, into c->tls_why.  The error queue is emptied: it
 * is the thread's, and one connection's errors must not be read as the
 * next one's. */
static const char *tls_error(struct conn *c)
{
	unsigned long e = ERR_peek_last_error();
	long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	if (v != X509_V_OK)
		snprintf(c->tls_why, sizeof(c->tls_why), "TLS: the server's "
			 "certificate: %s", X509_verify_cert_error_string(v));
	else if (e)
		snprintf(c->tls_why, sizeof(c->tls_why), "TLS: %s",
			 why ? why : "an OpenSSL error");
	else
		snprintf(c->tls_why, sizeof(c->tls_why), "TLS: %s",
			 errno ? strerror(errno) : "the connection closed");
	ERR_clear_error();
	return c->tls_why;
}

/* send() or SSL_write(): bytes written, -EAGAIN, or another -errno
 * (-EPROTO: TLS, the reason in c->tls_why). */
static ssize_t conn_send(struct conn *c, const char *p, size_t n)
{
	int k;

	if (!c->ssl) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		return w >= 0 ? w : -errno;
	}
	ERR_clear_error();
	k = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
	if (k > 0)
		return k;
	switch (SSL_get_error(c->ssl, k)) {
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_WANT_READ: /* the next readable event writes on */
		c->write_wants_read = 1;
		return -EAGAIN;
	default:
		tls_error(c);
		return -EPROTO;
	}
}

/* recv() or SSL_read(): bytes read, 0 at the end, -EAGAIN, or another
 * -errno (-EPROTO: TLS, the reason in c->tls_why). */
static ssize_t conn_recv(struct conn *c, char *buf, size_t n)
{
	int k;

	if (!c->ssl) {
		ssize_t got = recv(c->fd, buf, n, 0);

		return got >= 0 ? got : -errno;
	}
	ERR_clear_error();
	k = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (k > 0)
		return k;
	switch (SSL_get_error(c->ssl, k)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE: /* the next writable event reads on */
		c->read_wants_write = 1;
		arm_write(c);
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error())
			return errno ? -errno : 0;
		/* fall through */
	default:
		tls_error(c);
		return -EPROTO;
	}
}

/* A failed conn_send or conn_recv, in words. */
static const char *io_why(const struct conn *c, ssize_t n)
{
	if (!n)
		return "closed by the server";
	return n == -EPROTO && c->ssl ? c->tls_why : strerror((int)-n);
}

static void flush(struct conn *c)
{
	struct outbuf *o = &c->out;

	if (c->ssl && !c->tls_up)
		return; /* the TLS handshake first */
	while (out_pending(o)) {
		ssize_t n = conn_send(c, o->data + o->off, out_pending(o));

		if (n > 0) {
			o->off += (size_t)n;
		} else if (n == -EAGAIN) {
			return;
		} else if (n != -EINTR) {
			conn_fail(c, -EIO, io_why(c, n));
			return;
		}
	}
	out_wipe(o);
	o->off = o->len = 0;
	if (o->cap > OUT_KEEP_BYTES)
		out_free(o);
}

/* ---- connecting and closing -------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (c->wsi) {
		lws_set_opaque_user_data(c->wsi, NULL);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
	c->wsi = NULL;
	c->fd = -1;
	SSL_free(c->ssl); /* lws closes the socket: no close_notify */
	c->ssl = NULL;
	c->tls_up = 0;
	c->read_wants_write = c->write_wants_read = 0;
	lws_sul_cancel(&c->rearm_sul);
	if (c->reader)
		redisReaderFree(c->reader);
	c->reader = NULL;
	out_free(&c->out);
	c->state = CS_CLOSED;
	c->unparsed = 0;
	c->setup_owed = 0;
	c->health_out = 0;
	c->want_write = 0;
}

static int conn_adopt(struct conn *c, int fd)
{
	lws_adopt_desc_t ad;

	memset(&ad, 0, sizeof(ad));
	ad.vh = c->r->vh;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = fd;
	ad.vh_prot_name = PROTOCOL_NAME;
	ad.opaque = c;
	c->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
	return c->wsi ? 0 : -EIO;
}

/* Starts a non-blocking connect to `to`; the writable callback finishes
 * it. */
static int conn_open_to(struct conn *c, const struct sockaddr_storage *to,
			socklen_t tolen)
{
	struct pav_redis *r = c->r;
	int one = 1, rc = -ENOMEM;
	int fd;

	fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)to, tolen) &&
	    errno != EINPROGRESS) {
		rc = -errno;
		goto fail;
	}
	c->reader = redisReaderCreate();
	if (!c->reader || (rc = conn_adopt(c, fd)))
		goto fail;
	c->fd = fd;
	c->gen++;
	c->state = CS_CONNECTING;
	c->setup_deadline = now_ms() + r->cfg.command_timeout_ms;
	c->want_write = 1;
	lws_callback_on_writable(c->wsi);
	return 0;
fail:
	close(fd);
	if (c->reader)
		redisReaderFree(c->reader);
	c->reader = NULL;
	return rc;
}

/* Connects c to the address a retry tries. */
static int conn_open(struct conn *c)
{
	struct pav_redis *r = c->r;

	if (!r->addrs.n) /* a name that has not resolved yet */
		return -EADDRNOTAVAIL;
	return conn_open_to(c, &r->addrs.a[r->at], r->addrs.len[r->at]);
}

/* Both connections, command then pub/sub: 0 or the first error. */
static int conns_open(struct pav_redis *r)
{
	int rc = conn_open(&r->cmd);

	return rc ? rc : conn_open(&r->sub);
}

static int64_t backoff_ms(struct pav_redis *r, unsigned n)
{
	int64_t d = PAV_REDIS_BACKOFF_FIRST_MS;

	while (n-- && d < PAV_REDIS_BACKOFF_MAX_MS)
		d *= 2;
	if (d > PAV_REDIS_BACKOFF_MAX_MS)
		d = PAV_REDIS_BACKOFF_MAX_MS;
	/* "equal jitter": nodes that lost Redis together do not come back
	 * in lockstep */
	return d / 2 + (int64_t)(rnd_next(r) % (uint64_t)(d / 2 + 1));
}

/* ---- the host name and its addresses ----------------------------------- */

/*
 * A name may stand for several addresses (localhost: ::1 and 127.0.0.1):
 * a connection that fails before the client is up makes the next retry
 * try the next one; one that was up is retried where it was.
 *
 * A host given by name is looked up again each time the client goes down,
 * on glibc's resolver thread (getaddrinfo_a), so the loop never waits for
 * DNS.  The next retry takes the answer if it has come: a Redis that came
 * back at another address (a restarted container, a failover by DNS) is
 * found there.  A retry before the answer, or after a failed lookup, tries
 * the addresses it had.
 */
static void hints_set(struct addrinfo *h, int flags)
{
	memset(h, 0, sizeof(*h));
	h->ai_socktype = SOCK_STREAM;
	h->ai_flags = flags | AI_NUMERICSERV;
}

/* Whether a's address i is sa. */
static int addr_is(const struct addrs *a, unsigned i, const void *sa,
		   socklen_t len)
{
	return a->len[i] == len && !memcmp(&a->a[i], sa, len);
}

/* The first MAX_ADDRS distinct addresses of a resolver's answer. */
static void addrs_take(struct addrs *to, const struct addrinfo *res)
{
	to->n = 0;
	for (; res && to->n < MAX_ADDRS; res = res->ai_next) {
		unsigned i = 0;

		if (res->ai_addrlen > sizeof(to->a[0]))
			continue;
		while (i < to->n && !addr_is(to, i, res->ai_addr,
					     res->ai_addrlen))
			i++;
		if (i < to->n)
			continue; /* listed twice */
		memcpy(&to->a[to->n], res->ai_addr, res->ai_addrlen);
		to->len[to->n++] = res->ai_addrlen;
	}
}

static int addrs_equal(const struct addrs *x, const struct addrs *y)
{
	if (x->n != y->n)
		return 0;
	for (unsigned i = 0; i < x->n; i++)
		if (!addr_is(x, i, &y->a[i], y->len[i]))
			return 0;
	return 1;
}

static void sa_text(const struct sockaddr_storage *sa, socklen_t len,
		    char *buf, size_t size)
{
	if (getnameinfo((const struct sockaddr *)sa, len, buf, (socklen_t)size,
			NULL, 0, NI_NUMERICHOST))
		snprintf(buf, size, "?");
}

static void addr_text(const struct addrs *a, unsigned i, char *buf,
		      size_t size)
{
	sa_text(&a->a[i], a->len[i], buf, size);
}

/* "A, B, C" */
static void addrs_text(const struct addrs *a, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < a->n && used < size; i++) {
		char one[ADDR_TEXT];

		addr_text(a, i, one, sizeof(one));
		used += (size_t)snprintf(buf + used, size - used, "%s%s",
					 i ? ", " : "", one);
	}
}

/* A lookup of host (which must outlive it) on the resolver thread; NULL
 * when it cannot start (logged). */
static struct lookup *lookup_begin(const char *host, int port)
{
	struct gaicb *list[1];
	struct lookup *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return NULL;
	hints_set(&l->hints, AI_ADDRCONFIG);
	snprintf(l->port, sizeof(l->port), "%d", port);
	l->cb.ar_name = host;
	l->cb.ar_service = l->port;
	l->cb.ar_request = &l->hints;
	list[0] = &l->cb;
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc) {
		rlog(PAV_LOG_WARN, "cannot look up %s again: %s", host,
		     gai_strerror(rc));
		free(l);
		return NULL;
	}
	return l;
}

static void lookup_start(struct pav_redis *r)
{
	if (r->named && !r->lookup && !r->dying)
		r->lookup = lookup_begin(r->cfg.host, r->cfg.port);
}

static void lookup_free(struct lookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l);
}

/* Before a retry: a finished lookup's addresses become the ones tried,
 * from the first, when they changed. */
static void lookup_take(struct pav_redis *r)
{
	struct lookup *l = r->lookup;
	struct addrs got;
	char was[ADDRS_TEXT], now[ADDRS_TEXT];
	int rc;

	if (!l || (rc = gai_error(&l->cb)) == EAI_INPROGRESS)
		return;
	r->lookup = NULL;
	addrs_take(&got, rc ? NULL : l->cb.ar_result);
	addrs_text(&r->addrs, was, sizeof(was));
	if (!got.n && !r->addrs.n) {
		rlog(PAV_LOG_WARN, "cannot resolve %s yet: %s", r->cfg.host,
		     rc ? gai_strerror(rc) : "no usable address");
	} else if (!got.n) {
		rlog(PAV_LOG_WARN, "cannot look up %s again: %s; trying %s",
		     r->cfg.host, rc ? gai_strerror(rc) : "no address", was);
	} else if (!r->addrs.n) {
		r->addrs = got;
		r->at = 0;
		addrs_text(&got, now, sizeof(now));
		rlog(PAV_LOG_INFO, "%s resolves to %s", r->cfg.host, now);
	} else if (!addrs_equal(&got, &r->addrs)) {
		r->addrs = got;
		r->at = 0;
		addrs_text(&got, now, sizeof(now));
		rlog(PAV_LOG_INFO, "%s now resolves to %s (was %s)",
		     r->cfg.host, now, was);
	}
	lookup_free(l);
}

/* At destroy: a lookup the resolver has begun is waited for. */
static void lookup_drop(struct lookup **lp)
{
	struct lookup *l = *lp;
	const struct gaicb *list[1];

	if (!l)
		return;
	*lp = NULL;
	list[0] = &l->cb;
	if (gai_cancel(&l->cb) == EAI_NOTCANCELED)
		while (gai_error(&l->cb) == EAI_INPROGRESS)
			gai_suspend(list, 1, NULL);
	lookup_free(l);
}

/* Fails every entry of c's FIFO with err (internal ones silently). */
static void fail_fifo(struct pav_redis *r, struct conn *c, int err)
{
	struct pending *p;

	while ((p = fifo_pop(&c->fifo)))
		complete(r, p, err, NULL);
}

/* ---- the subscription set ------------------------------------------------ */

enum which { WANTED, UNWANTED };

struct collect {
	struct pav_redis *r;
	enum which which;
	int err; /* != 0: also move every waiter to firing with it */
	char **names;
	size_t n;
};

static int collect_one(const char *key, void *val, void *arg)
{
	struct collect *k = arg;
	struct channel *ch = val;

	if (k->err)
		fifo_move(&k->r->firing, &ch->waiters, k->err);
	if (!ch->wanted == (k->which == UNWANTED))
		k->names[k->n++] = (char *)key;
	return 0;
}

/* The names of the wanted (or unwanted) channels, borrowed from the map:
 * valid until it changes.  NULL when short of memory. */
static char **collect_names(struct pav_redis *r, enum which which, int err,
			    size_t *n)
{
	struct collect k = {r, which, err, NULL, 0};

	k.names = malloc((pav_map_count(r->channels) + 1) * sizeof(char *));
	if (!k.names)
		return NULL;
	pav_map_each(r->channels, collect_one, &k);
	*n = k.n;
	return k.names;
}

/* Forgets one channel; its waiters are due with -ECANCELED. */
static void drop_channel(struct pav_redis *r, const char *name)
{
	struct channel *ch = pav_map_del(r->channels, name);

	if (ch) {
		fifo_move(&r->firing, &ch->waiters, -ECANCELED);
		free(ch);
	}
}

static int clear_acks(const char *key, void *val, void *arg)
{
	struct channel *ch = val;

	(void)key;
	(void)arg;
	ch->acks_owed = 0;
	return 0;
}

/* The pub/sub connection went: nothing is owed any more; unwanted
 * channels go; with err, every waiter is due with err. */
static void subs_reset(struct pav_redis *r, int err)
{
	size_t n = 0;
	char **names;

	pav_map_each(r->channels, clear_acks, NULL);
	names = collect_names(r, UNWANTED, err, &n);

	for (size_t i = 0; names && i < n; i++) {
		char *name = strdup(names[i]); /* the map frees its key */

		if (name)
			drop_channel(r, name);
		free(name);
	}
	free(names);
}

static int reset_acks(const char *key, void *val, void *arg)
{
	struct channel *ch = val;

	(void)key;
	(void)arg;
	ch->acks_owed = ch->wanted;
	return 0;
}

/* One SUBSCRIBE of argv[1..argc) with an entry that keeps their names:
 * Redis refuses such a command as a whole when one channel is not allowed
 * (NOPERM), and the entry lets each be subscribed again on its own. */
static int send_restore(struct pav_redis *r, int argc, const char **argv)
{
	struct pending *p = pending_new(PK_RESTORE, NULL, NULL, 0);
	size_t len = 0;

	for (int i = 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (!p || !(p->chan = malloc(len))) {
		free(p);
		return -ENOMEM;
	}
	for (int i = 1; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;

		memcpy(p->chan + p->chan_len, argv[i], n);
		p->chan_len += n;
	}
	p->seq = (uint64_t)(argc - 1);
	if (send_argv(&r->sub, p, argc, argv, NULL)) {
		free(p->chan);
		free(p);
		return -ENOMEM;
	}
	return 0;
}

/* SUBSCRIBE the probe channel and every wanted channel, SUBSCRIBE_BATCH
 * at a time; returns how many confirmations to wait for, or -ENOMEM. */
static int restore_subs(struct pav_redis *r)
{
	size_t n = 0, i = 0;
	char **names = collect_names(r, WANTED, 0, &n);
	const char **argv = malloc((SUBSCRIBE_BATCH + 2) * sizeof(char *));
	int rc = names && argv ? 0 : -ENOMEM, first = 1;

	pav_map_each(r->channels, reset_acks, NULL);
	while (!rc && (first || i < n)) {
		int argc = 0;

		argv[argc++] = "SUBSCRIBE";
		if (first)
			argv[argc++] = r->probe_chan;
		first = 0;
		while (i < n && argc <= SUBSCRIBE_BATCH)
			argv[argc++] = names[i++];
		rc = send_restore(r, argc, argv);
	}
	free(names);
	free(argv);
	return rc ? rc : (int)n + 1;
}

/* ---- up, down, the pub/sub connection ------------------------------------ */

/* " at A" after a host name: which of its addresses is tried */
static const char *where(const struct pav_redis *r, char *buf, size_t size)
{
	char one[ADDR_TEXT];

	if (!r->named || !r->addrs.n)
		return "";
	addr_text(&r->addrs, r->at, one, sizeof(one));
	snprintf(buf, size, " at %s", one);
	return buf;
}

static void maybe_up(struct pav_redis *r)
{
	char at[ADDR_TEXT + 4];

	if (r->cmd.state != CS_READY || r->sub.state != CS_READY)
		return;
	if (!r->up) {
		r->up = 1;
		r->retry_n = 0;
		r->next_health = now_ms() + r->cfg.probe_interval_ms;
		rlog(PAV_LOG_INFO, "connected to %s:%d%s%s", r->cfg.host,
		     r->cfg.port, where(r, at, sizeof(at)),
		     r->cfg.tls ? " (TLS)" : "");
		watch_open(r, 0);
		if (r->ev.up)
			r->ev.up(r->ev.arg);
	} else if (r->sub_replaced) {
		r->sub_replaced = 0;
		rlog(PAV_LOG_INFO, "pub/sub connection replaced, "
		     "subscriptions restored");
		if (r->ev.resync)
			r->ev.resync(r->ev.arg);
	}
}

static void retry_cb(lws_sorted_usec_list_t *sul);

/* Both connections go; callers' entries fail with err; a retry is set:
 * at the next address when this one never came up. */
static void go_down(struct pav_redis *r, int err, const char *why)
{
	int was_up = r->up;
	char at[ADDR_TEXT + 4];

	rlog(was_up || !r->retry_n ? PAV_LOG_WARN : PAV_LOG_INFO,
	     "%s:%d%s %s: %s", r->cfg.host, r->cfg.port,
	     where(r, at, sizeof(at)), was_up ? "down" : "unavailable", why);
	if (!was_up && r->addrs.n)
		r->at = (r->at + 1) % r->addrs.n;
	r->up = 0;
	r->sub_replaced = 0;
	r->probe_wait = 0;
	conn_close(&r->cmd);
	conn_close(&r->sub);
	lws_sul_cancel(&r->sub_retry_sul);
	lookup_start(r);
	sched(r, &r->retry_sul, retry_cb, backoff_ms(r, r->retry_n++));
	fail_fifo(r, &r->sub, err);
	fail_fifo(r, &r->cmd, err);
	if (r->dying)
		return;
	subs_reset(r, err);
	run_firing(r, 0);
	if (!r->dying && was_up && r->ev.down)
		r->ev.down(r->ev.arg);
}

static void sub_retry_cb(lws_sorted_usec_list_t *sul)
{
	struct pav_redis *r = lws_container_of(sul, struct pav_redis,
					       sub_retry_sul);

	r->depth++;
	if (conn_open(&r->sub))
		go_down(r, -EIO, "cannot open the pub/sub connection");
	leave(r);
}

/* Both connections to the address a retry tries (a sentinel's answer
 * included); when one cannot even start, down to the next retry. */
static void reconnect(struct pav_redis *r)
{
	int rc = conns_open(r);

	if (rc)
		go_down(r, -EIO, r->addrs.n ? strerror(-rc) : "no address yet");
}

/* A ready pub/sub connection was lost while up: only it is replaced. */
static void sub_lost(struct pav_redis *r, const char *why)
{
	rlog(PAV_LOG_WARN, "pub/sub connection to %s:%d lost (%s): "
	     "reconnecting it", r->cfg.host, r->cfg.port, why);
	conn_close(&r->sub);
	fail_fifo(r, &r->sub, -EIO);
	r->probe_wait = 0;
	r->sub_replaced = 1;
	sched(r, &r->sub_retry_sul, sub_retry_cb,
	      backoff_ms(r, r->sub_retry_n++));
	subs_reset(r, 0);
	run_firing(r, 0);
}

static void conn_fail(struct conn *c, int err, const char *why)
{
	struct pav_redis *r = c->r;
	char buf[160];

	if (r->dying)
		return;
	if (c == &r->sen) {
		sentinel_failed(r, why);
		return;
	}
	if (c == &r->watch) {
		watch_lost(r, why);
		return;
	}
	snprintf(buf, sizeof(buf), "%s connection: %s", c->name, why);
	/* a pub/sub connection that fails before it is ready takes the
	 * client down: no reconnect loop on one connection alone */
	if (c == &r->sub && r->up && c->state == CS_READY)
		sub_lost(r, why);
	else
		go_down(r, err, buf);
}

/* ---- asking the sentinels ------------------------------------------------- */

/*
 * With sentinels a retry first asks them where the master is: one at a
 * time, from the one heard from last (its answer, or the watch's
 * confirmation or +switch-master), or the next after one whose watch was
 * lost, each on a connection of its own
 * that must connect and answer within command_timeout_ms.  A round in
 * which none gave an address is a failed retry (backoff).  The command and
 * pub/sub connections are opened only at an address given.
 */
static const char *sen_name_at(const struct pav_redis *r, unsigned at,
			       char *buf, size_t size)
{
	const struct pav_redis_sentinel *s = &r->cfg.sentinels[r->sen_cfg[at]];

	snprintf(buf, size, strchr(s->host, ':') ? "[%s]:%d" : "%s:%d",
		 s->host, s->port);
	return buf;
}

/* The name, and " at A" when the name stands for several addresses:
 * which one failed or answered. */
#define SEN_WHERE (300 + ADDR_TEXT + 4)
static const char *sen_where(const struct pav_redis *r, unsigned at,
			     char *buf, size_t size)
{
	const struct addrs *a = &r->sen_addrs[at];
	char one[ADDR_TEXT];
	size_t n;

	sen_name_at(r, at, buf, size);
	if (a->n > 1) {
		n = strlen(buf);
		addr_text(a, r->sen_ai[at], one, sizeof(one));
		snprintf(buf + n, size - n, " at %s", one);
	}
	return buf;
}

static const char *sen_name(const struct pav_redis *r, char *buf,
			    size_t size)
{
	return sen_where(r, r->sen_at, buf, size);
}

/*
 * A sentinel given by name is looked up again after each failed attempt
 * on it (no answer, a lost watch), on the resolver thread; the next
 * attempt on it takes the answer if it has come, else the addresses it
 * had: a sentinel that moved is found at its new address.  Of a name's
 * addresses a failed attempt makes the next attempt on that sentinel try
 * the next one, as for the master's host name.
 */
static void sen_lookup_start(struct pav_redis *r, unsigned at)
{
	const struct pav_redis_sentinel *s = &r->cfg.sentinels[r->sen_cfg[at]];

	if (r->sen_named[at] && !r->sen_lookup[at] && !r->dying)
		r->sen_lookup[at] = lookup_begin(s->host, s->port);
}

static void sen_lookup_take(struct pav_redis *r, unsigned at)
{
	struct lookup *l = r->sen_lookup[at];
	struct addrs *had = &r->sen_addrs[at];
	struct addrs got;
	char name[300], was[ADDRS_TEXT], now[ADDRS_TEXT];
	int rc;

	if (!l || (rc = gai_error(&l->cb)) == EAI_INPROGRESS)
		return;
	r->sen_lookup[at] = NULL;
	addrs_take(&got, rc ? NULL : l->cb.ar_result);
	sen_name_at(r, at, name, sizeof(name));
	addrs_text(had, was, sizeof(was));
	addrs_text(&got, now, sizeof(now));
	if (!got.n && !had->n) {
		r->sen_gai[at] = rc ? rc : EAI_NONAME; /* said by the caller */
	} else if (!got.n) {
		rlog(PAV_LOG_WARN, "sentinel %s: cannot look it up again: %s; "
		     "trying %s", name, rc ? gai_strerror(rc) : "no address",
		     was);
	} else if (!had->n) {
		*had = got;
		r->sen_ai[at] = 0;
		rlog(PAV_LOG_INFO, "sentinel %s resolves to %s", name, now);
	} else if (!addrs_equal(&got, had)) {
		*had = got;
		r->sen_ai[at] = 0;
		rlog(PAV_LOG_INFO, "sentinel %s now resolves to %s (was %s)",
		     name, now, was);
	}
	lookup_free(l);
}

/* A failed attempt on sentinel at: its next address is tried next. */
static void sen_addr_next(struct pav_redis *r, unsigned at)
{
	if (r->sen_addrs[at].n)
		r->sen_ai[at] = (r->sen_ai[at] + 1) % r->sen_addrs[at].n;
}

/* A connection to sentinel at: 0, or -EAGAIN for a name that does not
 * resolve yet (why says so). */
static int sen_open(struct pav_redis *r, struct conn *c, unsigned at,
		    char *why, size_t size)
{
	const struct addrs *a = &r->sen_addrs[at];
	int rc;

	sen_lookup_take(r, at);
	if (!a->n) {
		snprintf(why, size, "cannot resolve it yet (%s): looking it "
			 "up again", gai_strerror(r->sen_gai[at]));
		return -EAGAIN;
	}
	rc = conn_open_to(c, &a->a[r->sen_ai[at]], a->len[r->sen_ai[at]]);
	if (rc)
		snprintf(why, size, "%s", strerror(-rc));
	return rc;
}

static void ask_next(struct pav_redis *r)
{
	char why[200];

	if (r->sen_asked++ >= r->nsen) {
		rlog(r->retry_n ? PAV_LOG_INFO : PAV_LOG_WARN,
		     "no sentinel gave the address of master %s",
		     r->cfg.master);
		sched(r, &r->retry_sul, retry_cb, backoff_ms(r, r->retry_n++));
		return;
	}
	if (sen_open(r, &r->sen, r->sen_at, why, sizeof(why)))
		sentinel_failed(r, why);
}

/* A round of questions, from the retry timer (or create). */
static void ask_sentinels(struct pav_redis *r)
{
	r->sen_asked = 0;
	ask_next(r);
}

/* The sentinel asked gave no address: the next one is asked.  At most
 * nsen deep, each of them failing at once. */
static void sentinel_failed(struct pav_redis *r, const char *why)
{
	char name[SEN_WHERE];
	/* a name without an address yet: the start warned about it */
	int said = r->retry_n || !r->sen_addrs[r->sen_at].n;

	rlog(said ? PAV_LOG_INFO : PAV_LOG_WARN, "sentinel %s: %s",
	     sen_name(r, name, sizeof(name)), why);
	conn_close(&r->sen);
	fail_fifo(r, &r->sen, -EIO);
	sen_lookup_start(r, r->sen_at);
	sen_addr_next(r, r->sen_at);
	r->sen_at = (r->sen_at + 1) % r->nsen;
	ask_next(r);
}

/* Connected to a sentinel: its AUTH if it has a password, and the
 * question (both at once: an AUTH refused is read first). */
static void sentinel_ask(struct conn *c)
{
	const char *argv[3] = {"SENTINEL", "get-master-addr-by-name",
			       c->r->cfg.master};

	c->state = CS_HANDSHAKE;
	if ((c->r->cfg.sentinel_password && send_auth(c)) ||
	    send_internal(c, PK_SENTINEL, 3, argv))
		conn_fail(c, -EIO, "out of memory");
}

/* The master's numeric address becomes the one connected to. */
static int master_take(struct pav_redis *r, const char *host, int port)
{
	struct addrinfo hints, *res = NULL;
	struct addrs got;
	char p[8], name[SEN_WHERE];

	hints_set(&hints, AI_NUMERICHOST);
	snprintf(p, sizeof(p), "%d", port);
	if (getaddrinfo(host, p, &hints, &res))
		return -EINVAL;
	addrs_take(&got, res);
	freeaddrinfo(res);
	if (!got.n)
		return -EINVAL;
	/* said once per address: retries while a failover is under way
	 * hear the old one again and again */
	rlog(r->master_known && !strcmp(r->cfg.host, host) &&
	     r->cfg.port == port ? PAV_LOG_DEBUG : PAV_LOG_INFO,
	     "sentinel %s: master %s is at %s:%d",
	     sen_name(r, name, sizeof(name)), r->cfg.master, host, port);
	r->master_known = 1;
	snprintf(r->cfg.host, sizeof(r->cfg.host), "%s", host);
	r->cfg.port = port;
	r->addrs = got;
	r->at = 0;
	return 0;
}

/* The answer to AUTH on a sentinel's connection: an error (a wrong
 * password or user: Redis' words, which do not repeat the password) is that
 * sentinel failing. */
static void sentinel_auth_reply(struct conn *c, const redisReply *rep)
{
	char why[200];

	if (rep->type != REDIS_REPLY_ERROR)
		return;
	snprintf(why, sizeof(why), "AUTH refused (sentinel_user, "
		 "sentinel_password_file): %.120s", rep->str);
	sentinel_failed(c->r, why);
}

static int is_noauth(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR && rep->len >= 6 &&
	       !strncmp(rep->str, "NOAUTH", 6);
}

static void sentinel_reply(struct conn *c, const redisReply *rep)
{
	struct pav_redis *r = c->r;
	struct pending *p = fifo_pop(&c->fifo);
	char host[INET6_ADDRSTRLEN + 1], why[200];
	int port = 0, rc;

	if (p && p->kind == PK_SETUP) {
		free(p);
		sentinel_auth_reply(c, rep);
		return;
	}
	free(p);
	if (is_noauth(rep)) {
		sentinel_failed(r, "it asks for a password (NOAUTH): see "
			       "sentinel.sentinel_password_file");
		return;
	}
	rc = pav_redis_sentinel_reply(rep, host, sizeof(host), &port);
	if (!rc && master_take(r, host, port))
		rc = -EINVAL;
	if (rc) {
		snprintf(why, sizeof(why), "%s master %s%s%.100s",
			 rc == -ENOENT ? "does not know" : "no usable address of",
			 r->cfg.master,
			 rep->type == REDIS_REPLY_ERROR ? ": " : "",
			 rep->type == REDIS_REPLY_ERROR ? rep->str : "");
		sentinel_failed(r, why);
		return;
	}
	conn_close(c);
	reconnect(r);
}

/* ---- watching a sentinel for +switch-master ------------------------ */

/*
 * While up, the sentinel that named the master is subscribed to
 * +switch-master on a connection of its own: when it announces another
 * address for our master, the client goes down and asks the sentinels
 * again at once, without waiting for the old master's connection to break
 * or answer READONLY.  A watch that fails is opened again a backoff later,
 * once up, to the next sentinel (a dead or unwilling one is not asked
 * for ever while others could tell); meanwhile a failover is noticed as
 * without it.  A sentinel that stops speaking without closing (stopped,
 * or cut off with no reset) would hold the watch for ever and its
 * failover never be heard: once subscribed, the watch sends the SUBSCRIBE
 * again every probe_interval_ms, and one not confirmed within
 * command_timeout_ms is the watch lost.  Not PING: a sentinel's ACL user
 * may lack it, and SUBSCRIBE +switch-master it must have.
 */
static void watch_open(struct pav_redis *r, int after_loss)
{
	char why[200];

	r->watch_at = 0;
	if (!r->nsen || r->watch.state != CS_CLOSED)
		return;
	r->watch_sen = after_loss ? (r->watch_sen + 1) % r->nsen : r->sen_at;
	if (sen_open(r, &r->watch, r->watch_sen, why, sizeof(why)))
		watch_lost(r, why);
}

static void watch_lost(struct pav_redis *r, const char *why)
{
	char name[SEN_WHERE];

	rlog(r->watch_n ? PAV_LOG_INFO : PAV_LOG_WARN, "sentinel %s: "
	     "+switch-master subscription lost (%s): a failover is noticed "
	     "when the master fails until it is back",
	     sen_where(r, r->watch_sen, name, sizeof(name)), why);
	/* one that was subscribed is tried again where it was */
	if (r->watch.state != CS_READY)
		sen_addr_next(r, r->watch_sen);
	conn_close(&r->watch);
	fail_fifo(r, &r->watch, -EIO);
	sen_lookup_start(r, r->watch_sen);
	/* the next question goes past it too: a silent one would cost a
	 * command_timeout_ms before the next is asked */
	if (r->sen_at == r->watch_sen && r->sen.state == CS_CLOSED)
		r->sen_at = (r->watch_sen + 1) % r->nsen;
	r->watch_at = now_ms() + backoff_ms(r, r->watch_n++);
}

/* Connected (TLS up): AUTH, then the subscription. */
static void watch_setup(struct conn *c)
{
	const char *argv[2] = {"SUBSCRIBE", "+switch-master"};

	c->state = CS_HANDSHAKE;
	if ((c->r->cfg.sentinel_password && send_auth(c)) ||
	    send_argv(c, NULL, 2, argv, NULL))
		conn_fail(c, -EIO, "out of memory");
}

/* Our master moved: down, and the sentinels are asked at the next retry
 * (the first one is within PAV_REDIS_BACKOFF_FIRST_MS). */
static void watch_switch(struct pav_redis *r, const redisReply *data)
{
	char host[INET6_ADDRSTRLEN + 1], name[300], why[512];
	int port = 0;
	int rc = pav_redis_switch_master(data->str, (size_t)data->len,
					 r->cfg.master, host, sizeof(host),
					 &port);

	sen_name_at(r, r->watch_sen, name, sizeof(name));
	if (rc == -EINVAL)
		rlog(PAV_LOG_WARN, "sentinel %s: a +switch-master message not "
		     "understood: %.200s", name, data->str);
	/* another master's; or no master connected: the sentinels are being
	 * asked anyway; or already there */
	if (rc || (r->cmd.state == CS_CLOSED && r->sub.state == CS_CLOSED) ||
	    (!strcmp(host, r->cfg.host) && port == r->cfg.port))
		return;
	snprintf(why, sizeof(why), "sentinel %s: +switch-master: master %s "
		 "is now at %s:%d", name, r->cfg.master, host, port);
	r->sen_at = r->watch_sen; /* it just spoke: asked first */
	go_down(r, -EIO, why);
}

/* The subscription confirmed: at first the watch is ready; later it
 * answers a check (watch_probe). */
static void watch_subscribed(struct conn *c)
{
	struct pav_redis *r = c->r;
	struct pending *p;
	char name[SEN_WHERE];
	int ok;

	if (c->state == CS_HANDSHAKE) {
		c->state = CS_READY;
		r->watch_n = 0;
		if (r->sen.state == CS_CLOSED)
			r->sen_at = r->watch_sen; /* the one that answered last */
		r->watch_probe_at = now_ms() + r->cfg.probe_interval_ms;
		rlog(PAV_LOG_INFO, "sentinel %s: subscribed to +switch-master",
		     sen_where(r, r->watch_sen, name, sizeof(name)));
		return;
	}
	p = fifo_pop(&c->fifo);
	ok = p && p->kind == PK_PING;
	free(p);
	if (!ok) {
		conn_fail(c, -EIO, "a confirmation not asked for");
		return;
	}
	c->health_out = 0;
}

/* Pushes: the subscription's confirmations and its messages; anything
 * else answers AUTH (or is an error in the place of a confirmation). */
static void watch_reply(struct conn *c, const redisReply *rep)
{
	const redisReply *const *e = (const redisReply *const *)rep->element;
	struct pending *p;
	int ok;

	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
	    reply_is(e[0], "message") && e[1]->type == REDIS_REPLY_STRING &&
	    reply_is(e[1], "+switch-master") &&
	    e[2]->type == REDIS_REPLY_STRING) {
		watch_switch(c->r, e[2]);
		return;
	}
	if (pav_redis_switch_subscribed(rep)) {
		watch_subscribed(c);
		return;
	}
	p = fifo_pop(&c->fifo);
	ok = p && p->kind == PK_SETUP && rep->type != REDIS_REPLY_ERROR;
	free(p);
	if (!ok)
		conn_fail(c, -EIO, rep->type == REDIS_REPLY_ERROR ? rep->str
				   : "an unexpected reply");
}

/* ---- replies -------------------------------------------------------------- */

static int reply_is(const redisReply *rep, const char *s)
{
	size_t n = strlen(s);

	return rep && (rep->type == REDIS_REPLY_STRING ||
		       rep->type == REDIS_REPLY_STATUS) &&
	       (size_t)rep->len == n && !strncasecmp(rep->str, s, n);
}

static void conn_ready(struct conn *c)
{
	c->state = CS_READY;
	maybe_up(c->r);
}

static void setup_reply(struct conn *c, struct pending *p,
			const redisReply *rep)
{
	enum pend_kind kind = p->kind;

	free(p);
	if (kind == PK_ROLE && !pav_redis_role_is_master(rep)) {
		conn_fail(c, -EIO, "not the master (ROLE): asking the "
			  "sentinels again");
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		if (kind == PK_SETUP) {
			conn_fail(c, -EIO, rep->str);
			return;
		}
		rlog(PAV_LOG_ERROR, "SCRIPT LOAD refused: %s", rep->str);
	}
	if (--c->setup_owed == 0 && c->state == CS_HANDSHAKE)
		conn_ready(c);
}

static void probe_answered(struct pav_redis *r, const struct pending *p)
{
	if (r->sub.gen != p->gen || r->sub.state != CS_READY)
		return;
	if (r->probe_seen >= p->seq) {
		r->sub_retry_n = 0;
		return;
	}
	/* Redis published it before answering: it is on its way */
	r->probe_wait = p->seq;
	r->probe_deadline = now_ms() + r->cfg.command_timeout_ms;
}

static int is_noscript(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR && rep->len >= 8 &&
	       !strncmp(rep->str, "NOSCRIPT", 8);
}

static int eval_retry(struct conn *c, struct pending *p)
{
	struct pav_redis *r = c->r;
	const char *argv[3] = {"SCRIPT", "LOAD", r->scripts[p->seq].lua};

	if (send_internal(c, PK_LOAD, 3, argv))
		return -ENOMEM;
	p->retried = 1;
	p->deadline = now_ms() + r->cfg.command_timeout_ms;
	return enqueue(c, p, p->again, p->again_len);
}

static int is_readonly(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR && rep->len >= 8 &&
	       !strncmp(rep->str, "READONLY", 8);
}

static void cmd_reply(struct conn *c, const redisReply *rep)
{
	struct pav_redis *r = c->r;
	struct pending *p = fifo_pop(&c->fifo);
	int readonly;

	if (!p) {
		conn_fail(c, -EIO, "a reply to no command");
		return;
	}
	switch (p->kind) {
	case PK_SETUP:
	case PK_SETUP_LOAD:
	case PK_ROLE:
		setup_reply(c, p, rep);
		return;
	case PK_EVAL:
		if (is_noscript(rep) && !p->retried && !eval_retry(c, p))
			return;
		break;
	case PK_LOAD:
		if (rep->type == REDIS_REPLY_ERROR)
			rlog(PAV_LOG_ERROR, "SCRIPT LOAD refused: %s", rep->str);
		break;
	case PK_PROBE:
		probe_answered(r, p);
		/* fall through */
	case PK_PING:
		c->health_out = 0;
		break;
	default:
		break;
	}
	readonly = r->nsen && is_readonly(rep);
	complete(r, p, 0, rep);
	/* a master turned replica under us (a failover): ask again */
	if (readonly && !r->dying && c->state == CS_READY)
		conn_fail(c, -EIO, "READONLY: the server is a replica now");
}

/* A channel's SUBSCRIBE/UNSUBSCRIBE confirmations are all in. */
static void settle(struct pav_redis *r, const char *name, struct channel *ch)
{
	if (ch->wanted)
		fifo_move(&r->firing, &ch->waiters, 0);
	else
		drop_channel(r, name);
	run_firing(r, 0);
}

/* An answer to the restore came in (a confirmation, or the refusal of
 * a channel sent again on its own): the connection is ready once all
 * have. */
static void restore_answered(struct conn *c, int n)
{
	if (c->state != CS_HANDSHAKE || c->setup_owed < n)
		return;
	c->setup_owed -= n;
	if (!c->setup_owed && !c->r->dying)
		conn_ready(c);
}

static void on_ack(struct pav_redis *r, const redisReply *name)
{
	struct conn *c = &r->sub;
	struct channel *ch = pav_map_get(r->channels, name->str);
	struct pending *h = c->fifo.head;
	int restored = 0;

	/* answers come in order: the head is the command this answers (a
	 * batch gets one confirmation per channel) */
	if (h && h->kind == PK_RESTORE) {
		restored = 1;
		if (--h->seq == 0)
			complete(r, fifo_pop(&c->fifo), 0, NULL);
	} else if (h && (h->kind == PK_SUB || h->kind == PK_UNSUB ||
			 h->kind == PK_RESUB) && !strcmp(h->chan, name->str)) {
		restored = h->kind == PK_RESUB;
		complete(r, fifo_pop(&c->fifo), 0, NULL);
	}
	if (ch && ch->acks_owed > 0 && --ch->acks_owed == 0)
		settle(r, name->str, ch);
	if (restored && !r->dying)
		restore_answered(c, 1);
}

static void on_probe(struct pav_redis *r, const redisReply *data)
{
	uint64_t seq = strtoull(data->str, NULL, 10);

	if (seq > r->probe_seen)
		r->probe_seen = seq;
	if (r->probe_wait && r->probe_seen >= r->probe_wait) {
		r->probe_wait = 0;
		r->sub_retry_n = 0;
	}
}

static void on_message(struct pav_redis *r, const redisReply *name,
		       const redisReply *data)
{
	struct channel *ch;

	if (!strcmp(name->str, r->probe_chan)) {
		on_probe(r, data);
		return;
	}
	ch = pav_map_get(r->channels, name->str);
	if (ch && ch->wanted && r->ev.message)
		r->ev.message(r->ev.arg, name->str, (size_t)name->len,
			      data->str, (size_t)data->len);
}

/* Redis refused a SUBSCRIBE of one channel (an ACL without it): the
 * channel leaves the set, so that the next connection does not ask for it
 * again; its waiters learn it with Redis' answer, and may subscribe again.
 * One restored on a new connection (PK_RESUB) is also told to `refused`,
 * as it may have no waiter. */
static void sub_refused(struct pav_redis *r, struct pending *p,
			const redisReply *rep)
{
	struct channel *ch = pav_map_get(r->channels, p->chan);
	struct fifo refused = {NULL, NULL};
	struct pending *w;
	int restored = p->kind == PK_RESUB, told = restored && ch && ch->wanted;
	char *name = p->chan;

	p->chan = NULL; /* for `refused`, after the entry goes */
	if (ch) {
		if (ch->acks_owed > 0)
			ch->acks_owed--;
		ch->wanted = 0;
		fifo_move(&refused, &ch->waiters, -EACCES);
		if (!ch->acks_owed)
			drop_channel(r, name);
	}
	complete(r, p, 0, NULL);
	while ((w = fifo_pop(&refused)))
		complete(r, w, r->dying ? -ECANCELED : -EACCES,
			 r->dying ? NULL : rep);
	if (told && !r->dying && r->ev.refused)
		r->ev.refused(r->ev.arg, name, strlen(name), rep);
	free(name);
	if (restored && !r->dying)
		restore_answered(&r->sub, 1);
}

static int is_noperm(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR && rep->len >= 6 &&
	       !strncmp(rep->str, "NOPERM", 6);
}

/* One channel's SUBSCRIBE (kind PK_SUB, PK_RESUB) or UNSUBSCRIBE (PK_UNSUB),
 * with an entry naming it that tells its answer from the others': 0, or
 * -ENOMEM. */
static int send_one(struct pav_redis *r, enum pend_kind kind, const char *name)
{
	const char *argv[2] = {kind == PK_UNSUB ? "UNSUBSCRIBE" : "SUBSCRIBE",
			       name};
	struct pending *p = pending_new(kind, NULL, NULL, 0);

	if (!p || !(p->chan = strdup(name)) ||
	    send_argv(&r->sub, p, 2, argv, NULL)) {
		if (p)
			free(p->chan);
		free(p);
		return -ENOMEM;
	}
	return 0;
}

/* Sends one channel of a refused batch again on its own; one unsubscribed
 * since is owed nothing more: 1 then, else 0 or -ENOMEM. */
static int resubscribe(struct pav_redis *r, const char *name)
{
	struct channel *ch = pav_map_get(r->channels, name);

	if (strcmp(name, r->probe_chan) && !(ch && ch->wanted)) {
		if (ch && ch->acks_owed > 0 && --ch->acks_owed == 0) {
			drop_channel(r, name); /* its waiters: at fire_cb */
			sched(r, &r->fire_sul, fire_cb, 0);
		}
		return 1;
	}
	return send_one(r, PK_RESUB, name);
}

/* Redis refused a batch of the restore as a whole (NOPERM: a channel in
 * it is not allowed any more): each of its channels goes again on its
 * own, so that a refusal takes only its channel out of the set and the
 * others are restored. */
static void restore_refused(struct conn *c, struct pending *p,
			    const redisReply *rep)
{
	struct pav_redis *r = c->r;
	int rc = 0, done = 0;

	rlog(PAV_LOG_INFO, "SUBSCRIBE of %llu channels refused (%.100s): "
	     "subscribing each on its own", (unsigned long long)p->seq,
	     rep->str);
	for (size_t off = 0; rc >= 0 && off < p->chan_len;
	     off += strlen(p->chan + off) + 1) {
		rc = resubscribe(r, p->chan + off);
		if (rc > 0)
			done++;
	}
	complete(r, p, 0, NULL);
	if (rc < 0)
		conn_fail(c, -EIO, "out of memory");
	else if (done)
		restore_answered(c, done);
}

/* Pushes are arrays led by a kind; anything else answers AUTH, or refuses
 * a SUBSCRIBE.  Our own probe channel refused fails the connection: the
 * client cannot tell a live pub/sub connection without it. */
static void sub_reply(struct conn *c, const redisReply *rep)
{
	struct pav_redis *r = c->r;
	const redisReply *const *e = (const redisReply *const *)rep->element;
	struct pending *p;
	char why[160];

	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
	    e[1]->type == REDIS_REPLY_STRING) {
		if (reply_is(e[0], "message") &&
		    e[2]->type == REDIS_REPLY_STRING) {
			on_message(r, e[1], e[2]);
			return;
		}
		if (reply_is(e[0], "subscribe") ||
		    reply_is(e[0], "unsubscribe")) {
			on_ack(r, e[1]);
			return;
		}
	}
	p = fifo_pop(&c->fifo);
	if (p && p->kind == PK_SETUP) {
		setup_reply(c, p, rep);
		return;
	}
	if (p && rep->type == REDIS_REPLY_ERROR) {
		if (p->kind == PK_SUB || (p->kind == PK_RESUB &&
					  strcmp(p->chan, r->probe_chan))) {
			sub_refused(r, p, rep);
			return;
		}
		if (p->kind == PK_RESTORE && is_noperm(rep)) {
			restore_refused(c, p, rep);
			return;
		}
	}
	snprintf(why, sizeof(why), "%s", rep->type == REDIS_REPLY_ERROR
		 ? rep->str : "an unexpected reply");
	if (p && p->kind == PK_RESUB)
		snprintf(why, sizeof(why), "probe channel %s refused: %.90s",
			 p->chan, rep->str);
	if (p)
		complete(r, p, 0, NULL);
	conn_fail(c, -EIO, why);
}

/* ---- reading ---------------------------------------------------------------- */

/* Parses what is buffered; stops when the connection or client goes. */
static void drain(struct conn *c, struct lws *wsi)
{
	struct pav_redis *r = c->r;

	while (c->wsi == wsi && !r->dying) {
		void *rep = NULL;

		if (redisReaderGetReply(c->reader, &rep) != REDIS_OK) {
			conn_fail(c, -EIO, c->reader->errstr);
			return;
		}
		if (!rep)
			break;
		/* what is left belongs to the next replies */
		c->unparsed = c->reader->len - c->reader->pos;
		if (c == &r->cmd)
			cmd_reply(c, rep);
		else if (c == &r->sen)
			sentinel_reply(c, rep);
		else if (c == &r->watch)
			watch_reply(c, rep);
		else
			sub_reply(c, rep);
		freeReplyObject(rep);
	}
	if (c->wsi == wsi && !r->dying &&
	    c->unparsed > r->cfg.max_buffer_bytes)
		conn_fail(c, -EIO, "a reply larger than max_buffer_bytes");
}

/* Returns 0 to keep going, -1 when the wsi is no longer ours. */
static int on_readable(struct conn *c)
{
	static char buf[READ_CHUNK]; /* single-threaded by contract */
	struct lws *wsi = c->wsi;

	if (c->ssl && !c->tls_up) {
		tls_step(c);
		return c->wsi == wsi ? 0 : -1;
	}
	for (int i = 0; i < READS_PER_CALLBACK; i++) {
		ssize_t n = conn_recv(c, buf, sizeof(buf));

		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			conn_fail(c, -EIO, io_why(c, n));
			break;
		}
		c->last_rx = now_ms();
		if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
			conn_fail(c, -EIO, "out of memory");
			break;
		}
		c->unparsed += (size_t)n;
		drain(c, wsi);
		/* a short read emptied the socket: poll tells us of more.  Not
		 * so over TLS, where one read is one record (16 KiB at most);
		 * and as OpenSSL reads no further than the record it was asked
		 * for, what is left is in the socket, where poll sees it. */
		if (c->wsi != wsi || c->r->dying ||
		    (!c->ssl && (size_t)n < sizeof(buf)))
			break;
	}
	if (c->wsi == wsi && c->write_wants_read && !c->r->dying) {
		c->write_wants_read = 0;
		flush(c);
	}
	return c->wsi == wsi ? 0 : -1;
}

/* ---- handshakes --------------------------------------------------------------- */

/*
 * AUTH [user] password: Redis 6's ACL user, or the default one; the
 * sentinels' own on a sentinel's connection.  Our copies of the command
 * are wiped: the one hiredis formats, and the connection's write buffer
 * once it is sent (or let go).  What OpenSSL keeps of a TLS record, or
 * the kernel of the socket's, is beyond our reach.
 */
static int send_auth(struct conn *c)
{
	const struct pav_redis_config *cfg = &c->r->cfg;
	int sen = c == &c->r->sen || c == &c->r->watch;
	const char *user = sen ? cfg->sentinel_user : cfg->user;
	const char *pw = sen ? cfg->sentinel_password : cfg->password;
	const char *argv[3] = {"AUTH", user, pw};

	if (!user[0])
		argv[1] = pw;
	c->out.secret = 1;
	return send_internal(c, PK_SETUP, user[0] ? 3 : 2, argv);
}

static int cmd_setup(struct conn *c)
{
	struct pav_redis *r = c->r;
	char db[16];
	int n = 0, rc = 0;

	if (r->cfg.password) {
		rc |= send_auth(c);
		n++;
	}
	if (r->nsen) { /* a sentinel's answer may be out of date */
		rc |= send_internal(c, PK_ROLE, 1, (const char *[]){"ROLE"});
		n++;
	}
	if (r->cfg.db > 0) {
		const char *argv[2] = {"SELECT", db};

		snprintf(db, sizeof(db), "%d", r->cfg.db);
		rc |= send_internal(c, PK_SETUP, 2, argv);
		n++;
	}
	for (int i = 0; i < r->nscripts; i++) {
		const char *argv[3] = {"SCRIPT", "LOAD", r->scripts[i].lua};

		rc |= send_internal(c, PK_SETUP_LOAD, 3, argv);
		n++;
	}
	c->setup_owed = n;
	return rc ? -ENOMEM : 0;
}

static int sub_setup(struct conn *c)
{
	struct pav_redis *r = c->r;
	int n;

	c->setup_owed = 0;
	if (r->cfg.password) {
		if (send_auth(c))
			return -ENOMEM;
		c->setup_owed++;
	}
	n = restore_subs(r);
	if (n < 0)
		return n;
	c->setup_owed += n;
	return 0;
}

/* Connected (and TLS up): AUTH, SELECT, scripts or subscriptions; to a
 * sentinel, the question. */
static void setup_begin(struct conn *c)
{
	if (c == &c->r->sen) {
		sentinel_ask(c);
		return;
	}
	if (c == &c->r->watch) {
		watch_setup(c);
		return;
	}
	c->state = CS_HANDSHAKE;
	c->last_rx = now_ms();
	if ((c == &c->r->cmd ? cmd_setup(c) : sub_setup(c))) {
		conn_fail(c, -EIO, "out of memory");
		return;
	}
	if (!c->setup_owed)
		conn_ready(c);
}

/* The host the server's certificate must be valid for: the URL's, or the
 * sentinel's as configured (a name, also sent as SNI, or an address), or
 * for the master a sentinel named, the address it gave. */
static const char *tls_host(const struct conn *c)
{
	const struct pav_redis *r = c->r;

	if (c == &r->sen)
		return r->cfg.sentinels[r->sen_cfg[r->sen_at]].host;
	if (c == &r->watch)
		return r->cfg.sentinels[r->sen_cfg[r->watch_sen]].host;
	return r->cfg.host;
}

/* host as the certificate must name it: an address (an IPv6 one without
 * its %zone, which no certificate holds), else a name. */
static int tls_name(SSL *ssl, const char *host)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	unsigned char a[sizeof(struct in6_addr)];
	char ip[INET6_ADDRSTRLEN];
	size_t n = strcspn(host, "%");

	X509_VERIFY_PARAM_set_hostflags(vp,
					X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (n < sizeof(ip)) {
		memcpy(ip, host, n);
		ip[n] = '\0';
		if (inet_pton(AF_INET, ip, a) == 1 ||
		    inet_pton(AF_INET6, ip, a) == 1)
			return X509_VERIFY_PARAM_set1_ip_asc(vp, ip) ? 0
								     : -ENOMEM;
	}
	return SSL_set_tlsext_host_name(ssl, host) &&
			       X509_VERIFY_PARAM_set1_host(vp, host, 0)
		       ? 0
		       : -ENOMEM;
}

static int tls_begin(struct conn *c)
{
	c->ssl = SSL_new(c->r->cfg.tls_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
	    tls_name(c->ssl, tls_host(c)))
		return -ENOMEM;
	SSL_set_connect_state(c->ssl);
	return 0;
}

/* The TLS handshake, a step per readable or writable event. */
static void tls_step(struct conn *c)
{
	int k;

	ERR_clear_error();
	k = SSL_do_handshake(c->ssl);
	if (k == 1) {
		c->tls_up = 1;
		setup_begin(c);
		return;
	}
	switch (SSL_get_error(c->ssl, k)) {
	case SSL_ERROR_WANT_READ:
		return;
	case SSL_ERROR_WANT_WRITE:
		c->read_wants_write = 1; /* on_writable steps on */
		arm_write(c);
		return;
	default:
		conn_fail(c, -EIO, tls_error(c));
	}
}

/* The non-blocking connect is over: did it work? */
static void connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		conn_fail(c, -EIO, strerror(err ? err : errno));
		return;
	}
	if (!c->r->cfg.tls) {
		setup_begin(c);
		return;
	}
	if (tls_begin(c)) {
		conn_fail(c, -EIO, "TLS: cannot set up the connection");
		return;
	}
	tls_step(c);
}

static int on_writable(struct conn *c)
{
	struct lws *wsi = c->wsi;
	int read_on = c->read_wants_write;

	c->want_write = 0;
	c->in_writable = 1;
	c->read_wants_write = 0;
	if (c->state == CS_CONNECTING && !c->ssl)
		connected(c);
	else if (read_on) /* the TLS handshake, or a read that must write */
		on_readable(c);
	if (c->wsi == wsi && !c->r->dying)
		flush(c);
	c->in_writable = 0;
	if (c->wsi == wsi && (out_pending(&c->out) || c->read_wants_write))
		sched(c->r, &c->rearm_sul, rearm_cb, 0);
	return c->wsi == wsi ? 0 : -1;
}

/* lws closes the socket (hang-up, context going): it is no longer ours. */
static int on_lws_close(struct conn *c)
{
	c->wsi = NULL;
	conn_fail(c, -EIO, "closed");
	return 0;
}

static void leave(struct pav_redis *r);

static int in_callback(struct conn *c, int (*fn)(struct conn *))
{
	struct pav_redis *r = c->r;
	int rc;

	r->depth++;
	rc = fn(c);
	leave(r);
	return rc;
}

static int raw_cb(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len)
{
	struct conn *c = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		return c ? in_callback(c, on_readable) : -1;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		return c ? in_callback(c, on_writable) : -1;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (c)
			in_callback(c, on_lws_close);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{PROTOCOL_NAME, raw_cb, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- timers --------------------------------------------------------------- */

static void retry_cb(lws_sorted_usec_list_t *sul)
{
	struct pav_redis *r = lws_container_of(sul, struct pav_redis,
					       retry_sul);

	r->depth++;
	if (r->nsen) {
		ask_sentinels(r);
		leave(r);
		return;
	}
	lookup_take(r);
	reconnect(r);
	leave(r);
}

/* A connection not ready by its deadline: at which step. */
static const char *late_why(const struct conn *c, const char *otherwise)
{
	if (c->ssl && !c->tls_up)
		return "TLS handshake timed out (does the server speak TLS?)";
	return otherwise;
}

static void check_cmd(struct pav_redis *r, int64_t now)
{
	struct conn *c = &r->cmd;
	int timeout = r->cfg.command_timeout_ms;

	if (c->state == CS_CLOSED)
		return;
	if (c->state != CS_READY && now >= c->setup_deadline)
		conn_fail(c, -ETIMEDOUT,
			  late_why(c, "connect or handshake timed out"));
	else if (c->fifo.head && now >= c->fifo.head->deadline)
		conn_fail(c, -ETIMEDOUT, "a command was not answered in time");
	else if (c->health_out && now - c->last_rx >= timeout)
		conn_fail(c, -ETIMEDOUT, "nothing read while a PING waits");
}

static void check_sen(struct pav_redis *r, int64_t now)
{
	if (r->sen.state != CS_CLOSED && now >= r->sen.setup_deadline)
		conn_fail(&r->sen, -ETIMEDOUT,
			  late_why(&r->sen, "no answer in time"));
}

/* A subscribed watch's check, every probe_interval_ms: the SUBSCRIBE
 * again, which a live sentinel confirms. */
static void watch_probe(struct pav_redis *r, int64_t now)
{
	const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
	struct conn *c = &r->watch;

	if (c->state != CS_READY || c->health_out || now < r->watch_probe_at)
		return;
	r->watch_probe_at = now + r->cfg.probe_interval_ms;
	if (send_internal(c, PK_PING, 2, argv)) {
		conn_fail(c, -EIO, "out of memory");
		return;
	}
	c->health_out = 1;
}

static void check_watch(struct pav_redis *r, int64_t now)
{
	struct conn *c = &r->watch;

	if ((c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) &&
	    now >= c->setup_deadline)
		conn_fail(c, -ETIMEDOUT, late_why(c, "subscribing timed out"));
	else if (c->state == CS_READY && c->fifo.head &&
		 now >= c->fifo.head->deadline)
		conn_fail(c, -ETIMEDOUT, "its check unanswered for "
			  "command_timeout_ms");
	else if (c->state == CS_CLOSED && r->watch_at && r->up &&
		 now >= r->watch_at)
		watch_open(r, 1);
	else
		watch_probe(r, now);
}

static void check_sub(struct pav_redis *r, int64_t now)
{
	struct conn *c = &r->sub;

	if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) {
		if (now >= c->setup_deadline)
			conn_fail(c, -ETIMEDOUT,
				  late_why(c, "subscribing timed out"));
	} else if (c->state == CS_READY && r->probe_wait &&
		   now >= r->probe_deadline) {
		conn_fail(c, -ETIMEDOUT, "probe message not seen back");
	}
}

/* Every probe_interval_ms: a PUBLISH to our probe channel (tests both
 * connections), or a PING while the pub/sub side is not ready. */
static void send_health(struct pav_redis *r, int64_t now)
{
	struct conn *c = &r->cmd;
	char seq[24];
	const char *argv[3] = {"PUBLISH", r->probe_chan, seq};
	struct pending *p;

	if (c->state != CS_READY || c->health_out || now < r->next_health)
		return;
	r->next_health = now + r->cfg.probe_interval_ms;
	if (r->up && r->sub.state == CS_READY && !r->probe_wait) {
		p = pending_new(PK_PROBE, NULL, NULL, r->cfg.command_timeout_ms);
		if (!p)
			return;
		p->seq = ++r->probe_seq;
		p->gen = r->sub.gen;
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)p->seq);
		if (send_argv(c, p, 3, argv, NULL)) {
			free(p);
			return;
		}
	} else if (send_internal(c, PK_PING, 1, (const char *[]){"PING"})) {
		return;
	}
	c->health_out = 1;
}

static int64_t earlier(int64_t a, int64_t b)
{
	return b < a ? b : a;
}

static void schedule_tick(struct pav_redis *r, int64_t now)
{
	const struct conn *c = &r->cmd;
	int64_t next = now + r->cfg.probe_interval_ms;

	if (c->state != CS_CLOSED && c->state != CS_READY)
		next = earlier(next, c->setup_deadline);
	if (c->fifo.head)
		next = earlier(next, c->fifo.head->deadline);
	if (c->health_out)
		next = earlier(next, c->last_rx + r->cfg.command_timeout_ms);
	else if (c->state == CS_READY)
		next = earlier(next, r->next_health);
	if (r->sub.state == CS_CONNECTING || r->sub.state == CS_HANDSHAKE)
		next = earlier(next, r->sub.setup_deadline);
	if (r->probe_wait)
		next = earlier(next, r->probe_deadline);
	if (r->sen.state != CS_CLOSED)
		next = earlier(next, r->sen.setup_deadline);
	if (r->watch.state == CS_CONNECTING || r->watch.state == CS_HANDSHAKE)
		next = earlier(next, r->watch.setup_deadline);
	else if (r->watch.fifo.head)
		next = earlier(next, r->watch.fifo.head->deadline);
	else if (r->watch.state == CS_READY)
		next = earlier(next, r->watch_probe_at);
	else if (r->watch.state == CS_CLOSED && r->watch_at && r->up)
		next = earlier(next, r->watch_at);
	sched(r, &r->tick_sul, tick_cb, next > now ? next - now + 1 : 1);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct pav_redis *r = lws_container_of(sul, struct pav_redis,
					       tick_sul);
	int64_t now = now_ms();

	r->depth++;
	check_cmd(r, now);
	if (!r->dying)
		check_sen(r, now);
	if (!r->dying)
		check_sub(r, now);
	if (!r->dying)
		check_watch(r, now);
	if (!r->dying)
		send_health(r, now);
	if (!r->dying)
		schedule_tick(r, now);
	leave(r);
}

/* ---- configuration --------------------------------------------------------- */

/* "key: path: what (OpenSSL's reason)" into err; ctx is freed. */
static SSL_CTX *tls_ctx_fail(SSL_CTX *ctx, const char *key, const char *path,
			     const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	snprintf(err, errlen, "%s: %s: %s%s%s%s", key, path, what,
		 why ? " (" : "", why ? why : "", why ? ")" : "");
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *pav_redis_tls_ctx(const char *ca_file, const char *cert_file,
			   const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if (!cert_file != !key_file) {
		snprintf(err, errlen, "tls_cert_file and tls_key_file go "
			 "together");
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* a retried write may start further on in a buffer grown since */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Redis closes without close_notify; RESP shows a cut reply itself */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (ca_file ? SSL_CTX_load_verify_file(ctx, ca_file) != 1
		    : SSL_CTX_set_default_verify_paths(ctx) != 1)
		return tls_ctx_fail(ctx, "tls_ca_file", ca_file ? ca_file :
				    "(the system's)", "no usable PEM "
				    "certificates", err, errlen);
	if (cert_file &&
	    SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
		return tls_ctx_fail(ctx, "tls_cert_file", cert_file,
				    "not a usable PEM certificate chain", err,
				    errlen);
	if (key_file && SSL_CTX_use_PrivateKey_file(ctx, key_file,
						    SSL_FILETYPE_PEM) != 1)
		return tls_ctx_fail(ctx, "tls_key_file", key_file,
				    "not a usable PEM private key of "
				    "tls_cert_file", err, errlen);
	if (cert_file && SSL_CTX_check_private_key(ctx) != 1)
		return tls_ctx_fail(ctx, "tls_key_file", key_file,
				    "not the private key of tls_cert_file",
				    err, errlen);
	return ctx;
}

/* ---- creating and destroying ------------------------------------------------- */

static int resolve(struct pav_redis *r)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	hints_set(&hints, AI_NUMERICHOST);
	snprintf(port, sizeof(port), "%d", r->cfg.port);
	rc = getaddrinfo(r->cfg.host, port, &hints, &res);
	if (rc == EAI_NONAME) { /* a name: the one blocking lookup */
		r->named = 1;
		hints_set(&hints, AI_ADDRCONFIG);
		rc = getaddrinfo(r->cfg.host, port, &hints, &res);
	}
	if (!rc)
		addrs_take(&r->addrs, res);
	if (res)
		freeaddrinfo(res);
	if (rc || !r->addrs.n) {
		/* a name not in DNS yet (a Redis container that is starting):
		 * the client starts down and looks it up at each retry */
		rlog(r->named ? PAV_LOG_WARN : PAV_LOG_ERROR,
		     "cannot resolve %s: %s%s", r->cfg.host,
		     rc ? gai_strerror(rc) : "no usable address",
		     r->named ? "; looking it up again at each retry" : "");
		return r->named ? 0 : -EINVAL;
	}
	return 0;
}

/*
 * Each sentinel's addresses (up to MAX_ADDRS).  A name that does not resolve yet (a
 * sentinel's container not up, its DNS entry still to come) is kept
 * without one and looked up again after each attempt on it, as a name
 * that moved; but with none resolving there is nothing to start from.
 */
static int resolve_sentinels(struct pav_redis *r)
{
	unsigned resolved = 0;

	for (unsigned i = 0; i < r->cfg.nsentinels; i++) {
		const struct pav_redis_sentinel *s = &r->cfg.sentinels[i];
		struct addrinfo hints, *res = NULL;
		char port[8];
		int rc, named;

		/* a name is looked up again after failures: an address not */
		hints_set(&hints, AI_NUMERICHOST);
		snprintf(port, sizeof(port), "%d", s->port);
		rc = getaddrinfo(s->host, port, &hints, &res);
		named = rc == EAI_NONAME;
		if (named) {
			hints_set(&hints, AI_ADDRCONFIG);
			rc = getaddrinfo(s->host, port, &hints, &res);
		}
		addrs_take(&r->sen_addrs[r->nsen], rc ? NULL : res);
		if (r->sen_addrs[r->nsen].n) {
			resolved++;
		} else if (named) {
			rlog(PAV_LOG_WARN, "sentinel %s port %d: cannot "
			     "resolve it yet (%s): looking it up again at "
			     "each attempt on it", s->host, s->port,
			     rc ? gai_strerror(rc) : "no usable address");
			r->sen_gai[r->nsen] = rc ? rc : EAI_NONAME;
		} else {
			rlog(PAV_LOG_WARN, "sentinel %s port %d: cannot "
			     "resolve it (%s): left out", s->host, s->port,
			     rc ? gai_strerror(rc) : "no usable address");
		}
		if (res)
			freeaddrinfo(res);
		if (named || r->sen_addrs[r->nsen].n) {
			r->sen_named[r->nsen] = named;
			r->sen_cfg[r->nsen++] = i;
		}
	}
	if (!resolved)
		rlog(PAV_LOG_ERROR, "no sentinel resolves");
	return resolved ? 0 : -EINVAL;
}

static struct lws_vhost *our_vhost(struct lws_context *ctx)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh = lws_get_vhost_by_name(ctx, VHOST_NAME);

	if (vh) /* ours, made by an earlier client, unless a name clashes */
		return lws_vhost_name_to_protocol(vh, PROTOCOL_NAME) ? vh : NULL;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = VHOST_NAME;
	info.protocols = protocols;
	return lws_create_vhost(ctx, &info);
}

static int config_ok(const struct pav_redis_config *cfg)
{
	return cfg->host[0] && memchr(cfg->host, '\0', sizeof(cfg->host)) &&
	       cfg->port > 0 && cfg->port <= 65535 && cfg->db >= 0 &&
	       (!cfg->tls || cfg->tls_ctx) &&
	       cfg->nsentinels <= PAV_REDIS_MAX_SENTINELS &&
	       (!cfg->nsentinels || pav_redis_master_name_ok(cfg->master));
}

static void apply_defaults(struct pav_redis_config *c)
{
	if (c->command_timeout_ms <= 0)
		c->command_timeout_ms = PAV_REDIS_DEF_COMMAND_TIMEOUT_MS;
	if (!c->max_pending)
		c->max_pending = PAV_REDIS_DEF_MAX_PENDING;
	if (c->probe_interval_ms <= 0)
		c->probe_interval_ms = PAV_REDIS_DEF_PROBE_INTERVAL_MS;
	/* an idle connection must be found dead within the timeout */
	if (c->probe_interval_ms > c->command_timeout_ms / 2)
		c->probe_interval_ms = c->command_timeout_ms / 2;
	if (c->probe_interval_ms < 1)
		c->probe_interval_ms = 1;
	if (!c->max_buffer_bytes)
		c->max_buffer_bytes = PAV_REDIS_DEF_MAX_BUFFER_BYTES;
}

static void seed(struct pav_redis *r)
{
	if (getrandom(&r->rnd, sizeof(r->rnd), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(r->rnd))
		r->rnd = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	r->rnd |= 1; /* xorshift must not start at 0 */
	snprintf(r->probe_chan, sizeof(r->probe_chan), "pav:probe:%016llx",
		 (unsigned long long)rnd_next(r));
}

static void free_client(struct pav_redis *r)
{
	lookup_drop(&r->lookup);
	for (unsigned i = 0; i < r->nsen; i++)
		lookup_drop(&r->sen_lookup[i]);
	SSL_CTX_free(r->cfg.tls_ctx); /* our reference; NULL without TLS */
	pav_map_free(r->channels, free);
	for (int i = 0; i < r->nscripts; i++)
		free(r->scripts[i].lua);
	free(r->scripts);
	pav_redis_config_clear(&r->cfg);
	free(r);
}

static void leave(struct pav_redis *r)
{
	if (--r->depth == 0 && r->dying)
		free_client(r);
}

static struct pav_redis *client_new(struct lws_context *ctx,
				    const struct pav_redis_config *cfg,
				    const struct pav_redis_events *ev)
{
	struct pav_redis *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ctx = ctx;
	r->cfg = *cfg;
	r->cfg.password = NULL;
	r->cfg.sentinel_password = NULL;
	if (!r->cfg.tls || !SSL_CTX_up_ref(r->cfg.tls_ctx))
		r->cfg.tls_ctx = NULL; /* without TLS, or refused below */
	apply_defaults(&r->cfg);
	if (ev)
		r->ev = *ev;
	r->cmd.r = r->sub.r = r->sen.r = r->watch.r = r;
	r->cmd.name = "command";
	r->sub.name = "pub/sub";
	r->sen.name = "sentinel";
	r->watch.name = "sentinel watch";
	r->cmd.fd = r->sub.fd = r->sen.fd = r->watch.fd = -1;
	seed(r);
	r->channels = pav_map_new();
	if (!r->channels || (r->cfg.tls && !r->cfg.tls_ctx) ||
	    (cfg->password && !(r->cfg.password = strdup(cfg->password))) ||
	    (cfg->sentinel_password &&
	     !(r->cfg.sentinel_password = strdup(cfg->sentinel_password)))) {
		free_client(r);
		return NULL;
	}
	return r;
}

struct pav_redis *pav_redis_create(struct lws_context *ctx,
				   const struct pav_redis_config *cfg,
				   const struct pav_redis_events *ev)
{
	struct pav_redis *r;

	if (!ctx || !cfg || !config_ok(cfg)) {
		rlog(PAV_LOG_ERROR, "invalid configuration");
		return NULL;
	}
	r = client_new(ctx, cfg, ev);
	if (!r)
		return NULL;
	r->vh = our_vhost(ctx);
	if (!r->vh || (cfg->nsentinels ? resolve_sentinels(r) : resolve(r))) {
		if (cfg->nsentinels)
			rlog(PAV_LOG_ERROR, "cannot create the client of "
			     "master %s", cfg->master);
		else
			rlog(PAV_LOG_ERROR, "cannot create the client of "
			     "%s:%d", cfg->host, cfg->port);
		free_client(r);
		return NULL;
	}
	if (r->nsen) {
		ask_sentinels(r);
	} else if (conns_open(r)) {
		conn_close(&r->cmd);
		conn_close(&r->sub);
		if (!r->addrs.n)
			lookup_start(r);
		sched(r, &r->retry_sul, retry_cb, backoff_ms(r, r->retry_n++));
	}
	schedule_tick(r, now_ms());
	return r;
}

static int cancel_waiters(const char *key, void *val, void *arg)
{
	struct pav_redis *r = arg;
	struct channel *ch = val;

	(void)key;
	fifo_move(&r->firing, &ch->waiters, -ECANCELED);
	return 0;
}

void pav_redis_destroy(struct pav_redis *r)
{
	if (!r || r->dying)
		return;
	r->dying = 1;
	r->depth++;
	r->up = 0;
	lws_sul_cancel(&r->tick_sul);
	lws_sul_cancel(&r->retry_sul);
	lws_sul_cancel(&r->sub_retry_sul);
	lws_sul_cancel(&r->fire_sul);
	conn_close(&r->cmd);
	conn_close(&r->sub);
	conn_close(&r->sen);
	conn_close(&r->watch);
	fail_fifo(r, &r->cmd, -ECANCELED);
	fail_fifo(r, &r->sub, -ECANCELED);
	fail_fifo(r, &r->sen, -ECANCELED);
	fail_fifo(r, &r->watch, -ECANCELED);
	pav_map_each(r->channels, cancel_waiters, r);
	run_firing(r, -ECANCELED);
	leave(r);
}

int pav_redis_is_up(const struct pav_redis *r)
{
	return r && r->up && !r->dying;
}

/* ---- commands ----------------------------------------------------------------- */

/* Refuses what cannot be queued now. */
static int admit(const struct pav_redis *r, int argc, const char **argv,
		 const size_t *lens, size_t extra)
{
	size_t bytes = extra;

	if (!r || r->dying || !r->up)
		return -EIO;
	if (argc < 0 || (argc && !argv))
		return -EINVAL;
	if (r->nwaiting >= r->cfg.max_pending)
		return -ENOBUFS;
	for (int i = 0; i < argc; i++)
		bytes += (lens ? lens[i] : strlen(argv[i])) + 32;
	if (bytes > r->cfg.max_buffer_bytes ||
	    held_bytes(r) + bytes > r->cfg.max_buffer_bytes)
		return -ENOBUFS;
	return 0;
}

int pav_redis_command(struct pav_redis *r, pav_redis_reply_fn cb, void *arg,
		      int argc, const char **argv, const size_t *argvlen)
{
	struct pending *p;
	int rc = admit(r, argc, argv, argvlen, 0);

	if (rc)
		return rc;
	if (argc < 1)
		return -EINVAL;
	p = pending_new(PK_USER, cb, arg, r->cfg.command_timeout_ms);
	if (!p)
		return -ENOMEM;
	rc = send_argv(&r->cmd, p, argc, argv, argvlen);
	if (rc) {
		free(p);
		return rc;
	}
	r->nwaiting++;
	return 0;
}

static void sha1_hex(const char *s, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL);
	for (unsigned int i = 0; i < n && i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[40] = '\0';
}

int pav_redis_script(struct pav_redis *r, const char *lua)
{
	struct script *s;
	char sha[41];

	if (!r || r->dying || !lua || !*lua)
		return -EINVAL;
	sha1_hex(lua, sha);
	for (int i = 0; i < r->nscripts; i++)
		if (!strcmp(r->scripts[i].sha, sha))
			return i;
	if (r->nscripts >= PAV_REDIS_MAX_SCRIPTS)
		return -ENOSPC;
	s = realloc(r->scripts, (size_t)(r->nscripts + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	r->scripts = s;
	s = &r->scripts[r->nscripts];
	s->lua = strdup(lua);
	if (!s->lua)
		return -ENOMEM;
	memcpy(s->sha, sha, sizeof(sha));
	/* a connection past its connect has queued its loads already */
	if (r->cmd.state == CS_HANDSHAKE || r->cmd.state == CS_READY) {
		const char *argv[3] = {"SCRIPT", "LOAD", s->lua};

		send_internal(&r->cmd, PK_LOAD, 3, argv); /* else: NOSCRIPT */
	}
	return r->nscripts++;
}

/* EVALSHA sha nkeys argv... formatted into p->again. */
static int format_eval(struct pav_redis *r, struct pending *p, int script,
		       int nkeys, int argc, const char **argv,
		       const size_t *argvlen)
{
	const char **av = malloc((size_t)(argc + 3) * sizeof(*av));
	size_t *lens = malloc((size_t)(argc + 3) * sizeof(*lens));
	char nk[16];
	int len = -1;

	if (av && lens) {
		snprintf(nk, sizeof(nk), "%d", nkeys);
		av[0] = "EVALSHA";
		av[1] = r->scripts[script].sha;
		av[2] = nk;
		for (int i = 0; i < 3; i++)
			lens[i] = strlen(av[i]);
		for (int i = 0; i < argc; i++) {
			av[i + 3] = argv[i];
			lens[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
		}
		len = redisFormatCommandArgv(&p->again, argc + 3, av, lens);
	}
	free(av);
	free(lens);
	if (len < 0)
		return -ENOMEM;
	p->again_len = (size_t)len;
	p->seq = (uint64_t)script;
	return 0;
}

int pav_redis_eval(struct pav_redis *r, int script, int nkeys, int argc,
		   const char **argv, const size_t *argvlen,
		   pav_redis_reply_fn cb, void *arg)
{
	struct pending *p;
	int rc = admit(r, argc, argv, argvlen, 128);

	if (rc)
		return rc;
	if (script < 0 || script >= r->nscripts || nkeys < 0 || nkeys > argc)
		return -EINVAL;
	p = pending_new(PK_EVAL, cb, arg, r->cfg.command_timeout_ms);
	if (!p)
		return -ENOMEM;
	rc = format_eval(r, p, script, nkeys, argc, argv, argvlen);
	if (!rc)
		rc = enqueue(&r->cmd, p, p->again, p->again_len);
	if (rc) {
		if (p->again)
			redisFreeCommand(p->again);
		free(p);
		return rc;
	}
	r->again_bytes += p->again_len;
	r->nwaiting++;
	return 0;
}

/* ---- subscriptions ---------------------------------------------------------------- */

static int sub_connected(const struct pav_redis *r)
{
	return r->sub.state == CS_HANDSHAKE || r->sub.state == CS_READY;
}

/* One channel's SUBSCRIBE (sub) or UNSUBSCRIBE, with an entry that tells
 * its answer from the others'. */
static int send_sub(struct pav_redis *r, int sub, const char *name,
		    struct channel *ch)
{
	if (out_pending(&r->sub.out) > r->cfg.max_buffer_bytes)
		return -ENOBUFS;
	if (send_one(r, sub ? PK_SUB : PK_UNSUB, name))
		return -ENOMEM;
	ch->acks_owed++;
	return 0;
}

static struct channel *channel_get(struct pav_redis *r, const char *name)
{
	struct channel *ch = pav_map_get(r->channels, name);

	if (ch)
		return ch;
	ch = calloc(1, sizeof(*ch));
	if (ch && pav_map_put(r->channels, name, ch)) {
		free(ch);
		ch = NULL;
	}
	return ch;
}

static int subscribe_named(struct pav_redis *r, const char *name,
			   pav_redis_reply_fn cb, void *arg)
{
	struct channel *ch = channel_get(r, name);
	struct pending *w = cb ? pending_new(PK_WAITER, cb, arg, 0) : NULL;
	int rc = ch && (w || !cb) ? 0 : -ENOMEM;

	if (!rc && sub_connected(r))
		rc = send_sub(r, 1, name, ch);
	if (rc) {
		if (ch && !ch->wanted && !ch->acks_owed && !ch->waiters.head)
			drop_channel(r, name);
		free(w);
		return rc;
	}
	ch->wanted = 1;
	if (w) {
		fifo_push(&ch->waiters, w);
		r->nwaiting++;
	}
	return 0;
}

/* A NUL-terminated copy of channel[0..len) into *name: 0, -EINVAL (empty,
 * or a NUL inside) or -ENOMEM. */
static int channel_name(const char *channel, size_t len, char **name)
{
	*name = NULL;
	if (!channel || !len || memchr(channel, '\0', len))
		return -EINVAL;
	*name = malloc(len + 1);
	if (!*name)
		return -ENOMEM;
	memcpy(*name, channel, len);
	(*name)[len] = '\0';
	return 0;
}

int pav_redis_subscribe(struct pav_redis *r, const char *channel, size_t len,
			pav_redis_reply_fn cb, void *arg)
{
	char *name;
	int rc;

	if (!r || r->dying || !r->up)
		return -EIO;
	if (cb && r->nwaiting >= r->cfg.max_pending)
		return -ENOBUFS;
	rc = channel_name(channel, len, &name);
	if (rc)
		return rc;
	rc = subscribe_named(r, name, cb, arg);
	free(name);
	return rc;
}

int pav_redis_unsubscribe(struct pav_redis *r, const char *channel,
			  size_t len)
{
	struct channel *ch;
	char *name;
	int rc = channel_name(channel, len, &name);

	if (rc)
		return rc;
	ch = r && !r->dying ? pav_map_get(r->channels, name) : NULL;
	if (ch && ch->wanted) {
		ch->wanted = 0;
		if (sub_connected(r))
			send_sub(r, 0, name, ch);
		if (!ch->acks_owed) { /* nothing in flight: forget it now */
			drop_channel(r, name);
			sched(r, &r->fire_sul, fire_cb, 0);
		}
	}
	free(name);
	return 0;
}
