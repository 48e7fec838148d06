/* deliveries.c — see deliveries.h. */
#include "deliveries.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

struct dlv dlvs[DLV_MAX];
size_t ndlvs;
int nresyncs;

static void record(void *arg, const struct pav_delivery *d)
{
	struct dlv *x;

	(void)arg;
	if (ndlvs == DLV_MAX)
		abort();
	x = &dlvs[ndlvs++];
	memset(x, 0, sizeof(*x));
	x->kind = d->kind;
	snprintf(x->ns, sizeof(x->ns), "%s", d->ns);
	snprintf(x->type, sizeof(x->type), "%s", d->type ? d->type : "");
	x->nchannels = d->nchannels;
	for (size_t i = 0; i < d->nchannels && i < DLV_CHANNELS; i++)
		snprintf(x->channels[i], sizeof(x->channels[i]), "%s",
			 d->channels[i]);
	if (d->msg) {
		x->text = strndup((const char *)pav_msg_text(d->msg),
				  d->msg->len);
		x->offset = d->msg->offset;
		snprintf(x->key, sizeof(x->key), "%s",
			 d->msg->key ? d->msg->key : "");
	}
	x->except = d->except;
	x->pub_id = d->pub_id;
}

static void resync(void *arg)
{
	(void)arg;
	nresyncs++;
}

const struct pav_backend_env dlv_env = {
	.deliver = record,
	.resync = resync,
};

void dlv_reset(void)
{
	for (size_t i = 0; i < ndlvs; i++)
		free(dlvs[i].text);
	ndlvs = 0;
	nresyncs = 0;
}

json_object *dlv_json(size_t i)
{
	return i < ndlvs && dlvs[i].text ? json_tokener_parse(dlvs[i].text)
					 : NULL;
}
