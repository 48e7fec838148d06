/* test_auth.c — JWT verification, algorithm pinning and key loading. */
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

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

#define NOW 1800000000
#define LEEWAY 30
#define EXP_OK "1800003600"
#define SECRET "0123456789abcdef0123456789abcdef"
#define HDR_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define CLAIMS_OK "{\"sub\":\"alice\",\"exp\":" EXP_OK "}"

static char dir[64];

/* ------------------------------------------------------------ fixtures */

static const char *path(const char *name)
{
	static char buf[8][128];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *name, const char *data, size_t len)
{
	FILE *f = fopen(path(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *name, size_t *len)
{
	FILE *f = fopen(path(name), "rb");
	char *buf = calloc(1, 65536);

	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

/* A private key name.key and its public half name.pub. */
static int genkey(const char *name, const char *opts)
{
	char key[128], pub[128];

	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(pub, sizeof(pub), "%s/%s.pub", dir, name);
	if (sh("openssl genpkey %s -out %s 2>/dev/null", opts, key))
		return -1;
	return sh("openssl pkey -in %s -pubout -out %s 2>/dev/null", key, pub);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_auth.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (genkey("rsa", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048") ||
	    genkey("rsa2", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048") ||
	    genkey("rsa1024", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024") ||
	    genkey("p256", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256") ||
	    genkey("p384", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"))
		return -1;
	write_file("secret", SECRET "\n", strlen(SECRET) + 1);
	write_file("other", "another-secret-of-32-bytes-long!", 32);
	write_file("garbage", "this is no key\n", 15);
	write_file("empty", "", 0);
	write_file("nl", "\n", 1);
	write_file("crlf", "\r\n", 2);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return sh("rm -rf %s%s", dir, "");
}

/* ------------------------------------------------------------ helpers */

static char *b64url(const void *data, size_t len)
{
	char *out = malloc(len * 4 / 3 + 8);
	int n;

	assert_non_null(out);
	n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

/* header.claims.sig with sig given (base64url, may be ""). */
static char *mint_raw(const char *header, const char *claims, const char *sig)
{
	char *h = b64url(header, strlen(header));
	char *c = b64url(claims, strlen(claims));
	size_t n = strlen(h) + strlen(c) + strlen(sig) + 3;
	char *tok = malloc(n);

	assert_non_null(tok);
	snprintf(tok, n, "%s.%s.%s", h, c, sig);
	free(h);
	free(c);
	return tok;
}

/* Any header, HMAC-SHA256 over it with key: for headers libjwt won't make. */
static char *mint_hs(const char *header, const char *claims, const void *key,
		     size_t keylen)
{
	char *tok = mint_raw(header, claims, "");
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	char *sig, *out;

	tok[strlen(tok) - 1] = '\0'; /* drop the trailing dot */
	HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)tok, strlen(tok),
	     mac, &maclen);
	sig = b64url(mac, maclen);
	out = malloc(strlen(tok) + strlen(sig) + 2);
	assert_non_null(out);
	sprintf(out, "%s.%s", tok, sig);
	free(tok);
	free(sig);
	return out;
}

static char *mint_secret(const char *header, const char *claims)
{
	return mint_hs(header, claims, SECRET, strlen(SECRET));
}

/* Signed by libjwt with the key in file keyname (a secret or private PEM). */
static char *mint_jwt(jwt_alg_t alg, const char *claims, const char *keyname)
{
	size_t keylen;
	char *key = read_file(keyname, &keylen);
	jwt_t *jwt = NULL;
	char *tok;

	if (keylen && key[keylen - 1] == '\n' && alg <= JWT_ALG_HS512)
		keylen--;
	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
	assert_int_equal(jwt_set_alg(jwt, alg, (unsigned char *)key, (int)keylen),
			 0);
	tok = jwt_encode_str(jwt);
	assert_non_null(tok);
	jwt_free(jwt);
	free(key);
	return tok;
}

static void load_ok(struct pav_auth *a, const char *alg, const char *file,
		    const char *iss, const char *aud)
{
	const char *algs[] = {alg};
	char err[256] = "";
	int rc = pav_auth_load(a, algs, 1, path(file), iss, aud, LEEWAY, err,
			       sizeof(err));

	if (rc)
		fail_msg("load %s %s: %s", alg, file, err);
}

/* The reason pav_auth_verify gives (NULL: accepted); frees the token. */
static const char *why_of(const struct pav_auth *a, char *tok, int64_t now)
{
	json_object *claims = (json_object *)1;
	const char *why = "unset";
	int rc = pav_auth_verify(a, tok, now, &claims, &why);

	free(tok);
	if (rc == 0) {
		assert_null(why);
		assert_true(json_object_is_type(claims, json_type_object));
		json_object_put(claims);
		return NULL;
	}
	assert_int_equal(rc, -EACCES);
	assert_null(claims);
	assert_non_null(why);
	return why;
}

static const char *hs_why(const char *header, const char *claims)
{
	struct pav_auth a;
	const char *why;

	load_ok(&a, "HS256", "secret", NULL, NULL);
	why = why_of(&a, mint_secret(header, claims), NOW);
	pav_auth_free(&a);
	return why;
}

static const char *claims_why(const char *claims)
{
	return hs_why(HDR_HS256, claims);
}

/* pav_auth_verify against an HS256 vhost with issuer and audience set. */
static const char *iss_aud_why(const char *claims)
{
	struct pav_auth a;
	const char *why;

	load_ok(&a, "HS256", "secret", "pavilion", "gateway");
	why = why_of(&a, mint_secret(HDR_HS256, claims), NOW);
	pav_auth_free(&a);
	return why;
}

static const char *raw_why(const char *tok)
{
	struct pav_auth a;
	const char *why;

	load_ok(&a, "HS256", "secret", NULL, NULL);
	why = why_of(&a, strdup(tok), NOW);
	pav_auth_free(&a);
	return why;
}

static const char *load_err(const char *const *algs, size_t n,
			    const char *file)
{
	static char err[256];
	struct pav_auth a;
	int rc;

	memset(&a, 0x5a, sizeof(a));
	err[0] = '\0';
	rc = pav_auth_load(&a, algs, n, file ? path(file) : NULL, NULL, NULL,
			   LEEWAY, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_null(a.key);
	assert_null(a.issuer);
	pav_auth_free(&a);
	return err;
}

static const char *load_err1(const char *alg, const char *file)
{
	const char *algs[] = {alg};

	return load_err(algs, 1, file);
}

/* ------------------------------------------------------------ accepted */

static void hs256_token_is_accepted_with_its_claims(void **state)
{
	struct pav_auth a;
	json_object *claims = NULL, *sub;
	const char *why = "unset";
	char *tok = mint_jwt(JWT_ALG_HS256, CLAIMS_OK, "secret");

	(void)state;
	load_ok(&a, "HS256", "secret", NULL, NULL);
	assert_int_equal(pav_auth_verify(&a, tok, NOW, &claims, &why), 0);
	assert_null(why);
	assert_true(json_object_object_get_ex(claims, "sub", &sub));
	assert_string_equal(json_object_get_string(sub), "alice");
	json_object_put(claims);
	assert_int_equal(pav_auth_verify(&a, tok, NOW, NULL, NULL), 0);
	free(tok);
	pav_auth_free(&a);
}

static void one_of_several_pinned_hs_algorithms_is_accepted(void **state)
{
	const char *algs[] = {"HS256", "HS512"};
	struct pav_auth a;
	char err[128];

	(void)state;
	assert_int_equal(pav_auth_load(&a, algs, 2, path("secret"), NULL, NULL,
				       LEEWAY, err, sizeof(err)),
			 0);
	assert_null(why_of(&a, mint_jwt(JWT_ALG_HS512, CLAIMS_OK, "secret"),
			   NOW));
	assert_string_equal(why_of(&a, mint_jwt(JWT_ALG_HS384, CLAIMS_OK,
						"secret"),
				   NOW),
			    "algorithm not allowed");
	pav_auth_free(&a);
}

static void rs256_token_is_accepted(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "RS256", "rsa.pub", NULL, NULL);
	assert_null(why_of(&a, mint_jwt(JWT_ALG_RS256, CLAIMS_OK, "rsa.key"),
			   NOW));
	pav_auth_free(&a);
}

static void es256_token_is_accepted(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "ES256", "p256.pub", NULL, NULL);
	assert_null(why_of(&a, mint_jwt(JWT_ALG_ES256, CLAIMS_OK, "p256.key"),
			   NOW));
	pav_auth_free(&a);
}

static void es384_token_is_accepted(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "ES384", "p384.pub", NULL, NULL);
	assert_null(why_of(&a, mint_jwt(JWT_ALG_ES384, CLAIMS_OK, "p384.key"),
			   NOW));
	pav_auth_free(&a);
}

static void typ_is_compared_case_insensitively(void **state)
{
	(void)state;
	assert_null(hs_why("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", CLAIMS_OK));
	assert_null(hs_why("{\"alg\":\"HS256\"}", CLAIMS_OK));
}

static void kid_is_ignored(void **state)
{
	(void)state;
	assert_null(hs_why("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}",
			   CLAIMS_OK));
}

static void unloaded_auth_accepts_nothing(void **state)
{
	struct pav_auth a;
	char *none = mint_raw("{\"alg\":\"none\"}", CLAIMS_OK, "AAAA");

	(void)state;
	memset(&a, 0, sizeof(a)); /* what a failed pav_auth_load leaves */
	assert_string_equal(why_of(&a, mint_secret(HDR_HS256, CLAIMS_OK), NOW),
			    "algorithm not allowed");
	assert_string_equal(why_of(&a, none, NOW), "algorithm not allowed");
}

/* ------------------------------------------------------------ token shape */

static void missing_token_is_rejected(void **state)
{
	struct pav_auth a;
	const char *why = NULL;

	(void)state;
	load_ok(&a, "HS256", "secret", NULL, NULL);
	assert_int_equal(pav_auth_verify(&a, NULL, NOW, NULL, &why), -EACCES);
	assert_string_equal(why, "token missing");
	assert_string_equal(why_of(&a, strdup(""), NOW), "token missing");
	pav_auth_free(&a);
}

static void two_parts_are_malformed(void **state)
{
	char *tok = mint_secret(HDR_HS256, CLAIMS_OK);

	(void)state;
	*strrchr(tok, '.') = '\0';
	assert_string_equal(raw_why(tok), "malformed token");
	free(tok);
}

static void four_parts_are_malformed(void **state)
{
	char *tok = mint_secret(HDR_HS256, CLAIMS_OK);
	char *four = malloc(strlen(tok) + 6);

	(void)state;
	sprintf(four, "%s.AAAA", tok);
	assert_string_equal(raw_why(four), "malformed token");
	free(four);
	free(tok);
}

static void empty_parts_are_malformed(void **state)
{
	char *tok = mint_raw(HDR_HS256, CLAIMS_OK, "");

	(void)state;
	assert_string_equal(raw_why(tok), "malformed token");
	assert_string_equal(raw_why(".."), "malformed token");
	assert_string_equal(raw_why(".eyJ9.AAAA"), "malformed token");
	free(tok);
}

static void non_base64url_characters_are_malformed(void **state)
{
	static const char bad[] = "+/= \t\n%\x80";
	char *tok = mint_secret(HDR_HS256, CLAIMS_OK);

	(void)state;
	for (const char *c = bad; *c; c++) {
		char *t = strdup(tok);

		t[3] = *c;
		assert_string_equal(raw_why(t), "malformed token");
		free(t);
	}
	free(tok);
}

static void impossible_base64_length_is_malformed(void **state)
{
	char *tok = mint_secret(HDR_HS256, CLAIMS_OK);
	char *sig = strrchr(tok, '.') + 1;
	size_t n = strlen(sig);

	(void)state;
	/* a signature of 4k+1 characters cannot be base64 */
	tok[strlen(tok) - n + (n / 4) * 4 + 1] = '\0';
	assert_string_equal(raw_why(tok), "malformed token");
	free(tok);
}

/* The spare bits of a part's last character (2 of 43 for an HS256
 * signature) are 0 from every encoder: set, they would spell the same
 * signature a second way. */
static void nonzero_spare_bits_are_malformed(void **state)
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *tok = mint_secret(HDR_HS256, CLAIMS_OK);
	char *last = tok + strlen(tok) - 1;
	int v = (int)(strchr(b64url, *last) - b64url);
	const char *why;

	(void)state;
	assert_int_equal(strlen(strrchr(tok, '.') + 1) % 4, 3);
	assert_int_equal(v & 3, 0);
	assert_null(raw_why(tok));
	*last = b64url[v | 1];
	why = raw_why(tok);
	assert_non_null(why);
	assert_string_equal(why, "malformed token");
	free(tok);
}

static void header_that_is_not_json_is_malformed(void **state)
{
	char *tok = mint_raw("{\"alg\":\"HS256\"", CLAIMS_OK, "AAAA");

	(void)state;
	assert_string_equal(raw_why(tok), "malformed token");
	free(tok);
	tok = mint_raw("[\"HS256\"]", CLAIMS_OK, "AAAA");
	assert_string_equal(raw_why(tok), "malformed token");
	free(tok);
	tok = mint_raw(HDR_HS256 " x", CLAIMS_OK, "AAAA");
	assert_string_equal(raw_why(tok), "malformed token");
	free(tok);
}

static void header_without_string_alg_is_malformed(void **state)
{
	(void)state;
	assert_string_equal(hs_why("{\"typ\":\"JWT\"}", CLAIMS_OK),
			    "malformed token");
	assert_string_equal(hs_why("{\"alg\":256}", CLAIMS_OK),
			    "malformed token");
	assert_string_equal(hs_why("{\"alg\":null}", CLAIMS_OK),
			    "malformed token");
}

static void deeply_nested_header_is_malformed(void **state)
{
	char hdr[256] = "{\"alg\":\"HS256\",\"x\":";
	size_t n = strlen(hdr);

	(void)state;
	for (int i = 0; i < PAV_AUTH_JSON_DEPTH; i++)
		hdr[n++] = '[';
	for (int i = 0; i < PAV_AUTH_JSON_DEPTH; i++)
		hdr[n++] = ']';
	strcpy(hdr + n, "}");
	assert_string_equal(hs_why(hdr, CLAIMS_OK), "malformed token");
}

static void claims_that_are_not_json_are_malformed(void **state)
{
	(void)state;
	assert_string_equal(claims_why("not json"), "malformed token");
	assert_string_equal(claims_why("[1,2]"), "malformed token");
	assert_string_equal(claims_why("{\"sub\":\"a\xff\",\"exp\":" EXP_OK "}"),
			    "malformed token");
}

static void huge_token_is_rejected(void **state)
{
	char *tok = malloc(PAV_AUTH_MAX_TOKEN + 2);

	(void)state;
	memset(tok, 'A', PAV_AUTH_MAX_TOKEN + 1);
	tok[10] = '.';
	tok[20] = '.';
	tok[PAV_AUTH_MAX_TOKEN + 1] = '\0';
	assert_string_equal(raw_why(tok), "token too long");
	tok[PAV_AUTH_MAX_TOKEN] = '\0'; /* at the limit: judged on content */
	assert_string_equal(raw_why(tok), "malformed token");
	free(tok);
}

static void long_claims_within_limit_are_accepted(void **state)
{
	char claims[4096];

	(void)state;
	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"alice\",\"exp\":" EXP_OK ",\"pad\":\"%0*d\"}", 4000,
		 0);
	assert_null(claims_why(claims));
}

/* ------------------------------------------------------------ algorithm */

static void alg_none_is_rejected(void **state)
{
	char *tok;

	(void)state;
	tok = mint_raw("{\"alg\":\"none\"}", CLAIMS_OK, "");
	assert_string_equal(raw_why(tok), "malformed token"); /* empty sig */
	free(tok);
	tok = mint_raw("{\"alg\":\"none\"}", CLAIMS_OK, "AAAA");
	assert_string_equal(raw_why(tok), "algorithm not allowed");
	free(tok);
}

static void alg_none_in_other_cases_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(hs_why("{\"alg\":\"None\"}", CLAIMS_OK),
			    "algorithm not allowed");
	assert_string_equal(hs_why("{\"alg\":\"NONE\"}", CLAIMS_OK),
			    "algorithm not allowed");
	assert_string_equal(hs_why("{\"alg\":\"nOnE\",\"typ\":\"JWT\"}",
				   CLAIMS_OK),
			    "algorithm not allowed");
}

static void alg_is_matched_case_sensitively(void **state)
{
	(void)state;
	/* libjwt itself would take "hs256" as HS256 */
	assert_string_equal(hs_why("{\"alg\":\"hs256\"}", CLAIMS_OK),
			    "algorithm not allowed");
	assert_string_equal(hs_why("{\"alg\":\"HS256 \"}", CLAIMS_OK),
			    "algorithm not allowed");
}

/* The gateway's one strict JSON reader refuses "\u0000" anywhere (a C
 * string would end there): a header whose alg hides one is malformed,
 * refused before any algorithm is looked at. */
static void nul_escape_in_the_header_is_a_malformed_token(void **state)
{
	(void)state;
	assert_string_equal(hs_why("{\"alg\":\"HS256\\u0000\"}", CLAIMS_OK),
			    "malformed token");
	assert_string_equal(hs_why("{\"alg\":\"HS256\"}",
				   "{\"sub\":\"al\\u0000ice\",\"exp\":" EXP_OK "}"),
			    "malformed token");
}

static void unpinned_algorithm_is_rejected(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "RS256", "rsa.pub", NULL, NULL);
	assert_string_equal(why_of(&a, mint_jwt(JWT_ALG_RS512, CLAIMS_OK,
						"rsa.key"),
				   NOW),
			    "algorithm not allowed");
	pav_auth_free(&a);
}

/* The classic key confusion: HS256 keyed with the RSA public key PEM. */
static void hs256_with_rsa_public_key_as_secret_is_rejected(void **state)
{
	struct pav_auth a;
	size_t len;
	char *pem = read_file("rsa.pub", &len);

	(void)state;
	load_ok(&a, "RS256", "rsa.pub", NULL, NULL);
	assert_string_equal(why_of(&a, mint_hs(HDR_HS256, CLAIMS_OK, pem, len),
				   NOW),
			    "algorithm not allowed");
	pav_auth_free(&a);
	free(pem);
}

static void es256_on_rs_vhost_is_rejected(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "RS256", "rsa.pub", NULL, NULL);
	assert_string_equal(why_of(&a, mint_jwt(JWT_ALG_ES256, CLAIMS_OK,
						"p256.key"),
				   NOW),
			    "algorithm not allowed");
	pav_auth_free(&a);
}

static void typ_other_than_jwt_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(hs_why("{\"alg\":\"HS256\",\"typ\":\"xyz\"}",
				   CLAIMS_OK),
			    "unsupported token type");
	assert_string_equal(hs_why("{\"alg\":\"HS256\",\"typ\":1}", CLAIMS_OK),
			    "unsupported token type");
	assert_string_equal(hs_why("{\"alg\":\"HS256\",\"typ\":\"JWTX\"}",
				   CLAIMS_OK),
			    "unsupported token type");
}

