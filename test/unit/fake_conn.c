/* fake_conn.c — see fake_conn.h. */
#include "fake_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* session.c holds a new connection's input back through conn.c; wsi is
 * a fake_conn (fake_conn_init). */
void pav_conn_rx_pause(struct pav_conn *c, int pause)
{
	struct fake_conn *f;

	if (!c || !c->wsi)
		return;
	f = (struct fake_conn *)(void *)c->wsi;
	f->rx_paused = pause;
	f->rx_calls++;
}

void fake_conn_init(struct fake_conn *f)
{
	memset(f, 0, sizeof(*f));
	f->c.state = PAV_CONN_OPEN;
	f->c.wsi = (struct lws *)f;
}

void fake_conn_clear(struct fake_conn *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->frames[i].text);
		free(f->frames[i].key);
	}
	free(f->frames);
	f->frames = NULL;
	f->n = f->cap = 0;
}

void fake_conn_free(struct fake_conn *f)
{
	fake_conn_clear(f);
}

struct fake_conn *fake_of(struct pav_conn *c)
{
	return (struct fake_conn *)c;
}

static int record(struct pav_conn *c, struct pav_msg *m, enum fake_via via)
{
	struct fake_conn *f = fake_of(c);
	struct fake_frame *fr;

	if (c->state != PAV_CONN_OPEN)
		return -EPIPE;
	if (f->refuse_after && f->n >= f->refuse_after)
		return -ENOBUFS;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;

		fr = realloc(f->frames, cap * sizeof(*fr));
		if (!fr)
			abort();
		f->frames = fr;
		f->cap = cap;
	}
	fr = &f->frames[f->n++];
	fr->via = via;
	fr->text = strndup((const char *)pav_msg_text(m), m->len);
	fr->offset = m->offset;
	fr->key = m->key ? strdup(m->key) : NULL;
	return 0;
}

const char *fake_text(const struct fake_conn *f, size_t i)
{
	return i < f->n ? f->frames[i].text : NULL;
}

json_object *fake_json(const struct fake_conn *f, size_t i)
{
	return i < f->n ? json_tokener_parse(f->frames[i].text) : NULL;
}

const char *fake_type(const struct fake_conn *f, size_t i)
{
	static char type[64];
	json_object *o = fake_json(f, i), *t;

	type[0] = '\0';
	if (o && json_object_object_get_ex(o, "type", &t))
		strncat(type, json_object_get_string(t), sizeof(type) - 1);
	json_object_put(o);
	return type;
}

size_t fake_count_type(const struct fake_conn *f, const char *type)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += !strcmp(fake_type(f, i), type);
	return n;
}

/* ---- conn.h ---- */

void pav_conn_open(struct pav_conn *c, struct lws *wsi,
		   const struct pav_vhost_config *vc,
		   struct pav_conn_env *env, int64_t exp_ms)
{
	c->wsi = wsi;
	c->vc = vc;
	c->env = env;
	c->state = PAV_CONN_OPEN;
	c->exp_ms = exp_ms;
}

void pav_conn_set_expiry(struct pav_conn *c, int64_t exp_ms)
{
	c->exp_ms = exp_ms;
	fake_of(c)->exp_ms = exp_ms;
}

void pav_conn_release(struct pav_conn *c)
{
	(void)c;
}

int pav_conn_enqueue(struct pav_conn *c, struct pav_msg *m)
{
	return record(c, m, FAKE_ENQUEUE);
}

int pav_conn_enqueue_kept(struct pav_conn *c, struct pav_msg *m)
{
	return record(c, m, FAKE_ENQUEUE); /* replayed history: a plain enqueue here */
}

size_t pav_conn_replay_max(const struct pav_conn *c)
{
	const struct fake_conn *f = (const struct fake_conn *)c;

	return f->replay_max ? f->replay_max : SIZE_MAX;
}

int pav_conn_deliver(struct pav_conn *c, struct pav_msg *m)
{
	return record(c, m, FAKE_DELIVER);
}

int pav_conn_send(struct pav_conn *c, const char *type, const char *id,
		  const char *channel, json_object *payload)
{
	struct pav_msg *m = pav_msg_build(type, id, channel, payload);
	int rc;

	if (!m)
		return -ENOMEM;
	rc = record(c, m, FAKE_SEND);
	pav_msg_unref(m);
	return rc;
}

int pav_conn_send_replay(struct pav_conn *c, const char *type,
			 const char *channel, json_object *payload)
{
	struct pav_msg *m = pav_msg_build(type, NULL, channel, payload);
	int rc;

	if (!m)
		return -ENOMEM;
	rc = record(c, m, FAKE_ENQUEUE); /* a replay, as enqueue_kept */
	pav_msg_unref(m);
	return rc;
}

int pav_conn_send_replay_within(struct pav_conn *c, const char *type,
				const char *channel, json_object *payload,
				size_t spare)
{
	(void)spare; /* no bound here: what fits is conn.c's business */
	return pav_conn_send_replay(c, type, channel, payload);
}

void pav_conn_error(struct pav_conn *c, int code, const char *message,
		    const char *id)
{
	struct pav_msg *m = pav_msg_error(code, message, id);

	if (m)
		record(c, m, FAKE_ERROR);
	pav_msg_unref(m);
}

void pav_conn_channel_error(struct pav_conn *c, int code, const char *message,
			    const char *channel)
{
	struct pav_msg *m = pav_msg_channel_error(code, message, channel);

	if (m)
		record(c, m, FAKE_ERROR);
	pav_msg_unref(m);
}

void pav_conn_close(struct pav_conn *c, int code, const char *reason)
{
	if (c->state == PAV_CONN_CLOSING)
		return;
	c->state = PAV_CONN_CLOSING;
	c->close_code = code;
	c->close_reason = reason;
	fake_of(c)->closes++;
}

void pav_conn_overflow(struct pav_conn *c)
{
	if (!c || c->state != PAV_CONN_OPEN)
		return;
	fake_of(c)->overflows++;
	pav_conn_close(c, 4008, "slow consumer");
}

int pav_conn_is_open(const struct pav_conn *c)
{
	return c && c->state == PAV_CONN_OPEN;
}

int pav_conn_writeable(struct pav_conn *c)
{
	(void)c;
	return 0;
}

int pav_conn_receive(struct pav_conn *c, const void *in, size_t len,
		     const char **msg, size_t *msg_len, int *binary)
{
	(void)c;
	*msg = in;
	*msg_len = len;
	*binary = 0;
	return 1;
}

void pav_conns_fanout_begin(struct pav_conn_env *env)
{
	(void)env;
}

void pav_conns_fanout_end(struct pav_conn_env *env)
{
	(void)env;
}

int pav_conns_flush(struct pav_conn_env *env, size_t slice)
{
	(void)env;
	(void)slice;
	return 0;
}

void pav_conn_env_free(struct pav_conn_env *env)
{
	(void)env;
}

void pav_conns_tick(struct pav_conn_env *env, int64_t mono_ms,
		    int64_t wall_ms)
{
	(void)env;
	(void)mono_ms;
	(void)wall_ms;
}
