/* auth.h — JWT verification with algorithm pinning (libjwt 1.10). */
#ifndef PAV_AUTH_H
#define PAV_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define PAV_AUTH_MAX_ALGS 8
#define PAV_AUTH_MAX_TOKEN 8192

enum pav_key_kind { PAV_KEY_HMAC, PAV_KEY_RSA, PAV_KEY_EC };

struct pav_auth {
	int algs[PAV_AUTH_MAX_ALGS]; /* libjwt jwt_alg_t values, pinned */
	size_t nalgs;
	enum pav_key_kind kind;
	unsigned char *key; /* secret or PEM bytes */
	size_t keylen;
	char *issuer;   /* NULL: unchecked */
	char *audience; /* NULL: unchecked */
	int leeway_s;
};

/*
 * Loads the key file and checks the algorithm list fits the key: HS* need
 * a secret (one trailing newline dropped, non-empty), RS* an RSA public
 * key PEM, ES256/ES384 an EC public key PEM (P-256 / P-384).  On error
 * -EINVAL and "reason" in err (the caller adds file and key).
 */
int pav_auth_load(struct pav_auth *a, const char *const *algorithms,
		  size_t nalgs, const char *key_file, const char *issuer,
		  const char *audience, int leeway_s, char *err, size_t errlen);
void pav_auth_free(struct pav_auth *a);

/*
 * Verifies token at time now_s: header alg exactly one of the pinned list
 * (never "none"), signature with the loaded key, exp required, nbf / iss /
 * aud checked (when configured) with leeway, sub 1-64 of [A-Za-z0-9_-].
 * Returns 0 and a new reference to the claims object, or -EACCES with a
 * static reason in *why (never containing the token).
 */
int pav_auth_verify(const struct pav_auth *a, const char *token,
		    int64_t now_s, json_object **claims, const char **why);

/* Signs a token with an HS* key (for `pavilion-gateway token`).  Returns a
 * malloc'd string or NULL. claims is borrowed. */
char *pav_auth_sign(const struct pav_auth *a, json_object *claims);

#endif
