/*
 * conn.c — one client connection's I/O (see conn.h).
 */
#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "clock.h"
#include "config.h"
#include "grow.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "pav_limits.h"
#include "pavilion/plugin.h"

/* ---- sending ---------------------------------------------------------- */

/*
 * Queue entries are message pointers; bit 0 set marks one that does not
 * count against outbound_queue_bytes: a publication of a history replay,
 * counted in q_kept instead, against a bound of its own.
 */
#define Q_KEPT ((uintptr_t)1)

static struct pav_msg *q_msg(struct pav_msg *e)
{
	return (struct pav_msg *)((uintptr_t)e & ~Q_KEPT);
}

static int q_counts(const struct pav_msg *e)
{
	return !((uintptr_t)e & Q_KEPT);
}

static void queue_clear(struct pav_conn *c)
{
	while (c->q_count) {
		pav_msg_unref(q_msg(c->q[c->q_head]));
		c->q_head = (c->q_head + 1) % c->q_cap;
		c->q_count--;
	}
	c->q_bytes = 0;
	c->q_kept = 0;
	c->q_kept_over = 0;
}

static int queue_push_entry(struct pav_conn *c, struct pav_msg *m, int kept)
{
	if (c->q_count == c->q_cap) {
		uint32_t ncap = c->q_cap ? c->q_cap * 2 : 8;
		struct pav_msg **nq = malloc(ncap * sizeof(*nq));

		if (!nq)
			return -ENOMEM;
		for (uint32_t i = 0; i < c->q_count; i++)
			nq[i] = c->q[(c->q_head + i) % c->q_cap];
		free(c->q);
		c->q = nq;
		c->q_cap = ncap;
		c->q_head = 0;
	}
	pav_msg_ref(m);
	c->q[(c->q_head + c->q_count) % c->q_cap] =
		kept ? (struct pav_msg *)((uintptr_t)m | Q_KEPT) : m;
	c->q_count++;
	*(kept ? &c->q_kept : &c->q_bytes) += m->len;
	return 0;
}

int pav_conn_is_open(const struct pav_conn *c)
{
	return c && c->state == PAV_CONN_OPEN;
}

void pav_conn_rx_pause(struct pav_conn *c, int pause)
{
	if (c && c->wsi)
		lws_rx_flow_control(c->wsi, !pause);
}

/* A client that does not read: drop what it has not taken and close it.
 * What lws already holds goes first, then the close frame, if the client
 * reads again before the close deadline. */
void pav_conn_overflow(struct pav_conn *c)
{
	if (!c || c->state != PAV_CONN_OPEN)
		return;
	pav_warn("conn %" PRIu64 ": outbound queue over %zu bytes, closing "
		 "4008", c->id, c->vc->limits.outbound_queue_bytes);
	queue_clear(c);
	pav_conn_close(c, 4008, "slow consumer");
}

size_t pav_conn_replay_max(const struct pav_conn *c)
{
	return PAV_REPLAY_QUEUE_FACTOR * c->vc->limits.outbound_queue_bytes;
}

/* The bound on replays not yet sent, as it stands now (see q_kept_over). */
static size_t kept_bound(const struct pav_conn *c)
{
	return pav_conn_replay_max(c) + c->q_kept_over;
}

