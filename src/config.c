/* config.c — loads, merges and validates the configuration (DESIGN section 3).
 *
 * Each JSON object of the schema is described by a table of fields (key,
 * type, offset, range), nginx-style.  One walker applies a table to an
 * object, so a key missing from the table is an error, and every error names
 * the file that held the value and the value's JSON path.  Each file is
 * validated as it is read; a later top-level key replaces the earlier value
 * (its section is reset to defaults first), a later "vhosts" appends.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_check.h"
#include "pav_limits.h"
#include "pav_build.h"
#include "pavilion/plugin.h"

#define KEYPATH 256         /* room for a JSON path in a message */
#define KEY_SHOWN 64        /* longest key quoted back in a message */
#define NAME_MAX_LEN 64     /* vhost, namespace and plugin names */
#define HOST_MAX_LEN 253

struct ctx {
	struct pav_config *cfg;
	const char *file; /* the file being read; owned by cfg->files */
	char *dir;        /* the main file's directory: base of relative paths */
	int is_main;
	char *err;
	size_t errlen;
};

enum ftype {
	F_STR,      /* char *, optional check */
	F_FILE,     /* char *, a path that must name a readable regular file */
	F_INT,      /* int in [min, max] */
	F_SIZE,     /* size_t in [min, max] */
	F_BOOL,     /* int 0/1 */
	F_ENUM,     /* int: index in choices */
	F_ENUM_STR, /* char *: copy of the choice */
	F_STRV,     /* char ** (NULL-terminated) at off, count at off2 */
	F_PATHV,    /* F_STRV of paths, resolved against the main directory */
	F_SECTION,  /* a nested object, same base */
	F_CUSTOM,
};

struct section;
typedef int (*custom_fn)(struct ctx *c, json_object *v, void *base,
			 const char *path);
/* Returns NULL when s is fine, else the reason. */
typedef const char *(*check_fn)(const char *s);

struct field {
	const char *key;
	enum ftype type;
	size_t off;
	size_t off2;
	long long min, max; /* numbers; F_STRV: min is the least item count */
	const char *const *choices;
	check_fn check;
	const struct section *sec;
	custom_fn fn;
};

struct section {
	const struct field *fields;    /* ends with a NULL key */
	const char *const *required;   /* NULL-terminated, may be NULL */
	void (*reset)(void *base);     /* defaults, before each definition */
	custom_fn finish;              /* cross-field rules, after the keys */
};

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 4, 5)))
static int fail(struct ctx *c, int rc, const char *path, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (!c->err || !c->errlen)
		return rc;
	if (path && *path)
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, reason);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->file, reason);
	return rc;
}

static int oom(struct ctx *c, const char *path)
{
	return fail(c, -ENOMEM, path, "out of memory");
}

