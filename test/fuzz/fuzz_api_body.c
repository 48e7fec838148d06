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
 * - a payload check answers 0 or -EINVAL with a reason; an accepted
 *   chat_message names the room of its chat: channel, an accepted
 *   status_update has a status of the enum and an RFC 3339 lastActive, an
 *   accepted notification has string type, content, id and createdAt;
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
#include "clock.h"
#include "fuzz.h"
#include "ids.h"
#include "json_check.h"
#include "msg.h"
#include "pav_limits.h"
#include "pavilion/plugin.h"

#define API_DEPTH 16 /* API_JSON_DEPTH in src/api_check.c */

/* The plugins' descriptors, renamed at build time (test/fuzz/meson.build). */
extern const struct pav_plugin pav_fuzz_plugin_notification;
extern const struct pav_plugin pav_fuzz_plugin_chat;
extern const struct pav_plugin pav_fuzz_plugin_presence;

static void check_text(const char *text, size_t len)
{
	const char *why = NULL;

	CHECK(pav_json_check(text, len, API_DEPTH + 2, &why) == 0);
}

/* ---- a host table with what plugins need to register their checks ---- */

struct check {
	const char *type;
	pav_payload_check_fn fn;
	void *instance;
};

static struct check checks[8];
static size_t nchecks;
static void *creating;

static void host_log(enum pav_log_level level, const char *plugin,
		     const char *fmt, ...)
{
	(void)level;
	(void)plugin;
	(void)fmt;
}

static int reg_handler(pav_vhost *vh, const char *type, pav_handler_fn fn)
{
	(void)vh;
	(void)type;
	(void)fn;
	return 0;
}

static int reg_route(pav_vhost *vh, const char *method, const char *pattern,
		     pav_route_fn fn)
{
	(void)vh;
	(void)method;
	(void)pattern;
	(void)fn;
	return 0;
}

static int reg_check(pav_vhost *vh, const char *type, pav_payload_check_fn fn)
{
	(void)vh;
	CHECK(nchecks < sizeof(checks) / sizeof(checks[0]));
	checks[nchecks++] = (struct check){type, fn, NULL};
	return 0;
}

static const char *vhost_name(const pav_vhost *vh)
{
	(void)vh;
	return "fuzz";
}

static const struct pav_host host = {
	.version = PAV_HOST_VERSION,
	.size = sizeof(struct pav_host),
	.log = host_log,
	.register_handler = reg_handler,
	.register_route = reg_route,
	.register_payload_check = reg_check,
	.vhost_name = vhost_name,
	.id_valid = pav_id_valid,
	.user_channel = pav_channel_user,
	.now_ms = pav_now_ms,
	.format_time = pav_format_time,
	.parse_time = pav_parse_time,
};

/* Creates each plugin once; its checks get its instance. */
static void plugins_create(void)
{
	static const struct pav_plugin *const plugins[] = {
		&pav_fuzz_plugin_notification,
		&pav_fuzz_plugin_chat,
		&pav_fuzz_plugin_presence,
	};
	static int done;
	char err[256];

	if (done)
		return;
	done = 1;
	for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
		json_object *opts = json_object_new_object();
		size_t first = nchecks;

		CHECK(opts);
		CHECK(plugins[i]->vhost_create(&host, NULL, opts, &creating,
					       err, sizeof(err)) == 0);
		for (size_t k = first; k < nchecks; k++)
			checks[k].instance = creating;
		json_object_put(opts);
	}
	CHECK(nchecks == 3);
}

static void check_payload(const struct check *ck, const char *channel,
			  json_object *payload)
{
	static const char *const statuses[] = {"online", "offline", "busy",
					       "away"};
	const char *why = NULL;
	int64_t ms;
	int rc = ck->fn(ck->instance, channel, payload, &why), ok = 0;

	if (rc) {
		CHECK(rc == -EINVAL && why && why[0]);
		return;
	}
	if (!strcmp(ck->type, "chat_message")) {
		const char *room = pav_api_str(payload, "roomId");

		CHECK(room && !strncmp(channel, "chat:", 5) &&
		      !strcmp(channel + 5, room));
		CHECK(pav_api_str(payload, "id") &&
		      pav_api_str(payload, "content"));
	}
	if (!strcmp(ck->type, "status_update")) {
		const char *s = pav_api_str(payload, "status");

		for (size_t i = 0; s && i < 4; i++)
			ok |= !strcmp(s, statuses[i]);
		CHECK(ok);
		CHECK(pav_parse_time(pav_api_str(payload, "lastActive"),
				     &ms) == 0);
	}
	if (!strcmp(ck->type, "notification"))
		CHECK(pav_api_str(payload, "type") &&
		      pav_api_str(payload, "content") &&
		      pav_api_str(payload, "id") &&
		      pav_api_str(payload, "createdAt"));
}

static void publish(json_object *body)
{
	const char *channel = pav_api_str(body, "channel");
	const char *type = pav_api_str(body, "type");
	char canon[PAV_MAX_CHANNEL_LEN];
	json_object *payload;
	struct pav_msg *m;

	if (!json_object_object_get_ex(body, "payload", &payload))
		return;
	if (!channel || pav_channel_parse("", channel, canon, sizeof(canon)))
		strcpy(canon, "chat:r1");
	/* the gateway checks only objects (anything else is refused first);
	 * every check sees every payload, whatever its type says */
	if (!json_object_is_type(payload, json_type_object))
		return;
	for (size_t i = 0; i < nchecks; i++)
		check_payload(&checks[i], canon, payload);
	m = pav_msg_build(type && *type ? type : "x", NULL, canon, payload);
	CHECK(m);
	check_text((const char *)pav_msg_text(m), m->len);
	pav_msg_unref(m);
}

static void check_key(const uint8_t *data, size_t size)
{
	static const char k1[] = "fuzz-api-key",
			  k2[] = "{\"channel\":\"zone:z1\"}";
	static struct pav_api_key keys[2];
	static int digested;
	char *presented = malloc(size + 1);

	if (!digested) {
		CHECK(!pav_api_key_digest(k1, &keys[0]) &&
		      !pav_api_key_digest(k2, &keys[1]));
		digested = 1;
	}
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

	plugins_create();
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