int pav_conn_enqueue_kept(struct pav_conn *c, struct pav_msg *m)
{
	if (c->state != PAV_CONN_OPEN)
		return -EPIPE;
	if (c->q_kept && c->q_kept + m->len > kept_bound(c)) {
		pav_conn_overflow(c);
		return -ENOBUFS;
	}
	if (queue_push_entry(c, m, 1))
		return -ENOMEM;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int pav_conn_enqueue_kept_within(struct pav_conn *c, struct pav_msg *m,
				 size_t spare)
{
	size_t max = pav_conn_replay_max(c), over = 0;
	int rc;

	if (c->state != PAV_CONN_OPEN)
		return -EPIPE;
	if (c->q_kept && c->q_kept + m->len + spare > kept_bound(c))
		return -ENOSPC;
	/* one alone larger than the bound is a page of its own: the
	 * message that ends the page must still fit after it */
	if (!c->q_kept && m->len + spare > max)
		over = m->len + spare - max;
	rc = pav_conn_enqueue_kept(c, m);
	if (!rc && over)
		c->q_kept_over = over;
	return rc;
}

/* Queues a message that counts against outbound_queue_bytes; past it the
 * connection is closed as a slow consumer (-ENOBUFS).  A message larger
 * than the whole queue still goes to a client with nothing counted queued:
 * the bound is on what piles up, and one message is the store's size, not
 * the client's doing. */
static int queue_bounded(struct pav_conn *c, struct pav_msg *m)
{
	if (c->q_bytes &&
	    c->q_bytes + m->len > c->vc->limits.outbound_queue_bytes) {
		pav_conn_overflow(c);
		return -ENOBUFS;
	}
	return queue_push_entry(c, m, 0);
}

int pav_conn_enqueue(struct pav_conn *c, struct pav_msg *m)
{
	int rc;

	if (c->state != PAV_CONN_OPEN)
		return -EPIPE;
	if ((rc = queue_bounded(c, m)))
		return rc;
	lws_callback_on_writable(c->wsi);
	return 0;
}

/* Drops the list's written head when it is most of the array, fixing the
 * indexes the connections keep. */
static void dirty_compact(struct pav_conn_env *e)
{
	size_t live = e->ndirty - e->head;

	if (!e->head || e->head < live)
		return;
	memmove(e->dirty, e->dirty + e->head, live * sizeof(*e->dirty));
	e->head = 0;
	e->ndirty = live;
	for (size_t i = 0; i < live; i++)
		if (e->dirty[i])
			e->dirty[i]->dirty = (int)i + 1;
}

static int mark_dirty(struct pav_conn *c)
{
	struct pav_conn_env *e = c->env;

	if (c->dirty)
		return 0;
	if (e->ndirty == e->head)
		e->pass_start_us = pav_mono_us();
	if (e->ndirty == e->dirty_cap)
		dirty_compact(e);
	if (e->ndirty == e->dirty_cap) {
		size_t cap = e->dirty_cap ? e->dirty_cap * 2 : 256;
		struct pav_conn **d = realloc(e->dirty, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		e->dirty = d;
		e->dirty_cap = cap;
	}
	e->dirty[e->ndirty++] = c;
	c->dirty = (int)e->ndirty;
	return 0;
}

static int write_queue(struct pav_conn *c);
static void write_failed(struct pav_conn *c);

/* A pass (direct walk or dirty list) that began at start is over. */
static void pass_over(struct pav_conn_env *e, int64_t start)
{
	int64_t now = pav_mono_us();

	e->direct_from_us = now + (now - start) / PAV_FANOUT_IDLE_DIV;
}

void pav_conns_fanout_begin(struct pav_conn_env *e)
{
	e->fanout_us = pav_mono_us();
	e->direct_n = 0;
	/* input is looked at once there is something to write */
	e->direct = e->ndirty == e->head && e->input_waiting &&
		    e->fanout_us >= e->direct_from_us;
}

void pav_conns_fanout_end(struct pav_conn_env *e)
{
	pav_metrics_fanout_mode(e->direct);
	e->direct = 0;
	if (!e->direct_n)
		return; /* nothing written during the walk */
	if (e->ndirty == e->head)
		pass_over(e, e->fanout_us);
	else
		e->pass_start_us = e->fanout_us; /* the pass goes on queued */
}

/* Still writing during the walk?  Before its first write and after every
 * slice, waiting input turns the rest of the walk to the dirty list. */
static int still_direct(struct pav_conn_env *e)
{
	if (!(e->direct_n % PAV_DIRECT_SLICE) && e->input_waiting(e->input_arg))
		e->direct = 0;
	return e->direct;
}

int pav_conn_deliver(struct pav_conn *c, struct pav_msg *m)
{
	int waiting, rc;

	if (c->state != PAV_CONN_OPEN)
		return -EPIPE;
	/* waiting for POLLOUT already: its writable callback takes it */
	waiting = !c->dirty && (c->q_count || lws_partial_buffered(c->wsi));
	if ((rc = queue_bounded(c, m)))
		return rc;
	if (c->env->direct && !waiting && !c->dirty && still_direct(c->env)) {
		if (write_queue(c) < 0)
			write_failed(c);
		c->env->direct_n++;
		return 0;
	}
	/* no room on the dirty list: the slow way still works */
	if (waiting || mark_dirty(c))
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* Builds one server message and queues it with `enqueue`. */
static int send_built(struct pav_conn *c, const char *type, const char *id,
		      const char *channel, json_object *payload,
		      int (*enqueue)(struct pav_conn *, struct pav_msg *))
{
	struct pav_msg *m = pav_msg_build(type, id, channel, payload);
	int rc;

	if (!m)
		return -ENOMEM;
	rc = enqueue(c, m);
	pav_msg_unref(m);
	if (!rc)
		pav_metrics_out(type, 1);
	return rc;
}

int pav_conn_send(struct pav_conn *c, const char *type, const char *id,
		  const char *channel, json_object *payload)
{
	return send_built(c, type, id, channel, payload, pav_conn_enqueue);
}

int pav_conn_send_replay(struct pav_conn *c, const char *type,
			 const char *channel, json_object *payload)
{
	return send_built(c, type, NULL, channel, payload,
			  pav_conn_enqueue_kept);
}

int pav_conn_send_replay_within(struct pav_conn *c, const char *type,
				const char *channel, json_object *payload,
				size_t spare)
{
	struct pav_msg *m = pav_msg_build(type, NULL, channel, payload);
	int rc;

	if (!m)
		return -ENOMEM;
	rc = pav_conn_enqueue_kept_within(c, m, spare);
	pav_msg_unref(m);
	if (!rc)
		pav_metrics_out(type, 1);
	return rc;
}

static void error_enqueue(struct pav_conn *c, struct pav_msg *m, int code)
{
	if (!m)
		return;
	if (!pav_conn_enqueue(c, m)) {
		pav_metrics_out("error", 1);
		pav_metrics_error(code);
	}
	pav_msg_unref(m);
}

void pav_conn_error(struct pav_conn *c, int code, const char *msg,
		    const char *id)
{
	error_enqueue(c, pav_msg_error(code, msg, id), code);
}

void pav_conn_channel_error(struct pav_conn *c, int code, const char *msg,
			    const char *channel)
{
	error_enqueue(c, pav_msg_channel_error(code, msg, channel), code);
}

static void queue_pop(struct pav_conn *c)
{
	struct pav_msg *e = c->q[c->q_head], *m = q_msg(e);

	c->q_head = (c->q_head + 1) % c->q_cap;
	c->q_count--;
	*(q_counts(e) ? &c->q_bytes : &c->q_kept) -= m->len;
	if (!c->q_kept)
		c->q_kept_over = 0;
	pav_msg_unref(m);
}

/* A server frame header (FIN, text, unmasked) for len bytes; its size. */
static size_t frame_header(unsigned char *h, size_t len)
{
	h[0] = 0x81;
	if (len < 126) {
		h[1] = (unsigned char)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

/*
 * Hands len bytes of whole frames to the socket.  On a plain socket with
 * nothing left in lws they go straight to send(): lws_write() would add its
 * own checks around the same send(), and reading its connection state is
 * one more cache miss for every recipient of a fan-out.  What the socket
 * does not take goes to lws as raw bytes, which keeps them and asks for
 * POLLOUT as for a partial write of its own; lws writes nothing else (a
 * pong) on the connection until they are out.  0, or -1 when the socket is
 * gone.
 */
static int write_raw(struct pav_conn *c, unsigned char *p, size_t len)
{
	ssize_t n = 0;

	if (c->plain_fd >= 0 && !lws_partial_buffered(c->wsi)) {
		n = send(c->plain_fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			return -1;
		if (n < 0)
			n = 0;
	}
	len -= (size_t)n;
	return lws_write(c->wsi, p + n, len, LWS_WRITE_RAW) < (int)len ? -1 : 0;
}

/* One frame: framed here (in the message's headroom: the same bytes for
 * every recipient) when the socket is plain, else by lws. */
static int write_frame(struct pav_conn *c, struct pav_msg *m)
{
	unsigned char h[10], *t = pav_msg_text(m);
	size_t hl;

	if (c->plain_fd < 0)
		return lws_write(c->wsi, t, m->len, LWS_WRITE_TEXT) <
		       (int)m->len ? -1 : 0;
	hl = frame_header(h, m->len);
	memcpy(t - hl, h, hl);
	return write_raw(c, t - hl, hl + m->len);
}

/*
 * Several queued frames, framed here and handed to lws as one raw write:
 * one system call (one TLS record) for many deliveries.  Only without
 * permessage-deflate, where lws would transform each frame itself.
 * Returns the frames written (0: the first one does not fit the batch),
 * or -1 on a write error.
 */
static int write_batch(struct pav_conn *c)
{
	static unsigned char batch[LWS_PRE + PAV_WRITE_BATCH_BYTES];
	unsigned char *p = batch + LWS_PRE;
	size_t used = 0;
	int n = 0;

	for (uint32_t i = 0; i < c->q_count; i++) {
		struct pav_msg *m = q_msg(c->q[(c->q_head + i) % c->q_cap]);

		if (used + 10 + m->len > PAV_WRITE_BATCH_BYTES)
			break;
		used += frame_header(p + used, m->len);
		memcpy(p + used, pav_msg_text(m), m->len);
		used += m->len;
		n++;
	}
	if (n < 2)
		return 0;
	if (write_raw(c, p, used))
		return -1;
	for (int i = 0; i < n; i++)
		queue_pop(c);
	return n;
}

/* Writes queued frames until the queue is empty or the socket is full
 * (lws keeps the rest and asks for a writable callback).  -1 on a write
 * error. */
static int write_queue(struct pav_conn *c)
{
	int batchable = !c->vc->permessage_deflate;

	while (c->q_count) {
		struct pav_msg *m = q_msg(c->q[c->q_head]);
		int n = batchable && c->q_count > 1 ? write_batch(c) : 0;

		if (n < 0 || (!n && write_frame(c, m)))
			return -1;
		if (!n)
			queue_pop(c);
		/* lws keeps what the socket did not take; asking the kernel
		 * (lws_send_pipe_choked) would cost a poll() per frame */
		if (lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			return 0;
		}
	}
	return 0;
}

int pav_conns_flush(struct pav_conn_env *env, size_t slice)
{
	size_t end = env->ndirty - env->head > slice ? env->head + slice
						     : env->ndirty;

	if (env->head == env->ndirty)
		return 0; /* no pass: its timing stays */

	/* a write may close a connection, never add one to the list */
	for (size_t i = env->head; i < end; i++) {
		struct pav_conn *c = env->dirty[i];

		if (!c)
			continue; /* released meanwhile */
		c->dirty = 0;
		if (c->close_deferred) {
			/* outside every lws callback: lws queues the close
			 * frame (the reason is set) and waits for the
			 * client's; it may free c before returning */
			c->close_deferred = 0;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND,
					LWS_TO_KILL_SYNC);
			continue;
		}
		if (c->state == PAV_CONN_OPEN && write_queue(c) < 0)
			write_failed(c);
	}
	env->head = end;
	if (env->head < env->ndirty)
		return 1;
	env->head = env->ndirty = 0;
	pass_over(env, env->pass_start_us);
	return 0;
}

/* The socket is gone: nothing more is tried on it. */
static void write_failed(struct pav_conn *c)
{
	c->state = PAV_CONN_DRAINING;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void pav_conn_env_free(struct pav_conn_env *env)
{
	free(env->dirty);
	env->dirty = NULL;
	env->head = env->ndirty = env->dirty_cap = 0;
}

static int send_close(struct pav_conn *c);

int pav_conn_writeable(struct pav_conn *c)
{
	if (c->state == PAV_CONN_DRAINING)
		return 0; /* lws owns the close now: -1 here would cut it */
	if (write_queue(c) < 0) {
		c->state = PAV_CONN_DRAINING; /* the socket is gone */
		return -1;
	}
	if (c->q_count || lws_partial_buffered(c->wsi))
		return 0;
	return c->state == PAV_CONN_CLOSING ? send_close(c) : 0;
}

/* ---- closing ---------------------------------------------------------- */

/*
 * Every close the gateway starts completes the closing handshake: the
 * client gets the close frame even while it is still sending.
 *
 * What lws 4.1.6 does, and why the gateway steers it: a protocol callback
 * that returns -1 with a close reason set makes lws queue the close frame
 * (LRS_WAITING_TO_SEND_CLOSE), write it on the next POLLOUT and wait for
 * the client's close (LRS_AWAITING_CLOSE_ACK, PENDING_TIMEOUT_CLOSE_ACK
 * 5 s), parsing and dropping the client's frames meanwhile without calling
 * us; the client's close then ends it cleanly.  But lws still calls
 * SERVER_WRITEABLE while it waits, and a second -1 there (or the ack
 * timeout) goes to just_kill_connection, which in 4.1.6 does
 * shutdown(SHUT_WR) and close() at once: the LRS_SHUTDOWN stage that would
 * wait for EOF is skipped, since socket_is_permanently_unusable is set just
 * before it is tested.  A close() with unread data in the receive buffer
 * sends a TCP RST; a client still sending then gets its connection reset
 * on its next write, and a stack that ends the connection there (asyncio,
 * so Python websockets) never reads the close frame: it reports 1006.
 *
 * So the close is handed to lws exactly once, when the queue is empty;
 * from then on (DRAINING) the gateway returns 0 from every callback and lws
 * reads and discards until the client's close frame or EOF.  Deadlines sit
 * on the connection's timing-wheel node: PAV_CLOSE_FLUSH_S for the close
 * frame to get out, then PAV_CLOSE_DRAIN_S for the client to answer; then
 * the socket is cut.  Nothing is buffered meanwhile (the queue is empty,
 * reassembly freed).
 *
 * On the uv loop the -1 itself cannot be used: Debian's lws 4.1.6 is built
 * with _DEBUG, and lws_service_fd_tsi() then closes a wsi whose callback
 * returned -1 a second time on libuv ("close_and_handled uv repeat
 * test"), which finds LRS_WAITING_TO_SEND_CLOSE and kills the socket
 * before the close frame is written.  So there (env->close_outside) the
 * close is handed over by the end-of-turn flush, outside every lws
 * callback, with a synchronous lws_set_timeout() kill: the same
 * __lws_close_free_wsi() path with the reason set, called once.
 */

/* The connection is cut at the wheel tick of second now + secs: between
 * secs - 1 and secs seconds from now. */
static void close_deadline(struct pav_conn *c, int secs)
{
	pav_wheel_add(&c->env->wheel, &c->tw, pav_mono_ms() / 1000 + secs);
}

static int send_close(struct pav_conn *c)
{
	const char *r = c->close_reason ? c->close_reason : "";

	lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
			 (unsigned char *)r, strlen(r));
	c->state = PAV_CONN_DRAINING;
	close_deadline(c, PAV_CLOSE_DRAIN_S);
	if (c->env->close_outside && !mark_dirty(c)) {
		c->close_deferred = 1;
		return 0;
	}
	return -1; /* lws sends the close frame and waits for the client's */
}

void pav_conn_close(struct pav_conn *c, int code, const char *reason)
{
	if (c->state == PAV_CONN_CLOSING || c->state == PAV_CONN_DRAINING)
		return;
	c->state = PAV_CONN_CLOSING;
	c->close_code = code;
	c->close_reason = reason;
	pav_metrics_close(code);
	close_deadline(c, PAV_CLOSE_FLUSH_S);
	lws_callback_on_writable(c->wsi);
}

/* A close deadline passed: the client did not read the close frame in
 * time or did not answer it.  Killed on the next service round. */
static void close_expired(struct pav_conn *c)
{
	pav_debug("conn %" PRIu64 ": close deadline passed, cutting", c->id);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
}

void pav_conn_peer_closed(struct pav_conn *c, const void *in, size_t len)
{
	const unsigned char *p = in;

	if (c->state == PAV_CONN_DRAINING)
		return;
	/* the close line names the client's code when it closed first (RFC
	 * 6455 7.1.5: 1005 for a close frame without one) */
	if (c->state == PAV_CONN_OPEN)
		c->peer_code = p && len >= 2 ? p[0] << 8 | p[1] : 1005;
	c->state = PAV_CONN_DRAINING;
	close_deadline(c, PAV_CLOSE_DRAIN_S);
}

/* Is the client's side of the socket still open (no EOF, no error)? */
static int peer_still_there(struct lws *wsi)
{
	char b;
	ssize_t n = recv(lws_get_socket_fd(wsi), &b, 1,
			 MSG_PEEK | MSG_DONTWAIT);

	return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
				   errno == EINTR));
}

/*
 * lws decided to close a connection the gateway had not closed.  With a
 * close reason set (1002 for most protocol errors, 1007 for bad UTF-8)
 * lws sends the close frame itself; the gateway only counts it and puts
 * the drain deadline on it.  Without one it would hang up with no close
 * frame: lws 4.1 does that for a control frame longer than 125 bytes and
 * for a 64-bit length with its top bit set (lws_ws_rx_sm returns -1 with
 * no reason).  This callback comes before lws looks at the reason
 * (__lws_close_free_wsi calls DROP_PROTOCOL, then
 * close_via_role_protocol), so a reason set here makes it send close
 * 1002.  EOF and socket errors also arrive here without a reason: the
 * socket is peeked to leave those alone.
 */
void pav_conn_dropping(struct pav_conn *c)
{
	const unsigned char *p;
	int code = LWS_CLOSE_STATUS_PROTOCOL_ERR;

	if (c->state != PAV_CONN_OPEN)
		return;
	if (lws_get_close_length(c->wsi) >= 2) {
		p = lws_get_close_payload(c->wsi);
		code = p[0] << 8 | p[1];
	} else if (peer_still_there(c->wsi)) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR,
				 (unsigned char *)"protocol error", 14);
	} else {
		return;
	}
	c->state = PAV_CONN_DRAINING;
	c->close_code = code;
	pav_metrics_close(code);
	close_deadline(c, PAV_CLOSE_DRAIN_S);
}

/* ---- receiving -------------------------------------------------------- */

static void rx_reset(struct pav_conn *c)
{
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	c->rx_binary = 0;
	c->rx_pieces = 0;
}

static int too_big(struct pav_conn *c)
{
	rx_reset(c);
	pav_conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		       "message too big");
	return 0;
}

