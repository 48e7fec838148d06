/* test_map.c — pav_map: the string-keyed hash map. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

#define MANY 100000

static int setup(void **state)
{
	*state = pav_map_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	pav_map_free(*state, NULL);
	return 0;
}

/* Distinct non-NULL values without allocating: addresses in one array. */
static char vals[MANY];

static void key_of(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "key-%zu", i);
}

static void get_of_absent_key_is_null(void **state)
{
	assert_null(pav_map_get(*state, "nope"));
	assert_null(pav_map_get(*state, ""));
}

static void put_then_get(void **state)
{
	struct pav_map *m = *state;

	assert_int_equal(pav_map_put(m, "a", &vals[1]), 0);
	assert_int_equal(pav_map_put(m, "b", &vals[2]), 0);
	assert_ptr_equal(pav_map_get(m, "a"), &vals[1]);
	assert_ptr_equal(pav_map_get(m, "b"), &vals[2]);
	assert_int_equal(pav_map_count(m), 2);
}

static void empty_string_is_a_key(void **state)
{
	struct pav_map *m = *state;

	assert_int_equal(pav_map_put(m, "", &vals[3]), 0);
	assert_ptr_equal(pav_map_get(m, ""), &vals[3]);
	assert_ptr_equal(pav_map_del(m, ""), &vals[3]);
	assert_null(pav_map_get(m, ""));
}

static void put_replaces_value_without_counting(void **state)
{
	struct pav_map *m = *state;

	assert_int_equal(pav_map_put(m, "a", &vals[1]), 0);
	assert_int_equal(pav_map_put(m, "a", &vals[2]), 0);
	assert_ptr_equal(pav_map_get(m, "a"), &vals[2]);
	assert_int_equal(pav_map_count(m), 1);
}

static void del_returns_value_and_removes(void **state)
{
	struct pav_map *m = *state;

	assert_int_equal(pav_map_put(m, "a", &vals[1]), 0);
	assert_int_equal(pav_map_put(m, "b", &vals[2]), 0);
	assert_ptr_equal(pav_map_del(m, "a"), &vals[1]);
	assert_null(pav_map_get(m, "a"));
	assert_ptr_equal(pav_map_get(m, "b"), &vals[2]);
	assert_int_equal(pav_map_count(m), 1);
}

static void del_of_absent_key_is_null(void **state)
{
	struct pav_map *m = *state;

	assert_int_equal(pav_map_put(m, "a", &vals[1]), 0);
	assert_null(pav_map_del(m, "b"));
	assert_null(pav_map_del(*state, "a\x1f"));
	assert_int_equal(pav_map_count(m), 1);
}

static void keys_are_copied(void **state)
{
	struct pav_map *m = *state;
	char key[] = "mutable";

	assert_int_equal(pav_map_put(m, key, &vals[1]), 0);
	key[0] = 'M';
	assert_ptr_equal(pav_map_get(m, "mutable"), &vals[1]);
	assert_null(pav_map_get(m, key));
}

static void put_many(struct pav_map *m, size_t n)
{
	char key[32];

	for (size_t i = 0; i < n; i++) {
		key_of(i, key, sizeof(key));
		assert_int_equal(pav_map_put(m, key, &vals[i]), 0);
	}
}

static void many_keys_grow_and_stay_reachable(void **state)
{
	struct pav_map *m = *state;
	char key[32];

	put_many(m, MANY);
	assert_int_equal(pav_map_count(m), MANY);
	for (size_t i = 0; i < MANY; i++) {
		key_of(i, key, sizeof(key));
		assert_ptr_equal(pav_map_get(m, key), &vals[i]);
	}
	assert_null(pav_map_get(m, "key-100000"));
}

/* Deleting every other key exercises backward shift inside long probe
 * runs: the survivors must stay reachable, the deleted ones must not. */
static void deletion_keeps_other_keys_reachable(void **state)
{
	struct pav_map *m = *state;
	char key[32];

	put_many(m, MANY);
	for (size_t i = 0; i < MANY; i += 2) {
		key_of(i, key, sizeof(key));
		assert_ptr_equal(pav_map_del(m, key), &vals[i]);
	}
	assert_int_equal(pav_map_count(m), MANY / 2);
	for (size_t i = 0; i < MANY; i++) {
		key_of(i, key, sizeof(key));
		if (i % 2)
			assert_ptr_equal(pav_map_get(m, key), &vals[i]);
		else
			assert_null(pav_map_get(m, key));
	}
}

