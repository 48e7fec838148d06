/*
 * auth.c — JWT verification with algorithm pinning, on OpenSSL; signing
 * (`pavilion-gateway token`) with libjwt 1.10.
 *
 * The token's shape, header and claims JSON are checked here, the header's
 * "alg" must be exactly one of the pinned names, the signature is checked
 * with OpenSSL against the key loaded at start, and then the claims: the
 * object parsed here from the signed bytes, so one strict reader decides
 * what they say.  libjwt 1.10's own jwt_decode() is not used for this: it
 * takes the algorithm from the token (case-insensitively), accepts "none"
 * when handed a zero-length key, and parses the PEM key again for every
 * token (about half a millisecond for RS256 and ES256 with OpenSSL 3).
 *
 * Nothing here logs: a rejection is a static reason string, and the caller
 * logs that, never the token.
 */
#include "auth.h"

#include <errno.h>
#include <limits.h> /* before openssl/err.h, which uses INT_MAX */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "json_check.h"
#include "secret.h"

/* Longest decoded header or claims: three quarters of the longest token. */
#define DECODED_MAX (PAV_AUTH_MAX_TOKEN / 4 * 3 + 3)

struct alg_info {
	const char *name;
	jwt_alg_t alg;
	enum pav_key_kind kind;
	int curve; /* NID of the curve an ES* key must be on; 0 otherwise */
	const EVP_MD *(*md)(void);
};

static const struct alg_info known_algs[] = {
	{"HS256", JWT_ALG_HS256, PAV_KEY_HMAC, 0, EVP_sha256},
	{"HS384", JWT_ALG_HS384, PAV_KEY_HMAC, 0, EVP_sha384},
	{"HS512", JWT_ALG_HS512, PAV_KEY_HMAC, 0, EVP_sha512},
	{"RS256", JWT_ALG_RS256, PAV_KEY_RSA, 0, EVP_sha256},
	{"RS384", JWT_ALG_RS384, PAV_KEY_RSA, 0, EVP_sha384},
	{"RS512", JWT_ALG_RS512, PAV_KEY_RSA, 0, EVP_sha512},
	{"ES256", JWT_ALG_ES256, PAV_KEY_EC, NID_X9_62_prime256v1, EVP_sha256},
	{"ES384", JWT_ALG_ES384, PAV_KEY_EC, NID_secp384r1, EVP_sha384},
};

#define NKNOWN (sizeof(known_algs) / sizeof(known_algs[0]))

/* The parts of a split token: header [0, dot1), claims (dot1, dot2),
 * signature (dot2, len). */
struct parts {
	size_t len, dot1, dot2;
};

/* ------------------------------------------------------------ helpers */

__attribute__((format(printf, 3, 4))) static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int fail_nomem(char *err, size_t errlen)
{
	fail(err, errlen, "out of memory");
	return -ENOMEM;
}

static const struct alg_info *alg_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < NKNOWN; i++)
		if (strlen(known_algs[i].name) == len &&
		    !memcmp(known_algs[i].name, name, len))
			return &known_algs[i];
	return NULL;
}

static const struct alg_info *alg_by_id(int alg)
{
	for (size_t i = 0; i < NKNOWN; i++)
		if ((int)known_algs[i].alg == alg)
			return &known_algs[i];
	return NULL;
}

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes n characters of unpadded base64url, already checked to be in
 * the alphabet, into out (room for n * 3 / 4 bytes).  Returns the length. */
static size_t b64url_decode(const char *s, size_t n, char *out)
{
	unsigned acc = 0, bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 6) | (unsigned)b64url_val((unsigned char)s[i]);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return o;
}

/* Parses exactly one JSON object from s[0, len) with the gateway's one
 * strict reader (json_check.c).  NULL otherwise. */
static json_object *parse_object(const char *s, size_t len)
{
	const char *why;

	return pav_json_parse_object(s, len, PAV_AUTH_JSON_DEPTH,
				     "not an object", &why);
}