static int complete(struct pav_conn *c, const char *buf, size_t len,
		    const char **msg, size_t *msg_len, int *binary)
{
	c->last_rx_ms = pav_mono_ms(); /* any message counts as activity */
	*msg = buf;
	*msg_len = len;
	*binary = c->rx_binary;
	return 1;
}

int pav_conn_receive(struct pav_conn *c, const void *in, size_t len,
		     const char **msg, size_t *msg_len, int *binary)
{
	size_t max = c->vc->limits.max_message_bytes;
	int first = lws_is_first_fragment(c->wsi);
	int final = lws_is_final_fragment(c->wsi);
	size_t rest = lws_remaining_packet_payload(c->wsi);

	if (c->state != PAV_CONN_OPEN) {
		rx_reset(c); /* closing: drop, keep nothing */
		return 0;
	}
	if (c->rx_len == 0 && c->rx) /* the last message was handed out */
		rx_reset(c);
	if (first && !c->rx_len) {
		c->rx_binary = lws_frame_is_binary(c->wsi);
		c->rx_pieces = 0;
	}
	/* empty fragments cost no bytes but still cost work: bounded too.
	 * lws cuts a long frame at its receive buffer and at each read from
	 * the socket, so a long message comes in many pieces: each
	 * PAV_PIECE_BYTES of it earns one more */
	if (c->rx_len + len + rest > max ||
	    ++c->rx_pieces > PAV_MAX_FRAGMENTS +
				     (c->rx_len + len) / PAV_PIECE_BYTES)
		return too_big(c);
	if (final && !c->rx_len) /* the whole message in one piece */
		return complete(c, in, len, msg, msg_len, binary);
	if (pav_grow(&c->rx, &c->rx_cap, c->rx_len + len + 1,
		     PAV_RX_BUFFER_BYTES * 4, max + 1))
		return too_big(c);
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!final)
		return 0;
	len = c->rx_len;
	c->rx_len = 0; /* c->rx stays valid until the next call */
	return complete(c, c->rx, len, msg, msg_len, binary);
}