/* Appends at most max bytes of s, control characters shown as '?'. */
static void append(char *out, size_t *n, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max && *n + 1 < KEYPATH; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[(*n)++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	out[*n] = '\0';
}

static void join(char *out, const char *base, const char *key)
{
	size_t n = 0;

	out[0] = '\0';
	append(out, &n, base, KEYPATH);
	if (n)
		append(out, &n, ".", 1);
	append(out, &n, key, KEY_SHOWN);
}

static void join_index(char *out, const char *base, size_t i)
{
	snprintf(out, KEYPATH, "%.200s[%zu]", base, i);
}

/* ---------------------------------------------------------------- checks */

static int in_set(const char *s, const char *set)
{
	for (; *s; s++)
		if (!strchr(set, *s))
			return 0;
	return 1;
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"

static const char *check_name(const char *s)
{
	if (strlen(s) > NAME_MAX_LEN || !in_set(s, ALNUM "_.-"))
		return "must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
	return NULL;
}

static const char *check_plugin_name(const char *s)
{
	if (!*s || strlen(s) > NAME_MAX_LEN || !in_set(s, LOWER_ALNUM "_-"))
		return "plugin names are 1 to 64 characters of a-z 0-9 _ -";
	return NULL;
}

static const char *check_hostname(const char *s)
{
	if (!strncmp(s, "*.", 2))
		s += 2;
	if (!*s || strlen(s) > HOST_MAX_LEN || !in_set(s, ALNUM ".-"))
		return "must be a host name (A-Z a-z 0-9 . -, optionally "
		       "starting with \"*.\")";
	return NULL;
}

static const char *check_ws_path(const char *s)
{
	if (s[0] != '/' || strpbrk(s, "?# \t\r\n"))
		return "must start with \"/\" and contain no spaces, \"?\" or "
		       "\"#\"";
	return NULL;
}

/* A browser's Origin is scheme://host[:port]: no path, no trailing '/'. */
static const char *check_origin(const char *s)
{
	const char *sep = strstr(s, "://");

	if (!sep || sep == s || !sep[3] || strchr(sep + 3, '/'))
		return "must be an origin like \"https://example.com\" "
		       "(scheme://host[:port], no path)";
	return NULL;
}

static const char *check_redis_url(const char *s)
{
	if (strncmp(s, "redis://", 8))
		return "must start with \"redis://\"";
	return NULL;
}

static const char *const algorithm_names[] = {
	"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"ES256", "ES384", NULL,
};

static const char *check_algorithm(const char *s)
{
	for (size_t i = 0; algorithm_names[i]; i++)
		if (!strcmp(s, algorithm_names[i]))
			return NULL;
	return "must be one of HS256, HS384, HS512, RS256, RS384, RS512, "
	       "ES256, ES384";
}

/* ---------------------------------------------------------------- values */

static int get_str(struct ctx *c, json_object *v, const char *path,
		   const char **out)
{
	if (!json_object_is_type(v, json_type_string))
		return fail(c, -EINVAL, path, "must be a string");
	*out = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(*out))
		return fail(c, -EINVAL, path, "must not contain a NUL character");
	if (!**out)
		return fail(c, -EINVAL, path, "must not be empty");
	return 0;
}

static int replace_str(struct ctx *c, char **dst, const char *s,
		       const char *path)
{
	char *copy = strdup(s);

	if (!copy)
		return oom(c, path);
	free(*dst);
	*dst = copy;
	return 0;
}

/* Relative paths are relative to the main file's directory. */
static char *resolve(struct ctx *c, const char *s)
{
	char *out;

	if (s[0] == '/')
		return strdup(s);
	if (asprintf(&out, "%s/%s", c->dir, s) < 0)
		return NULL;
	return out;
}

static int check_readable(struct ctx *c, const char *file, const char *path)
{
	struct stat st;
	int fd, rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fail(c, -EINVAL, path, "cannot read %s: %s", file,
			    strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		rc = fail(c, -EINVAL, path, "%s is not a regular file", file);
	close(fd);
	return rc;
}

static int set_str(struct ctx *c, const struct field *f, json_object *v,
		   char **dst, const char *path)
{
	const char *s, *why;
	int rc = get_str(c, v, path, &s);

	if (rc)
		return rc;
	if (f->check && (why = f->check(s)))
		return fail(c, -EINVAL, path, "%s", why);
	return replace_str(c, dst, s, path);
}

static int set_file(struct ctx *c, json_object *v, char **dst,
		    const char *path)
{
	const char *s = NULL;
	char *file;
	int rc = get_str(c, v, path, &s);

	if (rc)
		return rc;
	file = resolve(c, s);
	if (!file)
		return oom(c, path);
	rc = check_readable(c, file, path);
	if (rc) {
		free(file);
		return rc;
	}
	free(*dst);
	*dst = file;
	return 0;
}

static int set_num(struct ctx *c, const struct field *f, json_object *v,
		   char *dst, const char *path)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		goto bad;
	n = json_object_get_int64(v);
	if (n < f->min || n > f->max)
		goto bad;
	if (f->type == F_INT)
		*(int *)dst = (int)n;
	else
		*(size_t *)dst = (size_t)n;
	return 0;
bad:
	return fail(c, -EINVAL, path, "must be an integer from %lld to %lld",
		    f->min, f->max);
}

static int set_bool(struct ctx *c, json_object *v, int *dst, const char *path)
{
	if (!json_object_is_type(v, json_type_boolean))
		return fail(c, -EINVAL, path, "must be true or false");
	*dst = json_object_get_boolean(v);
	return 0;
}

static int bad_choice(struct ctx *c, const struct field *f, const char *path)
{
	char list[256];
	size_t n = 0;

	list[0] = '\0';
	for (size_t i = 0; f->choices[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      i ? ", " : "", f->choices[i]);
	return fail(c, -EINVAL, path, "must be one of %s", list);
}

static int set_enum(struct ctx *c, const struct field *f, json_object *v,
		    char *dst, const char *path)
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
	if (f->type == F_ENUM) {
		*(int *)dst = (int)i;
		return 0;
	}
	return replace_str(c, (char **)dst, s, path);
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* One item of an F_STRV/F_PATHV array, copied into *out. */
static int strv_item(struct ctx *c, const struct field *f, json_object *v,
		     const char *path, char **out)
{
	const char *s, *why;
	int rc = get_str(c, v, path, &s);

	if (rc)
		return rc;
	if (f->check && (why = f->check(s)))
		return fail(c, -EINVAL, path, "%s", why);
	*out = f->type == F_PATHV ? resolve(c, s) : strdup(s);
	return *out ? 0 : oom(c, path);
}

static int set_strv(struct ctx *c, const struct field *f, json_object *v,
		    char *base, const char *path)
{
	char sub[KEYPATH], **vec = NULL;
	size_t i = 0, n;
	int rc = 0;

	if (!json_object_is_type(v, json_type_array))
		return fail(c, -EINVAL, path, "must be an array of strings");
	n = json_object_array_length(v);
	if ((long long)n < f->min)
		return fail(c, -EINVAL, path, "must not be empty");
	vec = calloc(n + 1, sizeof(*vec));
	if (!vec)
		return oom(c, path);
	for (i = 0; i < n && !rc; i++) {
		join_index(sub, path, i);
		rc = strv_item(c, f, json_object_array_get_idx(v, i), sub,
			       &vec[i]);
	}
	if (rc) {
		free_strv(vec, n);
		return rc;
	}
	free_strv(*(char ***)(base + f->off), *(size_t *)(base + f->off2));
	*(char ***)(base + f->off) = vec;
	*(size_t *)(base + f->off2) = n;
	return 0;
}

/* ---------------------------------------------------------------- walker */

static int walk(struct ctx *c, json_object *obj, const struct section *s,
		void *base, const char *path);

static int set_field(struct ctx *c, const struct field *f, json_object *v,
		     void *base, const char *path)
{
	char *p = (char *)base + f->off;

	switch (f->type) {
	case F_STR:
		return set_str(c, f, v, (char **)p, path);
	case F_FILE:
		return set_file(c, v, (char **)p, path);
	case F_INT:
	case F_SIZE:
		return set_num(c, f, v, p, path);
	case F_BOOL:
		return set_bool(c, v, (int *)p, path);
	case F_ENUM:
	case F_ENUM_STR:
		return set_enum(c, f, v, p, path);
	case F_STRV:
	case F_PATHV:
		return set_strv(c, f, v, base, path);
	case F_SECTION:
		return walk(c, v, f->sec, base, path);
	case F_CUSTOM:
		return f->fn(c, v, base, path);
	}
	return -EINVAL;
}

static const struct field *lookup(const struct field *f, const char *key)
{
	for (; f->key; f++)
		if (!strcmp(f->key, key))
			return f;
	return NULL;
}

static int has(json_object *obj, const char *key)
{
	return json_object_object_get_ex(obj, key, NULL);
}

static int check_required(struct ctx *c, json_object *obj,
			  const struct section *s, const char *path)
{
	char sub[KEYPATH];

	for (size_t i = 0; s->required && s->required[i]; i++) {
		if (has(obj, s->required[i]))
			continue;
		join(sub, path, s->required[i]);
		return fail(c, -EINVAL, sub, "required");
	}
	return 0;
}

static int walk(struct ctx *c, json_object *obj, const struct section *s,
		void *base, const char *path)
{
	char sub[KEYPATH];
	int rc;

	if (!json_object_is_type(obj, json_type_object))
		return fail(c, -EINVAL, path, "must be an object");
	if (s->reset)
		s->reset(base);
	json_object_object_foreach(obj, key, val) {
		const struct field *f = lookup(s->fields, key);

		join(sub, path, key);
		if (!f)
			return fail(c, -EINVAL, sub, "unknown key");
		rc = set_field(c, f, val, base, sub);
		if (rc)
			return rc;
	}
	rc = check_required(c, obj, s, path);
	if (!rc && s->finish)
		rc = s->finish(c, obj, base, path);
	return rc;
}

/* ---------------------------------------------------------------- tables */

#define VH(m) offsetof(struct pav_vhost_config, m)
#define CF(m) offsetof(struct pav_config, m)
#define STR(k, o, chk) {.key = k, .type = F_STR, .off = o, .check = chk}
#define FILEF(k, o) {.key = k, .type = F_FILE, .off = o}
#define INT(k, o, lo, hi) {.key = k, .type = F_INT, .off = o, .min = lo, .max = hi}
#define SIZE(k, o, lo, hi) \
	{.key = k, .type = F_SIZE, .off = o, .min = lo, .max = hi}
#define BOOL(k, o) {.key = k, .type = F_BOOL, .off = o}
#define ENUM(k, o, ch) {.key = k, .type = F_ENUM, .off = o, .choices = ch}
#define ENUM_STR(k, o, ch) \
	{.key = k, .type = F_ENUM_STR, .off = o, .choices = ch}
#define STRV(k, t, o, o2, least, chk) \
	{.key = k, .type = t, .off = o, .off2 = o2, .min = least, .check = chk}
#define SECTION(k, s) {.key = k, .type = F_SECTION, .sec = &s}
#define CUSTOM(k, f) {.key = k, .type = F_CUSTOM, .fn = f}
#define MSG_MIN 64
#define MSG_MAX 16777216

static const struct field limits_fields[] = {
	SIZE("max_message_bytes", VH(limits.max_message_bytes), MSG_MIN, MSG_MAX),
	INT("json_depth", VH(limits.json_depth), 1, 64),
	INT("messages_per_s", VH(limits.messages_per_s), 1, 100000),
	INT("burst", VH(limits.burst), 1, 100000),
	INT("abuse_close_after", VH(limits.abuse_close_after), 1, 1000000),
	INT("max_subscriptions", VH(limits.max_subscriptions), 1, 100000),
	INT("max_connections_per_ip", VH(limits.max_connections_per_ip), 1,
	    1000000),
	INT("handshakes_per_s_per_ip", VH(limits.handshakes_per_s_per_ip), 1,
	    1000000),
	INT("max_connections_per_user", VH(limits.max_connections_per_user), 1,
	    100000),
	SIZE("outbound_queue_bytes", VH(limits.outbound_queue_bytes), 4096,
	     1073741824),
	INT("handshake_timeout_s", VH(limits.handshake_timeout_s), 1, 3600),
	{0},
};
static const struct section limits_sec = {.fields = limits_fields};

static int tls_finish(struct ctx *c, json_object *obj, void *base,
		      const char *path)
{
	struct pav_vhost_config *vc = base;
	char sub[KEYPATH];

	(void)obj;
	if (!!vc->tls_cert == !!vc->tls_key) {
		vc->tls = vc->tls_cert != NULL;
		return 0;
	}
	join(sub, path, vc->tls_cert ? "key" : "cert");
	return fail(c, -EINVAL, sub, "required with tls.%s",
		    vc->tls_cert ? "cert" : "key");
}

static const struct field tls_fields[] = {
	FILEF("cert", VH(tls_cert)),
	FILEF("key", VH(tls_key)),
	BOOL("terminated_upstream", VH(tls_terminated_upstream)),
	{0},
};
static const struct section tls_sec = {.fields = tls_fields,
				       .finish = tls_finish};

static const struct field websocket_fields[] = {
	STR("path", VH(ws_path), check_ws_path),
	STRV("allowed_origins", F_STRV, VH(allowed_origins),
	     VH(nallowed_origins), 1, check_origin),
	INT("heartbeat_interval_s", VH(heartbeat_interval_s), 1, 3600),
	INT("idle_timeout_s", VH(idle_timeout_s), 1, 86400),
	SIZE("max_message_bytes", VH(limits.max_message_bytes), MSG_MIN, MSG_MAX),
	BOOL("permessage_deflate", VH(permessage_deflate)),
	{0},
};
static const struct section websocket_sec = {.fields = websocket_fields};

/* One key file serves every algorithm: HS* want a secret, RS/ES a PEM key. */
static int auth_finish(struct ctx *c, json_object *obj, void *base,
		       const char *path)
{
	struct pav_vhost_config *vc = base;
	char sub[KEYPATH], alg[KEYPATH];
	int hs0 = vc->algorithms[0][0] == 'H';

	(void)obj;
	join(alg, path, "algorithms");
	for (size_t i = 1; i < vc->nalgorithms; i++) {
		join_index(sub, alg, i);
		if ((vc->algorithms[i][0] == 'H') != hs0)
			return fail(c, -EINVAL, alg, "must be all HS*, or all "
				    "RS*/ES* (one key_file serves them all)");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(vc->algorithms[i], vc->algorithms[j]))
				return fail(c, -EINVAL, sub, "duplicate");
	}
	return 0;
}

static const struct field auth_fields[] = {
	STRV("algorithms", F_STRV, VH(algorithms), VH(nalgorithms), 1,
	     check_algorithm),
	FILEF("key_file", VH(key_file)),
	STR("issuer", VH(issuer), NULL),
	STR("audience", VH(audience), NULL),
	INT("leeway_s", VH(leeway_s), 0, 3600),
	{0},
};
static const char *const auth_required[] = {"algorithms", "key_file", NULL};
static const struct section auth_sec = {.fields = auth_fields,
					.required = auth_required,
					.finish = auth_finish};

static const struct field api_fields[] = {
	FILEF("keys_file", VH(api_keys_file)),
	SIZE("max_body_bytes", VH(api_max_body), 1024, 16777216),
	{0},
};
static const char *const api_required[] = {"keys_file", NULL};
static const struct section api_sec = {.fields = api_fields,
				       .required = api_required};

/* A channel kind's history: {"size": N, "ttl_s": S}. */
#define HIST(k, m) VH(history[k].m)
#define HISTORY_KIND(name, k) \
	static const struct field name##_fields[] = { \
		INT("size", HIST(k, size), 1, PAV_MAX_HISTORY_SIZE), \
		INT("ttl_s", HIST(k, ttl_s), 1, 30 * 86400), \
		{0}, \
	}; \
	static const struct section name##_sec = {.fields = name##_fields, \
						  .required = history_required}
