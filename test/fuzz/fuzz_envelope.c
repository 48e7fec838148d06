/*
 * fuzz_envelope.c — libFuzzer target for the client message envelope:
 * each input is one WebSocket frame handed to pav_envelope_parse (default
 * depth 8), exactly as long as the input (no NUL after it, so ASan sees any
 * read past the frame).  Beyond "no crash, no leak" it checks the contract
 * of envelope.h and that what the gateway would send back is valid JSON:
 *
 * - the answer is 0 or 1002 (with a reason); an accepted frame passes the
 *   gateway's strict scan, and a frame accepted at depth 8 is accepted at
 *   depth 64;
 * - an accepted envelope has a non-empty type, an id of 0-64 chars (no
 *   NUL inside), a payload that is an object;
 * - the tree json-c built, serialized again, passes the strict scan and
 *   parses back to the same type and id; pav_msg_build() of the type, id
 *   and payload (what an echo or a forward sends) passes the strict scan;
 * - a rejected frame with a valid "id" gets it echoed only when valid.
 *
 * Build and run: meson setup build-fuzz -Dfuzz=true -Dsanitize=true with
 * CC=clang, or test/fuzz/run.sh SECONDS (works on a copy of the corpus).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz.h"
#include "json_check.h"
#include "msg.h"
#include "pavilion/plugin.h"

#define DEPTH 8

static void check_text(const char *text, size_t len)
{
	const char *why = NULL;

	/* outgoing text is valid JSON; depth bounded by what came in */
	CHECK(pav_json_check(text, len, DEPTH + 2, &why) == 0);
}

static void check_accepted(const struct pav_envelope *env)
{
	struct pav_envelope again;
	const char *text, *why = NULL;
	struct pav_msg *m;
	size_t len;

	CHECK(env->root && json_object_is_type(env->root, json_type_object));
	CHECK(env->type && env->type[0]);
	CHECK(!env->id || strlen(env->id) <= PAV_ENVELOPE_ID_MAX);
	CHECK(!env->payload || json_object_is_type(env->payload,
						   json_type_object));

	text = json_object_to_json_string_length(
		env->root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	CHECK(text);
	check_text(text, len);
	CHECK(pav_envelope_parse(text, len, DEPTH, &again, &why) == 0);
	CHECK(!strcmp(again.type, env->type));
	CHECK(!env->id == !again.id && (!env->id || !strcmp(env->id, again.id)));
	pav_envelope_free(&again);

	m = pav_msg_build(env->type, env->id, "zone:z1", env->payload);
	CHECK(m);
	CHECK(m->len == strlen((const char *)pav_msg_text(m)));
	check_text((const char *)pav_msg_text(m), m->len);
	pav_msg_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *why = NULL;
	struct pav_envelope env, deep;
	int rc;

	rc = pav_envelope_parse(buf, size, DEPTH, &env, &why);
	if (rc == 0) {
		CHECK(pav_json_check(buf, size, DEPTH, &why) == 0);
		check_accepted(&env);
		CHECK(pav_envelope_parse(buf, size, 64, &deep, &why) == 0);
		pav_envelope_free(&deep);
	} else {
		CHECK(rc == PAV_ERR_FORMAT);
		CHECK(why && why[0]);
		CHECK(!env.id || strlen(env.id) <= PAV_ENVELOPE_ID_MAX);
	}
	pav_envelope_free(&env);
	CHECK(!env.root && !env.type && !env.id && !env.payload);
	return 0;
}