/* Decodes and parses one base64url part of the token as a JSON object. */
static json_object *part_object(const char *token, size_t from, size_t to)
{
	char buf[DECODED_MAX];
	size_t n = b64url_decode(token + from, to - from, buf);

	return parse_object(buf, n);
}

static int string_is(json_object *v, const char *want, size_t wantlen)
{
	return json_object_is_type(v, json_type_string) &&
	       (size_t)json_object_get_string_len(v) == wantlen &&
	       !memcmp(json_object_get_string(v), want, wantlen);
}

/* ------------------------------------------------------------ loading */

static int load_algs(struct pav_auth *a, const char *const *names,
		     size_t n, char *err, size_t errlen)
{
	const struct alg_info *first = NULL;

	if (n == 0)
		return fail(err, errlen, "no algorithms");
	if (n > PAV_AUTH_MAX_ALGS)
		return fail(err, errlen, "more than %d algorithms",
			    PAV_AUTH_MAX_ALGS);
	for (size_t i = 0; i < n; i++) {
		const struct alg_info *ai =
			names[i] ? alg_by_name(names[i], strlen(names[i])) : NULL;

		if (!ai)
			return fail(err, errlen, "unsupported algorithm \"%.16s\"",
				    names[i] ? names[i] : "(null)");
		if (!first)
			first = ai;
		if (ai->kind != first->kind)
			return fail(err, errlen,
				    "algorithm %s cannot be mixed with %s",
				    ai->name, first->name);
		if (ai->curve != first->curve)
			return fail(err, errlen,
				    "%s and %s need different keys", first->name,
				    ai->name);
		a->algs[a->nalgs++] = (int)ai->alg;
	}
	a->kind = first->kind;
	return 0;
}

/* Reads the whole key file (at most PAV_AUTH_MAX_KEY_FILE bytes). */
static int read_key_file(struct pav_auth *a, const char *path, char *err,
			 size_t errlen)
{
	char *buf;
	size_t n;
	int rc;

	if (!path)
		return fail(err, errlen, "no key file");
	rc = pav_secret_read(path, PAV_AUTH_MAX_KEY_FILE, &buf, &n);
	if (rc == -EFBIG)
		return fail(err, errlen, "key file larger than %d bytes",
			    PAV_AUTH_MAX_KEY_FILE);
	if (rc == -ENOMEM)
		return fail_nomem(err, errlen);
	if (rc)
		return fail(err, errlen, "cannot read key file: %s",
			    pav_secret_why(rc));
	/* an exact-size copy, so the big buffer can be wiped right away */
	a->key = malloc(n ? n : 1);
	if (a->key) {
		memcpy(a->key, buf, n);
		a->keylen = n;
	}
	pav_secret_free(buf, n);
	return a->key ? 0 : fail_nomem(err, errlen);
}