static const char *const history_required[] = {"size", NULL};
HISTORY_KIND(history_zone, PAV_HISTORY_ZONE);
HISTORY_KIND(history_channel, PAV_HISTORY_CHANNEL);
HISTORY_KIND(history_chat, PAV_HISTORY_CHAT);

static int history_finish(struct ctx *c, json_object *obj, void *base,
			  const char *path)
{
	struct pav_vhost_config *vc = base;

	(void)c;
	(void)obj;
	(void)path;
	vc->history_set = 1;
	for (int k = 0; k < PAV_HISTORY_KINDS; k++)
		if (vc->history[k].size && !vc->history[k].ttl_s)
			vc->history[k].ttl_s = PAV_DEF_HISTORY_TTL_S;
	return 0;
}

static const struct field history_fields[] = {
	SECTION("zone", history_zone_sec),
	SECTION("channel", history_channel_sec),
	SECTION("chat", history_chat_sec),
	{0},
};
static const struct section history_sec = {.fields = history_fields,
					   .finish = history_finish};

/* ---------------------------------------------------------------- vhosts */

static int listen_host(const char *s, size_t len, int v6, char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!len || len > HOST_MAX_LEN)
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (v6)
		return inet_pton(AF_INET6, host, &a6) == 1 ? 0 : -1;
	if (!in_set(host, ALNUM ".-"))
		return -1;
	if (in_set(host, "0123456789.") && inet_pton(AF_INET, host, &a4) != 1)
		return -1; /* looks like IPv4 but is not */
	return 0;
}