static void crit_header_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(
		hs_why("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
		       CLAIMS_OK),
		"unsupported critical header");
	assert_string_equal(hs_why("{\"alg\":\"HS256\",\"crit\":null}",
				   CLAIMS_OK),
			    "unsupported critical header");
}

/* ------------------------------------------------------------ signature */

static void hs256_with_wrong_secret_is_bad_signature(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "HS256", "secret", NULL, NULL);
	assert_string_equal(why_of(&a, mint_jwt(JWT_ALG_HS256, CLAIMS_OK,
						"other"),
				   NOW),
			    "bad signature");
	pav_auth_free(&a);
}

static void rs256_with_wrong_key_is_bad_signature(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "RS256", "rsa.pub", NULL, NULL);
	assert_string_equal(why_of(&a, mint_jwt(JWT_ALG_RS256, CLAIMS_OK,
						"rsa2.key"),
				   NOW),
			    "bad signature");
	pav_auth_free(&a);
}

static void es256_with_truncated_signature_is_bad_signature(void **state)
{
	struct pav_auth a;
	char *tok = mint_jwt(JWT_ALG_ES256, CLAIMS_OK, "p256.key");

	(void)state;
	/* 86 characters to 84: 63 bytes, well-formed base64url */
	tok[strlen(tok) - 2] = '\0';
	load_ok(&a, "ES256", "p256.pub", NULL, NULL);
	assert_string_equal(why_of(&a, tok, NOW), "bad signature");
	pav_auth_free(&a);
}