/* ---- deadlines -------------------------------------------------------- */

/* Puts the connection's next deadline on the wheel: the next heartbeat,
 * the idle limit or the token's expiry (+ leeway), whichever is first.
 * On the first tick at or after it, so a deadline is met at most a second
 * late (one a few ms past a whole second used to wait for the next).
 * wall_ahead_ms: the wall clock less the monotonic one, as the caller
 * read them (a tick has both already); only a token's expiry needs it. */
static void schedule(struct pav_conn *c, int64_t wall_ahead_ms)
{
	const struct pav_vhost_config *vc = c->vc;
	int64_t next = c->next_heartbeat_ms;
	int64_t idle = c->last_rx_ms + (int64_t)vc->idle_timeout_s * 1000;

	if (idle < next)
		next = idle;
	if (c->exp_ms) {
		/* the wall-clock expiry, on the monotonic clock as of the
		 * caller's reading (after a step of the wall clock, the next
		 * deadline checks it again) */
		int64_t exp = c->exp_ms + (int64_t)vc->leeway_s * 1000 + 1 -
			      wall_ahead_ms;

		if (exp < next)
			next = exp;
	}
	pav_wheel_add(&c->env->wheel, &c->tw, pav_wheel_second_of(next));
}

/* One tick of the wheel: its time (monotonic, and the wall clock's for
 * token expiry), and the heartbeat every connection due in it shares
 * (built on first use). */
