/*
 * vhost.c — runtime state of the configured vhosts and namespaces: JWT
 * keys, plugin instances and what they register, API keys; and their
 * reload on SIGHUP (see vhost.h).
 */
#include "vhost.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "channel.h"
#include "core.h"
#include "envelope.h"
#include "ids.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "secret.h"

/* ---- namespaces ---- */

const struct pav_history_cfg *pav_ns_history(const struct pav_ns *ns,
					     const char *channel)
{
	int k = pav_channel_shared_kind(channel);

	if (!ns || k < 0)
		return NULL;
	return ns->history[k].size > 0 ? &ns->history[k] : NULL;
}

static struct pav_ns *ns_find(struct pav_core *core, const char *name)
{
	for (size_t i = 0; i < core->nns; i++)
		if (!strcmp(core->nss[i].name, name))
			return &core->nss[i];
	return NULL;
}

/* One pav_ns per distinct namespace; its history is the one any vhost of
 * it configured (the configuration made sure they agree). */
static int ns_setup(struct pav_core *core)
{
	core->nss = calloc(core->cfg.nvhosts, sizeof(*core->nss));
	if (!core->nss)
		return -ENOMEM;
	for (size_t i = 0; i < core->cfg.nvhosts; i++) {
		const struct pav_vhost_config *vc = &core->cfg.vhosts[i];
		struct pav_ns *ns = ns_find(core, vc->ns);

		if (!ns) {
			ns = &core->nss[core->nns++];
			ns->name = vc->ns;
			if (!(ns->checks = pav_map_new()))
				return -ENOMEM;
		}
		if (vc->history_set)
			memcpy(ns->history, vc->history, sizeof(ns->history));
	}
	return 0;
}

static void ns_teardown(struct pav_core *core)
{
	for (size_t i = 0; i < core->nns; i++) {
		struct pav_ns *ns = &core->nss[i];

		for (size_t r = 0; r < ns->nroutes; r++)
			free(ns->routes[r].pattern);
		free(ns->routes);
		pav_map_free(ns->checks, free);
	}
	free(core->nss);
	core->nss = NULL;
	core->nns = 0;
}

/* ---- registration ---- */

static int refuse(struct pav_vhost *vh, const char *what, const char *name,
		  const char *owner)
{
	snprintf(vh->conflict, sizeof(vh->conflict), "%s %s: already %s",
		 what, name, owner);
	return -EEXIST;
}

int pav_vhost_register_handler(struct pav_vhost *vh, const char *type,
			       pav_handler_fn fn)
{
	struct pav_handler *h;
	char owner[96];

	if (!vh->creating || !type || !*type || !fn)
		return -EINVAL;
	if (pav_envelope_own_type(type))
		return refuse(vh, "message type", type,
			      "handled by the gateway itself");
	if ((h = pav_map_get(vh->handlers, type))) {
		snprintf(owner, sizeof(owner), "handled by plugin %s",
			 h->inst->plugin->name);
		return refuse(vh, "message type", type, owner);
	}
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct pav_handler){fn, vh->creating};
	if (pav_map_put(vh->handlers, type, h)) {
		free(h);
		return -ENOMEM;
	}
	pav_metrics_known_type(type); /* counted by name in /metrics */
	return 0;
}

/* Splits a pattern (a copy) at '/': "/v1/users/{id}/x" -> v1 users {id} x */
static int split_pattern(struct pav_route *r)
{
	char *save = NULL;

	r->nsegs = 0;
	for (char *p = strtok_r(r->pattern, "/", &save); p;
	     p = strtok_r(NULL, "/", &save)) {
		if (r->nsegs == PAV_ROUTE_MAX_SEGS)
			return -EINVAL;
		r->segs[r->nsegs++] = p;
	}
	return r->nsegs ? 0 : -EINVAL;
}

static int same_route(const struct pav_route *a, const struct pav_route *b)
{
	if (strcmp(a->method, b->method) || a->nsegs != b->nsegs)
		return 0;
	for (size_t i = 0; i < a->nsegs; i++) {
		int wa = a->segs[i][0] == '{', wb = b->segs[i][0] == '{';

		if (wa != wb || (!wa && strcmp(a->segs[i], b->segs[i])))
			return 0;
	}
	return 1;
}

static int valid_method(const char *m)
{
	return m && (!strcmp(m, "GET") || !strcmp(m, "POST") ||
		     !strcmp(m, "DELETE"));
}

static int add_route(struct pav_ns *ns, struct pav_route *r)
{
	struct pav_route *nr = realloc(ns->routes,
				       (ns->nroutes + 1) * sizeof(*nr));

	if (!nr)
		return -ENOMEM;
	ns->routes = nr;
	ns->routes[ns->nroutes++] = *r;
	return 0;
}

