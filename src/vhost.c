/*
 * vhost.c — runtime state of the configured vhosts: JWT keys, plugin
 * instances and handler tables, API keys; and their reload on SIGHUP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gateway.h"
#include "log.h"

static int load_auth(struct pav_vhost *vh, char *err, size_t errlen)
{
	const struct pav_vhost_config *vc = vh->cfg;
	char why[256] = "";

	if (pav_auth_load(&vh->auth, (const char *const *)vc->algorithms,
			  vc->nalgorithms, vc->key_file, vc->issuer,
			  vc->audience, vc->leeway_s, why, sizeof(why))) {
		snprintf(err, errlen, "%s: vhosts[%d].auth.key_file: %s",
			 vc->file, vc->index, why);
		return -EINVAL;
	}
	return 0;
}

static int create_instance(struct pav_vhost *vh, const char *name,
			   json_object *opts, char *err, size_t errlen)
{
	const struct pav_vhost_config *vc = vh->cfg;
	const struct pav_plugin *p = pav_loader_find(name);
	struct pav_instance *in = &vh->insts[vh->ninsts];
	char why[256] = "invalid options";

	if (!p) {
		snprintf(err, errlen, "%s: vhosts[%d].plugins.%s: no plugin "
			 "'%s' loaded from plugin_dirs (%s.so missing or refused)",
			 vc->file, vc->index, name, name, name);
		return -ENOENT;
	}
	*in = (struct pav_instance){p, NULL};
	vh->creating = in;
	vh->conflict[0] = '\0';
	if (p->vhost_create(&pav_host_api, vh, opts, &in->state, why,
			    sizeof(why))) {
		vh->creating = NULL;
		/* a refused registration explains itself better than the
		 * plugin can: it names the other plugin */
		snprintf(err, errlen, "%s: vhosts[%d].plugins.%s.%s", vc->file,
			 vc->index, name, vh->conflict[0] ? vh->conflict : why);
		return -EINVAL;
	}
	vh->creating = NULL;
	vh->ninsts++;
	return 0;
}

static int load_plugins(struct pav_vhost *vh, char *err, size_t errlen)
{
	json_object *plugins = vh->cfg->plugins;
	size_t n = plugins ? (size_t)json_object_object_length(plugins) : 0;

	vh->handlers = pav_map_new();
	vh->insts = calloc(n ? n : 1, sizeof(*vh->insts));
	if (!vh->handlers || !vh->insts)
		return -ENOMEM;
	if (!plugins)
		return 0;
	json_object_object_foreach(plugins, name, opts) {
		int rc = create_instance(vh, name, opts, err, errlen);

		if (rc)
			return rc;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n", e[-1]))
		*--e = '\0';
	return s;
}

static void free_keys(char **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++) {
		explicit_bzero(keys[i], strlen(keys[i]));
		free(keys[i]);
	}
	free(keys);
}

/* One line of a keys file: skipped (1), added (0) or refused (-errno). */
static int add_key_line(char *line, size_t len, unsigned lineno, char ***k,
			size_t *cnt, char *err, size_t errlen)
{
	char *s, **nk;

	if (memchr(line, '\0', len)) {
		snprintf(err, errlen, "line %u: holds a NUL byte", lineno);
		return -EINVAL;
	}
	s = trim(line);
	if (!*s || *s == '#')
		return 1;
	/* a longer key could never be presented (api.c reads at most this
	 * much of the header): refused rather than cut into pieces */
	if (strlen(s) > PAV_API_KEY_MAX_LEN) {
		snprintf(err, errlen, "line %u: a key longer than %d characters "
			 "(the longest the API accepts)", lineno,
			 PAV_API_KEY_MAX_LEN);
		return -EINVAL;
	}
	nk = realloc(*k, (*cnt + 1) * sizeof(**k));
	if (!nk || !(nk[*cnt] = strdup(s))) {
		*k = nk ? nk : *k;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*k = nk;
	(*cnt)++;
	return 0;
}

int pav_api_keys_load(const char *file, char ***keys, size_t *n, char *err,
		      size_t errlen)
{
	FILE *f = fopen(file, "re");
	char *line = NULL, **k = NULL;
	size_t cap = 0, cnt = 0;
	unsigned lineno = 0;
	ssize_t len;
	int rc = 0;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		return rc;
	}
	/* whole lines, however long: a long one must not become two keys */
	while (rc >= 0 && (len = getline(&line, &cap, f)) >= 0)
		rc = add_key_line(line, (size_t)len, ++lineno, &k, &cnt, err,
				  errlen);
	if (rc >= 0 && ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "cannot read: %s", strerror(EIO));
	}
	fclose(f);
	if (line)
		explicit_bzero(line, cap);
	free(line);
	if (rc >= 0 && !cnt) {
		rc = -EINVAL;
		snprintf(err, errlen, "no API key in the file");
	}
	if (rc < 0) {
		free_keys(k, cnt);
		return rc;
	}
	*keys = k;
	*n = cnt;
	return 0;
}