static EVP_PKEY *parse_pubkey(const unsigned char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey = NULL;

	if (bio) {
		pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error(); /* a failed parse leaves errors queued */
	return pkey;
}

static int check_secret(struct pav_auth *a, char *err, size_t errlen)
{
	const char *name = alg_by_id(a->algs[0])->name;
	EVP_PKEY *pkey;

	if (a->keylen && a->key[a->keylen - 1] == '\n')
		a->keylen--;
	if (a->keylen && a->key[a->keylen - 1] == '\r')
		a->keylen--;
	if (a->keylen == 0)
		return fail(err, errlen, "empty secret");
	pkey = parse_pubkey(a->key, a->keylen);
	if (pkey) {
		EVP_PKEY_free(pkey);
		return fail(err, errlen, "%s needs a secret, not a public key",
			    name);
	}
	return 0;
}

/* 0 when pkey suits the pinned algorithm ai, else the reason in err. */
static int check_pubkey(EVP_PKEY *pkey, const struct alg_info *ai,
			char *err, size_t errlen)
{
	char group[64];

	if (ai->kind == PAV_KEY_RSA) {
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
			return fail(err, errlen, "%s needs an RSA public key",
				    ai->name);
		if (EVP_PKEY_get_bits(pkey) < PAV_AUTH_MIN_RSA_BITS)
			return fail(err, errlen,
				    "RSA key has %d bits, fewer than %d",
				    EVP_PKEY_get_bits(pkey),
				    PAV_AUTH_MIN_RSA_BITS);
		return 0;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
	    OBJ_txt2nid(group) != ai->curve) {
		ERR_clear_error();
		return fail(err, errlen, "%s needs a %s public key", ai->name,
			    ai->curve == NID_secp384r1 ? "P-384" : "P-256");
	}
	return 0;
}

/* A public key that suits the pinned algorithms is kept in a->pkey. */
static int check_pem(struct pav_auth *a, char *err, size_t errlen)
{
	EVP_PKEY *pkey = parse_pubkey(a->key, a->keylen);
	int rc;

	if (!pkey)
		return fail(err, errlen, "not a PEM public key");
	rc = check_pubkey(pkey, alg_by_id(a->algs[0]), err, errlen);
	if (rc)
		EVP_PKEY_free(pkey);
	else
		a->pkey = pkey;
	return rc;
}

/* An HMAC context keyed with the secret for each pinned HS algorithm. */
static int make_hmacs(struct pav_auth *a, char *err, size_t errlen)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	int ok = mac != NULL;

	for (size_t i = 0; ok && i < a->nalgs; i++) {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(
				OSSL_MAC_PARAM_DIGEST,
				(char *)EVP_MD_get0_name(
					alg_by_id(a->algs[i])->md()),
				0),
			OSSL_PARAM_construct_end(),
		};

		a->hmac[i] = EVP_MAC_CTX_new(mac);
		ok = a->hmac[i] &&
		     EVP_MAC_init(a->hmac[i], a->key, a->keylen, params) == 1;
	}
	EVP_MAC_free(mac); /* the contexts hold their own references */
	ERR_clear_error();
	return ok ? 0 : fail(err, errlen, "cannot make the HMAC of the secret");
}

static int copy_opt(char **dst, const char *src, char *err, size_t errlen)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : fail_nomem(err, errlen);
}

int pav_auth_load(struct pav_auth *a, const char *const *algorithms,
		  size_t nalgs, const char *key_file, const char *issuer,
		  const char *audience, int leeway_s, char *err, size_t errlen)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->leeway_s = leeway_s;
	rc = load_algs(a, algorithms, nalgs, err, errlen);
	if (!rc && leeway_s < 0)
		rc = fail(err, errlen, "negative leeway");
	if (!rc)
		rc = read_key_file(a, key_file, err, errlen);
	if (!rc)
		rc = a->kind == PAV_KEY_HMAC ? check_secret(a, err, errlen)
					     : check_pem(a, err, errlen);
	if (!rc && a->kind == PAV_KEY_HMAC)
		rc = make_hmacs(a, err, errlen);
	if (!rc)
		rc = copy_opt(&a->issuer, issuer, err, errlen);
	if (!rc)
		rc = copy_opt(&a->audience, audience, err, errlen);
	if (rc)
		pav_auth_free(a);
	return rc;
}

size_t pav_auth_secret_short(const struct pav_auth *a)
{
	size_t want = 0;

	if (a->kind != PAV_KEY_HMAC)
		return 0;
	for (size_t i = 0; i < a->nalgs; i++) {
		int n = EVP_MD_get_size(alg_by_id(a->algs[i])->md());

		if (n > 0 && (size_t)n > want)
			want = (size_t)n;
	}
	return a->keylen < want ? want : 0;
}