/* tok's signature put under header hdr (the claims stay). */
static char *relabel(char *tok, const char *hdr)
{
	char *h = b64url(hdr, strlen(hdr));
	const char *rest = strchr(tok, '.');
	char *out = malloc(strlen(h) + strlen(rest) + 1);

	assert_non_null(out);
	sprintf(out, "%s%s", h, rest);
	free(h);
	free(tok);
	return out;
}

static void every_algorithm_checks_with_its_own_digest(void **state)
{
	static const struct {
		const char *names[3];
		jwt_alg_t algs[3];
		const char *pub, *key;
	} families[] = {
		{{"HS256", "HS384", "HS512"},
		 {JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512},
		 "secret", "secret"},
		{{"RS256", "RS384", "RS512"},
		 {JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512},
		 "rsa.pub", "rsa.key"},
	};

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		struct pav_auth a;
		char err[128];

		assert_int_equal(pav_auth_load(&a, families[f].names, 3,
					       path(families[f].pub), NULL,
					       NULL, LEEWAY, err, sizeof(err)),
				 0);
		for (size_t i = 0; i < 3; i++) {
			char hdr[64];

			assert_null(why_of(&a, mint_jwt(families[f].algs[i],
							CLAIMS_OK,
							families[f].key),
					   NOW));
			/* signed with the next digest, labelled with this */
			snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}",
				 families[f].names[i]);
			assert_string_equal(
				why_of(&a,
				       relabel(mint_jwt(
						       families[f].algs[(i + 1) % 3],
						       CLAIMS_OK, families[f].key),
					       hdr),
				       NOW),
				"bad signature");
		}
		pav_auth_free(&a);
	}
}

