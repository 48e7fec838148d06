/* config_walk.c — applies a table of fields to a JSON object (config_walk.h).
 *
 * The walker knows value types, not the gateway: what a key means, its
 * range and the rules between keys live in config_schema.c's tables.
 */
#include "config_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_SHOWN 64 /* longest key quoted back in a message */

/* ---------------------------------------------------------- errors */

int pav_cfg_fail(struct pav_cfg_ctx *c, int rc, const char *path,
		 const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (!c->err || !c->errlen)
		return rc;
	if (path && *path)
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path,
			 reason);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->file, reason);
	return rc;
}

int pav_cfg_oom(struct pav_cfg_ctx *c, const char *path)
{
	return pav_cfg_fail(c, -ENOMEM, path, "out of memory");
}

/* Appends at most max bytes of s, control characters shown as '?'. */
static void append(char *out, size_t *n, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max && *n + 1 < PAV_CFG_KEYPATH; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[(*n)++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	out[*n] = '\0';
}

void pav_cfg_join(char *out, const char *base, const char *key)
{
	size_t n = 0;

	out[0] = '\0';
	append(out, &n, base, PAV_CFG_KEYPATH);
	if (n)
		append(out, &n, ".", 1);
	append(out, &n, key, KEY_SHOWN);
}

void pav_cfg_join_index(char *out, const char *base, size_t i)
{
	snprintf(out, PAV_CFG_KEYPATH, "%.200s[%zu]", base, i);
}

/* ---------------------------------------------------------- values */

int pav_cfg_in_set(const char *s, const char *set)
{
	for (; *s; s++)
		if (!strchr(set, *s))
			return 0;
	return 1;
}

int pav_cfg_has(json_object *obj, const char *key)
{
	return json_object_object_get_ex(obj, key, NULL);
}

int pav_cfg_get_str(struct pav_cfg_ctx *c, json_object *v, const char *path,
		    const char **out)
{
	if (!json_object_is_type(v, json_type_string))
		return pav_cfg_fail(c, -EINVAL, path, "must be a string");
	*out = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(*out))
		return pav_cfg_fail(c, -EINVAL, path,
				    "must not contain a NUL character");
	if (!**out)
		return pav_cfg_fail(c, -EINVAL, path, "must not be empty");
	return 0;
}

int pav_cfg_get_checked_str(struct pav_cfg_ctx *c, json_object *v,
			    const char *path, pav_cfg_check_fn check,
			    const char **out)
{
	const char *why;
	int rc = pav_cfg_get_str(c, v, path, out);

	if (rc)
		return rc;
	if (check && (why = check(*out)))
		return pav_cfg_fail(c, -EINVAL, path, "%s", why);
	return 0;
}

int pav_cfg_replace_str(struct pav_cfg_ctx *c, char **dst, const char *s,
			const char *path)
{
	char *copy = strdup(s);

	if (!copy)
		return pav_cfg_oom(c, path);
	free(*dst);
	*dst = copy;
	return 0;
}

/* Relative paths are relative to the main file's directory. */
char *pav_cfg_resolve(struct pav_cfg_ctx *c, const char *s)
{
	char *out;

	if (s[0] == '/')
		return strdup(s);
	if (asprintf(&out, "%s/%s", c->dir, s) < 0)
		return NULL;
	return out;
}

void pav_cfg_free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---------------------------------------------------------- fields */

/* Opened, not stat()ed: a file that exists but cannot be read is refused
 * at load, not at its first use.  O_NONBLOCK: a FIFO must not hang the
 * load. */
static int check_readable(struct pav_cfg_ctx *c, const char *file,
			  const char *path)
{
	struct stat st;
	int fd, rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return pav_cfg_fail(c, -EINVAL, path, "cannot read %s: %s",
				    file, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		rc = pav_cfg_fail(c, -EINVAL, path, "%s is not a regular file",
				  file);
	close(fd);
	return rc;
}

static int set_str(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		   json_object *v, char **dst, const char *path)
{
	const char *s;
	int rc = pav_cfg_get_checked_str(c, v, path, f->check, &s);

	return rc ? rc : pav_cfg_replace_str(c, dst, s, path);
}

static int set_file(struct pav_cfg_ctx *c, json_object *v, char **dst,
		    const char *path)
{
	const char *s = NULL;
	char *file;
	int rc = pav_cfg_get_str(c, v, path, &s);

	if (rc)
		return rc;
	file = pav_cfg_resolve(c, s);
	if (!file)
		return pav_cfg_oom(c, path);
	rc = check_readable(c, file, path);
	if (rc) {
		free(file);
		return rc;
	}
	free(*dst);
	*dst = file;
	return 0;
}

static int set_num(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		   json_object *v, char *dst, const char *path)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		goto bad;
	n = json_object_get_int64(v);
	if (n < f->min || n > f->max)
		goto bad;
	if (f->type == PAV_CFG_T_INT)
		*(int *)dst = (int)n;
	else
		*(size_t *)dst = (size_t)n;
	return 0;
bad:
	return pav_cfg_fail(c, -EINVAL, path,
			    "must be an integer from %lld to %lld", f->min,
			    f->max);
}

static int set_bool(struct pav_cfg_ctx *c, json_object *v, int *dst,
		    const char *path)
{
	if (!json_object_is_type(v, json_type_boolean))
		return pav_cfg_fail(c, -EINVAL, path, "must be true or false");
	*dst = json_object_get_boolean(v);
	return 0;
}