void pav_auth_free(struct pav_auth *a)
{
	if (!a)
		return;
	if (a->key) {
		OPENSSL_cleanse(a->key, a->keylen);
		free(a->key);
	}
	EVP_PKEY_free(a->pkey);
	for (size_t i = 0; i < PAV_AUTH_MAX_ALGS; i++)
		EVP_MAC_CTX_free(a->hmac[i]);
	free(a->issuer);
	free(a->audience);
	memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------ verifying */

/* A part of n characters ends in one whose low 4 (n % 4 == 2) or 2
 * (n % 4 == 3) bits encode nothing, and every encoder writes them as 0.
 * Others would spell the same bytes a second way: a signature that still
 * verifies, so one token with many spellings. */
static int b64url_canonical_end(const char *part, size_t n)
{
	static const int spare_bits[4] = {0, 0, 0x0f, 0x03};

	return !(b64url_val((unsigned char)part[n - 1]) & spare_bits[n % 4]);
}

/* Three non-empty base64url parts, none of a length that base64 cannot
 * produce (4n + 1) or with spare bits set, within PAV_AUTH_MAX_TOKEN. */
static const char *split_token(const char *t, struct parts *p)
{
	size_t dots = 0;

	if (!t || !*t)
		return "token missing";
	p->len = strnlen(t, PAV_AUTH_MAX_TOKEN + 1);
	if (p->len > PAV_AUTH_MAX_TOKEN)
		return "token too long";
	for (size_t i = 0; i < p->len; i++) {
		if (t[i] != '.') {
			if (b64url_val((unsigned char)t[i]) < 0)
				return "malformed token";
			continue;
		}
		if (++dots > 2)
			return "malformed token";
		*(dots == 1 ? &p->dot1 : &p->dot2) = i;
	}
	if (dots != 2 || p->dot1 == 0 || p->dot2 == p->dot1 + 1 ||
	    p->dot2 + 1 == p->len)
		return "malformed token";
	if (p->dot1 % 4 == 1 || (p->dot2 - p->dot1 - 1) % 4 == 1 ||
	    (p->len - p->dot2 - 1) % 4 == 1)
		return "malformed token";
	if (!b64url_canonical_end(t, p->dot1) ||
	    !b64url_canonical_end(t + p->dot1 + 1, p->dot2 - p->dot1 - 1) ||
	    !b64url_canonical_end(t + p->dot2 + 1, p->len - p->dot2 - 1))
		return "malformed token";
	return NULL;
}

static jwt_alg_t pinned_alg(const struct pav_auth *a, json_object *v)
{
	const struct alg_info *ai = alg_by_name(
		json_object_get_string(v), (size_t)json_object_get_string_len(v));

	for (size_t i = 0; ai && i < a->nalgs; i++)
		if (a->algs[i] == (int)ai->alg)
			return ai->alg;
	return JWT_ALG_INVAL;
}

static const char *check_header(const struct pav_auth *a, json_object *h,
				jwt_alg_t *alg)
{
	json_object *v;

	if (!json_object_object_get_ex(h, "alg", &v) ||
	    !json_object_is_type(v, json_type_string))
		return "malformed token";
	*alg = pinned_alg(a, v);
	if (*alg == JWT_ALG_INVAL)
		return "algorithm not allowed";
	if (json_object_object_get_ex(h, "typ", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	     json_object_get_string_len(v) != 3 ||
	     strcasecmp(json_object_get_string(v), "JWT")))
		return "unsupported token type";
	if (json_object_object_get_ex(h, "crit", NULL))
		return "unsupported critical header";
	return NULL;
}

/* Header and claims are JSON objects and the header pins an algorithm.
 * The claims, as the gateway's strict reader parsed them, go to *claims:
 * they are what the signature covers, once libjwt has checked it. */
static const char *check_front(const struct pav_auth *a, const char *token,
			       const struct parts *p, jwt_alg_t *alg,
			       json_object **claims)
{
	json_object *o = part_object(token, 0, p->dot1);
	const char *r;

	if (!o)
		return "malformed token";
	r = check_header(a, o, alg);
	json_object_put(o);
	if (r)
		return r;
	*claims = part_object(token, p->dot1 + 1, p->dot2);
	return *claims ? NULL : "malformed token";
}

/* The longest signature: RSA of 16384 bits (no key file is larger). */
#define SIG_MAX 2048

/* HS*: the MAC of header.claims, with the context keyed at load. */
static const char *check_hmac(const struct pav_auth *a, size_t which,
			      const char *token, size_t signed_len,
			      const unsigned char *sig, size_t siglen)
{
	EVP_MAC_CTX *c = EVP_MAC_CTX_dup(a->hmac[which]);
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	int ok = c && EVP_MAC_update(c, (const unsigned char *)token,
				     signed_len) == 1 &&
		 EVP_MAC_final(c, md, &mdlen, sizeof(md)) == 1;

	EVP_MAC_CTX_free(c);
	if (!ok) {
		ERR_clear_error();
		return "internal error";
	}
	return mdlen == siglen && !CRYPTO_memcmp(md, sig, siglen)
		       ? NULL
		       : "bad signature";
}

/* ES*: JWS carries r and s as two big-endian numbers of the curve's size
 * (RFC 7518, 3.4); OpenSSL wants them DER-encoded.  0 on success. */
static int ecdsa_der(const struct alg_info *ai, const unsigned char *sig,
		     size_t siglen, unsigned char *der, size_t *derlen)
{
	size_t half = ai->curve == NID_secp384r1 ? 48 : 32;
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	unsigned char *p = der;
	int n = -1;

	if (siglen != 2 * half)
		return -1;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, (int)half, NULL);
	s = BN_bin2bn(sig + half, (int)half, NULL);
	if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL; /* es owns them */
		if (i2d_ECDSA_SIG(es, NULL) <= (int)*derlen)
			n = i2d_ECDSA_SIG(es, &p);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return -1;
	*derlen = (size_t)n;
	return 0;
}