int pav_vhost_register_route(struct pav_vhost *vh, const char *method,
			     const char *pattern, pav_route_fn fn)
{
	struct pav_route r = {0};
	int rc;

	if (!vh->creating || !valid_method(method) || !fn || !pattern ||
	    strncmp(pattern, "/v1/", 4))
		return -EINVAL;
	snprintf(r.method, sizeof(r.method), "%s", method);
	r.fn = fn;
	r.inst = vh->creating;
	if (!(r.pattern = strdup(pattern)))
		return -ENOMEM;
	if ((rc = split_pattern(&r))) {
		free(r.pattern);
		return rc;
	}
	for (size_t i = 0; i < vh->ns->nroutes; i++) {
		const struct pav_route *o = &vh->ns->routes[i];

		if (!same_route(o, &r))
			continue;
		free(r.pattern);
		/* another vhost of the namespace enabled the same plugin: the
		 * first instance answers */
		if (o->inst->plugin == vh->creating->plugin)
			return 0;
		char owner[96];

		snprintf(owner, sizeof(owner), "routed to plugin %s",
			 o->inst->plugin->name);
		return refuse(vh, method, pattern, owner);
	}
	if ((rc = add_route(vh->ns, &r)))
		free(r.pattern);
	return rc;
}

int pav_vhost_register_check(struct pav_vhost *vh, const char *type,
			     pav_payload_check_fn fn)
{
	struct pav_check *c;
	char owner[96];

	if (!vh->creating || !type || !*type || !fn)
		return -EINVAL;
	if ((c = pav_map_get(vh->ns->checks, type))) {
		if (c->inst->plugin == vh->creating->plugin)
			return 0;
		snprintf(owner, sizeof(owner), "checked by plugin %s",
			 c->inst->plugin->name);
		return refuse(vh, "payload type", type, owner);
	}
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct pav_check){fn, vh->creating};
	if (pav_map_put(vh->ns->checks, type, c)) {
		free(c);
		return -ENOMEM;
	}
	return 0;
}

/* Does path (without query) match route r?  Captures into args. */
static int route_match(const struct pav_route *r, const char *path,
		       char *buf, size_t buflen, const char **args,
		       size_t *nargs, int *bad_arg)
{
	size_t seg = 0, used = 0;
	const char *p = path;

	*nargs = 0;
	while (*p == '/' && seg < r->nsegs) {
		const char *e = strchr(p + 1, '/');
		size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);

		if (r->segs[seg][0] == '{') {
			if (!pav_id_valid(p + 1, len))
				*bad_arg = 1;
			if (used + len + 1 > buflen) {
				/* no id is that long: the route, a bad id */
				*bad_arg = 1;
				args[(*nargs)++] = "";
			} else {
				memcpy(buf + used, p + 1, len);
				buf[used + len] = '\0';
				args[(*nargs)++] = buf + used;
				used += len + 1;
			}
		} else if (strlen(r->segs[seg]) != len ||
			   strncmp(r->segs[seg], p + 1, len)) {
			return 0;
		}
		seg++;
		p += len + 1;
	}
	return seg == r->nsegs && !*p;
}

const struct pav_route *pav_ns_route(const struct pav_ns *ns,
				     const char *method, const char *path,
				     char *buf, size_t buflen,
				     const char **args, size_t *nargs,
				     int *bad_arg)
{
	for (size_t i = 0; ns && i < ns->nroutes; i++) {
		const struct pav_route *r = &ns->routes[i];
		int bad = 0;

		if (strcmp(r->method, method) ||
		    !route_match(r, path, buf, buflen, args, nargs, &bad))
			continue;
		*bad_arg = bad;
		return r;
	}
	return NULL;
}

int pav_ns_path_known(const struct pav_ns *ns, const char *path)
{
	char buf[512];
	const char *args[PAV_ROUTE_MAX_SEGS];
	size_t n;
	int bad = 0;

	for (size_t i = 0; ns && i < ns->nroutes; i++)
		if (route_match(&ns->routes[i], path, buf, sizeof(buf), args,
				&n, &bad))
			return 1;
	return 0;
}

/* ---- setup ---- */

