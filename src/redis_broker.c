/*
 * redis_broker.c — the "redis" backend's broker (broker.h): publications
 * go through Redis pub/sub and are delivered only as they come back, on
 * the publishing node too, so that every node sees one channel's
 * publications in Redis' order.
 *
 * A gateway channel (ns, channel) is the pub/sub channel
 * "pav:p:<ns>:<channel>" on the channel's shard ("pav:p@<db>:..." when
 * the shard's URL names a database other than 0: Redis pub/sub ignores
 * SELECT, and two gateways on two databases of one server must not hear
 * each other).  A message is a one-line
 * header and the frame every recipient gets (redis_scripts.h):
 *   P1 <pub_id hex> <except> <kind> <key> <type> <offset>\n<frame>
 * A malformed message is logged and dropped.  pub_id is 0 for a
 * publication to one channel, and the same random number in every copy
 * of a publication to several: the copies one script publishes reach a
 * node back to back, and the hub sends such a run to each connection once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "channel.h"
#include "ids.h"
#include "log.h"
#include "msg.h"
#include "redis.h"
#include "redis_backend.h"
#include "redis_node.h"

#define rlog(level, ...) pav_log(level, "store", __VA_ARGS__)

#define OFFSET_MARK ",\"offset\":1"

/* ---- the wire ------------------------------------------------------------ */

/* key and type between spaces: bytes <= 0x20, 0x7f and '%' as %XX; a
 * NULL key is "-" (and a key "-" is "%2D"). */
static size_t escape(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	if (!s) {
		if (out)
			out[0] = '-';
		return 1;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int bad = *p <= 0x20 || *p == 0x7f || *p == '%' ||
			  (*p == '-' && p == (const unsigned char *)s && !p[1]);

		if (bad && out) {
			out[n] = '%';
			out[n + 1] = hex[*p >> 4];
			out[n + 2] = hex[*p & 15];
		} else if (out) {
			out[n] = (char)*p;
		}
		n += bad ? 3 : 1;
	}
	return n;
}

char *pav_rb_header(struct rb *b, uint64_t pub_id, uint64_t except,
		    char kind, const char *key, const char *type)
{
	size_t kl = escape(NULL, key), tl = escape(NULL, type ? type : "");
	size_t len = 3 + 17 + 1 + RB_NODE_LEN + 17 + 1 + 2 + kl + 1 + tl + 2;
	char *h = malloc(len), *p;
	int n;

	if (!h)
		return NULL;
	if (except)
		n = snprintf(h, len, "P1 %" PRIx64 " %s:%" PRIx64 " %c ",
			     pub_id, b->node, except, kind);
	else
		n = snprintf(h, len, "P1 %" PRIx64 " - %c ", pub_id, kind);
	p = h + n;
	p += escape(p, key);
	*p++ = ' ';
	p += escape(p, type ? type : "");
	*p++ = ' ';
	*p = '\0';
	return h;
}

char *pav_rb_revocation_msg(const char *ns, const char *user, int64_t at_ms,
			    int64_t ttl_ms)
{
	size_t len = 3 + escape(NULL, ns) + 1 + escape(NULL, user) + 2 * 21 + 1;
	char *m = malloc(len), *p;

	if (!m)
		return NULL;
	p = m + 3;
	memcpy(m, "V1 ", 3);
	p += escape(p, ns);
	*p++ = ' ';
	p += escape(p, user);
	snprintf(p, len - (size_t)(p - m), " %" PRId64 " %" PRId64, at_ms,
		 ttl_ms);
	return m;
}

/* The next space-separated field of [*p, end); NULL at a malformed end. */
static char *field(char **p, char *end)
{
	char *s = *p, *sp = memchr(s, ' ', (size_t)(end - s));

	if (!sp)
		sp = end;
	if (sp == s)
		return NULL;
	*sp = '\0';
	*p = sp < end ? sp + 1 : end;
	return s;
}