static void reinsertion_after_deletion(void **state)
{
	struct pav_map *m = *state;
	char key[32];

	put_many(m, MANY);
	for (size_t i = 0; i < MANY; i++) {
		key_of(i, key, sizeof(key));
		assert_non_null(pav_map_del(m, key));
	}
	assert_int_equal(pav_map_count(m), 0);
	put_many(m, MANY);
	assert_int_equal(pav_map_count(m), MANY);
	for (size_t i = 0; i < MANY; i++) {
		key_of(i, key, sizeof(key));
		assert_ptr_equal(pav_map_get(m, key), &vals[i]);
	}
}

/* Churn in a small map: the pattern of connections coming and going. */
static void churn_in_small_map(void **state)
{
	struct pav_map *m = *state;
	char key[32];

	for (size_t round = 0; round < 1000; round++) {
		for (size_t i = 0; i < 10; i++) {
			key_of(round * 10 + i, key, sizeof(key));
			assert_int_equal(pav_map_put(m, key, &vals[i]), 0);
		}
		for (size_t i = 0; i < 10; i++) {
			key_of(round * 10 + i, key, sizeof(key));
			assert_ptr_equal(pav_map_del(m, key), &vals[i]);
		}
	}
	assert_int_equal(pav_map_count(m), 0);
}

/* Random put/del/get against a plain array model.  A small key space
 * keeps the table small, so probe runs wrap around the end of the slot
 * array and backward shift crosses it. */
static void random_ops_match_a_model(void **state)
{
	enum { KEYS = 64, OPS = 200000 };
	struct pav_map *m = *state;
	void *model[KEYS] = {0};
	size_t live = 0;
	char key[32];

	srand(12345);
	for (size_t op = 0; op < OPS; op++) {
		size_t k = (size_t)rand() % KEYS;
		void *want = model[k];

		key_of(k, key, sizeof(key));
		assert_ptr_equal(pav_map_get(m, key), want);
		if (rand() % 2) {
			live += !want;
			model[k] = &vals[op % MANY];
			assert_int_equal(pav_map_put(m, key, model[k]), 0);
		} else {
			live -= !!want;
			model[k] = NULL;
			assert_ptr_equal(pav_map_del(m, key), want);
		}
		assert_int_equal(pav_map_count(m), live);
	}
}

static int count_entry(const char *key, void *val, void *arg)
{
	size_t *seen = arg;
	size_t i = (size_t)((char *)val - vals);
	char want[32];

	key_of(i, want, sizeof(want));
	assert_string_equal(key, want);
	seen[i]++;
	return 0;
}

static void each_visits_every_entry_once(void **state)
{
	struct pav_map *m = *state;
	size_t *seen = calloc(1000, sizeof(*seen));

	assert_non_null(seen);
	put_many(m, 1000);
	pav_map_each(m, count_entry, seen);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
}

static int stop_at_first(const char *key, void *val, void *arg)
{
	(void)key;
	(void)val;
	(*(int *)arg)++;
	return 1;
}

static void each_stops_when_fn_returns_nonzero(void **state)
{
	int calls = 0;

	put_many(*state, 100);
	pav_map_each(*state, stop_at_first, &calls);
	assert_int_equal(calls, 1);
}

static void each_on_empty_map_calls_nothing(void **state)
{
	int calls = 0;

	pav_map_each(*state, stop_at_first, &calls);
	assert_int_equal(calls, 0);
}

static void free_val_called_on_every_value(void **state)
{
	struct pav_map *m = *state;
	char key[32];

	for (size_t i = 0; i < 100; i++) {
		key_of(i, key, sizeof(key));
		assert_int_equal(pav_map_put(m, key, strdup(key)), 0);
	}
	/* LSan reports the strdup'd values if free_val is skipped. */
	pav_map_free(m, free);
	*state = pav_map_new();
}

static void free_of_null_map_is_harmless(void **state)
{
	(void)state;
	pav_map_free(NULL, free);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(get_of_absent_key_is_null),
		T(put_then_get),
		T(empty_string_is_a_key),
		T(put_replaces_value_without_counting),
		T(del_returns_value_and_removes),
		T(del_of_absent_key_is_null),
		T(keys_are_copied),
		T(many_keys_grow_and_stay_reachable),
		T(deletion_keeps_other_keys_reachable),
		T(reinsertion_after_deletion),
		T(churn_in_small_map),
		T(random_ops_match_a_model),
		T(each_visits_every_entry_once),
		T(each_stops_when_fn_returns_nonzero),
		T(each_on_empty_map_calls_nothing),
		T(free_val_called_on_every_value),
		cmocka_unit_test(free_of_null_map_is_harmless),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