/* RS*, ES*: the signature over header.claims, with the key parsed at load. */
static const char *check_pkey(const struct pav_auth *a,
			      const struct alg_info *ai, const char *token,
			      size_t signed_len, const unsigned char *sig,
			      size_t siglen)
{
	unsigned char der[2 * 48 + 16];
	size_t derlen = sizeof(der);
	EVP_MD_CTX *c;
	int rc = 0;

	if (ai->kind == PAV_KEY_EC) {
		if (ecdsa_der(ai, sig, siglen, der, &derlen)) {
			ERR_clear_error();
			return "bad signature";
		}
		sig = der;
		siglen = derlen;
	}
	c = EVP_MD_CTX_new();
	if (!c)
		return "internal error";
	if (EVP_DigestVerifyInit(c, NULL, ai->md(), NULL, a->pkey) == 1)
		rc = EVP_DigestVerify(c, sig, siglen,
				      (const unsigned char *)token, signed_len);
	EVP_MD_CTX_free(c);
	ERR_clear_error(); /* a failed check leaves errors that TLS would see */
	return rc == 1 ? NULL : "bad signature";
}

/* The signature (after the second dot) of header.claims, for the pinned
 * algorithm alg. */
static const char *check_signature(const struct pav_auth *a,
				   const char *token, const struct parts *p,
				   jwt_alg_t alg)
{
	const struct alg_info *ai = alg_by_id(alg);
	unsigned char sig[SIG_MAX];
	size_t n = p->len - p->dot2 - 1, which = 0;

	if (!ai || !a->key || a->keylen == 0)
		return "internal error";
	if (n > SIG_MAX / 3 * 4)
		return "bad signature";
	n = b64url_decode(token + p->dot2 + 1, n, (char *)sig);
	if (ai->kind != PAV_KEY_HMAC)
		return a->pkey ? check_pkey(a, ai, token, p->dot2, sig, n)
			       : "internal error";
	while (which < a->nalgs && a->algs[which] != (int)alg)
		which++;
	if (which == a->nalgs || !a->hmac[which])
		return "internal error";
	return check_hmac(a, which, token, p->dot2, sig, n);
}

/* 0: absent; 1: a number within +-PAV_AUTH_MAX_TIME, in *out; -1: present
 * but not that. */
