/*
 * fuzz_config.c — libFuzzer target for the configuration loader: each input
 * is written to a main config file and handed to pav_config_load, then the
 * result is freed (leaks and use-after-free show under ASan).
 *
 * The files live in a private directory made once at start.  It holds the
 * files a seed may name by relative path (jwt.key, api.keys, cert.pem,
 * key.pem) and a conf.d/ with one drop-in, so seeds get past the file checks
 * and through the include merge.  The main file is "gateway.conf" (not
 * *.json) so that "include": "." finds no drop-in but itself.
 *
 * Build (clang; from the repository root, with a configured build/ for
 * pav_build.h):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Isrc -Iinclude -Ibuild $(pkg-config --cflags json-c) \
 *     test/fuzz/fuzz_config.c src/config_file.c src/config_schema.c \
 *     src/config_walk.c src/json_check.c -o fuzz_config \
 *     $(pkg-config --libs json-c)
 * Run:
 *   ./fuzz_config -max_len=4096 test/fuzz/corpus/config
 *   (a copy of the corpus directory, if new inputs should not land in git)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/fuzz_config.XXXXXX";
static char main_file[sizeof(dir) + 16];

static const char *const files[][2] = {
	{"jwt.key", "fuzz-secret\n"},
	{"api.keys", "fuzz-api-key\n"},
	{"cert.pem", "-----BEGIN CERTIFICATE-----\n"},
	{"key.pem", "-----BEGIN PRIVATE KEY-----\n"},
	{"conf.d/10-extra.json",
	 "{\"vhosts\": [{\"name\": \"extra\", \"listen\": \"127.0.0.1:9002\","
	 " \"auth\": {\"algorithms\": [\"HS256\"], \"key_file\": \"jwt.key\"}}],"
	 " \"log\": {\"format\": \"text\"}}\n"},
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static void put(const char *name, const void *data, size_t len)
{
	char path[sizeof(dir) + 64];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	if (!fp || fwrite(data, 1, len, fp) != len || fclose(fp)) {
		perror("fuzz_config: write");
		abort();
	}
}

static void cleanup(void)
{
	char path[sizeof(dir) + 64];

	for (size_t i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i][0]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	rmdir(path);
	unlink(main_file);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[sizeof(dir) + 64];

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir)) {
		perror("fuzz_config: mkdtemp");
		abort();
	}
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	if (mkdir(path, 0700)) {
		perror("fuzz_config: mkdir");
		abort();
	}
	for (size_t i = 0; i < NFILES; i++)
		put(files[i][0], files[i][1], strlen(files[i][1]));
	snprintf(main_file, sizeof(main_file), "%s/gateway.conf", dir);
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pav_config cfg;
	char err[512];

	put("gateway.conf", data, size);
	if (pav_config_load(main_file, &cfg, err, sizeof(err)) == 0 &&
	    (cfg.nvhosts == 0 || !cfg.vhosts[0].name)) {
		/* a loaded config always has a named vhost */
		abort();
	}
	pav_config_free(&cfg);
	return 0;
}