static int load_api(struct pav_vhost *vh, char *err, size_t errlen)
{
	char why[256];

	if (pav_api_keys_load(vh->cfg->api_keys_file, &vh->api_keys,
			      &vh->napi_keys, why, sizeof(why))) {
		snprintf(err, errlen, "%s: vhosts[%d].api.keys_file: %s",
			 vh->cfg->file, vh->cfg->index, why);
		return -EINVAL;
	}
	return 0;
}

int pav_vhosts_setup(struct pav_gateway *gw, char *err, size_t errlen)
{
	gw->nvhosts = gw->cfg.nvhosts;
	gw->vhosts = calloc(gw->nvhosts, sizeof(*gw->vhosts));
	if (!gw->vhosts)
		return -ENOMEM;
	for (size_t i = 0; i < gw->nvhosts; i++) {
		struct pav_vhost *vh = &gw->vhosts[i];
		int rc;

		vh->cfg = &gw->cfg.vhosts[i];
		if (vh->cfg->kind == PAV_VHOST_INTERNAL)
			rc = load_api(vh, err, errlen);
		else if (!(rc = load_auth(vh, err, errlen)))
			rc = load_plugins(vh, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

void pav_vhosts_teardown(struct pav_gateway *gw)
{
	for (size_t i = 0; gw->vhosts && i < gw->nvhosts; i++) {
		struct pav_vhost *vh = &gw->vhosts[i];

		for (size_t k = 0; k < vh->ninsts; k++)
			if (vh->insts[k].plugin->vhost_destroy)
				vh->insts[k].plugin->vhost_destroy(
					vh->insts[k].state);
		free(vh->insts);
		if (vh->handlers)
			pav_map_free(vh->handlers, free);
		pav_auth_free(&vh->auth);
		free_keys(vh->api_keys, vh->napi_keys);
		free(vh->lws);
	}
	free(gw->vhosts);
	gw->vhosts = NULL;
}

static int reload_certs(struct pav_vhost *vh)
{
	const struct pav_vhost_config *vc = vh->cfg;
	int rc = 0;

	for (size_t i = 0; vc->tls && i < vh->nlws; i++) {
		SSL_CTX *ctx = vh->lws[i].ssl_ctx;

		if (!ctx)
			continue;
		if (SSL_CTX_use_certificate_chain_file(ctx, vc->tls_cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, vc->tls_key,
						SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			pav_err("vhost %s: certificate reload failed (%s, %s); "
				"the old one may be partly replaced",
				vc->name, vc->tls_cert, vc->tls_key);
			rc = -EINVAL;
		}
	}
	return rc;
}

/* SIGHUP: new keys replace the old ones only when they load. */
static int reload_one(struct pav_vhost *vh)
{
	char err[512];
	int rc = reload_certs(vh);

	if (vh->cfg->kind == PAV_VHOST_INTERNAL) {
		char **keys;
		size_t n;

		if (pav_api_keys_load(vh->cfg->api_keys_file, &keys, &n, err,
				      sizeof(err))) {
			pav_err("vhost %s: API keys not reloaded, the old ones "
				"stay: %s: %s", vh->cfg->name,
				vh->cfg->api_keys_file, err);
			return -EINVAL;
		}
		free_keys(vh->api_keys, vh->napi_keys);
		vh->api_keys = keys;
		vh->napi_keys = n;
		return rc;
	}
	struct pav_auth old = vh->auth;

	memset(&vh->auth, 0, sizeof(vh->auth));
	if (load_auth(vh, err, sizeof(err))) {
		pav_err("JWT key not reloaded: %s", err);
		pav_auth_free(&vh->auth);
		vh->auth = old;
		return -EINVAL;
	}
	pav_auth_free(&old);
	return rc;
}

int pav_vhosts_reload(struct pav_gateway *gw)
{
	int rc = 0;

	for (size_t i = 0; i < gw->nvhosts; i++)
		if (reload_one(&gw->vhosts[i]))
			rc = -EINVAL;
	pav_info("reload: certificates and keys %s",
		 rc ? "partly reloaded (see errors)" : "reloaded");
	return rc;
}
