/* test_config_walk.c — the configuration walker alone (config_walk.h), on a
 * made-up schema: each field type's checks, the JSON paths and the
 * "file: path: reason" form of its messages, required keys, resets and
 * finish rules.  The gateway's own schema is test_config.c's.
 *
 * JSON is written with ' for " to keep it readable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_walk.h"

/* ------------------------------------------------------------ the schema */

struct demo {
	char *name;    /* STR, no spaces */
	char *file;    /* FILE */
	int port;      /* INT 1..100, reset to 80 */
	size_t bytes;  /* SIZE 16..4096, reset to 1024 */
	int on;        /* BOOL */
	int color;     /* ENUM */
	char *mode;    /* ENUM_STR */
	char **tags;   /* STRV, at least one, no spaces */
	size_t ntags;
	char **dirs;   /* PATHV, may be empty */
	size_t ndirs;
	int low, high; /* "range": {"low", "high", "step": {"by"}} */
	int by;
	char *note;      /* "range.note", CUSTOM: the value */
	char *note_path; /* and the path it was given */
	int resets;
	int finishes;
};

static const char *no_spaces(const char *s)
{
	return strchr(s, ' ') ? "must have no spaces" : NULL;
}

static int keep_note(struct pav_cfg_ctx *c, json_object *v, void *base,
		     const char *path)
{
	struct demo *d = base;
	const char *s;
	int rc = pav_cfg_get_str(c, v, path, &s);

	if (!rc)
		rc = pav_cfg_replace_str(c, &d->note, s, path);
	if (!rc)
		rc = pav_cfg_replace_str(c, &d->note_path, path, path);
	return rc;
}

static int range_finish(struct pav_cfg_ctx *c, json_object *obj, void *base,
			const char *path)
{
	struct demo *d = base;
	char sub[PAV_CFG_KEYPATH];

	(void)obj;
	d->finishes++;
	if (d->high >= d->low)
		return 0;
	pav_cfg_join(sub, path, "high");
	return pav_cfg_fail(c, -EINVAL, sub, "must not be below low (%d)",
			    d->low);
}

static void demo_reset(void *base)
{
	struct demo *d = base;

	d->port = 80;
	d->bytes = 1024;
	d->resets++;
}

#define D(m) offsetof(struct demo, m)
static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const modes[] = {"fast", "safe", NULL};

static const struct pav_cfg_field step_fields[] = {
	PAV_CFG_INT("by", D(by), 1, 10),
	{0},
};
static const struct pav_cfg_section step_sec = {.fields = step_fields};

static const struct pav_cfg_field range_fields[] = {
	PAV_CFG_INT("low", D(low), 0, 1000),
	PAV_CFG_INT("high", D(high), 0, 1000),
	PAV_CFG_SECTION("step", step_sec),
	PAV_CFG_CUSTOM("note", keep_note),
	{0},
};
static const char *const range_required[] = {"low", NULL};
static const struct pav_cfg_section range_sec = {.fields = range_fields,
						 .required = range_required,
						 .finish = range_finish};

static const struct pav_cfg_field demo_fields[] = {
	PAV_CFG_STR("name", D(name), no_spaces),
	PAV_CFG_FILE("file", D(file)),
	PAV_CFG_INT("port", D(port), 1, 100),
	PAV_CFG_SIZE("bytes", D(bytes), 16, 4096),
	PAV_CFG_BOOL("on", D(on)),
	PAV_CFG_ENUM("color", D(color), colors),
	PAV_CFG_ENUM_STR("mode", D(mode), modes),
	PAV_CFG_STRV("tags", D(tags), D(ntags), 1, no_spaces),
	PAV_CFG_PATHV("dirs", D(dirs), D(ndirs), 0, NULL),
	PAV_CFG_SECTION("range", range_sec),
	{0},
};
static const struct pav_cfg_section demo_sec = {.fields = demo_fields,
						.reset = demo_reset};

/* ------------------------------------------------------------ fixture */

