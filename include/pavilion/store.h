/*
 * pavilion/store.h — the session store shared by the core and all plugins.
 *
 * One interface, several backends: "memory" (embedded, one node) and
 * "redis" (several nodes).  Every operation that a network store answers
 * later takes a completion callback; the caller must not assume the
 * callback has run when the call returns (the memory backend happens to
 * call it before returning, a network backend does not).  Callbacks run on
 * the event-loop thread.  Data passed to a callback is borrowed for the
 * duration of the call.
 *
 * All state is separated by namespace (`ns`, the vhost's "namespace"):
 * the same user id in two namespaces is two users.
 *
 * Included by pavilion/plugin.h; plugins reach the store through
 * pav_host.store.
 */
#ifndef PAVILION_STORE_H
#define PAVILION_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Presence of one user. status: "online", "offline", "busy", "away". */
struct pav_presence {
	const char *user;
	const char *status;
	int64_t last_active_ms; /* 0 when never seen */
	int connections;        /* open connections, all nodes */
};

/* Completion of a store call.  err is 0 or -errno (-ENOENT: no such item;
 * -EIO: the backend is unreachable). */
typedef void (*pav_store_done_fn)(void *arg, int err);
/* count: a connection count after the change. */
typedef void (*pav_store_count_fn)(void *arg, int err, int count);
typedef void (*pav_store_presence_fn)(void *arg, int err,
				      const struct pav_presence *p);
/* A notification list: a json array of notification objects, oldest
 * first; borrowed. */
typedef void (*pav_store_list_fn)(void *arg, int err, json_object *list);
/* A new notification's id (borrowed). */
typedef void (*pav_store_id_fn)(void *arg, int err, const char *id);

struct pav_store {
	uint32_t version; /* 1 */
	const char *backend; /* "memory", "redis" */

	/* Connections per user.  conn_add's count is the user's connections
	 * after adding (1 = first), conn_remove's after removing (0 = last). */
	void (*conn_add)(const char *ns, const char *user, uint64_t conn_id,
			 pav_store_count_fn cb, void *arg);
	void (*conn_remove)(const char *ns, const char *user, uint64_t conn_id,
			    pav_store_count_fn cb, void *arg);

	/* Presence.  presence_set records status and last-active time; cb's
	 * err is -EALREADY when the status was already that (callers use it
	 * to avoid re-announcing an unchanged status). */
	void (*presence_set)(const char *ns, const char *user,
			     const char *status, int64_t last_active_ms,
			     pav_store_done_fn cb, void *arg);
	void (*presence_get)(const char *ns, const char *user,
			     pav_store_presence_fn cb, void *arg);

	/*
	 * Notification inbox, bounded per user (oldest evicted).
	 * inbox_add takes a notification object (borrowed) without "id",
	 * "createdAt" and "isRead"; it stores a copy with those filled and
	 * answers the new id.
	 */
	void (*inbox_add)(const char *ns, const char *user,
			  json_object *notification, pav_store_id_fn cb,
			  void *arg);
	/* Fetches one stored notification by id (-ENOENT if not in this
	 * user's inbox). The list callback gets a one-element array. */
	void (*inbox_get)(const char *ns, const char *user, const char *id,
			  pav_store_list_fn cb, void *arg);
	/* Notifications created after since_ms (0: all), unread only when
	 * unread_only, at most limit (0: no limit), oldest first. */
	void (*inbox_list)(const char *ns, const char *user, int64_t since_ms,
			   int unread_only, size_t limit, pav_store_list_fn cb,
			   void *arg);
	/* -ENOENT when the id is not in this user's inbox. */
	void (*inbox_mark_read)(const char *ns, const char *user,
				const char *id, pav_store_done_fn cb,
				void *arg);

	/* Is the backend reachable (for /readyz)?  Answers now. */
	int (*ready)(void);
};

#ifdef __cplusplus
}
#endif

#endif /* PAVILION_STORE_H */
