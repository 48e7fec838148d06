/*
 * loader.c — loads the plugins the configuration enables, like nginx's
 * load_module: for each plugin name some vhost enables, "<name>.so" from
 * the first of plugin_dirs that has it.  Nothing else in those
 * directories is opened, so no stray shared object runs code (a
 * constructor runs at dlopen, before any check could refuse it).
 *
 * A plugin runs with the gateway's rights, so a plugin file and a plugin
 * directory must be writable by root or the gateway's own user only: owned
 * by one of them, neither group- nor world-writable.  A symlinked plugin
 * is resolved and its target, and the target's directory, pass the same
 * checks; the resolved file is what is loaded.  Refusals name the path and
 * why.  Other "*.so" files present (hidden ones aside) are reported as
 * warnings, and so is each directory above a plugin directory that others
 * could change (sticky ones of root or ours aside).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"

#define MAX_PLUGINS 64

struct loaded {
	void *dl;
	const struct pav_plugin *p;
	char *path; /* dir/<name>.so as found in plugin_dirs */
};

static struct loaded plugins[MAX_PLUGINS];
static size_t nplugins;
/* every dir/<name>.so tried during this load, loaded or refused */
static char *tried[MAX_PLUGINS];
static size_t ntried;
static enum pav_log_level unused_level = PAV_LOG_INFO;

void pav_loader_unused_level(enum pav_log_level level)
{
	unused_level = level;
}

const struct pav_plugin *pav_loader_find(const char *name)
{
	for (size_t i = 0; i < nplugins; i++)
		if (!strcmp(plugins[i].p->name, name))
			return plugins[i].p;
	return NULL;
}

/* ---- who may have written it ----------------------------------------- */

/* NULL when only root or our own user can change it, else why not. */
static const char *unsafe(const struct stat *st, char *buf, size_t len)
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(buf, len, "owned by uid %u, neither root nor the "
			 "gateway's user", (unsigned)st->st_uid);
		return buf;
	}
	if (st->st_mode & S_IWOTH)
		return "world-writable";
	if (st->st_mode & S_IWGRP)
		return "group-writable";
	return NULL;
}

/* Why a directory above a plugin directory lets someone else swap what is
 * below it, or NULL.  A sticky directory (/tmp) lets its writers rename
 * only their own entries, and the entry below is checked in its turn. */
static const char *unsafe_parent(const struct stat *st, char *buf,
				 size_t len)
{
	const char *why = unsafe(st, buf, len);

	if (why && (st->st_uid == 0 || st->st_uid == geteuid()) &&
	    (st->st_mode & S_ISVTX))
		return NULL;
	return why;
}

/* Warns of each directory above dir (resolved) that someone besides root
 * and the gateway's user could change: they could move dir aside and put
 * their own plugins in its place.  Only a warning: a build tree is often
 * somewhere like that, and the packages install under /usr/lib.  what
 * names dir in the warning. */
static void warn_parents(const char *what, const char *dir)
{
	char *real = realpath(dir, NULL), *slash;
	struct stat st;
	const char *why;
	char buf[96];

	if (!real)
		return;
	while ((slash = strrchr(real, '/'))) {
		slash[slash == real] = '\0'; /* "/x" → "/", "/x/y" → "/x" */
		if (!stat(real, &st) && (why = unsafe_parent(&st, buf,
							       sizeof(buf))))
			pav_warn("%s: %s above it is %s: whoever can "
				 "change it can replace the plugins", what,
				 real, why);
		if (slash == real)
			break;
	}
	free(real);
}

