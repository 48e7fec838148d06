/*
 * main.c — command line: run the gateway, --check a configuration,
 * --version, and `token` to mint a development token.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ssl.h>

#include "auth.h"
#include "backend.h"
#include "channel.h"
#include "clock.h"
#include "core.h"
#include "host.h"
#include "hub.h"
#include "json_check.h"
#include "loader.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "peer.h"
#include "pav_build.h"
#include "server.h"
#include "session.h"
#include "vhost.h"

static struct pav_core gateway;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pavilion-gateway [-c FILE] [--check] [--version]\n"
		"       pavilion-gateway token --sub USER [--claims JSON] "
		"[--ttl SECONDS] [-c FILE] [--vhost NAME]\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"  --check            validate configuration, keys, "
		"certificates and plugins; bind nothing\n"
		"  --version          print the version\n",
		PAV_DEFAULT_CONFIG);
}

/* check: --check shows warnings whatever log.level says. */
static int load_config(const char *path, int check)
{
	char err[1024];
	int level;

	if (pav_config_load(path, &gateway.cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -EINVAL;
	}
	level = gateway.cfg.log_level;
	if (check && level < PAV_LOG_WARN)
		level = PAV_LOG_WARN;
	pav_log_setup(level, gateway.cfg.log_json);
	return 0;
}

static int check_tls(const struct pav_vhost_config *vc)
{
	SSL_CTX *ctx;

	if (!vc->tls)
		return 0;
	ctx = pav_tls_pair_load(vc->tls_cert, vc->tls_key);
	if (!ctx)
		fprintf(stderr, "%s: vhosts[%d].tls: certificate %s and key %s "
			"do not load or do not match\n",
			vc->file, vc->file_index, vc->tls_cert, vc->tls_key);
	SSL_CTX_free(ctx);
	return ctx ? 0 : -EINVAL;
}

/* --check: the backend can be made from the configuration (it connects
 * to nothing without an event loop). */
static int check_store(void)
{
	const struct pav_backend_env env = {0};
	char err[512];
	int rc = pav_store_open(&gateway.store, &gateway.cfg.store, &env, err,
				sizeof(err));

	if (rc)
		fprintf(stderr, "%s\n", err);
	pav_store_close(&gateway.store);
	return rc;
}

/* A file of secrets that every user of the machine may read: said, not
 * refused (the packages make them 0640 root:pavilion).  vhost < 0: key is
 * not a vhost's. */
static void warn_readable(const char *cfgfile, int vhost, const char *key,
			  const char *file)
{
	char where[48] = "";
	struct stat st;

	if (!file || stat(file, &st) || !(st.st_mode & S_IROTH))
		return;
	if (vhost >= 0)
		snprintf(where, sizeof(where), "vhosts[%d].", vhost);
	pav_warn("%s: %s%s: %s holds a secret and is readable by every user "
		 "of the machine (mode %04o): make it 0600, or 0640 for the "
		 "gateway's group", cfgfile, where, key, file,
		 (unsigned)(st.st_mode & 07777));
}

static int hs_pinned(const struct pav_vhost_config *vc)
{
	for (size_t i = 0; i < vc->nalgorithms; i++)
		if (!strncmp(vc->algorithms[i], "HS", 2))
			return 1;
	return 0;
}

static void warn_readable_secrets(const struct pav_config *cfg)
{
	for (size_t i = 0; i < cfg->nvhosts; i++) {
		const struct pav_vhost_config *vc = &cfg->vhosts[i];
		int n = vc->file_index;

		if (vc->tls)
			warn_readable(vc->file, n, "tls.key", vc->tls_key);
		if (hs_pinned(vc)) /* RS/ES: a public key */
			warn_readable(vc->file, n, "auth.key_file",
				      vc->key_file);
		warn_readable(vc->file, n, "api.keys_file", vc->api_keys_file);
	}
	warn_readable(cfg->store.file, -1, "store.password_file",
		      cfg->store.password_file);
	warn_readable(cfg->store.file, -1, "store.tls_key_file",
		      cfg->store.tls_key_file);
	warn_readable(cfg->store.file, -1,
		      "store.sentinel.sentinel_password_file",
		      cfg->store.sentinel_password_file);
}

/* Settings that load but work against each other: said, not refused. */
static void warn_settings(const struct pav_config *cfg)
{
	warn_readable_secrets(cfg);
	for (size_t i = 0; i < cfg->nvhosts; i++) {
		const struct pav_vhost_config *vc = &cfg->vhosts[i];

		if (vc->kind != PAV_VHOST_INTERNAL &&
		    vc->heartbeat_interval_s >= vc->idle_timeout_s)
			pav_warn("%s: vhosts[%d].websocket: heartbeat_interval_s "
				 "(%d) is not below idle_timeout_s (%d): a "
				 "client that only answers heartbeats is closed "
				 "4000 before the next one",
				 vc->file, vc->file_index,
				 vc->heartbeat_interval_s, vc->idle_timeout_s);
	}
}

/* Everything but binding: config, plugins, keys, plugin options. */
static int prepare(const char *path, int check, int *refused)
{
	char err[1024];
	int rc = load_config(path, check);

	if (rc)
		return rc;
	warn_settings(&gateway.cfg);
	gateway.sessions = pav_map_new();
	gateway.live = pav_map_new();
	gateway.hub = pav_hub_new(pav_session_revoke, &gateway);
	if (!gateway.sessions || !gateway.live || !gateway.hub)
		return -ENOMEM;
	pav_loader_unused_level(check ? PAV_LOG_WARN : PAV_LOG_INFO);
	pav_loader_load(&gateway.cfg, refused);
	/* only enabled plugins and their directories are looked at, so a
	 * refusal concerns something the configuration asked for: no start
	 * (--check goes on, to report the rest) */
	if (*refused && !check) {
		fprintf(stderr, "%d plugin(s) or plugin directories refused "
			"(see above)\n", *refused);
		return -EINVAL;
	}
	for (size_t i = 0; i < gateway.cfg.nvhosts; i++)
		if (check_tls(&gateway.cfg.vhosts[i]))
			rc = -EINVAL;
	if (rc)
		return rc;
	if ((rc = pav_vhosts_setup(&gateway, &pav_host_table, err,
				   sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		pav_err("%s", err);
	}
	return rc;
}

static void cleanup(void)
{
	pav_vhosts_teardown(&gateway);
	pav_hub_free(gateway.hub);
	gateway.hub = NULL;
	pav_peer_free();
	pav_map_free(gateway.sessions, NULL);
	pav_map_free(gateway.live, NULL);
	gateway.sessions = gateway.live = NULL;
	pav_loader_unload();
	pav_config_free(&gateway.cfg);
}

static int run(const char *path, int check)
{
	int refused = 0;
	int rc;

	if (!check)
		pav_server_catch_stop();
	rc = prepare(path, check, &refused);

	if (check) {
		if (!rc)
			rc = check_store();
		if (!rc && refused)
			fprintf(stderr, "%d plugin(s) or plugin directories refused "
				"(see above)\n",
				refused);
		if (!rc && !refused)
			printf("%s: configuration OK\n", path);
		cleanup();
		return rc || refused ? 1 : 0;
	}
	if (!rc)
		rc = pav_server_run(&gateway);
	cleanup();
	return rc ? 1 : 0;
}

/* ---- token ------------------------------------------------------------ */

#define TOKEN_TTL_MAX (10L * 366 * 86400) /* ten years */

struct token_args {
	const char *config, *sub, *claims, *vhost;
	long ttl;
};

static const struct pav_vhost_config *token_vhost(const char *name)
{
	for (size_t i = 0; i < gateway.cfg.nvhosts; i++) {
		const struct pav_vhost_config *vc = &gateway.cfg.vhosts[i];

		if (vc->kind == PAV_VHOST_PUBLIC &&
		    (!name || !strcmp(vc->name, name)))
			return vc;
	}
	return NULL;
}

/* --claims through the strict reader the gateway reads tokens with: what
 * it would refuse (a repeated key, trailing text) is not half-read here.
 * sub, iat and exp come from --sub and --ttl, so they may not be given. */
static json_object *parse_claims(const char *s)
{
	static const char not_object[] = "not a JSON object";
	static const char *const ours[] = {"sub", "iat", "exp", NULL};
	const char *why = NULL;
	json_object *c;

	if (!s)
		return json_object_new_object();
	c = pav_json_parse_object(s, strlen(s), PAV_AUTH_JSON_DEPTH,
				  not_object, &why);
	if (!c) {
		fprintf(stderr, "token: --claims must be a JSON object: %s\n",
			why);
		return NULL;
	}
	for (size_t i = 0; ours[i]; i++)
		if (json_object_object_get_ex(c, ours[i], NULL)) {
			fprintf(stderr, "token: --claims: \"%s\" is set by "
				"%s\n", ours[i],
				i ? "--ttl" : "--sub");
			json_object_put(c);
			return NULL;
		}
	return c;
}

static json_object *token_claims(const struct token_args *a,
				 const struct pav_vhost_config *vc)
{
	json_object *c = parse_claims(a->claims);
	int64_t now = pav_now_ms() / 1000;

	if (!c)
		return NULL;
	json_object_object_add(c, "sub", json_object_new_string(a->sub));
	json_object_object_add(c, "iat", json_object_new_int64(now));
	json_object_object_add(c, "exp", json_object_new_int64(now + a->ttl));
	if (vc->issuer && !json_object_object_get_ex(c, "iss", NULL))
		json_object_object_add(c, "iss",
				       json_object_new_string(vc->issuer));
	if (vc->audience && !json_object_object_get_ex(c, "aud", NULL))
		json_object_object_add(c, "aud",
				       json_object_new_string(vc->audience));
	return c;
}

static int mint(const struct token_args *a)
{
	const struct pav_vhost_config *vc;
	struct pav_auth auth = {0};
	json_object *claims;
	char err[256], *tok = NULL;

	if (load_config(a->config, 0))
		return 1;
	vc = token_vhost(a->vhost);
	if (!vc) {
		fprintf(stderr, "token: no public vhost %s\n",
			a->vhost ? a->vhost : "");
		return 1;
	}
	if (pav_auth_load(&auth, (const char *const *)vc->algorithms,
			  vc->nalgorithms, vc->key_file, vc->issuer,
			  vc->audience, vc->leeway_s, err, sizeof(err))) {
		fprintf(stderr, "%s: vhosts[%d].auth.key_file: %s\n", vc->file,
			vc->file_index, err);
		return 1;
	}
	claims = token_claims(a, vc);
	if (claims && auth.kind == PAV_KEY_HMAC)
		tok = pav_auth_sign(&auth, claims);
	else if (claims)
		fprintf(stderr, "token: vhost %s uses %s: only HS* vhosts can "
			"mint tokens here\n", vc->name, vc->algorithms[0]);
	if (tok)
		printf("%s\n", tok);
	free(tok);
	json_object_put(claims);
	pav_auth_free(&auth);
	return tok ? 0 : 1;
}

/* --ttl: a whole number of seconds, nothing after it; at most
 * TOKEN_TTL_MAX, so that exp stays a date. */
static int parse_ttl(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > TOKEN_TTL_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

static int token_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sub", required_argument, NULL, 's'},
		{"claims", required_argument, NULL, 'j'},
		{"ttl", required_argument, NULL, 't'},
		{"config", required_argument, NULL, 'c'},
		{"vhost", required_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	struct token_args a = {PAV_DEFAULT_CONFIG, NULL, NULL, NULL, 3600};
	int o;
	int rc;

	while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (o) {
		case 's': a.sub = optarg; break;
		case 'j': a.claims = optarg; break;
		case 't':
			if (parse_ttl(optarg, &a.ttl)) {
				fprintf(stderr, "token: --ttl must be a number "
					"of seconds from 1 to %ld\n",
					TOKEN_TTL_MAX);
				return 2;
			}
			break;
		case 'c': a.config = optarg; break;
		case 'v': a.vhost = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (!a.sub) {
		fprintf(stderr, "token: --sub is required\n");
		return 2;
	}
	if (!pav_id_valid(a.sub, strlen(a.sub))) {
		fprintf(stderr, "token: --sub must be 1-64 characters of "
			"[A-Za-z0-9_-]\n");
		return 2;
	}
	rc = mint(&a);
	pav_config_free(&gateway.cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = PAV_DEFAULT_CONFIG;
	int check = 0, o;

	if (argc > 1 && !strcmp(argv[1], "token"))
		return token_main(argc - 1, argv + 1);
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'k': check = 1; break;
		case 'V': printf("pavilion-gateway %s (plugin ABI %u)\n",
				 PAV_VERSION, PAV_PLUGIN_ABI_VERSION);
			  return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	return run(config, check);
}
