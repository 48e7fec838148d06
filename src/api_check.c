/*
 * api_check.c — the internal API's pure parts: the request body's JSON,
 * the spec's payload shapes, and the key comparison.  No I/O; unit-tested
 * (test/unit/test_api.c) and fuzzed (test/fuzz/fuzz_api_body.c).
 */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <openssl/crypto.h>

#include "channel.h"
#include "clock.h"
#include "json_check.h"

#define API_JSON_DEPTH 16

json_object *pav_api_parse_body(const char *buf, size_t len, const char **why)
{
	return pav_json_parse_object(buf, len, API_JSON_DEPTH,
				     "body must be one JSON object", why);
}

static int is_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	       json_object_is_type(v, json_type_string);
}

const char *pav_api_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int obj_of_strings(json_object *o, const char *key,
			  const char *const *fields, int required)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return !required;
	if (!json_object_is_type(v, json_type_object))
		return 0;
	for (; *fields; fields++)
		if (!is_str(v, *fields))
			return 0;
	return 1;
}

static const char *const sender_fields[] = {"id", "username", "profilePhoto",
					    NULL};
static const char *const reference_fields[] = {"type", "id", NULL};

/* The notification body a backend gives (id/createdAt/isRead optional). */
static int check_notification_body(json_object *p, const char **why)
{
	if (!is_str(p, "type") || !is_str(p, "content")) {
		*why = "notification needs string type and content";
		return -EINVAL;
	}
	if (!obj_of_strings(p, "sender", sender_fields, 0) ||
	    !obj_of_strings(p, "reference", reference_fields, 0)) {
		*why = "notification sender {id,username,profilePhoto} or "
		       "reference {type,id} malformed";
		return -EINVAL;
	}
	return 0;
}

int pav_api_check_notification(json_object *p, int complete,
				const char **why)
{
	json_object *v;

	if (check_notification_body(p, why))
		return -EINVAL;
	if (!complete)
		return 0;
	if (!is_str(p, "id") || !is_str(p, "createdAt") ||
	    !json_object_object_get_ex(p, "isRead", &v) ||
	    !json_object_is_type(v, json_type_boolean)) {
		*why = "notification needs id, createdAt and boolean isRead";
		return -EINVAL;
	}
	return 0;
}

static int check_status(json_object *p, const char **why)
{
	static const char *const ok[] = {"online", "offline", "busy", "away"};
	const char *u = pav_api_str(p, "userId"), *s = pav_api_str(p, "status");
	int64_t ms;

	if (!u || !pav_id_valid(u, strlen(u)) || !s) {
		*why = "status_update needs userId and status";
		return -EINVAL;
	}
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(s, ok[i]))
			goto status_ok;
	*why = "status must be one of online, offline, busy, away";
	return -EINVAL;
status_ok:
	if (!pav_api_str(p, "lastActive") || pav_parse_time(pav_api_str(p, "lastActive"), &ms)) {
		*why = "status_update needs an RFC 3339 lastActive";
		return -EINVAL;
	}
	return 0;
}

static int check_chat(json_object *p, const char *channel, const char **why)
{
	const char *room = pav_api_str(p, "roomId");
	json_object *a;

	if (!is_str(p, "id") || !room || !is_str(p, "content") ||
	    !is_str(p, "createdAt") ||
	    !obj_of_strings(p, "sender", sender_fields, 1)) {
		*why = "chat_message needs id, roomId, sender, content, "
		       "createdAt";
		return -EINVAL;
	}
	if (json_object_object_get_ex(p, "attachments", &a) &&
	    !json_object_is_type(a, json_type_array)) {
		*why = "attachments must be an array";
		return -EINVAL;
	}
	if (strncmp(channel, "chat:", 5) || strcmp(channel + 5, room)) {
		*why = "chat_message roomId must match the chat: channel";
		return -EINVAL;
	}
	return 0;
}

int pav_api_check_payload(const char *type, const char *channel,
			  json_object *payload, const char **why)
{
	if (!json_object_is_type(payload, json_type_object)) {
		*why = "payload must be an object";
		return -EINVAL;
	}
	if (!strcmp(type, "notification"))
		return pav_api_check_notification(payload, 1, why);
	if (!strcmp(type, "status_update"))
		return check_status(payload, why);
	if (!strcmp(type, "chat_message"))
		return check_chat(payload, channel, why);
	return 0;
}

int pav_api_key_ok(char *const *keys, size_t nkeys, const char *presented)
{
	size_t plen = strlen(presented);
	int ok = 0;

	/* every key is compared, each in constant time for its length */
	for (size_t i = 0; i < nkeys; i++) {
		size_t klen = strlen(keys[i]);

		if (klen == plen && !CRYPTO_memcmp(keys[i], presented, klen))
			ok = 1;
	}
	return ok;
}


int pav_api_check_path(const char *path, size_t len, const char **why)
{
	if (!len || path[0] != '/') {
		*why = "the path must start with /";
		return -EINVAL;
	}
	if (len > PAV_API_PATH_MAX) {
		*why = "path too long";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)path[i];

		if (ch < 0x20 || ch >= 0x7f) {
			*why = ch ? "the path holds a control or non-ASCII "
				    "character"
				  : "the path holds a NUL (%00)";
			return -EINVAL;
		}
	}
	return 0;
}

/* An address without port: family AF_INET (4 bytes) or AF_INET6 (16). */
struct bare_addr {
	int family;
	unsigned char a[16];
};

static size_t addr_len(const struct bare_addr *x)
{
	return x->family == AF_INET ? 4 : 16;
}

/* v4-mapped IPv6 addresses become the IPv4 address they carry. */
static void unmap(struct bare_addr *x)
{
	static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
						 0xff, 0xff};

	if (x->family == AF_INET6 && !memcmp(x->a, prefix, sizeof(prefix))) {
		memmove(x->a, x->a + 12, 4);
		x->family = AF_INET;
	}
}

/* The socket address's address and port; -EAFNOSUPPORT for others. */
static int from_sockaddr(const struct sockaddr *sa, struct bare_addr *x,
			 int *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		x->family = AF_INET;
		memcpy(x->a, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		x->family = AF_INET6;
		memcpy(x->a, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	unmap(x);
	return 0;
}

static int is_any(const struct bare_addr *x)
{
	static const unsigned char zero[16];

	return !memcmp(x->a, zero, addr_len(x));
}

int pav_api_listener_match(const struct sockaddr *local, const char *host,
			   int port)
{
	struct bare_addr got = {0}, want = {0};
	int got_port = -1;

	if (from_sockaddr(local, &got, &got_port) || got_port != port)
		return 0;
	if (inet_pton(AF_INET, host, want.a) == 1)
		want.family = AF_INET;
	else if (inet_pton(AF_INET6, host, want.a) == 1)
		want.family = AF_INET6;
	else
		return -ENOENT;
	unmap(&want);
	if (is_any(&want))
		return 1;
	return want.family == got.family &&
	       !memcmp(want.a, got.a, addr_len(&want));
}