static int get_time(json_object *c, const char *key, double *out)
{
	json_object *v;

	if (!json_object_object_get_ex(c, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return -1;
	*out = json_object_get_double(v);
	return fabs(*out) <= PAV_AUTH_MAX_TIME ? 1 : -1; /* false for NaN */
}

static const char *check_times(const struct pav_auth *a, json_object *c,
			       int64_t now_s)
{
	double now = (double)now_s, exp, t;
	int has, leeway = a->leeway_s;

	has = get_time(c, "exp", &exp);
	if (has == 0)
		return "missing exp";
	if (has < 0)
		return "invalid exp";
	if (now > exp + leeway)
		return "token expired";
	has = get_time(c, "nbf", &t);
	if (has < 0)
		return "invalid nbf";
	if (has > 0 && now + leeway < t)
		return "token not yet valid";
	has = get_time(c, "iat", &t);
	if (has < 0)
		return "invalid iat";
	/* what is left of it must fit (a clock ahead of ours by up to the
	 * leeway passes), and so must its whole life when it says when it
	 * was issued */
	if (a->max_lifetime_s && (exp - now - leeway > a->max_lifetime_s ||
				  (has && exp - t > a->max_lifetime_s)))
		return "token lifetime too long";
	return NULL;
}

static const char *check_iss_aud(const struct pav_auth *a, json_object *c)
{
	json_object *v;
	size_t n;

	if (a->issuer &&
	    (!json_object_object_get_ex(c, "iss", &v) ||
	     !string_is(v, a->issuer, strlen(a->issuer))))
		return "wrong issuer";
	if (!a->audience)
		return NULL;
	n = strlen(a->audience);
	if (!json_object_object_get_ex(c, "aud", &v))
		return "wrong audience";
	if (string_is(v, a->audience, n))
		return NULL;
	if (json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (string_is(json_object_array_get_idx(v, i),
				      a->audience, n))
				return NULL;
	return "wrong audience";
}

static const char *check_sub(json_object *c)
{
	json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(c, "sub", &v))
		return "missing sub";
	if (!json_object_is_type(v, json_type_string))
		return "invalid sub";
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n > PAV_AUTH_MAX_SUB)
		return "invalid sub";
	for (size_t i = 0; i < n; i++) /* [A-Za-z0-9_-]: base64url's set */
		if (b64url_val((unsigned char)s[i]) < 0)
			return "invalid sub";
	return NULL;
}

static const char *verify(const struct pav_auth *a, const char *token,
			  int64_t now_s, json_object **claims)
{
	struct parts p;
	jwt_alg_t alg = JWT_ALG_INVAL;
	const char *r;

	r = split_token(token, &p);
	if (!r)
		r = check_front(a, token, &p, &alg, claims);
	if (!r)
		r = check_signature(a, token, &p, alg);
	if (!r)
		r = check_times(a, *claims, now_s);
	if (!r)
		r = check_iss_aud(a, *claims);
	if (!r)
		r = check_sub(*claims);
	return r;
}

int pav_auth_verify(const struct pav_auth *a, const char *token,
		    int64_t now_s, json_object **claims, const char **why)
{
	json_object *c = NULL;
	const char *r = verify(a, token, now_s, &c);

	if (why)
		*why = r;
	if (r) {
		json_object_put(c);
		if (claims)
			*claims = NULL;
		return -EACCES;
	}
	if (claims)
		*claims = c;
	else
		json_object_put(c);
	return 0;
}

/* ------------------------------------------------------------ signing */

char *pav_auth_sign(const struct pav_auth *a, json_object *claims)
{
	jwt_t *jwt = NULL;
	char *out = NULL;

	if (!a || a->kind != PAV_KEY_HMAC || a->nalgs == 0 || !a->key ||
	    !json_object_is_type(claims, json_type_object))
		return NULL;
	if (jwt_new(&jwt))
		return NULL;
	if (!jwt_add_grants_json(jwt, json_object_to_json_string_ext(
					      claims, JSON_C_TO_STRING_PLAIN)) &&
	    !jwt_set_alg(jwt, (jwt_alg_t)a->algs[0], a->key, (int)a->keylen))
		out = jwt_encode_str(jwt); /* libjwt 1.10 allocates with malloc */
	jwt_free(jwt);
	return out;
}