static int load_auth(struct pav_vhost *vh, char *err, size_t errlen)
{
	const struct pav_vhost_config *vc = vh->cfg;
	char why[256] = "";
	size_t want;

	if (pav_auth_load(&vh->auth, (const char *const *)vc->algorithms,
			  vc->nalgorithms, vc->key_file, vc->issuer,
			  vc->audience, vc->leeway_s, why, sizeof(why))) {
		snprintf(err, errlen, "%s: vhosts[%d].auth.key_file: %s",
			 vc->file, vc->file_index, why);
		return -EINVAL;
	}
	vh->auth.max_lifetime_s = vc->max_lifetime_s;
	want = pav_auth_secret_short(&vh->auth);
	if (want)
		pav_warn("%s: vhosts[%d].auth.key_file: the secret is %zu "
			 "bytes, shorter than the %zu RFC 7518 asks for the "
			 "pinned algorithms: it works, but is easier to guess",
			 vc->file, vc->file_index, vh->auth.keylen, want);
	return 0;
}

static int create_instance(struct pav_vhost *vh, const struct pav_host *host,
			   const char *name, json_object *opts, char *err,
			   size_t errlen)
{
	const struct pav_vhost_config *vc = vh->cfg;
	const struct pav_plugin *p = pav_loader_find(name);
	struct pav_instance *in = &vh->insts[vh->ninsts];
	char why[256] = "invalid options";

	if (!p) {
		snprintf(err, errlen, "%s: vhosts[%d].plugins.%s: no plugin "
			 "'%s' loaded from plugin_dirs (%s.so missing or refused)",
			 vc->file, vc->file_index, name, name, name);
		return -ENOENT;
	}
	*in = (struct pav_instance){p, NULL, vh};
	vh->creating = in;
	vh->conflict[0] = '\0';
	if (p->vhost_create(host, vh, opts, &in->state, why,
			    sizeof(why))) {
		vh->creating = NULL;
		/* a refused registration explains itself better than the
		 * plugin can: it names the other side */
		snprintf(err, errlen, "%s: vhosts[%d].plugins.%s.%s", vc->file,
			 vc->file_index, name, vh->conflict[0] ? vh->conflict : why);
		return -EINVAL;
	}
	vh->creating = NULL;
	vh->ninsts++;
	return 0;
}

static int load_plugins(struct pav_vhost *vh, const struct pav_host *host,
			char *err, size_t errlen)
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
		int rc = create_instance(vh, host, name, opts, err, errlen);

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

/* One line of a keys file: skipped (1), added (0) or refused (-errno). */
static int add_key_line(char *line, size_t len, unsigned lineno,
			struct pav_api_key **k, size_t *cnt, char *err,
			size_t errlen)
{
	struct pav_api_key *nk;
	char *s;

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
	if (nk)
		*k = nk;
	if (!nk || pav_api_key_digest(s, &nk[*cnt])) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*cnt)++;
	return 0;
}

/* Each line of buf (len bytes, a NUL after them), as getline() would cut
 * them: the last may lack its newline. */
static int add_key_lines(char *buf, size_t len, struct pav_api_key **k,
			 size_t *cnt, char *err, size_t errlen)
{
	char *end = buf + len, *p = buf;
	unsigned lineno = 0;
	int rc = 0;

	while (rc >= 0 && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			nl = end;
		*nl = '\0';
		rc = add_key_line(p, (size_t)(nl - p), ++lineno, k, cnt, err,
				  errlen);
		p = nl + 1;
	}
	return rc;
}

int pav_api_keys_load(const char *file, struct pav_api_key **keys, size_t *n,
		      char *err, size_t errlen)
{
	struct pav_api_key *k = NULL;
	size_t len, cnt = 0;
	char *buf;
	int rc = pav_secret_read(file, PAV_API_KEYS_FILE_MAX, &buf, &len);

	if (rc == -EFBIG)
		snprintf(err, errlen, "larger than %d bytes",
			 PAV_API_KEYS_FILE_MAX);
	else if (rc)
		snprintf(err, errlen, "cannot read: %s", pav_secret_why(rc));
	if (rc)
		return rc;
	rc = add_key_lines(buf, len, &k, &cnt, err, errlen);
	pav_secret_free(buf, len);
	if (rc >= 0 && !cnt) {
		rc = -EINVAL;
		snprintf(err, errlen, "no API key in the file");
	}
	if (rc < 0) {
		free(k);
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
			 vh->cfg->file, vh->cfg->file_index, why);
		return -EINVAL;
	}
	return 0;
}

/* trusted_proxies, checked at load: parsed once, for every accept. */
static int load_proxies(struct pav_vhost *vh)
{
	const struct pav_vhost_config *vc = vh->cfg;

	if (!vc->ntrusted_proxies)
		return 0;
	vh->proxies = calloc(vc->ntrusted_proxies, sizeof(*vh->proxies));
	if (!vh->proxies)
		return -ENOMEM;
	for (size_t i = 0; i < vc->ntrusted_proxies; i++)
		if (pav_cidr_parse(vc->trusted_proxies[i], &vh->proxies[i]))
			return -EINVAL;
	vh->nproxies = vc->ntrusted_proxies;
	return 0;
}