static int bad_choice(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		      const char *path)
{
	char list[256];
	size_t n = 0;

	list[0] = '\0';
	for (size_t i = 0; f->choices[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      i ? ", " : "", f->choices[i]);
	return pav_cfg_fail(c, -EINVAL, path, "must be one of %s", list);
}

static int set_enum(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		    json_object *v, char *dst, const char *path)
{
	const char *s = NULL;
	size_t i;

	if (!json_object_is_type(v, json_type_string))
		return bad_choice(c, f, path);
	s = json_object_get_string(v);
	for (i = 0; f->choices[i]; i++)
		if (!strcmp(s, f->choices[i]) &&
		    (size_t)json_object_get_string_len(v) == strlen(s))
			break;
	if (!f->choices[i])
		return bad_choice(c, f, path);
	if (f->type == PAV_CFG_T_ENUM) {
		*(int *)dst = (int)i;
		return 0;
	}
	return pav_cfg_replace_str(c, (char **)dst, s, path);
}

/* One item of a STRV/PATHV array, copied into *out. */
static int strv_item(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		     json_object *v, const char *path, char **out)
{
	const char *s;
	int rc = pav_cfg_get_checked_str(c, v, path, f->check, &s);

	if (rc)
		return rc;
	*out = f->type == PAV_CFG_T_PATHV ? pav_cfg_resolve(c, s) : strdup(s);
	return *out ? 0 : pav_cfg_oom(c, path);
}

/* The array and its count are replaced together, once every item is read,
 * so a failed load frees exactly what is stored. */
static int set_strv(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		    json_object *v, char *base, const char *path)
{
	char sub[PAV_CFG_KEYPATH], **vec = NULL;
	size_t i = 0, n;
	int rc = 0;

	if (!json_object_is_type(v, json_type_array))
		return pav_cfg_fail(c, -EINVAL, path,
				    "must be an array of strings");
	n = json_object_array_length(v);
	if ((long long)n < f->min)
		return pav_cfg_fail(c, -EINVAL, path, "must not be empty");
	vec = calloc(n + 1, sizeof(*vec));
	if (!vec)
		return pav_cfg_oom(c, path);
	for (i = 0; i < n && !rc; i++) {
		pav_cfg_join_index(sub, path, i);
		rc = strv_item(c, f, json_object_array_get_idx(v, i), sub,
			       &vec[i]);
	}
	if (rc) {
		pav_cfg_free_strv(vec, n);
		return rc;
	}
	pav_cfg_free_strv(*(char ***)(base + f->off),
			  *(size_t *)(base + f->off2));
	*(char ***)(base + f->off) = vec;
	*(size_t *)(base + f->off2) = n;
	return 0;
}

/* ---------------------------------------------------------- walker */

static int set_field(struct pav_cfg_ctx *c, const struct pav_cfg_field *f,
		     json_object *v, void *base, const char *path)
{
	char *p = (char *)base + f->off;

	switch (f->type) {
	case PAV_CFG_T_STR:
		return set_str(c, f, v, (char **)p, path);
	case PAV_CFG_T_FILE:
		return set_file(c, v, (char **)p, path);
	case PAV_CFG_T_INT:
	case PAV_CFG_T_SIZE:
		return set_num(c, f, v, p, path);
	case PAV_CFG_T_BOOL:
		return set_bool(c, v, (int *)p, path);
	case PAV_CFG_T_ENUM:
	case PAV_CFG_T_ENUM_STR:
		return set_enum(c, f, v, p, path);
	case PAV_CFG_T_STRV:
	case PAV_CFG_T_PATHV:
		return set_strv(c, f, v, base, path);
	case PAV_CFG_T_SECTION:
		return pav_cfg_walk(c, v, f->sec, base, path);
	case PAV_CFG_T_CUSTOM:
		return f->fn(c, v, base, path);
	}
	return -EINVAL;
}

static const struct pav_cfg_field *lookup(const struct pav_cfg_field *f,
					  const char *key)
{
	for (; f->key; f++)
		if (!strcmp(f->key, key))
			return f;
	return NULL;
}

static int check_required(struct pav_cfg_ctx *c, json_object *obj,
			  const struct pav_cfg_section *s, const char *path)
{
	char sub[PAV_CFG_KEYPATH];

	for (size_t i = 0; s->required && s->required[i]; i++) {
		if (pav_cfg_has(obj, s->required[i]))
			continue;
		pav_cfg_join(sub, path, s->required[i]);
		return pav_cfg_fail(c, -EINVAL, sub, "required");
	}
	return 0;
}

int pav_cfg_walk(struct pav_cfg_ctx *c, json_object *obj,
		 const struct pav_cfg_section *s, void *base, const char *path)
{
	char sub[PAV_CFG_KEYPATH];
	int rc;

	if (!json_object_is_type(obj, json_type_object))
		return pav_cfg_fail(c, -EINVAL, path, "must be an object");
	if (s->reset)
		s->reset(base);
	json_object_object_foreach(obj, key, val) {
		const struct pav_cfg_field *f = lookup(s->fields, key);

		pav_cfg_join(sub, path, key);
		if (!f)
			return pav_cfg_fail(c, -EINVAL, sub, "unknown key");
		rc = set_field(c, f, val, base, sub);
		if (rc)
			return rc;
	}
	rc = check_required(c, obj, s, path);
	if (!rc && s->finish)
		rc = s->finish(c, obj, base, path);
	return rc;
}