static int parse_port(const char *s)
{
	long port;

	if (!*s || !in_set(s, "0123456789") || strlen(s) > 5)
		return -1;
	port = strtol(s, NULL, 10);
	return port >= 1 && port <= 65535 ? (int)port : -1;
}

/* "host:port" or "[v6]:port"; the host is kept without brackets. */
static int parse_listen(struct ctx *c, json_object *v, void *base,
			const char *path)
{
	struct pav_vhost_config *vc = base;
	char host[HOST_MAX_LEN + 1];
	const char *s, *h, *colon;
	int v6, rc = get_str(c, v, path, &s);

	if (rc)
		return rc;
	v6 = s[0] == '[';
	h = s + v6;
	colon = v6 ? strstr(h, "]:") : strrchr(s, ':');
	if (!colon || listen_host(h, (size_t)(colon - h), v6, host))
		goto bad;
	vc->port = parse_port(colon + 1 + v6);
	if (vc->port < 0)
		goto bad;
	return replace_str(c, &vc->listen_host, host, path);
bad:
	return fail(c, -EINVAL, path, "must be \"host:port\" or \"[ipv6]:port\" "
		    "with a port from 1 to 65535");
}

static int parse_plugins(struct ctx *c, json_object *v, void *base,
			 const char *path)
{
	struct pav_vhost_config *vc = base;
	char sub[KEYPATH];
	const char *why;

	if (!json_object_is_type(v, json_type_object))
		return fail(c, -EINVAL, path, "must be an object of plugin "
			    "name to options object");
	json_object_object_foreach(v, name, opts) {
		join(sub, path, name);
		if ((why = check_plugin_name(name)))
			return fail(c, -EINVAL, sub, "%s", why);
		if (!json_object_is_type(opts, json_type_object))
			return fail(c, -EINVAL, sub, "must be an object (the "
				    "plugin's options)");
	}
	json_object_put(vc->plugins);
	vc->plugins = json_object_get(v);
	return 0;
}

