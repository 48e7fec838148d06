/*
 * fake_conn.h — a stand-in for src/conn.c (which needs a live lws
 * connection): every conn.h function acts on a struct fake_conn, which
 * records what the connection was sent, in order, and how it was closed.
 * The hub and the session layer hold &fc->c, so tests build a
 * struct fake_conn and hand its `c` over.
 */
#ifndef PAV_TEST_FAKE_CONN_H
#define PAV_TEST_FAKE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "conn.h"

/* How a frame reached the connection. */
enum fake_via {
	FAKE_DELIVER, /* pav_conn_deliver (fan-out, release) */
	FAKE_ENQUEUE, /* pav_conn_enqueue (replays) */
	FAKE_SEND,    /* pav_conn_send (acks, server messages) */
	FAKE_ERROR,   /* pav_conn_error, pav_conn_channel_error */
};

struct fake_frame {
	enum fake_via via;
	char *text;
	uint64_t offset; /* the message's history offset */
	char *key;       /* the message's key, or NULL */
};

struct fake_conn {
	struct pav_conn c; /* first: the code under test holds &c */
	struct fake_frame *frames;
	size_t n, cap;
	int overflows;    /* pav_conn_overflow() calls */
	int closes;       /* pav_conn_close() calls that took effect */
	int64_t exp_ms;   /* the last pav_conn_set_expiry() */
	size_t refuse_after; /* > 0: sends past this many frames fail */
	size_t replay_max;   /* pav_conn_replay_max(); 0: no bound */
	/* lws_rx_flow_control() on c.wsi (set it to the fake itself):
	 * whether input is paused now, and how many calls were made */
	int rx_paused;
	int rx_calls;
};

/* An open connection with nothing sent.  Its c.wsi is the fake itself,
 * so the libwebsockets calls the code under test makes on it land in
 * fake_conn.c too (only lws_rx_flow_control is there). */
void fake_conn_init(struct fake_conn *f);
/* Frees the recorded frames (the connection stays as it is). */
void fake_conn_clear(struct fake_conn *f);
void fake_conn_free(struct fake_conn *f);

/* The fake behind a struct pav_conn the code under test holds. */
struct fake_conn *fake_of(struct pav_conn *c);

/* Frame i: its text, or as parsed JSON (a new reference). */
const char *fake_text(const struct fake_conn *f, size_t i);
json_object *fake_json(const struct fake_conn *f, size_t i);
/* Frame i's "type" (static copy valid until the next call). */
const char *fake_type(const struct fake_conn *f, size_t i);
/* How many frames of `type` were sent. */
size_t fake_count_type(const struct fake_conn *f, const char *type);

#endif