/* JWS ECDSA signatures are r || s of the curve's size: DER, or r and s
 * swapped, or zeros of the right length do not verify. */
static void ecdsa_signature_must_be_r_then_s_of_the_curves_size(void **state)
{
	struct pav_auth a;
	char *tok = mint_jwt(JWT_ALG_ES256, CLAIMS_OK, "p256.key");
	char *dot = strrchr(tok, '.');
	unsigned char raw[64], swapped[64], zeros[64] = {0};
	unsigned char der[80], *p = der;
	ECDSA_SIG *es = ECDSA_SIG_new();
	char *b, *t;
	int n;

	(void)state;
	/* the good one's r and s, from its base64url */
	{
		size_t len = strlen(dot + 1);
		char *std = malloc(len + 4);
		unsigned char dec[72];

		assert_non_null(std);
		for (size_t i = 0; i < len; i++)
			std[i] = dot[1 + i] == '-' ? '+'
				 : dot[1 + i] == '_' ? '/' : dot[1 + i];
		memcpy(std + len, "==", 3); /* 86 characters + "==" */
		assert_int_equal(EVP_DecodeBlock(dec, (unsigned char *)std,
						 (int)len + 2),
				 66);
		memcpy(raw, dec, 64);
		free(std);
	}
	memcpy(swapped, raw + 32, 32);
	memcpy(swapped + 32, raw, 32);
	assert_non_null(es);
	assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL),
					BN_bin2bn(raw + 32, 32, NULL)),
			 1);
	n = i2d_ECDSA_SIG(es, &p);
	assert_true(n > 0 && n <= (int)sizeof(der));
	ECDSA_SIG_free(es);
	load_ok(&a, "ES256", "p256.pub", NULL, NULL);
	*dot = '\0';
	{
		const struct {
			const unsigned char *sig;
			size_t len;
			const char *why;
		} cases[] = {
			{raw, 64, NULL},
			{der, (size_t)n, "bad signature"},
			{swapped, 64, "bad signature"},
			{zeros, 64, "bad signature"},
			{raw, 63, "bad signature"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			b = b64url(cases[i].sig, cases[i].len);
			t = malloc(strlen(tok) + strlen(b) + 2);
			assert_non_null(t);
			sprintf(t, "%s.%s", tok, b);
			free(b);
			if (cases[i].why)
				assert_string_equal(why_of(&a, t, NOW),
						    cases[i].why);
			else
				assert_null(why_of(&a, t, NOW));
		}
	}
	free(tok);
	pav_auth_free(&a);
}