struct tick {
	int64_t now, wall;
	struct pav_msg *heartbeat;
	size_t heartbeats;
};

/* Queued and written from the dirty list like a fan-out: no POLLOUT to
 * arm and disarm per connection, one message for all. */
static void heartbeat(struct pav_conn *c, struct tick *t)
{
	if (!t->heartbeat)
		t->heartbeat = pav_msg_build("heartbeat", NULL, NULL, NULL);
	if (t->heartbeat && !pav_conn_deliver(c, t->heartbeat))
		t->heartbeats++;
}

static void deadline(struct pav_conn *c, struct tick *t)
{
	const struct pav_vhost_config *vc = c->vc;
	int64_t now = t->now;
	int64_t every = (int64_t)vc->heartbeat_interval_s * 1000;

	if (c->state == PAV_CONN_CLOSING || c->state == PAV_CONN_DRAINING) {
		close_expired(c);
		return;
	}
	if (c->state != PAV_CONN_OPEN)
		return;
	if (c->exp_ms && t->wall > c->exp_ms + (int64_t)vc->leeway_s * 1000) {
		pav_conn_error(c, PAV_ERR_AUTH, "token expired", NULL);
		pav_conn_close(c, 4001, "token expired");
		return;
	}
	if (now - c->last_rx_ms >= (int64_t)vc->idle_timeout_s * 1000) {
		pav_conn_close(c, 4000, "idle timeout");
		return;
	}
	if (now >= c->next_heartbeat_ms) {
		heartbeat(c, t);
		/* from when it was due, not from this tick (up to a second
		 * later): else the next, on the first tick after it again,
		 * would come interval + 1 s after this one.  Due within the
		 * last second is that wait for the tick; only longer ago did
		 * the loop stall (from now then, or the missed ones would
		 * follow a second apart) */
		c->next_heartbeat_ms += every;
		if (c->next_heartbeat_ms <= now - 1000)
			c->next_heartbeat_ms = now + every;
	}
	schedule(c, t->wall - now);
}

