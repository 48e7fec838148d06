/* config_walk.h — the configuration loader's table-driven walker, shared by
 * config_walk.c, config_schema.c and config_file.c (private to them and to
 * their tests).
 *
 * Each JSON object of the schema is described by a section: a table of
 * fields (key, type, offset, range), nginx-style, the keys it requires, a
 * reset that fills its defaults and a finish that checks the rules between
 * its fields.  pav_cfg_walk() applies a section to an object, so a key
 * missing from the table is an error, and every error names the file that
 * held the value and the value's JSON path: "file: path: reason".
 */
#ifndef PAV_CONFIG_WALK_H
#define PAV_CONFIG_WALK_H

#include <stddef.h>

#include <json-c/json.h>

#include "config.h"

#define PAV_CFG_KEYPATH 256 /* room for a JSON path in a message */

/* One load in progress: what errors name and where relative paths start. */
struct pav_cfg_ctx {
	struct pav_config *cfg;
	const char *file; /* the file being read; owned by cfg->files */
	char *dir;        /* the main file's directory: relative paths' base */
	int is_main;
	char *err;        /* "file: path: reason"; may be NULL */
	size_t errlen;
};

enum pav_cfg_type {
	PAV_CFG_T_STR,      /* char *, optional check */
	PAV_CFG_T_FILE,     /* char *, a path naming a readable regular file */
	PAV_CFG_T_INT,      /* int in [min, max] */
	PAV_CFG_T_SIZE,     /* size_t in [min, max] */
	PAV_CFG_T_BOOL,     /* int 0/1 */
	PAV_CFG_T_ENUM,     /* int: index in choices */
	PAV_CFG_T_ENUM_STR, /* char *: copy of the choice */
	PAV_CFG_T_STRV,     /* char ** (NULL-ended) at off, count at off2 */
	PAV_CFG_T_PATHV,    /* STRV of paths, resolved against ctx.dir */
	PAV_CFG_T_SECTION,  /* a nested object, same base */
	PAV_CFG_T_CUSTOM,
};

struct pav_cfg_section;
/* Sets what v means into base; returns 0 or a negative errno after
 * pav_cfg_fail().  path is v's JSON path. */
typedef int (*pav_cfg_custom_fn)(struct pav_cfg_ctx *c, json_object *v,
				 void *base, const char *path);
/* Returns NULL when s is fine, else the reason. */
typedef const char *(*pav_cfg_check_fn)(const char *s);

struct pav_cfg_field {
	const char *key;
	enum pav_cfg_type type;
	size_t off;
	size_t off2;
	long long min, max; /* numbers; STRV/PATHV: min is the least count */
	const char *const *choices; /* NULL-terminated */
	pav_cfg_check_fn check;
	const struct pav_cfg_section *sec;
	pav_cfg_custom_fn fn;
};

struct pav_cfg_section {
	const struct pav_cfg_field *fields; /* ends with a NULL key */
	const char *const *required;  /* NULL-terminated, may be NULL */
	void (*reset)(void *base);    /* defaults, before each definition */
	pav_cfg_custom_fn finish;     /* cross-field rules, after the keys */
};

/* Table rows.  o, o2 are offsetof() in the base the section is walked on. */
#define PAV_CFG_STR(k, o, chk) \
	{.key = k, .type = PAV_CFG_T_STR, .off = o, .check = chk}
#define PAV_CFG_FILE(k, o) {.key = k, .type = PAV_CFG_T_FILE, .off = o}
#define PAV_CFG_INT(k, o, lo, hi) \
	{.key = k, .type = PAV_CFG_T_INT, .off = o, .min = lo, .max = hi}
#define PAV_CFG_SIZE(k, o, lo, hi) \
	{.key = k, .type = PAV_CFG_T_SIZE, .off = o, .min = lo, .max = hi}
#define PAV_CFG_BOOL(k, o) {.key = k, .type = PAV_CFG_T_BOOL, .off = o}
#define PAV_CFG_ENUM(k, o, ch) \
	{.key = k, .type = PAV_CFG_T_ENUM, .off = o, .choices = ch}
#define PAV_CFG_ENUM_STR(k, o, ch) \
	{.key = k, .type = PAV_CFG_T_ENUM_STR, .off = o, .choices = ch}
#define PAV_CFG_STRV(k, o, o2, least, chk) \
	{.key = k, .type = PAV_CFG_T_STRV, .off = o, .off2 = o2, \
	 .min = least, .check = chk}
#define PAV_CFG_PATHV(k, o, o2, least, chk) \
	{.key = k, .type = PAV_CFG_T_PATHV, .off = o, .off2 = o2, \
	 .min = least, .check = chk}
#define PAV_CFG_SECTION(k, s) {.key = k, .type = PAV_CFG_T_SECTION, .sec = &s}
#define PAV_CFG_CUSTOM(k, f) {.key = k, .type = PAV_CFG_T_CUSTOM, .fn = f}

/*
 * Applies s to obj, which must be an object: s->reset(base), each key by
 * its field (an unknown key is an error), the required keys, then
 * s->finish.  path is obj's JSON path ("" at the top).  Stops at the first
 * error: returns its negative errno, with the message in c->err.
 */
int pav_cfg_walk(struct pav_cfg_ctx *c, json_object *obj,
		 const struct pav_cfg_section *s, void *base, const char *path);

/* Writes "file: path: reason" (or "file: reason" when path is NULL or "")
 * into c->err and returns rc. */
__attribute__((format(printf, 4, 5)))
int pav_cfg_fail(struct pav_cfg_ctx *c, int rc, const char *path,
		 const char *fmt, ...);
int pav_cfg_oom(struct pav_cfg_ctx *c, const char *path);

/* out (PAV_CFG_KEYPATH bytes) = "base.key" or "base[i]", control
 * characters shown as '?' and a key cut at 64 bytes: messages quote keys
 * straight from the file. */
void pav_cfg_join(char *out, const char *base, const char *key);
void pav_cfg_join_index(char *out, const char *base, size_t i);

/* 1 when every character of s is in set. */
int pav_cfg_in_set(const char *s, const char *set);
/* 1 when obj has key (the walker checks obj is an object first). */
int pav_cfg_has(json_object *obj, const char *key);
/* *out = v's string: a non-empty string without NUL, else an error. */
int pav_cfg_get_str(struct pav_cfg_ctx *c, json_object *v, const char *path,
		    const char **out);
/* The same, then check (when not NULL): its reason is the error. */
int pav_cfg_get_checked_str(struct pav_cfg_ctx *c, json_object *v,
			    const char *path, pav_cfg_check_fn check,
			    const char **out);
/* *dst = a copy of s; the old *dst is freed only once the copy exists. */
int pav_cfg_replace_str(struct pav_cfg_ctx *c, char **dst, const char *s,
			const char *path);
/* s resolved against c->dir (absolute paths kept); NULL when out of
 * memory. */
char *pav_cfg_resolve(struct pav_cfg_ctx *c, const char *s);
void pav_cfg_free_strv(char **v, size_t n);

/* ------------------------------------------------ config_schema.c */

/* The main file's (and each drop-in's) top-level object. */
extern const struct pav_cfg_section pav_cfg_top_section;
/* The "log" and "store" defaults, set before a file defines them. */
void pav_cfg_log_reset(void *base);   /* base: struct pav_config */
void pav_cfg_store_reset(void *base); /* frees what store held */

#endif