static void hmac_of_another_length_is_bad_signature(void **state)
{
	char *tok = mint_secret(HDR_HS256, CLAIMS_OK);
	char *cut = strdup(tok);

	(void)state;
	assert_non_null(cut);
	cut[strlen(cut) - 3] = '\0'; /* 30 bytes of 32 */
	assert_string_equal(raw_why(cut), "bad signature");
	free(cut);
	free(tok);
}

static void tampered_claims_are_bad_signature(void **state)
{
	char *good = mint_secret(HDR_HS256, CLAIMS_OK);
	char *evil = mint_secret(HDR_HS256, "{\"sub\":\"admin\",\"exp\":" EXP_OK
					    "}");
	char *tok = malloc(strlen(good) + strlen(evil));

	(void)state;
	/* evil's header and claims with good's signature */
	sprintf(tok, "%.*s%s", (int)(strrchr(evil, '.') - evil), evil,
		strrchr(good, '.'));
	assert_string_equal(raw_why(tok), "bad signature");
	free(tok);
	free(good);
	free(evil);
}

/* ------------------------------------------------------------ times */

static void missing_exp_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"alice\"}"), "missing exp");
}

static void exp_that_is_not_a_number_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":\"" EXP_OK
				       "\"}"),
			    "invalid exp");
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":null}"),
			    "invalid exp");
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":true}"),
			    "invalid exp");
}

static void times_beyond_year_9999_are_invalid(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":1e300}"),
			    "invalid exp");
	assert_string_equal(claims_why("{\"sub\":\"alice\","
				       "\"exp\":253402300800}"),
			    "invalid exp");
	assert_null(claims_why("{\"sub\":\"alice\",\"exp\":253402300799}"));
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
				       ",\"nbf\":-1e19}"),
			    "invalid nbf");
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
				       ",\"iat\":9223372036854775807}"),
			    "invalid iat");
}

static void exp_as_a_fraction_is_accepted(void **state)
{
	(void)state;
	assert_null(claims_why("{\"sub\":\"alice\",\"exp\":1800000000.5}"));
}

static void expired_token_is_rejected(void **state)
{
	(void)state;
	/* now = exp + leeway + 1 */
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":1799999969}"),
			    "token expired");
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":-1}"),
			    "token expired");
}

static void expired_within_leeway_is_accepted(void **state)
{
	(void)state;
	/* now = exp + leeway */
	assert_null(claims_why("{\"sub\":\"alice\",\"exp\":1799999970}"));
}

static void nbf_in_the_future_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
				       ",\"nbf\":1800000031}"),
			    "token not yet valid");
}

static void nbf_within_leeway_is_accepted(void **state)
{
	(void)state;
	assert_null(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
			       ",\"nbf\":1800000030}"));
}

/* The reason for claims on a vhost with auth.max_lifetime_s 3600. */
static const char *lifetime_why(const char *claims)
{
	struct pav_auth a;
	const char *why;

	load_ok(&a, "HS256", "secret", NULL, NULL);
	a.max_lifetime_s = 3600;
	why = why_of(&a, mint_secret(HDR_HS256, claims), NOW);
	pav_auth_free(&a);
	return why;
}