static void due(struct pav_wheel_node *n, void *arg)
{
	struct pav_conn *c = (struct pav_conn *)((char *)n -
						 offsetof(struct pav_conn, tw));

	deadline(c, arg);
}

void pav_conns_tick(struct pav_conn_env *env, int64_t mono_ms,
		    int64_t wall_ms)
{
	struct tick t = {.now = mono_ms, .wall = wall_ms};

	pav_wheel_advance(&env->wheel, mono_ms / 1000, due, &t);
	if (t.heartbeats)
		pav_metrics_out("heartbeat", (unsigned)t.heartbeats);
	if (t.heartbeat)
		pav_msg_unref(t.heartbeat);
}

/* ---- life ------------------------------------------------------------- */

/*
 * The first heartbeat comes up to half an interval early, by a share that
 * steps through [0, 1/2) with each connection opened (a Weyl sequence):
 * connections opened together, a reconnect storm say, would otherwise stay
 * due in one tick for good, each such tick a fan-out to all of them (about
 * 100 ms of the loop at 10,000, while client messages wait).  Never later
 * than the interval, which clients count on.
 */
static int64_t first_heartbeat_in(struct pav_conn_env *env, int64_t every)
{
	uint64_t share = (++env->opened * 0x9E3779B97F4A7C15ull) >> 32;

	return every - (int64_t)((share * (uint64_t)(every / 2)) >> 32);
}

