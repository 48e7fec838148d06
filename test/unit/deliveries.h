/*
 * deliveries.h — a backend environment (struct pav_backend_env) whose
 * deliver() records every delivery a backend hands to the hub: its kind,
 * namespace, channels, frame text, except and pub_id.
 */
#ifndef PAV_TEST_DELIVERIES_H
#define PAV_TEST_DELIVERIES_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "backend.h"

#define DLV_MAX 256
#define DLV_CHANNELS 8

struct dlv {
	enum pav_delivery_kind kind;
	char ns[32];
	char type[32];
	char channels[DLV_CHANNELS][80];
	size_t nchannels;
	char *text;     /* FRAME: the frame, else NULL */
	uint64_t offset; /* FRAME: the message's offset */
	char key[32];   /* FRAME: the message's key, "" when none */
	uint64_t except;
	uint64_t pub_id;
};

extern struct dlv dlvs[DLV_MAX];
extern size_t ndlvs;
/* The environment to create a backend with (resync counted in nresyncs). */
extern const struct pav_backend_env dlv_env;
extern int nresyncs;

void dlv_reset(void);
/* Delivery i's frame, parsed (a new reference). */
json_object *dlv_json(size_t i);

#endif
