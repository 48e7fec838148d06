/* test_secret.c — secret files read whole (secret.c), and the API keys
 * file read through it (vhost.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "secret.h"
#include "vhost.h"

#define CAP 64

static char dir[64];

/* ------------------------------------------------------------ fixtures */

static const char *path(const char *name)
{
	static char buf[4][128];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static const char *write_file(const char *name, const char *data, size_t len)
{
	const char *p = path(name);
	FILE *f = fopen(p, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

/* n bytes of c */
static const char *write_run(const char *name, char c, size_t n)
{
	char *data = malloc(n ? n : 1);
	const char *p;

	assert_non_null(data);
	memset(data, c, n);
	p = write_file(name, data, n);
	free(data);
	return p;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_secret.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* What pav_secret_read() of file returns, with buf and len checked to
 * be empty on failure. */
static int read_err(const char *file)
{
	char *buf = (char *)1;
	size_t len = 1;
	int rc = pav_secret_read(file, CAP, &buf, &len);

	assert_int_not_equal(rc, 0);
	assert_null(buf);
	assert_int_equal(len, 0);
	return rc;
}

/* ------------------------------------------------------------ reading */

static void a_missing_file_is_its_errno(void **state)
{
	(void)state;
	assert_int_equal(read_err(path("nope")), -ENOENT);
	assert_string_equal(pav_secret_why(-ENOENT),
			    "No such file or directory");
}

/* 0 and *buf, or a failed test */
static char *read_ok(const char *file, size_t *len)
{
	char *buf;

	assert_int_equal(pav_secret_read(file, CAP, &buf, len), 0);
	assert_non_null(buf);
	assert_int_equal(buf[*len], '\0');
	return buf;
}

static void an_empty_file_is_an_empty_string(void **state)
{
	size_t len = 1;
	char *buf;

	(void)state;
	buf = read_ok(write_file("empty", "", 0), &len);
	assert_int_equal(len, 0);
	assert_non_null(buf);
	assert_int_equal(buf[0], '\0');
	pav_secret_free(buf, len);
}

static void a_file_of_the_cap_is_read_whole(void **state)
{
	size_t len;
	char *buf;

	(void)state;
	buf = read_ok(write_run("cap", 's', CAP), &len);
	assert_int_equal(len, CAP);
	for (size_t i = 0; i < CAP; i++)
		assert_int_equal(buf[i], 's');
	pav_secret_free(buf, len);
}

static void one_byte_past_the_cap_is_too_large(void **state)
{
	(void)state;
	assert_int_equal(read_err(write_run("big", 's', CAP + 1)), -EFBIG);
	assert_int_equal(read_err(write_run("bigger", 's', 100 * CAP)), -EFBIG);
}

static void a_directory_is_refused(void **state)
{
	(void)state;
	assert_int_equal(read_err(dir), -EISDIR);
	assert_string_equal(pav_secret_why(-EISDIR), "Is a directory");
}

/* opened without blocking for a writer, then refused */
static void a_fifo_is_not_a_regular_file(void **state)
{
	const char *p = path("fifo");

	(void)state;
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(read_err(p), -EINVAL);
	assert_string_equal(pav_secret_why(-EINVAL), "not a regular file");
}

/* the callers cut lines and newlines: the bytes come as they are, NULs
 * and line ends included */
static void the_bytes_come_as_they_are(void **state)
{
	size_t len;
	char *buf;

	(void)state;
	buf = read_ok(write_file("crlf", "pw\r\nx\n", 6), &len);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "pw\r\nx\n", 6);
	pav_secret_free(buf, len);
	buf = read_ok(write_file("nul", "a\0b", 3), &len);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "a\0b", 3);
	pav_secret_free(buf, len);
	pav_secret_free(NULL, 0); /* harmless */
}

/* ------------------------------------------------------------ API keys */

static int keys_load(const char *file, struct pav_api_key **keys, size_t *n,
		     char *err)
{
	*keys = NULL;
	*n = 0;
	err[0] = '\0';
	return pav_api_keys_load(file, keys, n, err, 256);
}

/* comments, blank lines, CRLF and spaces around keys, no final newline */
static void a_keys_file_takes_one_key_a_line(void **state)
{
	static const char text[] = "# keys\r\n\r\n  k1  \r\n\tk2\n#k3\nk4";
	const char *file = write_file("keys", text, sizeof(text) - 1);
	struct pav_api_key *keys;
	char err[256];
	size_t n;

	(void)state;
	assert_int_equal(keys_load(file, &keys, &n, err), 0);
	assert_int_equal(n, 3);
	assert_true(pav_api_key_ok(keys, n, "k1"));
	assert_true(pav_api_key_ok(keys, n, "k2"));
	assert_true(pav_api_key_ok(keys, n, "k4"));
	assert_false(pav_api_key_ok(keys, n, "k3"));
	assert_false(pav_api_key_ok(keys, n, "  k1  "));
	free(keys);
}

static void a_keys_file_refuses_what_it_always_did(void **state)
{
	const char *nul = write_file("k_nul", "k1\nk\0x\n", 7);
	const char *none = write_file("k_none", "# none\n\n", 8);
	struct pav_api_key *keys;
	char err[256];
	size_t n;

	(void)state;
	assert_int_equal(keys_load(nul, &keys, &n, err), -EINVAL);
	assert_string_equal(err, "line 2: holds a NUL byte");
	assert_int_equal(keys_load(none, &keys, &n, err), -EINVAL);
	assert_string_equal(err, "no API key in the file");
	assert_int_equal(keys_load(path("k_missing"), &keys, &n, err), -ENOENT);
	assert_string_equal(err, "cannot read: No such file or directory");
	assert_null(keys);
}

/* bounded: read whole, a keys file is refused past PAV_API_KEYS_FILE_MAX
 * (here comments, and one key at the end) */
static void a_keys_file_past_its_cap_is_refused(void **state)
{
	size_t size = PAV_API_KEYS_FILE_MAX + 1;
	struct pav_api_key *keys;
	char *text = malloc(size);
	const char *big, *cap;
	char err[256];
	size_t n;

	(void)state;
	assert_non_null(text);
	memset(text, '#', size);
	for (size_t i = 63; i < size; i += 64)
		text[i] = '\n';
	memcpy(text + size - 4, "\nk1\n", 4);
	big = write_file("k_big", text, size);
	assert_int_equal(keys_load(big, &keys, &n, err), -EFBIG);
	assert_string_equal(err, "larger than 1048576 bytes");
	/* one byte less (a comment byte) loads */
	cap = write_file("k_cap", text + 1, size - 1);
	assert_int_equal(keys_load(cap, &keys, &n, err), 0);
	assert_int_equal(n, 1);
	free(keys);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_missing_file_is_its_errno),
		cmocka_unit_test(an_empty_file_is_an_empty_string),
		cmocka_unit_test(a_file_of_the_cap_is_read_whole),
		cmocka_unit_test(one_byte_past_the_cap_is_too_large),
		cmocka_unit_test(a_directory_is_refused),
		cmocka_unit_test(a_fifo_is_not_a_regular_file),
		cmocka_unit_test(the_bytes_come_as_they_are),
		cmocka_unit_test(a_keys_file_takes_one_key_a_line),
		cmocka_unit_test(a_keys_file_refuses_what_it_always_did),
		cmocka_unit_test(a_keys_file_past_its_cap_is_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
