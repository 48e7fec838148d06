/*
 * fuzz_jwt.c — libFuzzer target for the JWT front end: pav_auth_verify on
 * arbitrary bytes, against an HS256/HS512 vhost (issuer and audience set)
 * and an RS256/RS512 vhost, at a fixed time.  An input that looks like
 * "header.claims" (one dot) is also signed with the HS secret and verified
 * again, so that mutated claims get past the signature to the claim checks.
 *
 * Build with meson (test/fuzz/meson.build lists it):
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Dsanitize=true
 *   ninja -C build-fuzz test/fuzz/fuzz_jwt
 * or by hand (clang; from the repository root, with a configured build/
 * for pav_build.h):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Isrc -Iinclude -Ibuild $(pkg-config --cflags json-c) \
 *     test/fuzz/fuzz_jwt.c src/auth.c -o fuzz_jwt \
 *     $(pkg-config --libs libjwt json-c openssl) -lm
 * Run:
 *   ./fuzz_jwt -max_len=9000 test/fuzz/corpus/jwt   (or a copy of it)
 *
 * The keys below are for fuzzing only.  The corpus' HS tokens are signed
 * with FUZZ_SECRET; its RS tokens with a throwaway RSA key whose public
 * half is FUZZ_RSA_PUB (the private half was not kept; any token signed
 * with FUZZ_SECRET makes a new valid seed).  Signed seeds let the fuzzer
 * reach the claim checks behind the signature.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

#define FUZZ_NOW 1800000000
#define FUZZ_SECRET "fuzz-secret-0123456789abcdef0123"
#define FUZZ_RSA_PUB                                                       \
	"-----BEGIN PUBLIC KEY-----\n"                                     \
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmveJR7M6QHv2GbE6oeYH\n" \
	"367W+0lSjg5a2Jv42eOWk2jk84iZqLbm1XD/uSBh50dpG786uBYBvWb3+oxiQTJ6\n" \
	"J0IJh9EcuNctBBKSbpV53aPQKI0LqmJFhr6BW2v3U1PvrhuWde4A1TUd3qD+TDbL\n" \
	"IC7FGDzJ0X9cQ5oJKf3H+xg6235Vi32k9QNbJ7RS81e7vqX+Z/rcnRwgb/c7b0ul\n" \
	"GPbUCTRwGKSb5FNlVmk8tPD8A7GfKuas9ZeCmHzJXOSYWTjffUAONjRcLXCm8Y8K\n" \
	"aVcvoT7EPb4/FF8Iai3B3+O+DflWXa/U52Sa6Kl3FU39P6D/2bJYd6WQp5oCKBxj\n" \
	"fQIDAQAB\n"                                                       \
	"-----END PUBLIC KEY-----\n"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pav_auth hs, rs;

/* pav_auth_load reads a file: write data to a temporary one. */
static void load(struct pav_auth *a, const char *const *algs, size_t n,
		 const char *data, const char *iss, const char *aud)
{
	char path[] = "/tmp/fuzz_jwt.XXXXXX";
	char err[256];
	int fd = mkstemp(path);
	size_t len = strlen(data);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd)) {
		perror("fuzz_jwt: key file");
		abort();
	}
	if (pav_auth_load(a, algs, n, path, iss, aud, 30, err, sizeof(err))) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const hs_algs[] = {"HS256", "HS512"};
	static const char *const rs_algs[] = {"RS256", "RS512"};

	(void)argc;
	(void)argv;
	load(&hs, hs_algs, 2, FUZZ_SECRET "\n", "pavilion", "gateway");
	load(&rs, rs_algs, 2, FUZZ_RSA_PUB, NULL, NULL);
	return 0;
}

/* The contract every answer must keep, whatever the input. */
static void verify(const struct pav_auth *a, const char *tok)
{
	json_object *claims = (json_object *)1, *sub;
	const char *why = "unset";
	int rc = pav_auth_verify(a, tok, FUZZ_NOW, &claims, &why);

	if (rc == 0) {
		if (why || !json_object_object_get_ex(claims, "sub", &sub) ||
		    !json_object_is_type(sub, json_type_string))
			abort();
		json_object_put(claims);
	} else if (rc != -EACCES || !why || claims) {
		abort();
	}
}

/* tok is "header.claims" with room for a signature: append one. */
static void sign_hs256(char *tok)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t n = strlen(tok);
	int m;

	HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET),
	     (unsigned char *)tok, n, mac, &maclen);
	tok[n++] = '.';
	m = EVP_EncodeBlock((unsigned char *)tok + n, mac, (int)maclen);
	while (m > 0 && tok[n + m - 1] == '=')
		m--;
	tok[n + m] = '\0';
	for (char *p = tok + n; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = malloc(size + 2 + 4 * EVP_MAX_MD_SIZE / 3 + 4);
	char *dot;

	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	verify(&hs, tok);
	verify(&rs, tok);
	dot = strchr(tok, '.');
	if (dot && !strchr(dot + 1, '.')) {
		sign_hs256(tok);
		verify(&hs, tok);
	}
	free(tok);
	return 0;
}