/* 0 when dir may hold plugins; -ENOENT when absent (a warning). */
static int dir_ok(const char *dir)
{
	struct stat st;
	const char *why;
	char buf[96], what[PATH_MAX + 32];

	if (stat(dir, &st)) {
		int e = errno;

		if (e != ENOENT)
			pav_err("plugin directory %s: %s: refused", dir,
				strerror(e));
		else
			pav_warn("plugin directory %s: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		pav_err("plugin directory %s: not a directory: refused", dir);
		return -ENOTDIR;
	}
	if ((why = unsafe(&st, buf, sizeof(buf)))) {
		pav_err("plugin directory %s: %s: refused (only root or the "
			"gateway's user may be able to change plugins)", dir,
			why);
		return -EPERM;
	}
	snprintf(what, sizeof(what), "plugin directory %s", dir);
	warn_parents(what, dir);
	return 0;
}

/* A symlinked plugin: its target and the target's directory are checked
 * as the plugin itself would be, and the directories above are warned of
 * as a plugin directory's are.  Returns the resolved path or NULL. */
static char *resolve_link(const char *path)
{
	char *real = realpath(path, NULL), *slash;
	struct stat st;
	const char *why = NULL;
	char buf[96], what[2 * PATH_MAX + 40];
	int bad;

	if (!real) {
		pav_err("plugin %s: symlink does not resolve (%s): refused",
			path, strerror(errno));
		return NULL;
	}
	slash = strrchr(real, '/');
	*slash = '\0';
	bad = stat(*real ? real : "/", &st) ||
	      (why = unsafe(&st, buf, sizeof(buf)));
	if (!bad) {
		snprintf(what, sizeof(what), "plugin %s: symlink into %s", path,
			 *real ? real : "/");
		warn_parents(what, *real ? real : "/");
	}
	*slash = '/';
	if (bad) {
		pav_err("plugin %s: symlink to %s, whose directory is %s: "
			"refused", path, real, why ? why : strerror(errno));
		free(real);
		return NULL;
	}
	return real;
}

/* dir/<name>.so: -ENOENT when absent; 0 with *file (malloc'd) the file to
 * load; another -errno when refused (logged). */
static int plugin_file(const char *path, char **file)
{
	struct stat st;
	const char *why;
	char buf[96];

	if (lstat(path, &st)) {
		int e = errno;

		if (e == ENOENT)
			return -ENOENT;
		pav_err("plugin %s: %s: refused", path, strerror(e));
		return -e;
	}
	*file = S_ISLNK(st.st_mode) ? resolve_link(path) : strdup(path);
	if (!*file)
		return -EPERM;
	if (stat(*file, &st) || !S_ISREG(st.st_mode)) {
		pav_err("plugin %s: not a regular file: refused", path);
		goto refused;
	}
	if ((why = unsafe(&st, buf, sizeof(buf)))) {
		pav_err("plugin %s%s%s: %s: refused (only root or the gateway's "
			"user may be able to change a plugin)", path,
			strcmp(path, *file) ? " -> " : "",
			strcmp(path, *file) ? *file : "", why);
		goto refused;
	}
	return 0;
refused:
	free(*file);
	*file = NULL;
	return -EPERM;
}

/* ---- the descriptor -------------------------------------------------- */

static int check(const char *path, const char *name,
		 const struct pav_plugin *p)
{
	if (!p) {
		pav_err("plugin %s: no '%s' symbol: not a pavilion plugin",
			path, PAV_PLUGIN_SYMBOL);
		return -EINVAL;
	}
	if (p->magic != PAV_PLUGIN_MAGIC) {
		pav_err("plugin %s: bad magic: not a pavilion plugin", path);
		return -EINVAL;
	}
	if (p->abi_version != PAV_PLUGIN_ABI_VERSION) {
		pav_err("plugin %s: built for plugin ABI version %u, this "
			"gateway has ABI version %u: refused (rebuild it "
			"against this gateway's pavilion/plugin.h)",
			path, p->abi_version, PAV_PLUGIN_ABI_VERSION);
		return -EPROTO;
	}
	if (!p->name || !*p->name || !p->vhost_create) {
		pav_err("plugin %s: descriptor without name or vhost_create",
			path);
		return -EINVAL;
	}
	if (strcmp(p->name, name)) {
		pav_err("plugin %s: declares the name '%s', not '%s': refused "
			"(a plugin named X is the file X.so)", path, p->name,
			name);
		return -EINVAL;
	}
	return 0;
}

static int load_one(const char *path, const char *file, const char *name)
{
	void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	const struct pav_plugin *p;

	if (!dl) {
		pav_err("plugin %s: %s", path, dlerror());
		return -EINVAL;
	}
	p = dlsym(dl, PAV_PLUGIN_SYMBOL);
	if (check(path, name, p)) {
		dlclose(dl);
		return -EINVAL;
	}
	plugins[nplugins++] = (struct loaded){dl, p, strdup(path)};
	pav_info("plugin %s %s loaded from %s", p->name,
		 p->version ? p->version : "", path);
	return 0;
}

/* ---- which ----------------------------------------------------------- */

/* Finds <name>.so in the first usable directory that has it and loads it.
 * Returns 0 (also when no directory has it: the vhost says so later). */
static int load_named(const struct pav_config *cfg, const int *usable,
		      const char *name)
{
	for (size_t i = 0; i < cfg->nplugin_dirs; i++) {
		char path[PATH_MAX], *file = NULL;
		int rc;

		if (!usable[i])
			continue;
		if (snprintf(path, sizeof(path), "%s/%s.so",
			     cfg->plugin_dirs[i], name) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		rc = plugin_file(path, &file);
		if (rc == -ENOENT)
			continue;
		if (ntried < MAX_PLUGINS)
			tried[ntried++] = strdup(path);
		if (!rc)
			rc = load_one(path, file, name);
		free(file);
		return rc;
	}
	return 0;
}

static int was_tried(const char *path)
{
	for (size_t i = 0; i < ntried; i++)
		if (tried[i] && !strcmp(tried[i], path))
			return 1;
	return 0;
}

static int is_visible_so(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 3 &&
	       !strcmp(d->d_name + n - 3, ".so");
}

/* Is name one of the enabled names (enabled_names())? */
static int is_enabled(const char *name, const char *const *names,
		      size_t nnames)
{
	for (size_t k = 0; k < nnames; k++)
		if (!strcmp(names[k], name))
			return 1;
	return 0;
}

/* Every other "*.so" of a directory is reported, never opened, with why:
 * loaded from an earlier directory, refused there, or enabled nowhere. */
static void warn_unused(const char *dir, const char *const *enabled,
			size_t nenabled)
{
	struct dirent **names;
	int n = scandir(dir, &names, is_visible_so, alphasort);

	for (int i = 0; i < n; i++) {
		char path[PATH_MAX], stem[NAME_MAX + 1];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		snprintf(stem, sizeof(stem), "%.*s",
			 (int)(strlen(names[i]->d_name) - 3), names[i]->d_name);
		if (was_tried(path))
			;
		else if (pav_loader_find(stem))
			pav_log(unused_level, NULL, "plugin file %s not loaded: "
				"an earlier plugin directory holds '%s'", path,
				stem);
		else if (is_enabled(stem, enabled, nenabled))
			pav_log(unused_level, NULL, "plugin file %s not loaded: "
				"'%s' of an earlier plugin directory was "
				"refused (see above)", path, stem);
		else
			pav_log(unused_level, NULL, "plugin file %s not loaded: "
				"no vhost enables a plugin '%s'", path, stem);
		free(names[i]);
	}
	if (n > 0)
		free(names);
}

/* The plugin names enabled on some vhost, each once; *more when there
 * are more than max. */
static size_t enabled_names(const struct pav_config *cfg,
			    const char **names, size_t max, int *more)
{
	size_t n = 0;

	*more = 0;
	for (size_t v = 0; v < cfg->nvhosts; v++) {
		json_object *plugins = cfg->vhosts[v].plugins;

		if (!plugins)
			continue;
		json_object_object_foreach(plugins, name, opts) {
			(void)opts;
			if (is_enabled(name, names, n))
				continue;
			if (n < max)
				names[n++] = name;
			else
				*more = 1;
		}
	}
	return n;
}

int pav_loader_load(const struct pav_config *cfg, int *refused)
{
	const char *names[MAX_PLUGINS];
	int more;
	size_t nnames = enabled_names(cfg, names, MAX_PLUGINS, &more);
	int *usable = calloc(cfg->nplugin_dirs + 1, sizeof(*usable));

	*refused = 0;
	if (!usable)
		return -ENOMEM;
	if (more) {
		pav_err("more than %d different plugins are enabled: the ones "
			"past the first %d are refused", MAX_PLUGINS,
			MAX_PLUGINS);
		(*refused)++;
	}
	for (size_t i = 0; i < cfg->nplugin_dirs; i++) {
		int rc = dir_ok(cfg->plugin_dirs[i]);

		usable[i] = !rc;
		if (rc && rc != -ENOENT)
			(*refused)++;
	}
	for (size_t k = 0; k < nnames; k++)
		if (load_named(cfg, usable, names[k]))
			(*refused)++;
	for (size_t i = 0; i < cfg->nplugin_dirs; i++)
		if (usable[i])
			warn_unused(cfg->plugin_dirs[i], names, nnames);
	free(usable);
	for (size_t i = 0; i < ntried; i++)
		free(tried[i]);
	ntried = 0;
	return 0;
}

void pav_loader_unload(void)
{
	for (size_t i = 0; i < nplugins; i++) {
		dlclose(plugins[i].dl);
		free(plugins[i].path);
	}
	nplugins = 0;
}