struct fx {
	char dir[64];
	char err[512];
	struct pav_cfg_ctx c;
	struct demo d;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[128];
	FILE *fp;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/pav-test-config-walk.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/present.txt", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fclose(fp), 0);
	f->c.file = "demo.json";
	f->c.dir = f->dir;
	f->c.is_main = 1;
	f->c.err = f->err;
	f->c.errlen = sizeof(f->err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[128];

	free(f->d.name);
	free(f->d.file);
	free(f->d.mode);
	pav_cfg_free_strv(f->d.tags, f->d.ntags);
	pav_cfg_free_strv(f->d.dirs, f->d.ndirs);
	free(f->d.note);
	free(f->d.note_path);
	snprintf(path, sizeof(path), "%s/present.txt", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static json_object *parse(const char *json)
{
	char buf[512];
	size_t i;
	json_object *obj;

	for (i = 0; json[i] && i + 1 < sizeof(buf); i++)
		buf[i] = json[i] == '\'' ? '"' : json[i];
	buf[i] = '\0';
	obj = json_tokener_parse(buf);
	if (!obj)
		fail_msg("test JSON does not parse: %s", buf);
	return obj;
}

static int walk_obj(struct fx *f, json_object *obj)
{
	int rc = pav_cfg_walk(&f->c, obj, &demo_sec, &f->d, "");

	json_object_put(obj);
	return rc;
}

static int walk(struct fx *f, const char *json)
{
	return walk_obj(f, parse(json));
}

static void accepted(struct fx *f, const char *json)
{
	if (walk(f, json))
		fail_msg("refused: %s", f->err);
}

static void refused(struct fx *f, const char *json, const char *want)
{
	f->err[0] = '\0';
	assert_int_equal(walk(f, json), -EINVAL);
	assert_string_equal(f->err, want);
}

/* ------------------------------------------------------------ keys, paths */

static void unknown_key_is_refused_as_file_path_reason(void **state)
{
	struct fx *f = *state;

	refused(f, "{'colour': 'red'}", "demo.json: colour: unknown key");
}

static void unknown_nested_key_names_its_json_path(void **state)
{
	struct fx *f = *state;

	refused(f, "{'range': {'low': 1, 'lo': 2}}",
		"demo.json: range.lo: unknown key");
}

static void nested_sections_build_the_json_path(void **state)
{
	struct fx *f = *state;

	refused(f, "{'range': {'low': 1, 'step': {'by': 0}}}",
		"demo.json: range.step.by: must be an integer from 1 to 10");
}

static void quoted_key_shows_control_characters_as_question_marks(
	void **state)
{
	struct fx *f = *state;

	refused(f, "{'a\\tb\\u007f': 1}", "demo.json: a?b?: unknown key");
}

static void quoted_key_is_cut_at_64_bytes(void **state)
{
	struct fx *f = *state;
	char json[256], want[256], key[101];

	memset(key, 'k', 100);
	key[100] = '\0';
	snprintf(json, sizeof(json), "{'%s': 1}", key);
	snprintf(want, sizeof(want), "demo.json: %.64s: unknown key", key);
	refused(f, json, want);
}

static void top_level_non_object_is_refused_without_a_path(void **state)
{
	struct fx *f = *state;

	refused(f, "[1]", "demo.json: must be an object");
}

static void nested_non_object_is_refused_at_its_key(void **state)
{
	struct fx *f = *state;

	refused(f, "{'range': 3}", "demo.json: range: must be an object");
}

static void walk_stops_at_the_first_error(void **state)
{
	struct fx *f = *state;

	refused(f, "{'port': 0, 'name': 'set'}",
		"demo.json: port: must be an integer from 1 to 100");
	assert_null(f->d.name);
}

/* ------------------------------------------------------------ strings */

static void string_of_another_type_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'name': 5}", "demo.json: name: must be a string");
}

static void empty_string_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'name': ''}", "demo.json: name: must not be empty");
}

static void string_with_a_nul_is_refused(void **state)
{
	struct fx *f = *state;
	json_object *obj = json_object_new_object();

	json_object_object_add(obj, "name",
			       json_object_new_string_len("a\0b", 3));
	assert_int_equal(walk_obj(f, obj), -EINVAL);
	assert_string_equal(f->err, "demo.json: name: must not contain a "
			    "NUL character");
}

static void string_check_gives_its_reason(void **state)
{
	struct fx *f = *state;

	refused(f, "{'name': 'a b'}", "demo.json: name: must have no spaces");
}

static void string_is_a_copy_that_a_redefinition_replaces(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'name': 'first'}");
	assert_string_equal(f->d.name, "first"); /* the JSON is freed */
	accepted(f, "{'name': 'second'}");
	assert_string_equal(f->d.name, "second");
}

/* ------------------------------------------------------------ files */

static void file_is_resolved_against_the_directory(void **state)
{
	struct fx *f = *state;
	char want[128];

	accepted(f, "{'file': 'present.txt'}");
	snprintf(want, sizeof(want), "%s/present.txt", f->dir);
	assert_string_equal(f->d.file, want);
}

