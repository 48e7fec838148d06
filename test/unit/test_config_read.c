/* test_config_read.c — a file read whole survives a read() interrupted by
 * a signal (config_file.c, secret.c).
 *
 * A regular file's read() is not interrupted on a local file system, so
 * read is wrapped (-Wl,--wrap=read): the wrapper fails the next calls with
 * EINTR as the test says, then hands on to the real read().
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

#include "config.h"
#include "secret.h"

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);

static int interrupts; /* reads still to fail with EINTR */
static int interrupted; /* how many did */

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	if (interrupts > 0) {
		interrupts--;
		interrupted++;
		errno = EINTR;
		return -1;
	}
	return __real_read(fd, buf, n);
}

static char dir[64];

static const char *put(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_config_read.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	put("jwt.key", "secret\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void a_config_read_interrupted_is_read_again(void **state)
{
	struct pav_config cfg;
	char err[512] = "";
	const char *path;
	int rc;

	(void)state;
	path = put("gateway.json",
		   "{\"vhosts\": [{\"name\": \"pub\", "
		   "\"listen\": \"127.0.0.1:8080\", \"auth\": "
		   "{\"algorithms\": [\"HS256\"], \"key_file\": \"jwt.key\"}}]}");
	interrupts = 2;
	interrupted = 0;
	rc = pav_config_load(path, &cfg, err, sizeof(err));
	interrupts = 0;
	if (rc)
		fail_msg("config refused: %s", err);
	assert_int_equal(interrupted, 2);
	assert_int_equal(cfg.nvhosts, 1);
	assert_string_equal(cfg.vhosts[0].name, "pub");
	pav_config_free(&cfg);
}

static void a_secret_read_interrupted_is_read_again(void **state)
{
	const char *path = put("password", "hunter2\n");
	size_t len = 0;
	char *buf;

	(void)state;
	interrupts = 1;
	interrupted = 0;
	assert_int_equal(pav_secret_read(path, 64, &buf, &len), 0);
	interrupts = 0;
	assert_int_equal(interrupted, 1);
	assert_int_equal(len, 8);
	assert_string_equal(buf, "hunter2\n");
	pav_secret_free(buf, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_config_read_interrupted_is_read_again),
		cmocka_unit_test(a_secret_read_interrupted_is_read_again),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
