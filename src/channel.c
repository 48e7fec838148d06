/* channel.c — channel names. */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pav_limits.h"

static const char *const kinds[] = {"user:", "zone:", "channel:", "chat:"};

int pav_channel_parse(const char *user, const char *in, char *out,
		      size_t outlen)
{
	int n;

	if (!strcmp(in, "user"))
		in = NULL;
	for (size_t k = 0; in && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t pl = strlen(kinds[k]);

		if (strncmp(in, kinds[k], pl))
			continue;
		if (!pav_id_valid(in + pl, strlen(in + pl)))
			return -EINVAL;
		n = snprintf(out, outlen, "%s", in);
		return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
	}
	if (in)
		return -EINVAL;
	return pav_channel_user(user, out, outlen);
}

int pav_channel_user(const char *user, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "user:%s", user);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int pav_channel_is_shared(const char *channel)
{
	return !strncmp(channel, "zone:", 5) ||
	       !strncmp(channel, "channel:", 8) || !strncmp(channel, "chat:", 5);
}