static void absolute_file_path_is_kept(void **state)
{
	struct fx *f = *state;
	char json[256], want[128];

	snprintf(want, sizeof(want), "%s/present.txt", f->dir);
	snprintf(json, sizeof(json), "{'file': '%s'}", want);
	accepted(f, json);
	assert_string_equal(f->d.file, want);
}

static void missing_file_is_refused_with_its_resolved_path(void **state)
{
	struct fx *f = *state;
	char want[256];

	snprintf(want, sizeof(want), "demo.json: file: cannot read "
		 "%s/absent.txt: No such file or directory", f->dir);
	refused(f, "{'file': 'absent.txt'}", want);
}

static void directory_is_not_a_regular_file(void **state)
{
	struct fx *f = *state;
	char want[256];

	snprintf(want, sizeof(want),
		 "demo.json: file: %s/. is not a regular file", f->dir);
	refused(f, "{'file': '.'}", want);
}

/* ------------------------------------------------------------ numbers */

static void int_bounds_are_accepted(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'port': 1}");
	assert_int_equal(f->d.port, 1);
	accepted(f, "{'port': 100}");
	assert_int_equal(f->d.port, 100);
}

static void int_outside_its_range_is_refused(void **state)
{
	struct fx *f = *state;
	const char *want = "demo.json: port: must be an integer from 1 to 100";

	refused(f, "{'port': 0}", want);
	refused(f, "{'port': 101}", want);
	refused(f, "{'port': 4294967297}", want); /* not cut to int */
}

static void int_of_another_type_is_refused(void **state)
{
	struct fx *f = *state;
	const char *want = "demo.json: port: must be an integer from 1 to 100";

	refused(f, "{'port': '80'}", want);
	refused(f, "{'port': 80.0}", want);
	refused(f, "{'port': true}", want);
}

static void size_is_stored_as_size_t(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'bytes': 4096}");
	assert_int_equal(f->d.bytes, 4096);
}

static void size_outside_its_range_is_refused(void **state)
{
	struct fx *f = *state;
	const char *want =
		"demo.json: bytes: must be an integer from 16 to 4096";

	refused(f, "{'bytes': 15}", want);
	refused(f, "{'bytes': 4097}", want);
	refused(f, "{'bytes': -1}", want);
}

/* ------------------------------------------------------------ bools, enums */

static void bool_is_stored_as_0_or_1(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'on': true}");
	assert_int_equal(f->d.on, 1);
	accepted(f, "{'on': false}");
	assert_int_equal(f->d.on, 0);
}

static void bool_must_be_true_or_false(void **state)
{
	struct fx *f = *state;
	const char *want = "demo.json: on: must be true or false";

	refused(f, "{'on': 1}", want);
	refused(f, "{'on': 'true'}", want);
}

static void enum_stores_the_index_of_the_choice(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'color': 'blue'}");
	assert_int_equal(f->d.color, 2);
}

static void enum_refusal_lists_the_choices(void **state)
{
	struct fx *f = *state;
	const char *want =
		"demo.json: color: must be one of red, green, blue";

	refused(f, "{'color': 'pink'}", want);
	refused(f, "{'color': 'Red'}", want);
	refused(f, "{'color': 0}", want);
}

static void enum_str_keeps_a_copy_of_the_choice(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'mode': 'safe'}");
	assert_string_equal(f->d.mode, "safe");
	refused(f, "{'mode': 'slow'}",
		"demo.json: mode: must be one of fast, safe");
}

/* ------------------------------------------------------------ vectors */

static void string_vector_is_counted_and_null_terminated(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'tags': ['a', 'b']}");
	assert_int_equal(f->d.ntags, 2);
	assert_string_equal(f->d.tags[0], "a");
	assert_string_equal(f->d.tags[1], "b");
	assert_null(f->d.tags[2]);
}

static void string_vector_must_be_an_array(void **state)
{
	struct fx *f = *state;

	refused(f, "{'tags': 'a'}",
		"demo.json: tags: must be an array of strings");
}

static void string_vector_below_its_least_count_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'tags': []}", "demo.json: tags: must not be empty");
}

static void string_vector_item_errors_name_the_index(void **state)
{
	struct fx *f = *state;

	refused(f, "{'tags': ['a', 7]}",
		"demo.json: tags[1]: must be a string");
	refused(f, "{'tags': ['a', 'b', 'c d']}",
		"demo.json: tags[2]: must have no spaces");
}

static void refused_vector_leaves_the_earlier_one(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'tags': ['kept']}");
	refused(f, "{'tags': ['a', '']}",
		"demo.json: tags[1]: must not be empty");
	assert_int_equal(f->d.ntags, 1);
	assert_string_equal(f->d.tags[0], "kept");
}

