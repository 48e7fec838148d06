/*
 * loader.c — finds "*.so" plugins in the configured directories, checks
 * each descriptor (magic, ABI version, name) and refuses loudly.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "log.h"

#define MAX_PLUGINS 64

struct loaded {
	void *dl;
	const struct pav_plugin *p;
	char *path;
};

static struct loaded plugins[MAX_PLUGINS];
static size_t nplugins;

const struct pav_plugin *pav_loader_find(const char *name)
{
	for (size_t i = 0; i < nplugins; i++)
		if (!strcmp(plugins[i].p->name, name))
			return plugins[i].p;
	return NULL;
}

static int check(const char *path, const struct pav_plugin *p)
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
	if (pav_loader_find(p->name)) {
		pav_err("plugin %s: a plugin named '%s' is already loaded",
			path, p->name);
		return -EEXIST;
	}
	return 0;
}

static int load_one(const char *path)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	const struct pav_plugin *p;

	if (!dl) {
		pav_err("plugin %s: %s", path, dlerror());
		return -EINVAL;
	}
	p = dlsym(dl, PAV_PLUGIN_SYMBOL);
	if (check(path, p) || nplugins == MAX_PLUGINS) {
		dlclose(dl);
		return -EINVAL;
	}
	plugins[nplugins++] = (struct loaded){dl, p, strdup(path)};
	pav_info("plugin %s %s loaded from %s", p->name,
		 p->version ? p->version : "", path);
	return 0;
}

static int is_so(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 3 && !strcmp(d->d_name + n - 3, ".so");
}

/* Loads every plugin of one directory in lexical order; counts refusals. */
static void load_dir(const char *dir, int *refused)
{
	struct dirent **names;
	int n = scandir(dir, &names, is_so, alphasort);

	if (n < 0) {
		pav_warn("plugin directory %s: %s", dir, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (load_one(path))
			(*refused)++;
		free(names[i]);
	}
	free(names);
}

int pav_loader_load(const struct pav_config *cfg, int *refused)
{
	*refused = 0;
	for (size_t i = 0; i < cfg->nplugin_dirs; i++)
		load_dir(cfg->plugin_dirs[i], refused);
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
