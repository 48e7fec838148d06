/* test_revkeep.c — the token revocations a node keeps (src/revkeep.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "revkeep.h"

static int held(struct pav_revkeep *k, const char *user, int64_t now,
		int64_t *at)
{
	int64_t dummy;

	return pav_revkeep_get(k, "default", user, now, at ? at : &dummy);
}

static void a_record_is_answered_until_its_end(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(10);
	int64_t at = 0;

	(void)state;
	assert_int_equal(
		pav_revkeep_put(k, "default", "alice", 5000, 2000, 1000), 0);
	assert_true(held(k, "alice", 1000, &at));
	assert_int_equal(at, 5000);
	assert_true(held(k, "alice", 1999, NULL));
	assert_false(held(k, "alice", 2000, NULL));
	assert_false(held(k, "bob", 1000, NULL));
	/* namespaces apart */
	assert_false(pav_revkeep_get(k, "other", "alice", 1000, &at));
	pav_revkeep_free(k);
}

static void a_second_put_replaces_time_and_end(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(10);
	int64_t at = 0;

	(void)state;
	pav_revkeep_put(k, "default", "alice", 5000, 90000, 1000);
	assert_int_equal(
		pav_revkeep_put(k, "default", "alice", 7000, 3000, 1000), 0);
	assert_int_equal(pav_revkeep_count(k), 1);
	assert_true(held(k, "alice", 2999, &at));
	assert_int_equal(at, 7000);
	assert_false(held(k, "alice", 3000, NULL));
	/* one that is already over takes the old one away */
	pav_revkeep_put(k, "default", "bob", 1, 9000, 1000);
	assert_int_equal(pav_revkeep_put(k, "default", "bob", 2, 500, 1000), 0);
	assert_false(held(k, "bob", 1000, NULL));
	assert_int_equal(pav_revkeep_count(k), 1);
	pav_revkeep_free(k);
}

static void expire_drops_only_the_ended(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(100);
	char name[16];

	(void)state;
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		/* ends in a scrambled order */
		pav_revkeep_put(k, "default", name, i,
				1000 + (i * 37 % 50) * 10, 0);
	}
	assert_int_equal(pav_revkeep_count(k), 50);
	pav_revkeep_expire(k, 1250);
	/* ends 1000..1250 (26 of them) are gone */
	assert_int_equal(pav_revkeep_count(k), 24);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(held(k, name, 1250, NULL),
				 1000 + (i * 37 % 50) * 10 > 1250);
	}
	pav_revkeep_expire(k, 5000);
	assert_int_equal(pav_revkeep_count(k), 0);
	pav_revkeep_free(k);
}

static void a_full_set_drops_the_record_that_ends_first(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(3);

	(void)state;
	assert_int_equal(pav_revkeep_put(k, "default", "a", 1, 5000, 0), 0);
	assert_int_equal(pav_revkeep_put(k, "default", "b", 1, 2000, 0), 0);
	assert_int_equal(pav_revkeep_put(k, "default", "c", 1, 9000, 0), 0);
	/* full: "b" ends first and makes room */
	assert_int_equal(pav_revkeep_put(k, "default", "d", 1, 7000, 0), 1);
	assert_int_equal(pav_revkeep_count(k), 3);
	assert_false(held(k, "b", 0, NULL));
	assert_true(held(k, "a", 0, NULL) && held(k, "c", 0, NULL) &&
		    held(k, "d", 0, NULL));
	/* a new one that would end first is the one not kept */
	assert_int_equal(pav_revkeep_put(k, "default", "e", 1, 3000, 0), 1);
	assert_false(held(k, "e", 0, NULL));
	assert_true(held(k, "a", 0, NULL));
	assert_int_equal(pav_revkeep_dropped(k), 2);
	/* a user already held is replaced, nothing dropped */
	assert_int_equal(pav_revkeep_put(k, "default", "a", 2, 8000, 0), 0);
	assert_int_equal(pav_revkeep_dropped(k), 2);
	/* an ended record makes room without a drop */
	assert_int_equal(pav_revkeep_put(k, "default", "f", 1, 9500, 7500), 0);
	assert_int_equal(pav_revkeep_count(k), 3);
	assert_false(held(k, "d", 7500, NULL));
	pav_revkeep_free(k);
}

static void the_bound_holds_under_many_puts(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(64);
	char name[16];
	int64_t lowest_kept = INT64_MAX;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		pav_revkeep_put(k, "default", name, i,
				10000 + (i * 7919 % 1000), 0);
		assert_true(pav_revkeep_count(k) <= 64);
	}
	assert_int_equal(pav_revkeep_count(k), 64);
	assert_int_equal(pav_revkeep_dropped(k), 1000 - 64);
	/* the 64 kept are the 64 that end last */
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		if (held(k, name, 0, NULL) &&
		    10000 + (i * 7919 % 1000) < lowest_kept)
			lowest_kept = 10000 + (i * 7919 % 1000);
	}
	assert_int_equal(lowest_kept, 10000 + 1000 - 64);
	pav_revkeep_free(k);
}

struct seen {
	int n;
	char names[8][32];
	int64_t at[8], end[8];
};

static int collect(const char *ns, const char *user, int64_t at, int64_t end,
		   void *arg)
{
	struct seen *s = arg;

	snprintf(s->names[s->n], sizeof(s->names[0]), "%s/%s", ns, user);
	s->at[s->n] = at;
	s->end[s->n] = end;
	s->n++;
	return 0;
}

static void each_gives_names_times_and_skips_the_ended(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(8);
	struct seen s = {0};

	(void)state;
	pav_revkeep_put(k, "ns1", "alice", 11, 5000, 0);
	pav_revkeep_put(k, "ns2", "bob", 22, 1000, 0);
	pav_revkeep_each(k, 2000, collect, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.names[0], "ns1/alice");
	assert_int_equal(s.at[0], 11);
	assert_int_equal(s.end[0], 5000);
	pav_revkeep_free(k);
}

static void a_name_with_the_separator_is_refused(void **state)
{
	struct pav_revkeep *k = pav_revkeep_new(8);
	int64_t at;

	(void)state;
	/* 'z' is no hex digit: the escape is 0x1f */
	assert_int_equal(pav_revkeep_put(k, "a\x1fz", "c", 1, 100, 0), -EINVAL);
	assert_int_equal(pav_revkeep_put(k, "a", "b\x1fz", 1, 100, 0), -EINVAL);
	assert_false(pav_revkeep_get(k, "a", "b\x1fz", 0, &at));
	assert_int_equal(pav_revkeep_count(k), 0);
	pav_revkeep_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_record_is_answered_until_its_end),
		cmocka_unit_test(a_second_put_replaces_time_and_end),
		cmocka_unit_test(expire_drops_only_the_ended),
		cmocka_unit_test(a_full_set_drops_the_record_that_ends_first),
		cmocka_unit_test(the_bound_holds_under_many_puts),
		cmocka_unit_test(each_gives_names_times_and_skips_the_ended),
		cmocka_unit_test(a_name_with_the_separator_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