static int is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcasecmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* Index of vhost k within the array of the file that declared it. */
static int index_in_file(const struct pav_config *cfg, size_t k)
{
	int n = 0;

	for (size_t i = 0; i < k; i++)
		n += cfg->vhosts[i].file == cfg->vhosts[k].file;
	return n;
}

static int hostnames_overlap(const struct pav_vhost_config *a,
			     const struct pav_vhost_config *b)
{
	if (!a->nhostnames || !b->nhostnames)
		return 1;
	for (size_t i = 0; i < a->nhostnames; i++)
		for (size_t j = 0; j < b->nhostnames; j++)
			if (!strcasecmp(a->hostnames[i], b->hostnames[j]))
				return 1;
	return 0;
}

static const char *kind_name(const struct pav_vhost_config *vc)
{
	return vc->kind == PAV_VHOST_INTERNAL ? "internal" : "public";
}

/*
 * libwebsockets picks the vhost of a request by its Host header (or SNI)
 * among every vhost with the listener's port, whatever the address: an
 * internal vhost sharing a port with a public one would be reachable
 * through the public address.  So the two kinds share no port and no
 * hostname.
 */
static int vhost_kinds_apart(struct ctx *c, const struct pav_vhost_config *vc,
			     const struct pav_vhost_config *o,
			     const char *path)
{
	char sub[KEYPATH];

	if (vc->kind == o->kind)
		return 0;
	if (vc->port == o->port) {
		join(sub, path, "listen");
		return fail(c, -EINVAL, sub, "port %d is also used by %s "
			    "vhost \"%s\" (%s); internal and public vhosts "
			    "may not share a port, on any address", vc->port,
			    kind_name(o), o->name, o->file);
	}
	for (size_t i = 0; i < vc->nhostnames; i++)
		for (size_t j = 0; j < o->nhostnames; j++) {
			if (strcasecmp(vc->hostnames[i], o->hostnames[j]))
				continue;
			join(sub, path, "hostnames");
			return fail(c, -EINVAL, sub, "\"%s\" is also a "
				    "hostname of %s vhost \"%s\" (%s); internal "
				    "and public vhosts may not share a hostname",
				    vc->hostnames[i], kind_name(o), o->name,
				    o->file);
		}
	return 0;
}

/* Names are unique; a shared listen needs distinct hostnames (SNI). */
static int vhost_unique(struct ctx *c, struct pav_vhost_config *vc,
			const char *path)
{
	const struct pav_config *cfg = c->cfg;
	char sub[KEYPATH];
	int rc;

	for (size_t k = 0; k < (size_t)vc->index; k++) {
		const struct pav_vhost_config *o = &cfg->vhosts[k];

		if (vc->history_set && o->history_set &&
		    !strcmp(o->ns ? o->ns : "default", vc->ns ? vc->ns : "default") &&
		    memcmp(o->history, vc->history, sizeof(vc->history))) {
			join(sub, path, "history");
			return fail(c, -EINVAL, sub, "differs from vhost \"%s\" "
				    "(%s) of the same namespace: its vhosts "
				    "share channels", o->name, o->file);
		}
		if (!strcmp(o->name, vc->name)) {
			join(sub, path, "name");
			return fail(c, -EINVAL, sub, "\"%s\" is already the "
				    "name of vhosts[%d] in %s", vc->name,
				    index_in_file(cfg, k), o->file);
		}
		if ((rc = vhost_kinds_apart(c, vc, o, path)))
			return rc;
		if (o->port != vc->port ||
		    strcasecmp(o->listen_host, vc->listen_host) ||
		    !hostnames_overlap(o, vc))
			continue;
		join(sub, path, "listen");
		return fail(c, -EINVAL, sub, "also used by vhost \"%s\" (%s); "
			    "vhosts may share a listen address only with "
			    "distinct, non-empty \"hostnames\"", o->name,
			    o->file);
	}
	return 0;
}

static int vhost_kind(struct ctx *c, json_object *obj,
		      struct pav_vhost_config *vc, const char *path)
{
	static const char *const not_internal[] = {"websocket", "auth",
						   "plugins", NULL};
	char sub[KEYPATH];

