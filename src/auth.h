/* auth.h — JWT verification with algorithm pinning (OpenSSL), signing
 * (libjwt 1.10). */
#ifndef PAV_AUTH_H
#define PAV_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define PAV_AUTH_MAX_ALGS 8
#define PAV_AUTH_MAX_TOKEN 8192
/* JSON nesting allowed in a token's header and claims ({"a":[1]} is 2). */
#define PAV_AUTH_JSON_DEPTH 16
/* A key file larger than this is refused (a 16384-bit RSA PEM is ~3 KiB). */
#define PAV_AUTH_MAX_KEY_FILE 65536
#define PAV_AUTH_MIN_RSA_BITS 2048
#define PAV_AUTH_MAX_SUB 64
/* exp, nbf and iat beyond +-9999-12-31T23:59:59Z are invalid, so callers
 * can turn them into int64 milliseconds without overflow. */
#define PAV_AUTH_MAX_TIME 253402300799.0

enum pav_key_kind { PAV_KEY_HMAC, PAV_KEY_RSA, PAV_KEY_EC };

struct evp_pkey_st;
struct evp_mac_ctx_st;

struct pav_auth {
	int algs[PAV_AUTH_MAX_ALGS]; /* libjwt jwt_alg_t values, pinned */
	size_t nalgs;
	enum pav_key_kind kind;
	unsigned char *key; /* secret or PEM bytes */
	size_t keylen;
	/* made once at load, so a token costs its check and no key parsing:
	 * RS*, ES*: the public key; HS*: per pinned algorithm, an HMAC
	 * context keyed with the secret, copied for each token */
	struct evp_pkey_st *pkey;
	struct evp_mac_ctx_st *hmac[PAV_AUTH_MAX_ALGS];
	char *issuer;   /* NULL: unchecked */
	char *audience; /* NULL: unchecked */
	int leeway_s;
	/* 0: unchecked; else the longest a token may live: exp - now (less
	 * the leeway) and, when it has iat, exp - iat; set after
	 * pav_auth_load() */
	int max_lifetime_s;
};

/*
 * Loads the key file and checks the algorithm list fits the key: HS* need
 * a secret (one trailing newline dropped, non-empty), RS* an RSA public
 * key PEM, ES256/ES384 an EC public key PEM (P-256 / P-384).  On error
 * -EINVAL and "reason" in err (the caller adds file and key).
 *
 * algorithms: exact names from HS256 HS384 HS512 RS256 RS384 RS512 ES256
 * ES384, 1..PAV_AUTH_MAX_ALGS of them, one family (one key file serves
 * them all; ES256 and ES384 need different curves, so not both).  An HS
 * secret is refused only when empty or when it is a PEM public key (that
 * would make the public key the HMAC secret); short secrets are accepted
 * (pav_auth_secret_short() tells the caller, which warns).
 * RSA keys need PAV_AUTH_MIN_RSA_BITS.  leeway_s must be >= 0.  *a is
 * overwritten (not freed) first and is left zeroed on error.  -ENOMEM on
 * allocation failure ("out of memory").
 */
int pav_auth_load(struct pav_auth *a, const char *const *algorithms,
		  size_t nalgs, const char *key_file, const char *issuer,
		  const char *audience, int leeway_s, char *err, size_t errlen);
void pav_auth_free(struct pav_auth *a);
/* The bytes RFC 7518 (3.2) asks of an HS secret for the pinned algorithms
 * (the largest hash output among them) when the loaded secret is shorter,
 * else 0: such a secret works, but is easier to guess than the hash. */
size_t pav_auth_secret_short(const struct pav_auth *a);

/*
 * Verifies token at time now_s: header alg exactly one of the pinned list
 * (never "none"), signature with the loaded key, exp required, nbf / iss /
 * aud checked (when configured) with leeway, sub 1-64 of [A-Za-z0-9_-].
 * Returns 0 and a new reference to the claims object, or -EACCES with a
 * static reason in *why (never containing the token).
 *
 * Reasons: "token missing", "token too long", "malformed token" (not three
 * base64url parts, header or claims not a JSON object, alg not a string),
 * "algorithm not allowed", "unsupported token type" (typ not "JWT"),
 * "unsupported critical header" (crit present), "bad signature",
 * "missing exp", "invalid exp", "token expired", "invalid nbf",
 * "token not yet valid", "invalid iat", "token lifetime too long" (see
 * max_lifetime_s), "wrong issuer", "wrong audience",
 * "missing sub", "invalid sub", "internal error" (out of memory).
 * exp / nbf / iat not a number within +-PAV_AUTH_MAX_TIME are invalid.
 * Rejected: now > exp + leeway, now + leeway < nbf.  claims may be NULL
 * when only the verdict is wanted; on success *why is NULL.  Thread-safe
 * for concurrent calls on one loaded struct pav_auth.
 */
int pav_auth_verify(const struct pav_auth *a, const char *token,
		    int64_t now_s, json_object **claims, const char **why);

/* Signs a token with an HS* key (for `pavilion-gateway token`).  Returns a
 * malloc'd string (free()) or NULL; NULL too when the key is not HMAC or
 * claims is not an object.  claims is borrowed; nothing is added to it. */
char *pav_auth_sign(const struct pav_auth *a, json_object *claims);

#endif
