/*
 * session_fixture.h — one gateway core without sockets, for the session
 * and dispatch tests: the "memory" backend (its history reads optionally
 * held back, to play a slower store), a hub, a struct pav_core, one public
 * vhost of namespace "default" with an HS256 key and two instances of a
 * recorder plugin whose hooks log what they saw, and fake connections
 * (fake_conn.c).  The clock is fake (fake_clock.c), starting at FX_T0.
 *
 * History: zone: channels keep 10 publications for 60 s; channel: and
 * chat: keep none.  Limits: the defaults, but 2 connections per user and
 * 3 subscriptions (besides user:<id>).
 */
#ifndef PAV_TEST_SESSION_FIXTURE_H
#define PAV_TEST_SESSION_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core.h"
#include "fake_conn.h"
#include "session.h"
#include "vhost.h"

#define FX_T0 1800000000000LL /* 2027-01-15T08:00:00.000Z */
#define FX_MAX_PER_USER 2
#define FX_MAX_SUBS 3

extern struct pav_core fx_core;
extern struct pav_vhost fx_vh;
extern struct pav_vhost_config fx_vc;
extern struct pav_ns fx_ns;

/* Hook calls of the recorder instances ("A" and "B", in that order), as
 * text, with the number of frames the connection had been sent then:
 *   "A open u1 first=1"
 *   "A subscribed u1 zone:z1 first=1 subs=2 params={...}" (or params=-)
 *   "A unsubscribed u1 zone:z1"
 *   "A renewed u1 zone:z1" (check_renewed: refused when the channel is
 *   in fx_renew_refused)
 *   "A close u1 last=1 at=5 channels=user:u1,zone:z1" (sorted; at:
 *   conn_closed_ms - FX_T0)
 */
#define FX_EVENTS 256
struct fx_event {
	char text[256];
	size_t frames; /* fake_conn frames sent before the hook ran */
};
extern struct fx_event fx_events[FX_EVENTS];
extern size_t fx_nevents;
/* Index of the first event equal to text at or after `from`, or -1. */
int fx_event_find(const char *text, size_t from);
/* Events of instance A only, as "open ...", "subscribed ..." etc.:
 * their count and the i-th text (without the "A "). */
size_t fx_a_count(void);
const char *fx_a(size_t i);
void fx_events_clear(void);

/* The recorder's check_parameters refuses parameters holding "bad"
 * (1002 "bad parameter"). */

/* The channels the recorder's check_renewed refuses (1004) after a
 * renewal: up to 8, NULL after the last; none after fx_setup(). */
extern const char *fx_renew_refused[8];

/* Hold history reads back until fx_run_history() (a slower store). */
void fx_hold_history(int on);
/* Answers the held history reads, oldest first; how many. */
int fx_run_history(void);

/* A network store's timing for conn_add / member_add: each call is
 * applied at once (in order with the others) but answered only by
 * fx_run_conn_add() / fx_run_member_add(); they answer how many. */
void fx_hold_conn_add(int on);
int fx_run_conn_add(void);
void fx_hold_member_add(int on);
int fx_run_member_add(void);
/* The same, but each answers err (a network store that timed out). */
int fx_run_member_add_err(int err);

/* The store's member_add / conn_add answer err (e.g. -EIO) while set;
 * 0: the memory backend's answers. */
void fx_fail_member_add(int err);
void fx_fail_conn_add(int err);

/* Hold the broker's feed requests (subscribe) back until fx_run_feeds()
 * answers them with err, oldest first; how many.  Requests and stops
 * (unsubscribe) the session layer made are counted. */
void fx_hold_feeds(int on);
int fx_run_feeds(int err);
extern int fx_feed_requests, fx_feed_stops;

int fx_setup(void **state);
int fx_teardown(void **state);

/* Opens a session of user on fc (fake_conn_init'ed here) with claims
 * {"sub": user} and extra members from extra_claims (JSON text or NULL).
 * NULL only when out of memory. */
struct pav_session *fx_open(struct fake_conn *fc, const char *user,
			    const char *extra_claims);
/* The socket closed (pav_session_closed). */
void fx_close(struct pav_session *s);

/* Subscribes with a deferred reply for ("subscribe", id); params is JSON
 * text or NULL. */
void fx_subscribe(struct pav_session *s, const char *channel,
		  const char *params, const char *id);
/* Publishes {"n": n} to channel the way the host table does (history by
 * the namespace); answers the offset it got. */
uint64_t fx_publish(const char *channel, int n);

/* An HS256 token signed with the vhost's key: claims JSON text with
 * "exp" added (FX_T0 + 1 h) unless given.  malloc'd. */
char *fx_token(const char *claims);

/* Frame i of fc is {"type":"ack","id":id,"payload":{"for":type,...}};
 * returns its payload (a new reference). */
json_object *fx_ack_is(const struct fake_conn *fc, size_t i, const char *id,
		       const char *type);
/* Frame i of fc is an error: code, message (when not NULL) and id (or
 * none when NULL). */
void fx_error_is(const struct fake_conn *fc, size_t i, int code,
		 const char *message, const char *id);

/* Frame i of fc: member `key` of its payload as text ("" when absent). */
const char *fx_payload_str(const struct fake_conn *fc, size_t i,
			   const char *key);
/* Frame i's top-level member as json (a new reference) or NULL. */
json_object *fx_member(const struct fake_conn *fc, size_t i, const char *key);

/* Registers a handler for `type` as instance A would (the vhost's own
 * registration, vhost.c). 0 or its error. */
int fx_register(const char *type, pav_handler_fn fn);
#endif
