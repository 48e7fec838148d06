/* channel.h — the channel grammar (DESIGN section 2, "Channels"). */
#ifndef PAV_CHANNEL_H
#define PAV_CHANNEL_H

#include <stddef.h>

#include "ids.h" /* pav_id_valid */

/*
 * Canonicalises a client's channel name for user `user`: "user" and
 * "user:<user>" become "user:<user>"; "user:<other>" stays as it is (the
 * caller denies it); "zone:", "channel:", "chat:" + id are kept.  Returns
 * 0 and writes out, or -EINVAL (not in the grammar) / -ENAMETOOLONG.
 */
int pav_channel_parse(const char *user, const char *in, char *out,
		      size_t outlen);

/* Writes "user:<user>", the one spelling of a user's own channel.  0 or
 * -ENAMETOOLONG. */
int pav_channel_user(const char *user, char *out, size_t outlen);

/* The shared kinds (many users meet there: presence and history apply),
 * by their prefixes "zone:", "channel:", "chat:". */
enum pav_channel_kind {
	PAV_CHANNEL_ZONE,
	PAV_CHANNEL_CHANNEL,
	PAV_CHANNEL_CHAT,
	PAV_CHANNEL_SHARED_KINDS,
};

/* The shared kind of channel, or -1 ("user:..." or not a channel). */
int pav_channel_shared_kind(const char *channel);

/* Is channel one of zone:/channel:/chat: (the presence-sharing kinds)? */
int pav_channel_is_shared(const char *channel);

#endif