static void lifetime_up_to_max_lifetime_s_is_accepted(void **state)
{
	(void)state;
	/* exp - iat = 3600; without iat, exp - now = 3600 + the leeway */
	assert_null(lifetime_why("{\"sub\":\"a\",\"iat\":1799999000,"
				 "\"exp\":1800002600}"));
	assert_null(lifetime_why("{\"sub\":\"a\",\"exp\":1800003630}"));
	/* unchecked without the key */
	assert_null(claims_why("{\"sub\":\"a\",\"iat\":1700000000,"
			       "\"exp\":1900000000}"));
}

static void lifetime_past_max_lifetime_s_is_rejected(void **state)
{
	(void)state;
	/* issued for 3601 s, 1 s of it left... */
	assert_string_equal(lifetime_why("{\"sub\":\"a\",\"iat\":"
					 "1799996400,\"exp\":1800000001}"),
			    "token lifetime too long");
	/* ...no iat, 3631 s left... */
	assert_string_equal(lifetime_why("{\"sub\":\"a\",\"exp\":1800003631}"),
			    "token lifetime too long");
	/* ...or an iat in the future that would hide a year */
	assert_string_equal(lifetime_why("{\"sub\":\"a\",\"iat\":1831535000,"
					 "\"exp\":1831536000}"),
			    "token lifetime too long");
}

static void nbf_that_is_not_a_number_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
				       ",\"nbf\":\"0\"}"),
			    "invalid nbf");
}

static void iat_that_is_not_a_number_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
				       ",\"iat\":\"0\"}"),
			    "invalid iat");
	assert_null(claims_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
			       ",\"iat\":1800000000}"));
}

/* ------------------------------------------------------------ iss, aud */

#define ISS_AUD(iss, aud)                                                   \
	"{\"sub\":\"alice\",\"exp\":" EXP_OK ",\"iss\":" iss ",\"aud\":" aud \
	"}"

static void matching_issuer_and_audience_are_accepted(void **state)
{
	(void)state;
	assert_null(iss_aud_why(ISS_AUD("\"pavilion\"", "\"gateway\"")));
}

static void wrong_or_missing_issuer_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(iss_aud_why(ISS_AUD("\"other\"", "\"gateway\"")),
			    "wrong issuer");
	assert_string_equal(iss_aud_why(ISS_AUD("\"Pavilion\"", "\"gateway\"")),
			    "wrong issuer");
	assert_string_equal(iss_aud_why(ISS_AUD("[\"pavilion\"]", "\"gateway\"")),
			    "wrong issuer");
	assert_string_equal(iss_aud_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
					",\"aud\":\"gateway\"}"),
			    "wrong issuer");
}

static void wrong_or_missing_audience_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(iss_aud_why(ISS_AUD("\"pavilion\"", "\"other\"")),
			    "wrong audience");
	assert_string_equal(iss_aud_why("{\"sub\":\"alice\",\"exp\":" EXP_OK
					",\"iss\":\"pavilion\"}"),
			    "wrong audience");
	assert_string_equal(iss_aud_why(ISS_AUD("\"pavilion\"", "1")),
			    "wrong audience");
}

static void audience_array_containing_ours_is_accepted(void **state)
{
	(void)state;
	assert_null(iss_aud_why(ISS_AUD("\"pavilion\"", "[\"x\",\"gateway\"]")));
}

static void audience_array_without_ours_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(iss_aud_why(ISS_AUD("\"pavilion\"",
						"[\"x\",[\"gateway\"]]")),
			    "wrong audience");
	assert_string_equal(iss_aud_why(ISS_AUD("\"pavilion\"", "[]")),
			    "wrong audience");
}

static void unconfigured_issuer_and_audience_are_unchecked(void **state)
{
	(void)state;
	assert_null(claims_why(ISS_AUD("1", "[]")));
}

/* ------------------------------------------------------------ sub */

static void missing_sub_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"exp\":" EXP_OK "}"), "missing sub");
}

static void sub_with_bad_characters_is_rejected(void **state)
{
	(void)state;
	assert_string_equal(claims_why("{\"sub\":\"al ice\",\"exp\":" EXP_OK
				       "}"),
			    "invalid sub");
	assert_string_equal(claims_why("{\"sub\":\"a:b\",\"exp\":" EXP_OK "}"),
			    "invalid sub");
	assert_string_equal(claims_why("{\"sub\":\"a\\tb\",\"exp\":" EXP_OK
				       "}"),
			    "invalid sub");
	assert_string_equal(claims_why("{\"sub\":42,\"exp\":" EXP_OK "}"),
			    "invalid sub");
	assert_string_equal(claims_why("{\"sub\":\"\",\"exp\":" EXP_OK "}"),
			    "invalid sub");
}

static void sub_of_64_chars_is_accepted_and_65_rejected(void **state)
{
	char claims[256];
	char sub[PAV_AUTH_MAX_SUB + 2];

	(void)state;
	memset(sub, 'x', sizeof(sub) - 1);
	sub[PAV_AUTH_MAX_SUB] = '\0';
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":" EXP_OK "}",
		 sub);
	assert_null(claims_why(claims));
	sub[PAV_AUTH_MAX_SUB] = 'x';
	sub[PAV_AUTH_MAX_SUB + 1] = '\0';
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":" EXP_OK "}",
		 sub);
	assert_string_equal(claims_why(claims), "invalid sub");
}

/* ------------------------------------------------------------ signing */

static void signed_token_verifies(void **state)
{
	struct pav_auth a;
	json_object *claims = json_tokener_parse(CLAIMS_OK);
	char *tok;

	(void)state;
	load_ok(&a, "HS384", "secret", NULL, NULL);
	tok = pav_auth_sign(&a, claims);
	assert_non_null(tok);
	assert_null(why_of(&a, tok, NOW));
	json_object_put(claims);
	pav_auth_free(&a);
}