void pav_conn_open(struct pav_conn *c, struct lws *wsi,
		   const struct pav_vhost_config *vc,
		   struct pav_conn_env *env, int64_t exp_ms)
{
	int64_t now = pav_mono_ms();

	c->wsi = wsi;
	c->plain_fd = lws_is_ssl(wsi) || vc->permessage_deflate ?
		-1 : lws_get_socket_fd(wsi);
	c->vc = vc;
	c->env = env;
	c->state = PAV_CONN_OPEN;
	env->live++;
	c->last_rx_ms = now;
	c->exp_ms = exp_ms;
	c->next_heartbeat_ms = now + first_heartbeat_in(env,
			(int64_t)vc->heartbeat_interval_s * 1000);
	schedule(c, exp_ms ? pav_now_ms() - now : 0);
}

void pav_conn_set_expiry(struct pav_conn *c, int64_t exp_ms)
{
	c->exp_ms = exp_ms;
	if (c->state == PAV_CONN_OPEN)
		schedule(c, exp_ms ? pav_now_ms() - pav_mono_ms() : 0);
}

void pav_conn_release(struct pav_conn *c)
{
	if (c->state != PAV_CONN_NEW) {
		c->env->live--;
		c->state = PAV_CONN_NEW;
	}
	if (c->dirty)
		c->env->dirty[c->dirty - 1] = NULL;
	c->dirty = 0;
	pav_wheel_del(&c->tw);
	queue_clear(c);
	free(c->q);
	c->q = NULL;
	c->q_cap = 0;
	rx_reset(c);
}