static int parse_u64(const char *s, int base, uint64_t *v)
{
	char *e;

	if (!*s)
		return -EINVAL;
	*v = strtoull(s, &e, base);
	return *e ? -EINVAL : 0;
}

/* A decimal in [min, max]: digits only (no sign, no space). */
static int parse_dec(const char *s, int64_t min, int64_t max, int64_t *v)
{
	uint64_t u;

	if (strspn(s, "0123456789") != strlen(s) || strlen(s) > 19 ||
	    parse_u64(s, 10, &u) || u > (uint64_t)max || (int64_t)u < min)
		return -EINVAL;
	*v = (int64_t)u;
	return 0;
}

/* "V1 <ns> <user> <at_ms> <ttl_ms>": the fields after "V1". */
static int parse_revocation(char *p, char *end, struct rb_wire *w)
{
	char *f[4];

	for (int i = 0; i < 4; i++)
		if (!(f[i] = field(&p, end)))
			return -EINVAL;
	if (p != end || parse_dec(f[2], 0, INT64_MAX, &w->at_ms) ||
	    parse_dec(f[3], 1, RB_REVOKE_TTL_MAX_MS, &w->ttl_ms) ||
	    pav_redis_unescape(f[0], strlen(f[0])) ||
	    pav_redis_unescape(f[1], strlen(f[1])))
		return -EINVAL;
	w->type = f[0];
	w->key = f[1];
	if (!*w->type || strlen(w->type) >= RB_NS_LEN || !*w->key ||
	    strlen(w->key) > PAV_MAX_ID_LEN)
		return -EINVAL;
	w->kind = 'V';
	w->pub_id = w->except = w->offset = 0;
	return 0;
}

#define HEADER_MAX 512 /* "P1" line: ids, an escaped key and type */

int pav_rb_wire_parse(const char *node, char *hdr, size_t hlen,
		      struct rb_wire *w)
{
	char *end = hdr + hlen, *p = hdr, *f[7], *colon;

	/* field() would end the last field at it: no node sends one */
	if (hlen && hdr[hlen - 1] == ' ')
		return -EINVAL;
	if (hlen > 3 && !memcmp(hdr, "V1 ", 3))
		return parse_revocation(hdr + 3, end, w);
	w->at_ms = w->ttl_ms = 0;
	for (int i = 0; i < 7; i++)
		if (!(f[i] = field(&p, end)))
			return -EINVAL;
	if (p != end || strcmp(f[0], "P1") || parse_u64(f[1], 16, &w->pub_id) ||
	    strlen(f[3]) != 1 || !strchr("FRS", f[3][0]) ||
	    parse_u64(f[6], 10, &w->offset))
		return -EINVAL;
	w->kind = f[3][0];
	w->except = 0;
	if (strcmp(f[2], "-")) {
		colon = strchr(f[2], ':');
		if (!colon)
			return -EINVAL;
		*colon = '\0';
		if (!strcmp(f[2], node) &&
		    parse_u64(colon + 1, 16, &w->except))
			return -EINVAL;
	}
	w->key = strcmp(f[4], "-") ? f[4] : NULL;
	w->type = f[5];
	if ((w->key && pav_redis_unescape(w->key, strlen(w->key))) ||
	    pav_redis_unescape(w->type, strlen(w->type)))
		return -EINVAL;
	return 0;
}

