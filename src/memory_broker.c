/*
 * memory_broker.c — the "memory" backend's broker: a publication is
 * serialized once, numbered and kept when its channel has history, and
 * handed straight to the local hub.
 */
#include "memory.h"

#include <errno.h>
#include <stdio.h>

#include "channel.h"
#include "clock.h"

void pav_mem_publish(struct pav_mem *m, const char *ns,
		     const struct pav_outgoing *out, pav_published_fn done,
		     void *arg)
{
	int one = out->nchannels == 1;
	struct mem_chan *ch;
	char epoch[PAV_MEM_EPOCH_LEN];
	struct pav_published res = {0, NULL, one ? 0 : -1};
	struct pav_frame f = {
		.type = out->type,
		.channel = one ? out->channels[0] : NULL,
		.payload = out->payload,
		.key = out->key,
	};
	struct pav_delivery d = {
		.kind = PAV_DELIVER_FRAME,
		.ns = ns,
		.channels = out->channels,
		.nchannels = out->nchannels,
		.type = out->type,
		.except = out->except,
	};
	int64_t now = pav_now_ms();

	pav_mem_enter(m); /* ch stays while callbacks run */
	ch = one ? pav_mem_chan(m, ns, out->channels[0], 1) : NULL;
	/* every channel counts its publications; only one with history
	 * puts the number on the message and keeps the message */
	if (ch) {
		pav_mem_history_config(ch, out->history);
		if (ch->size && out->history) {
			f.offset = res.offset = ++ch->offset;
			snprintf(epoch, sizeof(epoch), "%s",
				 pav_mem_chan_epoch(m, ch));
			res.epoch = epoch;
		} else if (!ch->size) {
			res.offset = ++ch->offset;
		} /* else transient on a history channel: not numbered */
	}
	d.msg = pav_msg_frame(&f);
	if (!d.msg) {
		if (done)
			done(arg, -ENOMEM, NULL);
		goto out;
	}
	if (f.offset)
		pav_mem_history_append(m, ch, d.msg, now);
	if (one)
		res.recipients = pav_mem_members(m, ns, out->channels[0]);
	if (m->env.deliver)
		m->env.deliver(m->env.arg, &d);
	pav_msg_unref(d.msg);
	if (done)
		done(arg, 0, &res);
out:
	if (ch)
		pav_mem_chan_drop(m, ch);
	pav_mem_leave(m);
}


static int broker_ready(void *self)
{
	(void)self;
	return 1;
}

static void broker_publish(void *self, const char *ns,
			   const struct pav_outgoing *out,
			   pav_published_fn done, void *arg)
{
	pav_mem_publish(self, ns, out, done, arg);
}

/* One node: every publication is already here. */
static void broker_subscribe(void *self, const char *ns, const char *channel,
			     pav_done_fn cb, void *arg)
{
	(void)self;
	(void)ns;
	(void)channel;
	if (cb)
		cb(arg, 0);
}

static void broker_unsubscribe(void *self, const char *ns,
			       const char *channel)
{
	(void)self;
	(void)ns;
	(void)channel;
}

static void broker_revoke(void *self, const char *ns, const char *user,
			  pav_state_count_fn cb, void *arg)
{
	struct pav_mem *m = self;
	char chan[PAV_CHANNEL_BUF];
	const char *chans[] = {chan};
	int64_t n = pav_mem_user_conns(m, ns, user);
	struct pav_delivery d = {
		.kind = PAV_DELIVER_REVOKE,
		.ns = ns,
		.channels = chans,
		.nchannels = 1,
		.type = "revoke",
	};

	pav_channel_user(user, chan, sizeof(chan));
	if (m->env.deliver)
		m->env.deliver(m->env.arg, &d);
	if (cb)
		cb(arg, 0, n);
}

const struct pav_broker_ops pav_memory_broker = {
	.create = pav_backend_share, /* one table for both halves */
	.destroy = pav_backend_shared_destroy,
	.ready = broker_ready,
	.publish = broker_publish,
	.subscribe = broker_subscribe,
	.unsubscribe = broker_unsubscribe,
	.revoke = broker_revoke,
};
