/*
 * wheel.h — a timing wheel with one-second slots for per-connection
 * deadlines (heartbeat, idle, token expiry).  Adding, moving and removing a
 * timer are O(1); one tick a second visits only the slot that is due.
 * (lws 4.1 keeps timers in one sorted list: inserting is O(timers), which
 * made handshakes slow down as connections grew.)
 */
#ifndef PAV_WHEEL_H
#define PAV_WHEEL_H

#include <stdint.h>

#define PAV_WHEEL_SLOTS 256 /* seconds; later deadlines wait a lap */
/* The tick that advances a wheel comes this long past each whole second
 * (server.c aims it there). */
#define PAV_WHEEL_TICK_PAST_MS 5

struct pav_wheel_node {
	struct pav_wheel_node *prev, *next; /* NULL when not on the wheel */
	int64_t due_s;
};

struct pav_wheel {
	struct pav_wheel_node slots[PAV_WHEEL_SLOTS]; /* list heads */
	int64_t now_s;                                /* last second run */
};

void pav_wheel_init(struct pav_wheel *w, int64_t now_s);
/* (Re)schedules n for second due_s; a due_s not after now_s means the
 * next tick. */
void pav_wheel_add(struct pav_wheel *w, struct pav_wheel_node *n,
		   int64_t due_s);
/* The second whose tick is the first to come at or after the time ms. */
static inline int64_t pav_wheel_second_of(int64_t ms)
{
	return (ms - PAV_WHEEL_TICK_PAST_MS + 999) / 1000;
}
/* Takes n off the wheel (nothing if it is not on it). */
void pav_wheel_del(struct pav_wheel_node *n);
/* Runs every second up to now_s: fn gets each node that is due, already
 * off the wheel (fn may add it again).  Returns how many ran. */
int pav_wheel_advance(struct pav_wheel *w, int64_t now_s,
		      void (*fn)(struct pav_wheel_node *n, void *arg),
		      void *arg);

#endif