	vc->kind = has(obj, "api") ? PAV_VHOST_INTERNAL : PAV_VHOST_PUBLIC;
	if (vc->kind == PAV_VHOST_PUBLIC && !has(obj, "auth")) {
		join(sub, path, "auth");
		return fail(c, -EINVAL, sub, "required on a public vhost "
			    "(one without \"api\")");
	}
	for (size_t i = 0; vc->kind == PAV_VHOST_INTERNAL && not_internal[i];
	     i++) {
		if (!has(obj, not_internal[i]))
			continue;
		join(sub, path, not_internal[i]);
		return fail(c, -EINVAL, sub, "not allowed on an internal vhost "
			    "(one with \"api\")");
	}
	return 0;
}

/* Clear text (ws, or the internal API's HTTP) only on loopback or behind
 * a TLS proxy that says so. */
static int vhost_tls(struct ctx *c, const struct pav_vhost_config *vc,
		     const char *path)
{
	char sub[KEYPATH];

	if (vc->tls || vc->tls_terminated_upstream ||
	    is_loopback(vc->listen_host))
		return 0;
	join(sub, path, "tls");
	return fail(c, -EINVAL, sub, "plain %s is allowed only on a loopback "
		    "address or with \"terminated_upstream\": true",
		    vc->kind == PAV_VHOST_INTERNAL ? "HTTP" : "ws");
}

/* max_message_bytes may be set under websocket or limits, not both apart. */
static int vhost_message_size(struct ctx *c, json_object *obj,
			      const char *path)
{
	json_object *ws, *lim, *a, *b;
	char sub[KEYPATH];

	if (!json_object_object_get_ex(obj, "websocket", &ws) ||
	    !json_object_object_get_ex(obj, "limits", &lim) ||
	    !json_object_object_get_ex(ws, "max_message_bytes", &a) ||
	    !json_object_object_get_ex(lim, "max_message_bytes", &b) ||
	    json_object_get_int64(a) == json_object_get_int64(b))
		return 0;
	join(sub, path, "websocket.max_message_bytes");
	return fail(c, -EINVAL, sub, "differs from limits.max_message_bytes; "
		    "set it in one place");
}

static int vhost_finish(struct ctx *c, json_object *obj, void *base,
			const char *path)
{
	struct pav_vhost_config *vc = base;
	int rc;

	rc = vhost_kind(c, obj, vc, path);
	if (!rc)
		rc = vhost_tls(c, vc, path);
	if (!rc)
		rc = vhost_message_size(c, obj, path);
	if (!rc)
		rc = vhost_unique(c, vc, path);
	if (!rc && !vc->ws_path)
		rc = replace_str(c, &vc->ws_path, PAV_DEF_WS_PATH, path);
	if (!rc && !vc->ns)
		rc = replace_str(c, &vc->ns, "default", path);
	return rc;
}

static void vhost_reset(void *base)
{
	struct pav_vhost_config *vc = base;

	pav_limits_default(&vc->limits);
	vc->heartbeat_interval_s = PAV_DEF_HEARTBEAT_INTERVAL_S;
	vc->idle_timeout_s = PAV_DEF_IDLE_TIMEOUT_S;
	vc->leeway_s = PAV_DEF_LEEWAY_S;
	vc->api_max_body = PAV_DEF_API_MAX_BODY;
}

static const struct field vhost_fields[] = {
	STR("name", VH(name), check_name),
	CUSTOM("listen", parse_listen),
	STRV("hostnames", F_STRV, VH(hostnames), VH(nhostnames), 0,
	     check_hostname),
	STR("namespace", VH(ns), check_name),
	SECTION("tls", tls_sec),
	SECTION("websocket", websocket_sec),
	SECTION("auth", auth_sec),
	SECTION("limits", limits_sec),
	CUSTOM("plugins", parse_plugins),
	SECTION("api", api_sec),
	SECTION("history", history_sec),
	BOOL("reuse_port", VH(reuse_port)),
	{0},
};
static const char *const vhost_required[] = {"name", "listen", NULL};
static const struct section vhost_sec = {.fields = vhost_fields,
					 .required = vhost_required,
					 .reset = vhost_reset,
					 .finish = vhost_finish};

static int add_vhost(struct ctx *c, json_object *v, const char *path)
{
	struct pav_config *cfg = c->cfg;
	struct pav_vhost_config *vhosts, *vc;

	vhosts = realloc(cfg->vhosts, (cfg->nvhosts + 1) * sizeof(*vhosts));
	if (!vhosts)
		return oom(c, path);
	cfg->vhosts = vhosts;
	vc = &vhosts[cfg->nvhosts];
	memset(vc, 0, sizeof(*vc));
	vc->file = c->file;
	vc->index = (int)cfg->nvhosts++;
	return walk(c, v, &vhost_sec, vc, path);
}

static int parse_vhosts(struct ctx *c, json_object *v, void *base,
			const char *path)
{
	char sub[KEYPATH];
	size_t n;
	int rc = 0;

	(void)base;
	if (!json_object_is_type(v, json_type_array))
		return fail(c, -EINVAL, path, "must be an array of objects");
	n = json_object_array_length(v);
	for (size_t i = 0; i < n && !rc; i++) {
		join_index(sub, path, i);
		rc = add_vhost(c, json_object_array_get_idx(v, i), sub);
	}
	return rc;
}

/* ---------------------------------------------------------------- top level */

