/*
 * json_check.c — a recursive-descent validator (no tree; it allocates only
 * to say where a duplicate key is):
 * the gateway's single definition of "valid JSON" for client messages,
 * API bodies, JWT headers and claims, and configuration files.  json-c
 * builds the tree afterwards.
 */
#include "json_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "utf8.h"

#define DUPLICATE_KEY "duplicate key in an object"

struct scan {
	const unsigned char *p, *end, *start;
	int depth, max_depth;
	const char *why;
	size_t at;      /* where the first failure was seen */
	size_t members; /* object members seen, every object counted */
	int find_dup;   /* look for a repeated key, spelled the same */
};

static int fail(struct scan *s, const char *why)
{
	if (!s->why) {
		s->why = why;
		s->at = (size_t)((s->p < s->end ? s->p : s->end) - s->start);
	}
	return -EINVAL;
}

static void ws(struct scan *s)
{
	while (s->p < s->end &&
	       (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex4(struct scan *s, unsigned *out)
{
	unsigned v = 0;

	if (s->end - s->p < 4)
		return fail(s, "bad \\u escape");
	for (int i = 0; i < 4; i++) {
		unsigned char c = *s->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (c | 0x20) - 'a' + 10;
		else
			return fail(s, "bad \\u escape");
	}
	*out = v;
	return 0;
}

/* After "\u": one code point, a surrogate pair taken whole. */
static int unicode_escape(struct scan *s)
{
	unsigned hi, lo;

	if (hex4(s, &hi))
		return -EINVAL;
	if (hi == 0)
		return fail(s, "\\u0000 in a string");
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return fail(s, "lone surrogate escape");
	if (hi < 0xd800 || hi > 0xdbff)
		return 0;
	if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
		return fail(s, "lone surrogate escape");
	s->p += 2;
	if (hex4(s, &lo))
		return -EINVAL;
	if (lo < 0xdc00 || lo > 0xdfff)
		return fail(s, "lone surrogate escape");
	return 0;
}

/* One UTF-8 sequence starting with a byte >= 0x80. */
static int utf8_seq(struct scan *s)
{
	size_t n = pav_utf8_seq(s->p, s->end);

	if (!n)
		return fail(s, "invalid UTF-8");
	s->p += n;
	return 0;
}

static int string(struct scan *s)
{
	s->p++; /* the opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return fail(s, "control character in a string");
		if (c >= 0x80) {
			if (utf8_seq(s))
				return -EINVAL;
			continue;
		}
		s->p++;
		if (c != '\\')
			continue;
		if (s->p >= s->end)
			break;
		c = *s->p++;
		if (c == 'u') {
			if (unicode_escape(s))
				return -EINVAL;
		} else if (!(c == '"' || c == '\\' || c == '/' || c == 'b' ||
			     c == 'f' || c == 'n' || c == 'r' || c == 't')) {
			return fail(s, "bad escape in a string");
		}
	}
	return fail(s, "unterminated string");
}

static int digits(struct scan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start ? 0 : fail(s, "bad number");
}

static int number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s))
		return -EINVAL;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s))
			return -EINVAL;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s))
			return -EINVAL;
	}
	return 0;
}

static int literal(struct scan *s, const char *word)
{
	for (; *word; word++, s->p++)
		if (s->p >= s->end || *s->p != (unsigned char)*word)
			return fail(s, "unexpected character");
	return 0;
}

static int value(struct scan *s);

/* The keys of one object, while find_dup looks for a repeated one. */
struct keys {
	struct key {
		const unsigned char *k;
		size_t len; /* quotes included */
	} *at;
	size_t n, cap;
};

/* Is the key just scanned (from k to s->p) one seen before?  Raw bytes
 * are compared: "a" and "\u0061" are not found here (the count in
 * pav_json_parse_object_at() still refuses them, with no position). */
static int repeated_key(struct scan *s, struct keys *ks,
			const unsigned char *k)
{
	size_t len = (size_t)(s->p - k);

	for (size_t i = 0; i < ks->n; i++)
		if (ks->at[i].len == len && !memcmp(ks->at[i].k, k, len))
			return 1;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 16;
		struct key *at = realloc(ks->at, cap * sizeof(*at));

		if (!at)
			return 0; /* not found: only the position is lost */
		ks->at = at;
		ks->cap = cap;
	}
	ks->at[ks->n++] = (struct key){k, len};
	return 0;
}

/* Objects and arrays: open, members separated by commas, close. */
static int members(struct scan *s, unsigned char close, struct keys *ks)
{
	for (;;) {
		if (close == '}') {
			const unsigned char *k = s->p;

			if (s->p >= s->end || *s->p != '"' || string(s))
				return fail(s, "object keys must be strings");
			s->members++;
			if (ks && repeated_key(s, ks, k)) {
				s->p = k;
				return fail(s, DUPLICATE_KEY);
			}
			ws(s);
			if (s->p >= s->end || *s->p++ != ':')
				return fail(s, "unexpected character");
		}
		if (value(s))
			return -EINVAL;
		if (s->p >= s->end)
			return fail(s, "incomplete JSON");
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return fail(s, "unexpected character");
		ws(s);
	}
}

static int container(struct scan *s, unsigned char close)
{
	struct keys ks = {NULL, 0, 0};
	int rc;

	if (++s->depth > s->max_depth)
		return fail(s, "JSON nested too deeply");
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	rc = members(s, close, s->find_dup && close == '}' ? &ks : NULL);
	free(ks.at);
	if (!rc)
		s->depth--;
	return rc;
}

static int value(struct scan *s)
{
	int rc;

	ws(s);
	if (s->p >= s->end)
		return fail(s, "incomplete JSON");
	switch (*s->p) {
	case '{': rc = container(s, '}'); break;
	case '[': rc = container(s, ']'); break;
	case '"': rc = string(s); break;
	case 't': rc = literal(s, "true"); break;
	case 'f': rc = literal(s, "false"); break;
	case 'n': rc = literal(s, "null"); break;
	default:
		rc = *s->p == '-' || (*s->p >= '0' && *s->p <= '9')
			     ? number(s)
			     : fail(s, "unexpected character");
	}
	if (!rc)
		ws(s);
	return rc;
}

/* The scan; with find_dup, a key repeated in one object fails it too.
 * *members: how many object members there are, all objects counted. */
static int check(const char *buf, size_t len, int max_depth, int find_dup,
		 const char **why, size_t *at, size_t *members)
{
	struct scan s = {(const unsigned char *)buf,
			 (const unsigned char *)buf + len,
			 (const unsigned char *)buf, 0, max_depth, NULL, 0, 0,
			 find_dup};

	if (value(&s))
		goto bad;
	if (s.p != s.end) {
		fail(&s, "trailing characters after the JSON value");
		goto bad;
	}
	if (members)
		*members = s.members;
	return 0;
bad:
	*why = s.why ? s.why : "invalid JSON";
	if (at)
		*at = s.at;
	return -EINVAL;
}

int pav_json_check_at(const char *buf, size_t len, int max_depth,
		      const char **why, size_t *at)
{
	return check(buf, len, max_depth, 0, why, at, NULL);
}

int pav_json_check(const char *buf, size_t len, int max_depth,
		   const char **why)
{
	return pav_json_check_at(buf, len, max_depth, why, NULL);
}

struct json_object *pav_json_parse_object(const char *buf, size_t len,
					  int max_depth,
					  const char *not_object,
					  const char **why)
{
	return pav_json_parse_object_at(buf, len, max_depth, not_object, why,
					NULL);
}

/* Members of every object in the tree (depth bounded by the scan). */
static size_t tree_members(json_object *o)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			(void)k;
			n += 1 + tree_members(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t len = json_object_array_length(o);

		for (size_t i = 0; i < len; i++)
			n += tree_members(json_object_array_get_idx(o, i));
	}
	return n;
}

struct json_object *pav_json_parse_object_at(const char *buf, size_t len,
					     int max_depth,
					     const char *not_object,
					     const char **why, size_t *at)
{
	json_tokener *tok;
	json_object *o;
	size_t members;

	if (check(buf, len, max_depth, 0, why, at, &members))
		return NULL;
	/* the scan above is the rule; json-c only builds the tree (its own
	 * depth counts scalars too, hence the + 1) */
	tok = json_tokener_new_ex(max_depth + 1);
	if (!tok) {
		*why = "out of memory";
		return NULL;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	json_tokener_free(tok);
	if (!o) {
		*why = "invalid JSON";
		return NULL;
	}
	/* json-c keeps the last of a repeated key, so the tree holds fewer
	 * members than the text: refused, never silently one of the two.
	 * Where (a second, slower scan) only when the caller asks. */
	if (tree_members(o) != members) {
		json_object_put(o);
		if (at) {
			*at = 0;
			check(buf, len, max_depth, 1, why, at, NULL);
		}
		*why = DUPLICATE_KEY;
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = not_object;
		return NULL;
	}
	return o;
}