int pav_vhosts_setup(struct pav_core *core, const struct pav_host *host,
		     char *err, size_t errlen)
{
	int rc = ns_setup(core);

	if (rc)
		return rc;
	core->nvhosts = core->cfg.nvhosts;
	core->vhosts = calloc(core->nvhosts, sizeof(*core->vhosts));
	if (!core->vhosts)
		return -ENOMEM;
	for (size_t i = 0; i < core->nvhosts; i++) {
		struct pav_vhost *vh = &core->vhosts[i];

		vh->core = core;
		vh->cfg = &core->cfg.vhosts[i];
		vh->ns = ns_find(core, vh->cfg->ns);
		if (vh->cfg->kind == PAV_VHOST_INTERNAL)
			rc = load_api(vh, err, errlen);
		else if (!(rc = load_auth(vh, err, errlen)) &&
			 !(rc = load_proxies(vh)))
			rc = load_plugins(vh, host, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

void pav_vhosts_teardown(struct pav_core *core)
{
	for (size_t i = 0; core->vhosts && i < core->nvhosts; i++) {
		struct pav_vhost *vh = &core->vhosts[i];

		/* each instance cancels its own timers (plugin.h); what they
		 * leave is cancelled after them, not before: a timer freed
		 * here first would be cancelled twice */
		for (size_t k = 0; k < vh->ninsts; k++)
			if (vh->insts[k].plugin->vhost_destroy)
				vh->insts[k].plugin->vhost_destroy(
					vh->insts[k].state);
		pav_timers_cancel_all(&vh->timers);
		free(vh->insts);
		if (vh->handlers)
			pav_map_free(vh->handlers, free);
		pav_auth_free(&vh->auth);
		free(vh->api_keys);
		free(vh->proxies);
		free(vh->api_conns);
		free(vh->lws);
	}
	free(core->vhosts);
	core->vhosts = NULL;
	ns_teardown(core);
}

SSL_CTX *pav_tls_pair_load(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx && SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1)
		return ctx;
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* Certificate, chain and key go into a live context together: loading
 * them one by one there, a certificate that does not match the key would
 * stay in with no key, and every new handshake would fail. */
static int use_pair(SSL_CTX *ctx, SSL_CTX *pair)
{
	STACK_OF(X509) *chain = NULL;

	SSL_CTX_get0_chain_certs(pair, &chain);
	if (SSL_CTX_use_cert_and_key(ctx, SSL_CTX_get0_certificate(pair),
				     SSL_CTX_get0_privatekey(pair), chain,
				     1) == 1)
		return 0;
	ERR_clear_error();
	return -EINVAL;
}

static int reload_certs(struct pav_vhost *vh)
{
	const struct pav_vhost_config *vc = vh->cfg;
	SSL_CTX *pair;
	int rc = 0;

	if (!vc->tls)
		return 0;
	pair = pav_tls_pair_load(vc->tls_cert, vc->tls_key);
	if (!pair) {
		pav_err("vhost %s: certificate reload failed: %s and %s do not "
			"load or do not match; the old ones stay", vc->name,
			vc->tls_cert, vc->tls_key);
		return -EINVAL;
	}
	for (size_t i = 0; i < vh->nlws; i++)
		if (vh->lws[i].ssl_ctx && use_pair(vh->lws[i].ssl_ctx, pair))
			rc = -EINVAL;
	if (rc)
		pav_err("vhost %s: certificate reload failed: the new pair was "
			"not taken", vc->name);
	SSL_CTX_free(pair);
	return rc;
}

/* SIGHUP: new keys replace the old ones only when they load. */
static int reload_one(struct pav_vhost *vh)
{
	char err[512];
	int rc = reload_certs(vh);

	if (vh->cfg->kind == PAV_VHOST_INTERNAL) {
		struct pav_api_key *keys;
		size_t n;

		if (pav_api_keys_load(vh->cfg->api_keys_file, &keys, &n, err,
				      sizeof(err))) {
			pav_err("vhost %s: API keys not reloaded, the old ones "
				"stay: %s: %s", vh->cfg->name,
				vh->cfg->api_keys_file, err);
			return -EINVAL;
		}
		free(vh->api_keys);
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

int pav_vhosts_reload(struct pav_core *core)
{
	int rc = 0;

	for (size_t i = 0; i < core->nvhosts; i++)
		if (reload_one(&core->vhosts[i]))
			rc = -EINVAL;
	pav_info("reload: certificates and keys %s",
		 rc ? "partly reloaded (see errors)" : "reloaded");
	return rc;
}