static void path_vector_items_are_resolved(void **state)
{
	struct fx *f = *state;
	char want[128];

	accepted(f, "{'dirs': ['rel', '/abs']}");
	snprintf(want, sizeof(want), "%s/rel", f->dir);
	assert_int_equal(f->d.ndirs, 2);
	assert_string_equal(f->d.dirs[0], want);
	assert_string_equal(f->d.dirs[1], "/abs");
}

static void path_vector_with_least_0_may_be_empty(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'dirs': []}");
	assert_int_equal(f->d.ndirs, 0);
	assert_non_null(f->d.dirs);
	assert_null(f->d.dirs[0]);
}

/* ------------------------------------------------------------ sections */

static void required_key_is_named_with_its_path(void **state)
{
	struct fx *f = *state;

	refused(f, "{'range': {'high': 3}}", "demo.json: range.low: required");
	assert_int_equal(f->d.finishes, 0); /* rules need their keys */
}

static void reset_runs_before_each_definition(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'port': 7, 'bytes': 64}");
	assert_int_equal(f->d.port, 7); /* the reset came before the keys */
	accepted(f, "{'name': 'again'}");
	assert_int_equal(f->d.resets, 2);
	assert_int_equal(f->d.port, 80);
	assert_int_equal(f->d.bytes, 1024);
}

static void finish_rule_sees_every_key_of_its_object(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'range': {'high': 9, 'low': 2}}");
	assert_int_equal(f->d.finishes, 1);
	refused(f, "{'range': {'high': 1, 'low': 5}}",
		"demo.json: range.high: must not be below low (5)");
}

static void custom_field_gets_its_value_and_path(void **state)
{
	struct fx *f = *state;

	accepted(f, "{'range': {'low': 0, 'note': 'hi'}}");
	assert_string_equal(f->d.note, "hi");
	assert_string_equal(f->d.note_path, "range.note");
}

/* ------------------------------------------------------------ messages */

static void message_is_cut_to_the_buffer(void **state)
{
	struct fx *f = *state;

	f->c.errlen = 16;
	assert_int_equal(walk(f, "{'colour': 1}"), -EINVAL);
	assert_string_equal(f->err, "demo.json: colo");
}

static void without_a_buffer_the_code_is_still_returned(void **state)
{
	struct fx *f = *state;

	f->c.err = NULL;
	f->c.errlen = 0;
	assert_int_equal(walk(f, "{'colour': 1}"), -EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(unknown_key_is_refused_as_file_path_reason),
		T(unknown_nested_key_names_its_json_path),
		T(nested_sections_build_the_json_path),
		T(quoted_key_shows_control_characters_as_question_marks),
		T(quoted_key_is_cut_at_64_bytes),
		T(top_level_non_object_is_refused_without_a_path),
		T(nested_non_object_is_refused_at_its_key),
		T(walk_stops_at_the_first_error),
		T(string_of_another_type_is_refused),
		T(empty_string_is_refused),
		T(string_with_a_nul_is_refused),
		T(string_check_gives_its_reason),
		T(string_is_a_copy_that_a_redefinition_replaces),
		T(file_is_resolved_against_the_directory),
		T(absolute_file_path_is_kept),
		T(missing_file_is_refused_with_its_resolved_path),
		T(directory_is_not_a_regular_file),
		T(int_bounds_are_accepted),
		T(int_outside_its_range_is_refused),
		T(int_of_another_type_is_refused),
		T(size_is_stored_as_size_t),
		T(size_outside_its_range_is_refused),
		T(bool_is_stored_as_0_or_1),
		T(bool_must_be_true_or_false),
		T(enum_stores_the_index_of_the_choice),
		T(enum_refusal_lists_the_choices),
		T(enum_str_keeps_a_copy_of_the_choice),
		T(string_vector_is_counted_and_null_terminated),
		T(string_vector_must_be_an_array),
		T(string_vector_below_its_least_count_is_refused),
		T(string_vector_item_errors_name_the_index),
		T(refused_vector_leaves_the_earlier_one),
		T(path_vector_items_are_resolved),
		T(path_vector_with_least_0_may_be_empty),
		T(required_key_is_named_with_its_path),
		T(reset_runs_before_each_definition),
		T(finish_rule_sees_every_key_of_its_object),
		T(custom_field_gets_its_value_and_path),
		T(message_is_cut_to_the_buffer),
		T(without_a_buffer_the_code_is_still_returned),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