static void signing_needs_an_hmac_key(void **state)
{
	struct pav_auth a;
	json_object *claims = json_tokener_parse(CLAIMS_OK);

	(void)state;
	load_ok(&a, "RS256", "rsa.pub", NULL, NULL);
	assert_null(pav_auth_sign(&a, claims));
	pav_auth_free(&a);
	json_object_put(claims);
}

/* ------------------------------------------------------------ key loading */

static void secret_loses_one_trailing_newline(void **state)
{
	struct pav_auth a;

	(void)state;
	write_file("s_lf", "abc\n", 4);
	write_file("s_crlf", "abc\r\n", 5);
	write_file("s_lflf", "abc\n\n", 5);
	load_ok(&a, "HS256", "s_lf", NULL, NULL);
	assert_int_equal(a.keylen, 3);
	pav_auth_free(&a);
	load_ok(&a, "HS256", "s_crlf", NULL, NULL);
	assert_int_equal(a.keylen, 3);
	assert_memory_equal(a.key, "abc", 3);
	pav_auth_free(&a);
	load_ok(&a, "HS256", "s_lflf", NULL, NULL);
	assert_int_equal(a.keylen, 4);
	pav_auth_free(&a);
}

static void loaded_settings_are_kept(void **state)
{
	struct pav_auth a;

	(void)state;
	load_ok(&a, "ES256", "p256.pub", "pavilion", "gateway");
	assert_int_equal(a.kind, PAV_KEY_EC);
	assert_int_equal(a.nalgs, 1);
	assert_int_equal(a.algs[0], JWT_ALG_ES256);
	assert_string_equal(a.issuer, "pavilion");
	assert_string_equal(a.audience, "gateway");
	assert_int_equal(a.leeway_s, LEEWAY);
	pav_auth_free(&a);
	assert_null(a.key);
	pav_auth_free(&a); /* twice is harmless */
}

static void missing_key_file_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("HS256", "nonexistent"),
			    "cannot read key file: No such file or directory");
	assert_string_equal(load_err1("HS256", "."),
			    "cannot read key file: Is a directory");
	assert_string_equal(load_err1("HS256", NULL), "no key file");
}

/* the whole file is read, up to its bound */
static void key_file_is_bounded(void **state)
{
	char *big = malloc(PAV_AUTH_MAX_KEY_FILE + 1);
	struct pav_auth a;

	(void)state;
	assert_non_null(big);
	memset(big, 'k', PAV_AUTH_MAX_KEY_FILE + 1);
	write_file("s_cap", big, PAV_AUTH_MAX_KEY_FILE);
	write_file("s_big", big, PAV_AUTH_MAX_KEY_FILE + 1);
	free(big);
	load_ok(&a, "HS256", "s_cap", NULL, NULL);
	assert_int_equal(a.keylen, PAV_AUTH_MAX_KEY_FILE);
	pav_auth_free(&a);
	assert_string_equal(load_err1("HS256", "s_big"),
			    "key file larger than 65536 bytes");
}

static void empty_secret_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("HS256", "empty"), "empty secret");
	assert_string_equal(load_err1("HS256", "nl"), "empty secret");
	assert_string_equal(load_err1("HS512", "crlf"), "empty secret");
}

static void public_key_as_secret_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("HS256", "rsa.pub"),
			    "HS256 needs a secret, not a public key");
}

static void non_pem_key_file_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("RS256", "garbage"),
			    "not a PEM public key");
	assert_string_equal(load_err1("RS256", "rsa.key"),
			    "not a PEM public key");
	assert_string_equal(load_err1("ES256", "empty"),
			    "not a PEM public key");
}

static void key_of_the_wrong_type_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("RS256", "p256.pub"),
			    "RS256 needs an RSA public key");
	assert_string_equal(load_err1("ES256", "rsa.pub"),
			    "ES256 needs a P-256 public key");
	assert_string_equal(load_err1("ES256", "p384.pub"),
			    "ES256 needs a P-256 public key");
	assert_string_equal(load_err1("ES384", "p256.pub"),
			    "ES384 needs a P-384 public key");
}

static void short_rsa_key_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("RS256", "rsa1024.pub"),
			    "RSA key has 1024 bits, fewer than 2048");
}

static void unsupported_algorithm_is_an_error(void **state)
{
	(void)state;
	assert_string_equal(load_err1("none", "secret"),
			    "unsupported algorithm \"none\"");
	assert_string_equal(load_err1("hs256", "secret"),
			    "unsupported algorithm \"hs256\"");
	assert_string_equal(load_err1("ES512", "secret"),
			    "unsupported algorithm \"ES512\"");
	assert_string_equal(load_err1("PS256", "rsa.pub"),
			    "unsupported algorithm \"PS256\"");
}

static void algorithm_families_cannot_be_mixed(void **state)
{
	const char *hs_rs[] = {"HS256", "RS256"};
	const char *rs_es[] = {"RS256", "ES256"};
	const char *es_es[] = {"ES256", "ES384"};

	(void)state;
	assert_string_equal(load_err(hs_rs, 2, "secret"),
			    "algorithm RS256 cannot be mixed with HS256");
	assert_string_equal(load_err(rs_es, 2, "rsa.pub"),
			    "algorithm ES256 cannot be mixed with RS256");
	assert_string_equal(load_err(es_es, 2, "p256.pub"),
			    "ES256 and ES384 need different keys");
}