/* 1 when s[0..len) is a namespace as the configuration takes it. */
static int ns_ok(const char *s, size_t len)
{
	if (!len || len >= RB_NS_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int pav_rb_revoked_parse(const char *key, size_t klen, const char *val,
			 size_t vlen, long long pttl_ms, struct rb_revoked *r)
{
	static const char head[] = "pav:{u:", tail[] = "}:revoked";
	size_t hl = sizeof(head) - 1, tl = sizeof(tail) - 1;
	const char *ns = key + hl, *colon, *user;
	char num[24];
	size_t nl, ul;

	if (klen < hl + tl || memcmp(key, head, hl) ||
	    memcmp(key + klen - tl, tail, tl))
		return -EINVAL;
	/* a namespace holds no ':', so the first one ends it */
	colon = memchr(ns, ':', klen - hl - tl);
	if (!colon)
		return -EINVAL;
	nl = (size_t)(colon - ns);
	user = colon + 1;
	ul = (size_t)(key + klen - tl - user);
	if (!ns_ok(ns, nl) || !pav_id_valid(user, ul) || !vlen ||
	    vlen >= sizeof(num) || pttl_ms < 1 ||
	    pttl_ms > RB_REVOKE_TTL_MAX_MS)
		return -EINVAL;
	memcpy(num, val, vlen);
	num[vlen] = '\0';
	/* a NUL inside stops the digits short of vlen: refused */
	if (strlen(num) != vlen || parse_dec(num, 0, INT64_MAX, &r->at_ms))
		return -EINVAL;
	memcpy(r->ns, ns, nl);
	r->ns[nl] = '\0';
	memcpy(r->user, user, ul);
	r->user[ul] = '\0';
	r->ttl_ms = pttl_ms;
	return 0;
}

/* Hands one message to the local hub: the frame is copied once, into the
 * message every recipient shares. */
static void on_message(struct rb_shard *sh, const char *channel, size_t clen,
		       const char *data, size_t dlen)
{
	struct rb *b = sh->b;
	size_t pl = strlen(sh->prefix), hlen;
	char ns[RB_NS_LEN], chan[PAV_MAX_CHANNEL_LEN], hdr[HEADER_MAX];
	const char *rest = channel + pl, *colon, *nl;
	const char *chans[] = {chan};
	struct pav_delivery d = {.ns = ns, .channels = chans, .nchannels = 1};
	struct rb_wire w;

	if (clen <= pl || strncmp(channel, sh->prefix, pl) ||
	    !(colon = strchr(rest, ':')) || (size_t)(colon - rest) >= sizeof(ns) ||
	    strlen(colon + 1) >= sizeof(chan)) {
		rlog(PAV_LOG_WARN, "a message on an unknown channel dropped");
		return;
	}
	snprintf(ns, sizeof(ns), "%.*s", (int)(colon - rest), rest);
	snprintf(chan, sizeof(chan), "%s", colon + 1);
	nl = memchr(data, '\n', dlen < HEADER_MAX ? dlen : HEADER_MAX);
	hlen = nl ? (size_t)(nl - data) : 0;
	if (nl) {
		memcpy(hdr, data, hlen);
		hdr[hlen] = '\0';
	}
	if (!nl || pav_rb_wire_parse(b->node, hdr, hlen, &w)) {
		rlog(PAV_LOG_WARN, "a malformed message on %s dropped", chan);
		return;
	}
	/* a status another node applied: kept for a rebuild, not delivered */
	if (w.kind == 'S') {
		if (!strncmp(chan, "user:", 5))
			pav_rb_remember_status(b, ns, chan + 5, nl + 1,
					       dlen - hlen - 1);
		return;
	}
	d.kind = w.kind == 'R' ? PAV_DELIVER_REVOKE : PAV_DELIVER_FRAME;
	d.type = w.type;
	d.except = w.except;
	d.pub_id = w.pub_id;
	if (d.kind == PAV_DELIVER_FRAME) {
		d.msg = pav_msg_new(nl + 1, dlen - hlen - 1, w.key);
		if (!d.msg)
			return;
		d.msg->offset = w.offset;
	}
	if (b->env.deliver)
		b->env.deliver(b->env.arg, &d);
	pav_msg_unref(d.msg);
}

/* ---- publishing ----------------------------------------------------------- */

/* One message to many channels: one script per shard. */
struct raw_call {
	void (*done)(void *arg, int err);
	void *arg;
	size_t pending;
	int err;
};

static void raw_finish(struct raw_call *k)
{
	if (--k->pending)
		return;
	if (k->done)
		k->done(k->arg, k->err);
	free(k);
}

static void raw_published(void *arg, int err, const redisReply *rep)
{
	struct raw_call *k = arg;

	err = pav_rb_reply_err(err, rep, -1, "publish");
	if (err && !k->err)
		k->err = err;
	raw_finish(k);
}

void pav_rb_publish_raw(struct rb *b, const char *ns,
			const char *const *channels, size_t n,
			const char *msg, size_t len,
			void (*done)(void *arg, int err), void *arg)
{
	struct raw_call *k = calloc(1, sizeof(*k));

	if (!k) {
		if (done)
			done(arg, -ENOMEM);
		return;
	}
	*k = (struct raw_call){done, arg, 1, 0};
	for (size_t s = 0; s < b->nshards; s++) {
		struct rb_argv a;

		pav_rb_av_init(&a);
		pav_rb_av_add(&a, msg, len);
		for (size_t i = 0; i < n; i++)
			if (pav_rb_chan_shard(b, ns, channels[i]) == s)
				pav_rb_feed(&b->shards[s], &a, ns,
					    channels[i]);
		if (a.n > 1) {
			k->pending++;
			pav_rb_eval(b, s, PAV_RB_PUBLISH_MULTI, 0, &a,
				    raw_published, k);
		} else {
			pav_rb_av_free(&a);
		}
	}
	raw_finish(k);
}

struct multi_call {
	pav_published_fn done;
	void *arg;
};

static void multi_done(void *arg, int err)
{
	struct multi_call *x = arg;
	struct pav_published res = {0, NULL, -1};

	if (x->done)
		x->done(x->arg, err, err ? NULL : &res);
	free(x);
}

static void publish_multi(struct rb *b, const char *ns,
			  const struct pav_outgoing *out, pav_published_fn done,
			  void *arg)
{
	struct pav_frame f = {.type = out->type, .payload = out->payload,
			      .key = out->key};
	struct pav_msg *m = pav_msg_frame(&f);
	char *hdr = pav_rb_header(b, pav_rb_rand(b) | 1, out->except, 'F',
				  out->key, out->type);
	struct multi_call *x = calloc(1, sizeof(*x));
	size_t hl, len;
	char *msg = NULL;

	if (m && hdr && x) {
		hl = strlen(hdr);
		len = hl + 2 + m->len;
		msg = malloc(len);
	}
	if (!msg) {
		pav_msg_unref(m);
		free(hdr);
		free(x);
		if (done)
			done(arg, -ENOMEM, NULL);
		return;
	}
	memcpy(msg, hdr, hl);
	memcpy(msg + hl, "0\n", 2);
	memcpy(msg + hl + 2, pav_msg_text(m), m->len);
	*x = (struct multi_call){done, arg};
	pav_rb_publish_raw(b, ns, out->channels, out->nchannels, msg, len,
			   multi_done, x);
	free(msg);
	free(hdr);
	pav_msg_unref(m);
}

struct pub_call {
	pav_published_fn done;
	void *arg;
	int history;
};

static void published(void *arg, int err, const redisReply *rep)
{
	struct pub_call *x = arg;
	struct pav_published res = {0, NULL, 0};

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_ARRAY, "publish");
	if (!err && rep->elements != 3)
		err = -EIO;
	if (!err) {
		res.offset = (uint64_t)pav_rb_int(rep->element[0]);
		if (x->history && rep->element[1]->type == REDIS_REPLY_STRING)
			res.epoch = rep->element[1]->str;
		res.recipients = pav_rb_int(rep->element[2]);
	}
	if (x->done)
		x->done(x->arg, err, err ? NULL : &res);
	free(x);
}

/* A history channel's frame carries the offset the script assigns: the
 * frame is made with offset 1 and cut around it.  type, id and channel
 * come first and are JSON strings, which cannot hold an unescaped quote:
 * the first ,"offset":1 is the member. */
static void publish_one(struct rb *b, const char *ns,
			const struct pav_outgoing *out, pav_published_fn done,
			void *arg)
{
	const char *chan = out->channels[0];
	size_t shard = pav_rb_chan_shard(b, ns, chan);
	const struct pav_history_cfg *h = out->history;
	int history = h && h->size > 0;
	struct pav_frame f = {.type = out->type, .channel = chan,
			      .payload = out->payload, .key = out->key,
			      .offset = history ? 1 : 0};
	struct pav_msg *m = pav_msg_frame(&f);
	char *hdr = pav_rb_header(b, 0, out->except, 'F', out->key, out->type);
	struct pub_call *x = calloc(1, sizeof(*x));
	const char *text = m ? (const char *)pav_msg_text(m) : NULL, *mark;
	size_t head = m ? m->len : 0, tail = head;
	/* with a key on a user channel: maybe the delivery of a staged
	 * notification, which enters the inbox in this step */
	int delivers_note = out->key && !strncmp(chan, "user:", 5);
	struct rb_argv a;

	if (m && history) {
		mark = strstr(text, OFFSET_MARK);
		if (mark) {
			head = (size_t)(mark - text) + strlen(OFFSET_MARK) - 1;
			tail = head + 1;
		} else {
			history = 0;
		}
	}
	if (!m || !hdr || !x) {
		pav_msg_unref(m);
		free(hdr);
		free(x);
		if (done)
			done(arg, -ENOMEM, NULL);
		return;
	}
	*x = (struct pub_call){done, arg, history};
	pav_rb_av_init(&a);
	pav_rb_ckey(&a, ns, chan, "meta");
	pav_rb_ckey(&a, ns, chan, "hist");
	pav_rb_ckey(&a, ns, chan, "seq");
	pav_rb_ckey(&a, ns, chan, "n");
	if (delivers_note)
		pav_rb_inbox_keys(&a, ns, chan + 5);
	pav_rb_feed(&b->shards[shard], &a, ns, chan);
	pav_rb_av_str(&a, hdr);
	pav_rb_av_add(&a, text, head);
	pav_rb_av_add(&a, text + tail, m->len - tail);
	pav_rb_av_fmt(&a, "%d", history ? h->size : 0);
	pav_rb_av_fmt(&a, "%" PRId64,
		      (int64_t)(history && h->ttl_s > 0 ? h->ttl_s : 1) * 1000);
	pav_rb_av_fmt(&a, "%016" PRIx64, pav_rb_rand(b));
	pav_rb_av_str(&a, done ? "1" : "0");
	if (delivers_note) {
		pav_rb_av_str(&a, out->key);
		pav_rb_av_fmt(&a, "%zu", b->inbox_size);
		pav_rb_av_str(&a, RB_INBOX_TTL_MS);
	}
	pav_rb_eval(b, shard, PAV_RB_PUBLISH, delivers_note ? 11 : 4, &a,
		    published, x);
	free(hdr);
	pav_msg_unref(m);
}

static void rb_publish(void *self, const char *ns,
		       const struct pav_outgoing *out, pav_published_fn done,
		       void *arg)
{
	if (!out->nchannels) {
		if (done)
			done(arg, -EINVAL, NULL);
		return;
	}
	if (out->nchannels == 1)
		publish_one(self, ns, out, done, arg);
	else
		publish_multi(self, ns, out, done, arg);
}

/* ---- feeds ---------------------------------------------------------------- */

struct sub_call {
	pav_done_fn cb;
	void *arg;
};

#define FEED_LEN (RB_NS_LEN + PAV_MAX_CHANNEL_LEN + 8)

/* The shard of (ns, channel) and its pub/sub channel there, into name
 * (FEED_LEN bytes); *len: its length. */
static struct rb_shard *feed_of(struct rb *b, const char *ns,
				const char *channel, char *name, size_t *len)
{
	struct rb_shard *sh = &b->shards[pav_rb_chan_shard(b, ns, channel)];

	*len = (size_t)snprintf(name, FEED_LEN, "%s%s:%s", sh->prefix, ns,
				channel);
	return sh;
}

static void subscribed(void *arg, int err, const redisReply *rep)
{
	struct sub_call *x = arg;

	(void)rep;
	if (x->cb)
		x->cb(x->arg, err ? -EIO : 0);
	free(x);
}

static void rb_subscribe(void *self, const char *ns, const char *channel,
			 pav_done_fn cb, void *arg)
{
	char name[FEED_LEN];
	size_t n;
	struct rb_shard *sh = feed_of(self, ns, channel, name, &n);
	struct sub_call *x = calloc(1, sizeof(*x));
	int rc = -EIO;

	if (x && sh->r && sh->up) {
		*x = (struct sub_call){cb, arg};
		rc = pav_redis_subscribe(sh->r, name, n, subscribed, x);
	}
	if (rc) {
		free(x);
		if (cb)
			cb(arg, -EIO);
	}
}

static void rb_unsubscribe(void *self, const char *ns, const char *channel)
{
	char name[FEED_LEN];
	size_t n;
	struct rb_shard *sh = feed_of(self, ns, channel, name, &n);

	pav_rb_refused_forget(sh, name);
	if (sh->r)
		pav_redis_unsubscribe(sh->r, name, n);
}

/* ---- revoke --------------------------------------------------------------- */

struct revoke_call {
	struct rb *b;
	pav_state_count_fn cb;
	void *arg;
	int64_t count;
	char ns[RB_NS_LEN];
	char chan[PAV_CHANNEL_BUF];
};

static void revoke_sent(void *arg, int err)
{
	struct revoke_call *x = arg;

	if (x->cb)
		x->cb(x->arg, err ? -EIO : 0, err ? 0 : x->count);
	free(x);
}

/* Counted on the user's shard first: `closed` is what the revoke met. */
static void revoke_counted(void *arg, int err, const redisReply *rep)
{
	struct revoke_call *x = arg;
	const char *chans[] = {x->chan};
	char *hdr;
	size_t len;
	char *msg;

	err = pav_rb_reply_err(err, rep, REDIS_REPLY_INTEGER, "revoke");
	if (err) {
		revoke_sent(x, err);
		return;
	}
	x->count = rep->integer;
	hdr = pav_rb_header(x->b, 0, 0, 'R', NULL, "revoke");
	len = hdr ? strlen(hdr) + 2 : 0;
	msg = hdr ? malloc(len + 1) : NULL;
	if (!msg) {
		free(hdr);
		revoke_sent(x, -ENOMEM);
		return;
	}
	snprintf(msg, len + 1, "%s0\n", hdr);
	free(hdr);
	pav_rb_publish_raw(x->b, x->ns, chans, 1, msg, len, revoke_sent, x);
	free(msg);
}

static void rb_revoke(void *self, const char *ns, const char *user,
		      pav_state_count_fn cb, void *arg)
{
	struct rb *b = self;
	struct revoke_call *x = calloc(1, sizeof(*x));
	struct rb_argv a;

	if (!x) {
		if (cb)
			cb(arg, -ENOMEM, 0);
		return;
	}
	*x = (struct revoke_call){.b = b, .cb = cb, .arg = arg};
	snprintf(x->ns, sizeof(x->ns), "%s", ns);
	pav_channel_user(user, x->chan, sizeof(x->chan));
	pav_rb_av_init(&a);
	pav_rb_av_str(&a, "HLEN");
	pav_rb_ukey(&a, ns, user, "conns");
	pav_rb_command(b, pav_rb_shard_of(b, ns, user), &a, revoke_counted, x);
}

/* ---- the vtable ------------------------------------------------------------ */

static int broker_create(const struct pav_store_config *cfg,
			 const struct pav_backend_env *env, void *state,
			 void **self, char *err, size_t errlen)
{
	int rc = pav_backend_share(cfg, env, state, self, err, errlen);

	if (!rc) /* pub/sub messages come to us */
		((struct rb *)state)->on_message = on_message;
	return rc;
}

const struct pav_broker_ops pav_redis_broker = {
	.create = broker_create,
	.destroy = pav_backend_shared_destroy,
	.ready = pav_rb_ready,
	.publish = rb_publish,
	.subscribe = rb_subscribe,
	.unsubscribe = rb_unsubscribe,
	.revoke = rb_revoke,
};
