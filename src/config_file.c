/* config_file.c — reads and merges the configuration files (config.h).
 *
 * The main file, then its include directory's drop-ins, each read whole,
 * parsed by the gateway's one strict JSON reader and walked through the
 * schema (config_schema.c) as it is read.  Merging is the schema's doing:
 * a later top-level key replaces the earlier value (its section is reset
 * to defaults first), a later "vhosts" appends.
 */
#include "config_walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_check.h"
#include "pav_build.h"
#include "secret.h"

#define CONFIG_MAX_BYTES (4 * 1024 * 1024)
#define CONFIG_MAX_DEPTH 32

/* ---------------------------------------------------------- one file */

/* O_NONBLOCK and the regular-file check: a FIFO or a device named as the
 * configuration must not hang or flood the load. */
static int read_all(struct pav_cfg_ctx *c, char **out, size_t *len)
{
	struct stat st;
	ssize_t n = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(c->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return pav_cfg_fail(c, -errno, NULL, "cannot read: %s",
				    strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_MAX_BYTES) {
		rc = pav_cfg_fail(c, -EINVAL, NULL, "not a regular file of at "
				  "most %d bytes", CONFIG_MAX_BYTES);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = pav_cfg_oom(c, NULL);
		goto out;
	}
	/* a signal during the read (SIGHUP's reload is one) is no failure */
	n = pav_read_upto(fd, buf, (size_t)st.st_size);
	if (n < 0) {
		rc = pav_cfg_fail(c, (int)n, NULL, "cannot read: %s",
				  strerror((int)-n));
		goto out;
	}
	buf[n] = '\0';
	*len = (size_t)n;
out:
	close(fd);
	if (rc)
		free(buf);
	else
		*out = buf;
	return rc;
}

static int json_fail(struct pav_cfg_ctx *c, const char *buf, size_t end,
		     const char *why)
{
	int line = 1, col = 1;

	for (size_t i = 0; i < end; i++, col++)
		if (buf[i] == '\n') {
			line++;
			col = 0;
		}
	return pav_cfg_fail(c, -EINVAL, NULL,
			    "invalid JSON: %s at line %d, column %d", why, line,
			    col);
}

/* A file's JSON, through the gateway's one strict reader (json_check.c):
 * errors name the line and column. */
static int parse_json(struct pav_cfg_ctx *c, const char *buf, size_t len,
		      json_object **out)
{
	static const char not_object[] = "must contain a JSON object";
	const char *why = NULL;
	size_t at = 0;

	*out = pav_json_parse_object_at(buf, len, CONFIG_MAX_DEPTH, not_object,
					&why, &at);
	if (*out)
		return 0;
	if (why == not_object)
		return pav_cfg_fail(c, -EINVAL, NULL, "%s", not_object);
	return json_fail(c, buf, at, why);
}

/* The copy in cfg->files outlives the load: vhosts and store point at it
 * to name their file in later messages. */
static int add_file(struct pav_cfg_ctx *c, const char *file)
{
	struct pav_config *cfg = c->cfg;
	char **files, *copy = strdup(file);

	files = copy ? realloc(cfg->files, (cfg->nfiles + 2) * sizeof(*files))
		     : NULL;
	if (!files) {
		free(copy);
		return pav_cfg_oom(c, NULL);
	}
	cfg->files = files;
	files[cfg->nfiles++] = copy;
	files[cfg->nfiles] = NULL;
	c->file = copy;
	return 0;
}

static int load_file(struct pav_cfg_ctx *c, const char *file, int is_main)
{
	json_object *obj = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	c->file = file;
	c->is_main = is_main;
	rc = add_file(c, file);
	if (!rc)
		rc = read_all(c, &buf, &len);
	if (!rc)
		rc = parse_json(c, buf, len, &obj);
	if (!rc)
		rc = pav_cfg_walk(c, obj, &pav_cfg_top_section, c->cfg, "");
	json_object_put(obj);
	/* the text may hold a password (a store URL's) */
	if (buf)
		explicit_bzero(buf, len);
	free(buf);
	return rc;
}

/* ---------------------------------------------------------- drop-ins */

/* Hidden files are skipped: an editor's lock file (".#10-x.json") is no
 * drop-in. */
static int is_dropin(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 &&
	       !strcmp(d->d_name + n - 5, ".json");
}

/* Byte order, not the locale's: the merge order must not depend on LANG. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Is file the main configuration file (another name for it included)? */
static int is_main_file(const struct stat *main_st, const char *file)
{
	struct stat st;

	return main_st && !stat(file, &st) && st.st_dev == main_st->st_dev &&
	       st.st_ino == main_st->st_ino;
}

/* The drop-ins in byte order; the main file, when it lies in its own
 * include directory ("include": "."), is no drop-in of itself. */
static int load_include(struct pav_cfg_ctx *c)
{
	const char *dir = c->cfg->include_dir;
	struct stat main_st;
	struct dirent **list;
	char *file;
	int n, rc = 0, have_main = !stat(c->cfg->path, &main_st);

	n = scandir(dir, &list, is_dropin, by_name);
	if (n < 0)
		return pav_cfg_fail(c, -EINVAL, "include",
				    "cannot read directory %s: %s", dir,
				    strerror(errno));
	for (int i = 0; i < n; i++) {
		if (!rc && asprintf(&file, "%s/%s", dir, list[i]->d_name) < 0)
			rc = pav_cfg_oom(c, "include");
		else if (!rc) {
			if (!is_main_file(have_main ? &main_st : NULL, file))
				rc = load_file(c, file, 0);
			free(file);
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

/* ---------------------------------------------------------- load */

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int set_defaults(struct pav_cfg_ctx *c, const char *path)
{
	struct pav_config *cfg = c->cfg;

	pav_cfg_log_reset(cfg);
	pav_cfg_store_reset(cfg);
	cfg->path = strdup(path);
	c->dir = dir_of(path);
	cfg->store.backend = strdup("memory");
	cfg->event_loop = strdup("ev");
	cfg->plugin_dirs = calloc(2, sizeof(char *));
	if (cfg->plugin_dirs) {
		cfg->plugin_dirs[0] = strdup(PAV_DEFAULT_PLUGIN_DIR);
		cfg->nplugin_dirs = cfg->plugin_dirs[0] != NULL;
	}
	if (!cfg->path || !c->dir || !cfg->store.backend || !cfg->event_loop ||
	    !cfg->nplugin_dirs)
		return pav_cfg_oom(c, NULL);
	return 0;
}

int pav_config_load(const char *path, struct pav_config *cfg, char *err,
		    size_t errlen)
{
	struct pav_cfg_ctx c = {.cfg = cfg, .file = path, .err = err,
				.errlen = errlen};
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	rc = set_defaults(&c, path);
	if (!rc)
		rc = load_file(&c, path, 1);
	if (!rc && cfg->include_dir) {
		c.file = cfg->files[0];
		rc = load_include(&c);
	}
	if (!rc && !cfg->nvhosts) {
		c.file = cfg->files[0];
		rc = pav_cfg_fail(&c, -EINVAL, "vhosts",
				  "at least one vhost is required");
	}
	free(c.dir);
	if (rc)
		pav_config_free(cfg);
	return rc;
}

/* ---------------------------------------------------------- free */

static void free_vhost(struct pav_vhost_config *vc)
{
	free(vc->name);
	free(vc->listen_host);
	pav_cfg_free_strv(vc->hostnames, vc->nhostnames);
	free(vc->ns);
	free(vc->tls_cert);
	free(vc->tls_key);
	free(vc->ws_path);
	pav_cfg_free_strv(vc->allowed_origins, vc->nallowed_origins);
	pav_cfg_free_strv(vc->trusted_proxies, vc->ntrusted_proxies);
	pav_cfg_free_strv(vc->algorithms, vc->nalgorithms);
	free(vc->key_file);
	free(vc->issuer);
	free(vc->audience);
	json_object_put(vc->plugins);
	free(vc->api_keys_file);
}

void pav_config_free(struct pav_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nvhosts; i++)
		free_vhost(&cfg->vhosts[i]);
	free(cfg->vhosts);
	free(cfg->path);
	free(cfg->include_dir);
	pav_cfg_free_strv(cfg->files, cfg->nfiles);
	pav_cfg_free_strv(cfg->plugin_dirs, cfg->nplugin_dirs);
	pav_cfg_store_reset(cfg); /* frees what store holds */
	free(cfg->event_loop);
	memset(cfg, 0, sizeof(*cfg));
}
