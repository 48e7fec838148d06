/* channel.c — channel names. */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pav_limits.h"

#define USER_PREFIX "user:"

static const char *const shared[PAV_CHANNEL_SHARED_KINDS] = {
	[PAV_CHANNEL_ZONE] = "zone:",
	[PAV_CHANNEL_CHANNEL] = "channel:",
	[PAV_CHANNEL_CHAT] = "chat:",
};

int pav_channel_shared_kind(const char *channel)
{
	for (int k = 0; k < PAV_CHANNEL_SHARED_KINDS; k++)
		if (!strncmp(channel, shared[k], strlen(shared[k])))
			return k;
	return -1;
}

/* The length of in's kind prefix, or 0 when it has none. */
static size_t prefix_len(const char *in)
{
	int k = pav_channel_shared_kind(in);

	if (k >= 0)
		return strlen(shared[k]);
	return strncmp(in, USER_PREFIX, strlen(USER_PREFIX))
		       ? 0
		       : strlen(USER_PREFIX);
}

int pav_channel_parse(const char *user, const char *in, char *out,
		      size_t outlen)
{
	size_t pl;
	int n;

	if (!strcmp(in, "user"))
		return pav_channel_user(user, out, outlen);
	pl = prefix_len(in);
	if (!pl || !pav_id_valid(in + pl, strlen(in + pl)))
		return -EINVAL;
	n = snprintf(out, outlen, "%s", in);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int pav_channel_user(const char *user, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, USER_PREFIX "%s", user);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int pav_channel_is_shared(const char *channel)
{
	return pav_channel_shared_kind(channel) >= 0;
}