static void algorithm_count_is_bounded(void **state)
{
	const char *nine[9] = {"HS256", "HS256", "HS256", "HS256", "HS256",
			       "HS256", "HS256", "HS256", "HS256"};

	(void)state;
	assert_string_equal(load_err(nine, 0, "secret"), "no algorithms");
	assert_string_equal(load_err(nine, 9, "secret"),
			    "more than 8 algorithms");
}

static void negative_leeway_is_an_error(void **state)
{
	const char *algs[] = {"HS256"};
	struct pav_auth a;
	char err[128];

	(void)state;
	assert_int_equal(pav_auth_load(&a, algs, 1, path("secret"), NULL, NULL,
				       -1, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "negative leeway");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hs256_token_is_accepted_with_its_claims),
		cmocka_unit_test(lifetime_up_to_max_lifetime_s_is_accepted),
		cmocka_unit_test(lifetime_past_max_lifetime_s_is_rejected),
		cmocka_unit_test(one_of_several_pinned_hs_algorithms_is_accepted),
		cmocka_unit_test(rs256_token_is_accepted),
		cmocka_unit_test(es256_token_is_accepted),
		cmocka_unit_test(es384_token_is_accepted),
		cmocka_unit_test(typ_is_compared_case_insensitively),
		cmocka_unit_test(kid_is_ignored),
		cmocka_unit_test(unloaded_auth_accepts_nothing),
		cmocka_unit_test(missing_token_is_rejected),
		cmocka_unit_test(two_parts_are_malformed),
		cmocka_unit_test(four_parts_are_malformed),
		cmocka_unit_test(empty_parts_are_malformed),
		cmocka_unit_test(non_base64url_characters_are_malformed),
		cmocka_unit_test(impossible_base64_length_is_malformed),
		cmocka_unit_test(nonzero_spare_bits_are_malformed),
		cmocka_unit_test(header_that_is_not_json_is_malformed),
		cmocka_unit_test(header_without_string_alg_is_malformed),
		cmocka_unit_test(deeply_nested_header_is_malformed),
		cmocka_unit_test(claims_that_are_not_json_are_malformed),
		cmocka_unit_test(huge_token_is_rejected),
		cmocka_unit_test(long_claims_within_limit_are_accepted),
		cmocka_unit_test(alg_none_is_rejected),
		cmocka_unit_test(alg_none_in_other_cases_is_rejected),
		cmocka_unit_test(alg_is_matched_case_sensitively),
		cmocka_unit_test(nul_escape_in_the_header_is_a_malformed_token),
		cmocka_unit_test(unpinned_algorithm_is_rejected),
		cmocka_unit_test(hs256_with_rsa_public_key_as_secret_is_rejected),
		cmocka_unit_test(es256_on_rs_vhost_is_rejected),
		cmocka_unit_test(typ_other_than_jwt_is_rejected),
		cmocka_unit_test(crit_header_is_rejected),
		cmocka_unit_test(hs256_with_wrong_secret_is_bad_signature),
		cmocka_unit_test(rs256_with_wrong_key_is_bad_signature),
		cmocka_unit_test(es256_with_truncated_signature_is_bad_signature),
		cmocka_unit_test(every_algorithm_checks_with_its_own_digest),
		cmocka_unit_test(ecdsa_signature_must_be_r_then_s_of_the_curves_size),
		cmocka_unit_test(hmac_of_another_length_is_bad_signature),
		cmocka_unit_test(tampered_claims_are_bad_signature),
		cmocka_unit_test(missing_exp_is_rejected),
		cmocka_unit_test(exp_that_is_not_a_number_is_rejected),
		cmocka_unit_test(times_beyond_year_9999_are_invalid),
		cmocka_unit_test(exp_as_a_fraction_is_accepted),
		cmocka_unit_test(expired_token_is_rejected),
		cmocka_unit_test(expired_within_leeway_is_accepted),
		cmocka_unit_test(nbf_in_the_future_is_rejected),
		cmocka_unit_test(nbf_within_leeway_is_accepted),
		cmocka_unit_test(nbf_that_is_not_a_number_is_rejected),
		cmocka_unit_test(iat_that_is_not_a_number_is_rejected),
		cmocka_unit_test(matching_issuer_and_audience_are_accepted),
		cmocka_unit_test(wrong_or_missing_issuer_is_rejected),
		cmocka_unit_test(wrong_or_missing_audience_is_rejected),
		cmocka_unit_test(audience_array_containing_ours_is_accepted),
		cmocka_unit_test(audience_array_without_ours_is_rejected),
		cmocka_unit_test(unconfigured_issuer_and_audience_are_unchecked),
		cmocka_unit_test(missing_sub_is_rejected),
		cmocka_unit_test(sub_with_bad_characters_is_rejected),
		cmocka_unit_test(sub_of_64_chars_is_accepted_and_65_rejected),
		cmocka_unit_test(signed_token_verifies),
		cmocka_unit_test(signing_needs_an_hmac_key),
		cmocka_unit_test(secret_loses_one_trailing_newline),
		cmocka_unit_test(loaded_settings_are_kept),
		cmocka_unit_test(missing_key_file_is_an_error),
		cmocka_unit_test(key_file_is_bounded),
		cmocka_unit_test(empty_secret_is_an_error),
		cmocka_unit_test(public_key_as_secret_is_an_error),
		cmocka_unit_test(non_pem_key_file_is_an_error),
		cmocka_unit_test(key_of_the_wrong_type_is_an_error),
		cmocka_unit_test(short_rsa_key_is_an_error),
		cmocka_unit_test(unsupported_algorithm_is_an_error),
		cmocka_unit_test(algorithm_families_cannot_be_mixed),
		cmocka_unit_test(algorithm_count_is_bounded),
		cmocka_unit_test(negative_leeway_is_an_error),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