static const char *const log_levels[] = {"error", "warn", "info", "debug",
					 NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const store_backends[] = {"memory", "redis", NULL};
static const char *const redis_only[] = {"url", "shards", "password_file",
					 "node_ttl_s", "command_timeout_ms"};
static const char *const event_loops[] = {"poll", "uv", NULL};

static void log_reset(void *base)
{
	struct pav_config *cfg = base;

	cfg->log_level = PAV_LOG_INFO;
	cfg->log_json = 1;
}

static const struct field log_fields[] = {
	ENUM("level", CF(log_level), log_levels),
	ENUM("format", CF(log_json), log_formats),
	{0},
};
static const struct section log_sec = {.fields = log_fields,
				       .reset = log_reset};

static void store_reset(void *base)
{
	struct pav_config *cfg = base;
	struct pav_store_config *st = &cfg->store;

	free(st->backend);
	free_strv(st->urls, st->nurls);
	free(st->password_file);
	memset(st, 0, sizeof(*st));
	st->inbox_size = PAV_DEF_INBOX_SIZE;
	st->node_ttl_s = PAV_DEF_NODE_TTL_S;
	st->command_timeout_ms = PAV_DEF_COMMAND_TIMEOUT_MS;
	st->history_max_bytes = PAV_DEF_HISTORY_MAX_BYTES;
}

/* "url": one server, kept as the only entry of the shard list. */
static int parse_store_url(struct ctx *c, json_object *v, void *base,
			   const char *path)
{
	struct pav_store_config *st = &((struct pav_config *)base)->store;
	const char *s, *why;
	int rc = get_str(c, v, path, &s);

	if (rc)
		return rc;
	if ((why = check_redis_url(s)))
		return fail(c, -EINVAL, path, "%s", why);
	free_strv(st->urls, st->nurls);
	st->nurls = 0;
	st->urls = calloc(2, sizeof(*st->urls));
	if (!st->urls || !(st->urls[0] = strdup(s)))
		return oom(c, path);
	st->nurls = 1;
	return 0;
}

static int store_finish(struct ctx *c, json_object *obj, void *base,
			const char *path)
{
	struct pav_config *cfg = base;
	struct pav_store_config *st = &cfg->store;
	int redis;
	char sub[KEYPATH];

	st->file = c->file;
	if (!st->backend && replace_str(c, &st->backend, "memory", path))
		return -ENOMEM;
	redis = !strcmp(st->backend, "redis");
	join(sub, path, has(obj, "shards") ? "shards" : "url");
	if (has(obj, "url") && has(obj, "shards"))
		return fail(c, -EINVAL, sub, "give \"url\" or \"shards\", "
			    "not both");
	if (redis && !st->nurls)
		return fail(c, -EINVAL, sub, "required with \"backend\": "
			    "\"redis\"");
	for (size_t i = 0; !redis && i < sizeof(redis_only) /
			sizeof(redis_only[0]); i++) {
		if (!has(obj, redis_only[i]))
			continue;
		join(sub, path, redis_only[i]);
		return fail(c, -EINVAL, sub, "only for \"backend\": "
			    "\"redis\"");
	}
	return 0;
}

#define ST(m) offsetof(struct pav_config, store.m)
static const struct field store_fields[] = {
	ENUM_STR("backend", ST(backend), store_backends),
	CUSTOM("url", parse_store_url),
	STRV("shards", F_STRV, ST(urls), ST(nurls), 1, check_redis_url),
	FILEF("password_file", ST(password_file)),
	INT("node_ttl_s", ST(node_ttl_s), 2, 3600),
	INT("command_timeout_ms", ST(command_timeout_ms), 50, 60000),
	SIZE("inbox_size", ST(inbox_size), 1, 100000),
	SIZE("history_max_bytes", ST(history_max_bytes), 65536,
	     (long long)1 << 40),
	{0},
};
static const struct section store_sec = {.fields = store_fields,
					 .reset = store_reset,
					 .finish = store_finish};

static int parse_include(struct ctx *c, json_object *v, void *base,
			 const char *path)
{
	struct pav_config *cfg = base;
	const char *s = NULL;
	int rc;

	if (!c->is_main)
		return fail(c, -EINVAL, path, "allowed only in the main file");
	rc = get_str(c, v, path, &s);
	if (rc)
		return rc;
	free(cfg->include_dir);
	cfg->include_dir = resolve(c, s);
	return cfg->include_dir ? 0 : oom(c, path);
}

static const struct field top_fields[] = {
	CUSTOM("include", parse_include),
	STRV("plugin_dirs", F_PATHV, CF(plugin_dirs), CF(nplugin_dirs), 0, NULL),
	SECTION("log", log_sec),
	SECTION("store", store_sec),
	ENUM_STR("event_loop", CF(event_loop), event_loops),
	CUSTOM("vhosts", parse_vhosts),
	{0},
};
static const struct section top_sec = {.fields = top_fields};

/* ---------------------------------------------------------------- files */

#define CONFIG_MAX_BYTES (4 * 1024 * 1024)
#define CONFIG_MAX_DEPTH 32

static int read_all(struct ctx *c, char **out, size_t *len)
{
	struct stat st;
	ssize_t r = 1;
	size_t n = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(c->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fail(c, -errno, NULL, "cannot read: %s", strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_MAX_BYTES) {
		rc = fail(c, -EINVAL, NULL, "not a regular file of at most "
			  "%d bytes", CONFIG_MAX_BYTES);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = oom(c, NULL);
		goto out;
	}
	while (n < (size_t)st.st_size && r > 0) {
		r = read(fd, buf + n, (size_t)st.st_size - n);
		n += r > 0 ? (size_t)r : 0;
	}
	if (r < 0)
		rc = fail(c, -errno, NULL, "cannot read: %s", strerror(errno));
	buf[n] = '\0';
	*len = n;
out:
	close(fd);
	if (rc)
		free(buf);
	else
		*out = buf;
	return rc;
}

static int json_fail(struct ctx *c, const char *buf, size_t end,
		     const char *why)
{
	int line = 1, col = 1;

	for (size_t i = 0; i < end; i++, col++)
		if (buf[i] == '\n') {
			line++;
			col = 0;
		}
	return fail(c, -EINVAL, NULL, "invalid JSON: %s at line %d, column %d",
		    why, line, col);
}

/* A file's JSON, through the gateway's one strict reader (json_check.c):
 * errors name the line and column. */
static int parse_json(struct ctx *c, const char *buf, size_t len,
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
		return fail(c, -EINVAL, NULL, "%s", not_object);
	return json_fail(c, buf, at, why);
}

static int add_file(struct ctx *c, const char *file)
{
	struct pav_config *cfg = c->cfg;
	char **files, *copy = strdup(file);

	files = copy ? realloc(cfg->files, (cfg->nfiles + 2) * sizeof(*files))
		     : NULL;
	if (!files) {
		free(copy);
		return oom(c, NULL);
	}
	cfg->files = files;
	files[cfg->nfiles++] = copy;
	files[cfg->nfiles] = NULL;
	c->file = copy;
	return 0;
}

static int load_file(struct ctx *c, const char *file, int is_main)
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
		rc = walk(c, obj, &top_sec, c->cfg, "");
	json_object_put(obj);
	free(buf);
	return rc;
}

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

static int load_include(struct ctx *c)
{
	const char *dir = c->cfg->include_dir;
	struct dirent **list;
	char *file;
	int n, rc = 0;

	n = scandir(dir, &list, is_dropin, by_name);
	if (n < 0)
		return fail(c, -EINVAL, "include", "cannot read directory %s: %s",
			    dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		if (!rc && asprintf(&file, "%s/%s", dir, list[i]->d_name) < 0)
			rc = oom(c, "include");
		else if (!rc) {
			rc = load_file(c, file, 0);
			free(file);
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int set_defaults(struct ctx *c, const char *path)
{
	struct pav_config *cfg = c->cfg;

	log_reset(cfg);
	store_reset(cfg);
	cfg->path = strdup(path);
	c->dir = dir_of(path);
	cfg->store.backend = strdup("memory");
	cfg->event_loop = strdup("poll");
	cfg->plugin_dirs = calloc(2, sizeof(char *));
	if (cfg->plugin_dirs) {
		cfg->plugin_dirs[0] = strdup(PAV_DEFAULT_PLUGIN_DIR);
		cfg->nplugin_dirs = cfg->plugin_dirs[0] != NULL;
	}
	if (!cfg->path || !c->dir || !cfg->store.backend || !cfg->event_loop ||
	    !cfg->nplugin_dirs)
		return oom(c, NULL);
	return 0;
}

int pav_config_load(const char *path, struct pav_config *cfg, char *err,
		    size_t errlen)
{
	struct ctx c = {.cfg = cfg, .file = path, .err = err, .errlen = errlen};
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
		rc = fail(&c, -EINVAL, "vhosts", "at least one vhost is required");
	}
	free(c.dir);
	if (rc)
		pav_config_free(cfg);
	return rc;
}

static void free_vhost(struct pav_vhost_config *vc)
{
	free(vc->name);
	free(vc->listen_host);
	free_strv(vc->hostnames, vc->nhostnames);
	free(vc->ns);
	free(vc->tls_cert);
	free(vc->tls_key);
	free(vc->ws_path);
	free_strv(vc->allowed_origins, vc->nallowed_origins);
	free_strv(vc->algorithms, vc->nalgorithms);
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
	free_strv(cfg->files, cfg->nfiles);
	free_strv(cfg->plugin_dirs, cfg->nplugin_dirs);
	free(cfg->store.backend);
	free_strv(cfg->store.urls, cfg->store.nurls);
	free(cfg->store.password_file);
	free(cfg->event_loop);
	memset(cfg, 0, sizeof(*cfg));
}

void pav_limits_default(struct pav_limits *l)
{
	l->max_message_bytes = PAV_DEF_MAX_MESSAGE_BYTES;
	l->json_depth = PAV_DEF_JSON_DEPTH;
	l->messages_per_s = PAV_DEF_MESSAGES_PER_S;
	l->burst = PAV_DEF_BURST;
	l->abuse_close_after = PAV_DEF_ABUSE_CLOSE_AFTER;
	l->max_subscriptions = PAV_DEF_MAX_SUBSCRIPTIONS;
	l->max_connections_per_ip = PAV_DEF_MAX_CONNECTIONS_PER_IP;
	l->handshakes_per_s_per_ip = PAV_DEF_HANDSHAKES_PER_S_PER_IP;
	l->max_connections_per_user = PAV_DEF_MAX_CONNECTIONS_PER_USER;
	l->outbound_queue_bytes = PAV_DEF_OUTBOUND_QUEUE_BYTES;
	l->handshake_timeout_s = PAV_DEF_HANDSHAKE_TIMEOUT_S;
}
