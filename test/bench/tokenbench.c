/*
 * tokenbench — what one token check costs: pav_auth_verify() on a valid
 * token of each algorithm family, as a handshake or an `auth` renewal does.
 *
 *   build/test/bench/tokenbench [ROUNDS]     (default 20000 per algorithm)
 *
 * Keys are made here (an HS secret, RSA 2048, P-256, P-384), written to a
 * temporary directory, loaded the way the gateway loads a vhost's key file,
 * and a token per algorithm is signed with libjwt.  Prints microseconds per
 * verification (best of three passes, CPU time of this process).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"

static char dir[] = "/tmp/tokenbench-XXXXXX";

static void die(const char *what)
{
	fprintf(stderr, "tokenbench: %s\n", what);
	exit(1);
}

static char *path_of(const char *name)
{
	static char buf[4][128];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path_of(name), "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f))
		die("cannot write a key file");
}

/* Writes NAME.pub (public PEM) and returns the private key's PEM. */
static char *keypair(EVP_PKEY *k, const char *name, size_t *privlen)
{
	BIO *pub = BIO_new(BIO_s_mem()), *priv = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	if (!k || !pub || !priv || !PEM_write_bio_PUBKEY(pub, k) ||
	    !PEM_write_bio_PrivateKey(priv, k, NULL, NULL, 0, NULL, NULL))
		die("cannot make a key");
	n = BIO_get_mem_data(pub, &data);
	write_file(name, data, (size_t)n);
	n = BIO_get_mem_data(priv, &data);
	out = malloc((size_t)n);
	if (!out)
		die("out of memory");
	memcpy(out, data, (size_t)n);
	*privlen = (size_t)n;
	BIO_free(pub);
	BIO_free(priv);
	EVP_PKEY_free(k);
	return out;
}

static char *sign(const char *alg, const unsigned char *key, size_t keylen)
{
	char claims[160];
	jwt_t *jwt = NULL;
	char *tok;

	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"bench-user-1\",\"exp\":%lld,"
		 "\"zones\":[\"zone:a\",\"zone:b\"],\"name\":\"Bench\"}",
		 (long long)time(NULL) + 3600);
	if (jwt_new(&jwt) || jwt_add_grants_json(jwt, claims) ||
	    jwt_set_alg(jwt, jwt_str_alg(alg), key, (int)keylen))
		die("cannot sign");
	tok = jwt_encode_str(jwt);
	jwt_free(jwt);
	if (!tok)
		die("cannot sign");
	return tok;
}

static double cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void bench(const char *alg, const char *keyfile,
		  const unsigned char *signkey, size_t signlen, long rounds)
{
	const char *algs[] = {alg};
	struct pav_auth a;
	char err[200];
	char *tok = sign(alg, signkey, signlen);
	double best = 1e30;

	if (pav_auth_load(&a, algs, 1, path_of(keyfile), NULL, NULL, 0, err,
			  sizeof(err)))
		die(err);
	for (int pass = 0; pass < 3; pass++) {
		double t0 = cpu_s(), t;

		for (long i = 0; i < rounds; i++) {
			json_object *claims;
			const char *why;

			if (pav_auth_verify(&a, tok, time(NULL), &claims,
					    &why))
				die(why);
			json_object_put(claims);
		}
		t = (cpu_s() - t0) / (double)rounds;
		if (t < best)
			best = t;
	}
	printf("%s: %.2f us per verification (%zu-byte token)\n", alg,
	       best * 1e6, strlen(tok));
	pav_auth_free(&a);
	free(tok);
}

int main(int argc, char **argv)
{
	static const char secret[] = "a bench secret of some thirty-two bytes";
	long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	size_t rsalen, p256len, p384len;
	char *rsa, *p256, *p384;

	if (rounds <= 0)
		die("usage: tokenbench [ROUNDS]");
	if (!mkdtemp(dir))
		die("cannot make a temporary directory");
	write_file("secret", secret, sizeof(secret) - 1);
	rsa = keypair(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
		      "rsa.pub", &rsalen);
	p256 = keypair(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
		       "p256.pub", &p256len);
	p384 = keypair(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
		       "p384.pub", &p384len);
	bench("HS256", "secret", (const unsigned char *)secret,
	      sizeof(secret) - 1, rounds);
	bench("HS512", "secret", (const unsigned char *)secret,
	      sizeof(secret) - 1, rounds);
	bench("RS256", "rsa.pub", (unsigned char *)rsa, rsalen, rounds / 4);
	bench("ES256", "p256.pub", (unsigned char *)p256, p256len,
	      rounds / 4);
	bench("ES384", "p384.pub", (unsigned char *)p384, p384len,
	      rounds / 10);
	for (const char *const *f = (const char *const[]){
		     "secret", "rsa.pub", "p256.pub", "p384.pub", NULL};
	     *f; f++)
		unlink(path_of(*f));
	rmdir(dir);
	free(rsa);
	free(p256);
	free(p384);
	return 0;
}
