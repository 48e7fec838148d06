/*
 * fuzz_api_body.c — libFuzzer target for the internal API's request
 * bodies: each input is a POST body handed to pav_api_parse_body, exactly
 * as long as the input.  An accepted body then goes the way
 * POST /v1/publish takes it: its "channel" through pav_channel_parse, its
 * "payload" through pav_api_check_payload (for its own "type" and for each
 * checked type), and out through pav_msg_build.  Checked on the way:
 *
 * - a refused body has a reason; an accepted one is an object that passes
 *   the gateway's strict scan at the API depth (16), and so does json-c's
 *   serialization of it and every message built from it (what clients
 *   receive must be valid JSON);
 * - pav_api_check_payload answers 0 or -EINVAL with a reason; an accepted
 *   chat_message names the room of its chat: channel, an accepted
 *   status_update has a status of the enum;
 * - pav_api_key_ok on the input as a presented key agrees with strcmp.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "channel.h"
#include "gateway.h"
#include "json_check.h"
#include "msg.h"
#include "pav_limits.h"

#define API_DEPTH 16 /* API_JSON_DEPTH in src/api.c */

/* Defined by main.c in the binary; the routing in api.c needs it, this
 * target does not.  Weak, so a core library that defines it wins. */
__attribute__((weak)) struct pav_gateway *pav_gw;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)             \
	do {                    \
		if (!(cond))    \
			abort(); \
	} while (0)

static void check_text(const char *text, size_t len)
{
	const char *why = NULL;

	CHECK(pav_json_check(text, len, API_DEPTH + 2, &why) == 0);
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void check_payload(const char *type, const char *channel,
			  json_object *payload)
{
	static const char *const statuses[] = {"online", "offline", "busy",
					       "away"};
	const char *why = NULL;
	int rc = pav_api_check_payload(type, channel, payload, &why), ok = 0;

	if (rc) {
		CHECK(rc == -EINVAL && why && why[0]);
		return;
	}
	CHECK(json_object_is_type(payload, json_type_object));
	if (!strcmp(type, "chat_message")) {
		const char *room = str(payload, "roomId");

		CHECK(room && !strncmp(channel, "chat:", 5) &&
		      !strcmp(channel + 5, room));
	}
	if (!strcmp(type, "status_update")) {
		const char *s = str(payload, "status");

		for (size_t i = 0; s && i < 4; i++)
			ok |= !strcmp(s, statuses[i]);
		CHECK(ok);
	}
}

static void publish(json_object *body)
{
	static const char *const types[] = {"notification", "status_update",
					    "chat_message", "announcement"};
	const char *channel = str(body, "channel"), *type = str(body, "type");
	char canon[PAV_MAX_CHANNEL_LEN];
	json_object *payload;
	struct pav_msg *m;

	if (!json_object_object_get_ex(body, "payload", &payload))
		return;
	if (!channel || pav_channel_parse("", channel, canon, sizeof(canon)))
		strcpy(canon, "chat:r1");
	if (type)
		check_payload(type, canon, payload);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		check_payload(types[i], canon, payload);
	if (!json_object_is_type(payload, json_type_object))
		return;
	m = pav_msg_build(type && *type ? type : "x", NULL, canon, payload);
	CHECK(m);
	check_text((const char *)pav_msg_text(m), m->len);
	pav_msg_unref(m);
}

static void check_key(const uint8_t *data, size_t size)
{
	static char k1[] = "fuzz-api-key", k2[] = "{\"channel\":\"zone:z1\"}";
	static char *const keys[] = {k1, k2};
	char *presented = malloc(size + 1);

	if (!presented)
		return;
	memcpy(presented, data, size);
	presented[size] = '\0';
	CHECK(pav_api_key_ok(keys, 2, presented) ==
	      (!strcmp(presented, k1) || !strcmp(presented, k2)));
	free(presented);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL, *text;
	json_object *body;
	size_t len;

	check_key(data, size);
	body = pav_api_parse_body((const char *)data, size, &why);
	if (!body) {
		CHECK(why && why[0]);
		return 0;
	}
	CHECK(json_object_is_type(body, json_type_object));
	CHECK(pav_json_check((const char *)data, size, API_DEPTH, &why) == 0);
	text = json_object_to_json_string_length(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	CHECK(text);
	check_text(text, len);
	publish(body);
	json_object_put(body);
	return 0;
}
