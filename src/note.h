/*
 * note.h — a stored notification as the inbox calls of both store
 * backends answer it (state.h): the plugin's object with "id",
 * "createdAt" (RFC 3339, milliseconds) and "isRead".
 */
#ifndef PAV_NOTE_H
#define PAV_NOTE_H

#include <errno.h>
#include <stdint.h>

#include <json-c/json.h>

#include "clock.h"

/* obj[key] = val, replacing (and freeing) a member of that name; val is
 * freed when it cannot be added.  0, or -ENOMEM (also for val NULL). */
static inline int pav_note_set(json_object *obj, const char *key,
			       json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* Sets createdAt and isRead.  0 or -ENOMEM. */
static inline int pav_note_complete(json_object *note, int64_t created_ms,
				    int read)
{
	char when[PAV_TIME_LEN];

	pav_format_time(created_ms, when, sizeof(when));
	if (pav_note_set(note, "createdAt", json_object_new_string(when)) ||
	    pav_note_set(note, "isRead", json_object_new_boolean(read)))
		return -ENOMEM;
	return 0;
}

#endif
