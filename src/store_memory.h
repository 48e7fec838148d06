/*
 * store_memory.h — the embedded "memory" backend of struct pav_store.
 *
 * One process-wide instance, for a single gateway node.  Not thread-safe:
 * like every store call, use it from the event-loop thread only.
 *
 * What this backend adds to the contract in pavilion/store.h:
 *
 * - Every callback runs before the call returns; any callback may be NULL.
 *   Callbacks may call the store again.
 * - Users are keyed by (ns, user) as "ns\x1fuser"; neither may contain
 *   the byte 0x1f (user ids are [A-Za-z0-9_-], namespaces come from the
 *   configuration).
 * - conn_add of an id the user already has does not count it twice;
 *   conn_remove of an id the user does not have answers the current count.
 * - presence_set takes only "online", "offline", "busy" and "away"
 *   (anything else: -EINVAL); it records last_active_ms as given, 0
 *   included.  An unchanged status answers -EALREADY and changes nothing,
 *   not even last_active_ms.  presence_get of an unknown user answers
 *   "offline", last_active_ms 0, 0 connections.
 * - inbox_add needs a json object (else -EINVAL) and stores a deep copy;
 *   "id", "createdAt" and "isRead" given by the caller are overwritten.
 *   Ids are "n" + 16 lowercase hex digits of a getrandom() value, and are
 *   never repeated within one user's inbox (all lookups are per user, so
 *   that is the uniqueness that matters; across users a repeat has the
 *   odds of a 64-bit collision).  An inbox holds at most inbox_size
 *   notifications; adding to a full one evicts its oldest.
 * - inbox_list: since_ms is exclusive (createdAt > since_ms).  With a
 *   limit, the NEWEST `limit` matching notifications are answered, still
 *   ordered oldest first: a client catching up after a long absence wants
 *   what is recent, and a "last N" view is the common inbox query.
 * - Lists given to callbacks hold copies: a callback may modify or keep
 *   (json_object_get) their elements without affecting the store.
 * - inbox_mark_read of an already read notification answers 0.
 * - Before pav_store_memory_create (or after destroy) every call answers
 *   -EIO.
 */
#ifndef PAV_STORE_MEMORY_H
#define PAV_STORE_MEMORY_H

#include <stddef.h>

#include <pavilion/store.h>

/*
 * Creates the process-wide instance.  inbox_size: notifications kept per
 * user (0: PAV_DEF_INBOX_SIZE).  Returns NULL when out of memory or when
 * an instance already exists.
 */
const struct pav_store *pav_store_memory_create(size_t inbox_size);
/* Frees every user, connection and notification.  Safe to call twice. */
void pav_store_memory_destroy(void);
/*
 * Users with a record (for tests and metrics).  A record is dropped once
 * it holds nothing presence_get would not answer for an unknown user.
 */
size_t pav_store_memory_users(void);

#endif
