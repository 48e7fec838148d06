/* test_config.c — the configuration contract (DESIGN section 3).
 *
 * Each test writes its files into a fresh mkdtemp directory.  JSON is
 * written with ' for " to keep it readable.  Relative paths in the configs
 * ("jwt.key", "conf.d") resolve against the main file's directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "pav_limits.h"
#include "pav_build.h"
#include "pavilion/plugin.h"

struct fx {
	char dir[64];
	char path[128]; /* dir/gateway.json */
	char err[1024];
	struct pav_config cfg;
};

#define AUTH "'auth': {'algorithms': ['HS256'], 'key_file': 'jwt.key'}"
#define PUB(name, listen) \
	"{'name': '" name "', 'listen': '" listen "', " AUTH "}"
#define PUB_WITH(name, listen, extra) \
	"{'name': '" name "', 'listen': '" listen "', " AUTH ", " extra "}"
#define INTERNAL(name, listen) \
	"{'name': '" name "', 'listen': '" listen "', " \
	"'api': {'keys_file': 'api.keys'}}"
#define ONE(vhost) "{'vhosts': [" vhost "]}"

static void put(struct fx *f, const char *name, const char *json)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (const char *p = json; *p; p++)
		fputc(*p == '\'' ? '"' : *p, fp);
	assert_int_equal(fclose(fp), 0);
}

/* Writes bytes as they are (no ' translation). */
static void put_raw(struct fx *f, const char *name, const char *bytes)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(bytes, fp);
	assert_int_equal(fclose(fp), 0);
}

static void mkconfd(struct fx *f)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/conf.d", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
}

static int load(struct fx *f)
{
	return pav_config_load(f->path, &f->cfg, f->err, sizeof(f->err));
}

static void load_ok(struct fx *f, const char *json)
{
	put(f, "gateway.json", json);
	if (load(f))
		fail_msg("config refused: %s", f->err);
}

/* Loading fails and the message contains want, where each "@/" stands for
 * the temp directory + "/". */
static void fails_with(struct fx *f, const char *want)
{
	char exp[512];
	size_t n = 0;

	for (const char *p = want; *p && n + sizeof(f->dir) < sizeof(exp); p++) {
		if (strncmp(p, "@/", 2)) {
			exp[n++] = *p;
			continue;
		}
		n += (size_t)sprintf(exp + n, "%s/", f->dir);
		p++; /* the '/' */
	}
	exp[n] = '\0';
	if (!load(f))
		fail_msg("config accepted, expected: %s", exp);
	if (!strstr(f->err, exp))
		fail_msg("error\n  %s\ndoes not contain\n  %s", f->err, exp);
	assert_int_equal(f->cfg.nvhosts, 0); /* left empty on error */
}

static void refused(struct fx *f, const char *json, const char *want)
{
	put(f, "gateway.json", json);
	fails_with(f, want);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/pav-test-config.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/gateway.json", f->dir);
	put(f, "jwt.key", "secret\n");
	put(f, "api.keys", "k1\n");
	put(f, "cert.pem", "-----BEGIN CERTIFICATE-----\n");
	put(f, "key.pem", "-----BEGIN PRIVATE KEY-----\n");
	*state = f;
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	pav_config_free(&f->cfg);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ defaults */

static void defaults_are_filled(void **state)
{
	struct fx *f = *state;
	struct pav_vhost_config *v;
	char key[256];

	load_ok(f, ONE(PUB("pub", "127.0.0.1:8080")));
	assert_int_equal(f->cfg.log_level, PAV_LOG_INFO);
	assert_int_equal(f->cfg.log_json, 1);
	assert_string_equal(f->cfg.store.backend, "memory");
	assert_int_equal(f->cfg.store.nurls, 0);
	assert_int_equal(f->cfg.store.inbox_size, PAV_DEF_INBOX_SIZE);
	assert_string_equal(f->cfg.event_loop, "ev");
	assert_int_equal(f->cfg.nplugin_dirs, 1);
	assert_string_equal(f->cfg.plugin_dirs[0], PAV_DEFAULT_PLUGIN_DIR);
	assert_null(f->cfg.include_dir);
	assert_int_equal(f->cfg.nfiles, 1);
	assert_string_equal(f->cfg.files[0], f->path);
	assert_string_equal(f->cfg.path, f->path);
	assert_int_equal(f->cfg.nvhosts, 1);
	v = &f->cfg.vhosts[0];
	assert_string_equal(v->name, "pub");
	assert_int_equal(v->kind, PAV_VHOST_PUBLIC);
	assert_string_equal(v->listen_host, "127.0.0.1");
	assert_int_equal(v->port, 8080);
	assert_int_equal(v->nhostnames, 0);
	assert_string_equal(v->ns, "default");
	assert_int_equal(v->tls, 0);
	assert_int_equal(v->tls_terminated_upstream, 0);
	assert_string_equal(v->ws_path, PAV_DEF_WS_PATH);
	assert_int_equal(v->nallowed_origins, 0);
	assert_int_equal(v->allow_missing_origin, 0);
	assert_int_equal(v->ntrusted_proxies, 0);
	assert_int_equal(v->proxy_forwarded, 0);
	assert_int_equal(v->heartbeat_interval_s, PAV_DEF_HEARTBEAT_INTERVAL_S);
	assert_int_equal(v->idle_timeout_s, PAV_DEF_IDLE_TIMEOUT_S);
	assert_int_equal(v->permessage_deflate, 0);
	assert_int_equal(v->nalgorithms, 1);
	assert_string_equal(v->algorithms[0], "HS256");
	snprintf(key, sizeof(key), "%s/jwt.key", f->dir);
	assert_string_equal(v->key_file, key);
	assert_null(v->issuer);
	assert_null(v->audience);
	assert_int_equal(v->leeway_s, PAV_DEF_LEEWAY_S);
	assert_null(v->plugins);
	assert_int_equal(v->limits.max_message_bytes, PAV_DEF_MAX_MESSAGE_BYTES);
	assert_int_equal(v->limits.json_depth, PAV_DEF_JSON_DEPTH);
	assert_int_equal(v->limits.messages_per_s, PAV_DEF_MESSAGES_PER_S);
	assert_int_equal(v->limits.burst, PAV_DEF_BURST);
	assert_int_equal(v->limits.abuse_close_after, PAV_DEF_ABUSE_CLOSE_AFTER);
	assert_int_equal(v->limits.max_subscriptions, PAV_DEF_MAX_SUBSCRIPTIONS);
	assert_int_equal(v->limits.max_connections_per_ip,
			 PAV_DEF_MAX_CONNECTIONS_PER_IP);
	assert_int_equal(v->limits.handshakes_per_s_per_ip,
			 PAV_DEF_HANDSHAKES_PER_S_PER_IP);
	assert_int_equal(v->limits.max_connections_per_user,
			 PAV_DEF_MAX_CONNECTIONS_PER_USER);
	assert_int_equal(v->limits.outbound_queue_bytes,
			 PAV_DEF_OUTBOUND_QUEUE_BYTES);
	assert_int_equal(v->limits.handshake_timeout_s,
			 PAV_DEF_HANDSHAKE_TIMEOUT_S);
	assert_ptr_equal(v->file, f->cfg.files[0]);
	assert_int_equal(v->index, 0);
}

static void every_key_of_the_design_example_is_read(void **state)
{
	struct fx *f = *state;
	struct pav_vhost_config *v;
	json_object *ex, *greeting;

	load_ok(f, "{'plugin_dirs': ['/opt/p', 'rel'],"
		   " 'log': {'level': 'debug', 'format': 'text'},"
		   " 'store': {'backend': 'redis', 'url': 'redis://h:6379/0',"
		   "           'inbox_size': 7},"
		   " 'event_loop': 'uv',"
		   " 'vhosts': [{'name': 'public', 'listen': '0.0.0.0:8443',"
		   "  'hostnames': ['api.pavilion.network'], 'namespace': 'ns1',"
		   "  'tls': {'cert': 'cert.pem', 'key': 'key.pem'},"
		   "  'websocket': {'path': '/x', 'allowed_origins':"
		   "     ['https://pavilion.network'], 'heartbeat_interval_s': 5,"
		   "     'idle_timeout_s': 15, 'permessage_deflate': true,"
		   "     'allow_missing_origin': true},"
		   "  'auth': {'algorithms': ['RS256', 'ES256'],"
		   "     'key_file': 'jwt.key', 'issuer': 'pavilion',"
		   "     'audience': 'gateway', 'leeway_s': 0},"
		   "  'limits': {'messages_per_s': 3, 'burst': 4,"
		   "     'max_subscriptions': 5, 'outbound_queue_bytes': 4096},"
		   "  'trusted_proxies': ['10.0.0.0/8'],"
		   "  'trusted_proxies_header': 'forwarded',"
		   "  'plugins': {'example': {'greeting': 'hi'}, 'chat': {}}},"
		   " {'name': 'internal', 'listen': '127.0.0.1:8081',"
		   "  'api': {'keys_file': 'api.keys', 'max_body_bytes': 2048}}]}");
	assert_int_equal(f->cfg.log_level, PAV_LOG_DEBUG);
	assert_int_equal(f->cfg.log_json, 0);
	assert_string_equal(f->cfg.store.backend, "redis");
	assert_int_equal(f->cfg.store.nurls, 1);
	assert_string_equal(f->cfg.store.urls[0], "redis://h:6379/0");
	assert_int_equal(f->cfg.store.inbox_size, 7);
	assert_string_equal(f->cfg.event_loop, "uv");
	assert_int_equal(f->cfg.nplugin_dirs, 2);
	assert_string_equal(f->cfg.plugin_dirs[0], "/opt/p");
	assert_non_null(strstr(f->cfg.plugin_dirs[1], f->dir));
	v = &f->cfg.vhosts[0];
	assert_int_equal(v->tls, 1);
	assert_non_null(strstr(v->tls_cert, "/cert.pem"));
	assert_string_equal(v->hostnames[0], "api.pavilion.network");
	assert_string_equal(v->ns, "ns1");
	assert_string_equal(v->ws_path, "/x");
	assert_string_equal(v->allowed_origins[0], "https://pavilion.network");
	assert_int_equal(v->heartbeat_interval_s, 5);
	assert_int_equal(v->idle_timeout_s, 15);
	assert_int_equal(v->permessage_deflate, 1);
	assert_int_equal(v->allow_missing_origin, 1);
	assert_int_equal(v->ntrusted_proxies, 1);
	assert_int_equal(v->proxy_forwarded, 1);
	assert_int_equal(v->nalgorithms, 2);
	assert_string_equal(v->issuer, "pavilion");
	assert_string_equal(v->audience, "gateway");
	assert_int_equal(v->leeway_s, 0);
	assert_int_equal(v->limits.messages_per_s, 3);
	assert_int_equal(v->limits.burst, 4);
	assert_int_equal(v->limits.max_subscriptions, 5);
	assert_int_equal(v->limits.outbound_queue_bytes, 4096);
	assert_true(json_object_object_get_ex(v->plugins, "example", &ex));
	assert_true(json_object_object_get_ex(ex, "greeting", &greeting));
	assert_string_equal(json_object_get_string(greeting), "hi");
	v = &f->cfg.vhosts[1];
	assert_int_equal(v->kind, PAV_VHOST_INTERNAL);
	assert_non_null(strstr(v->api_keys_file, "/api.keys"));
	assert_int_equal(v->api_max_body, 2048);
}

static void internal_vhost_defaults(void **state)
{
	struct fx *f = *state;

	load_ok(f, ONE(INTERNAL("int", "127.0.0.1:8081")));
	assert_int_equal(f->cfg.vhosts[0].kind, PAV_VHOST_INTERNAL);
	assert_int_equal(f->cfg.vhosts[0].api_max_body, PAV_DEF_API_MAX_BODY);
	assert_int_equal(f->cfg.vhosts[0].tls, 0);
}

/* ------------------------------------------------------------ merging */

static void include_merges_sorted_dropins(void **state)
{
	struct fx *f = *state;
	struct pav_config *c = &f->cfg;

	put(f, "gateway.json",
	    "{'include': 'conf.d', 'log': {'level': 'debug', 'format': 'text'},"
	    " 'vhosts': [" PUB("a", "127.0.0.1:1") "]}");
	mkconfd(f);
	/* written out of order: 20 must still come after 10 */
	put(f, "conf.d/20-c.json", "{'vhosts': [" PUB("c", "127.0.0.1:3") "],"
				   " 'log': {'format': 'json'}}");
	put(f, "conf.d/10-b.json", "{'vhosts': [" PUB("b", "127.0.0.1:2") "],"
				   " 'log': {'level': 'warn'}}");
	put(f, "conf.d/README", "not json");
	put(f, "conf.d/old.json.bak", "{");
	put(f, "conf.d/.hidden.json", "{");
	if (load(f))
		fail_msg("%s", f->err);
	assert_int_equal(c->nvhosts, 3);
	assert_string_equal(c->vhosts[0].name, "a");
	assert_string_equal(c->vhosts[1].name, "b");
	assert_string_equal(c->vhosts[2].name, "c");
	assert_int_equal(c->vhosts[2].index, 2);
	assert_int_equal(c->nfiles, 3);
	assert_non_null(strstr(c->files[1], "/conf.d/10-b.json"));
	assert_non_null(strstr(c->files[2], "/conf.d/20-c.json"));
	assert_ptr_equal(c->vhosts[1].file, c->files[1]);
	/* 20's "log" replaced the whole object: level back to its default */
	assert_int_equal(c->log_level, PAV_LOG_INFO);
	assert_int_equal(c->log_json, 1);
	assert_non_null(strstr(c->include_dir, "/conf.d"));
}

static void dropin_may_hold_all_vhosts(void **state)
{
	struct fx *f = *state;

	put(f, "gateway.json", "{'include': 'conf.d'}");
	mkconfd(f);
	put(f, "conf.d/50-v.json", ONE(PUB("v", "127.0.0.1:2")));
	if (load(f))
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.nvhosts, 1);
}

/* "include": "." reads the main file's own directory: the main file is
 * not read again as a drop-in of itself (its vhost would be a duplicate). */
static void the_main_file_is_no_dropin_of_itself(void **state)
{
	struct fx *f = *state;

	put(f, "gateway.json", "{'include': '.', 'vhosts': ["
			       PUB("a", "127.0.0.1:1") "]}");
	put(f, "50-v.json", ONE(PUB("v", "127.0.0.1:2")));
	if (load(f))
		fail_msg("%s", f->err);
	assert_int_equal(f->cfg.nvhosts, 2);
	assert_string_equal(f->cfg.vhosts[1].name, "v");
	assert_int_equal(f->cfg.nfiles, 2);
}

/* The examples shipped in the repository's conf.d/ are valid drop-ins
 * (the test runs in test/unit). */
static void shipped_conf_d_examples_are_accepted(void **state)
{
	struct fx *f = *state;
	char *confd = realpath("../../conf.d", NULL);
	char json[1024];

	assert_non_null(confd);
	snprintf(json, sizeof(json), "{'include': '%s', 'vhosts': ["
		 PUB("a", "127.0.0.1:1") "]}", confd);
	free(confd);
	load_ok(f, json);
	assert_true(f->cfg.nfiles > 1);
}

static void no_vhost_at_all_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'log': {'level': 'info'}}",
		"gateway.json: vhosts: at least one vhost is required");
	refused(f, "{'vhosts': []}",
		"gateway.json: vhosts: at least one vhost is required");
}

static void missing_include_dir_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'include': 'nope', 'vhosts': [" PUB("a", "127.0.0.1:1") "]}",
		"gateway.json: include: cannot read directory ");
}

static void include_in_dropin_is_refused(void **state)
{
	struct fx *f = *state;

	put(f, "gateway.json", "{'include': 'conf.d', 'vhosts': ["
			       PUB("a", "127.0.0.1:1") "]}");
	mkconfd(f);
	put(f, "conf.d/10-x.json", "{'include': '.'}");
	fails_with(f, "@/conf.d/10-x.json: include: allowed only in the main "
		      "file");
}

static void duplicate_vhost_name_across_files_names_dropin(void **state)
{
	struct fx *f = *state;
	char want[256];

	put(f, "gateway.json", "{'include': 'conf.d', 'vhosts': ["
			       PUB("a", "127.0.0.1:1") "," PUB("pub", "127.0.0.1:2") "]}");
	mkconfd(f);
	put(f, "conf.d/10-x.json", ONE(PUB("pub", "127.0.0.1:3")));
	snprintf(want, sizeof(want), "@/conf.d/10-x.json: vhosts[0].name: "
		 "\"pub\" is already the name of vhosts[1] in %s", f->path);
	fails_with(f, want);
}

/* ------------------------------------------------------------ unknown keys */

static void unknown_top_level_key_names_file_and_key(void **state)
{
	struct fx *f = *state;

	refused(f, "{'bogus': 1, 'vhosts': [" PUB("a", "127.0.0.1:1") "]}",
		"@/gateway.json: bogus: unknown key");
}

static void unknown_vhost_key_names_file_and_path(void **state)
{
	struct fx *f = *state;

	refused(f, "{'vhosts': [" PUB("a", "127.0.0.1:1") ","
		   PUB_WITH("b", "127.0.0.1:2", "'bogus': 1") "]}",
		"@/gateway.json: vhosts[1].bogus: unknown key");
}

static void unknown_limits_key_in_dropin_names_dropin(void **state)
{
	struct fx *f = *state;

	put(f, "gateway.json", "{'include': 'conf.d', 'vhosts': ["
			       PUB("a", "127.0.0.1:1") "]}");
	mkconfd(f);
	put(f, "conf.d/10-x.json",
	    ONE(PUB_WITH("b", "127.0.0.1:2", "'limits': {'bogus': 1}")));
	fails_with(f, "@/conf.d/10-x.json: vhosts[0].limits.bogus: unknown key");
}

static void unknown_nested_keys_are_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'log': {'colour': 'red'}, 'vhosts': []}",
		"gateway.json: log.colour: unknown key");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'websocket': {'bogus': 1}")),
		"gateway.json: vhosts[0].websocket.bogus: unknown key");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256'], 'key_file': 'jwt.key', 'x': 1}}"),
		"gateway.json: vhosts[0].auth.x: unknown key");
	refused(f, ONE("{'name': 'i', 'listen': '127.0.0.1:1', 'api': "
		       "{'keys_file': 'api.keys', 'x': 1}}"),
		"gateway.json: vhosts[0].api.x: unknown key");
}

/* ------------------------------------------------------------ values */

static void wrong_type_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'limits': {'burst': 'twenty'}")),
		"gateway.json: vhosts[0].limits.burst: must be an integer from 1 "
		"to 100000");
	refused(f, "{'vhosts': {}}", "gateway.json: vhosts: must be an array");
	refused(f, "{'log': {'level': 3}, 'vhosts': []}",
		"gateway.json: log.level: must be one of error, warn, info, "
		"debug");
	refused(f, "{'plugin_dirs': '/x', 'vhosts': []}",
		"gateway.json: plugin_dirs: must be an array of strings");
	refused(f, "{'plugin_dirs': ['/x', 2], 'vhosts': []}",
		"gateway.json: plugin_dirs[1]: must be a string");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'tls': true")),
		"gateway.json: vhosts[0].tls: must be an object");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'permessage_deflate': 1}")),
		"gateway.json: vhosts[0].websocket.permessage_deflate: must be "
		"true or false");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'allow_missing_origin': 'yes'}")),
		"gateway.json: vhosts[0].websocket.allow_missing_origin: must "
		"be true or false");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'trusted_proxies_header': 'X-Real-IP'")),
		"gateway.json: vhosts[0].trusted_proxies_header: must be one "
		"of x-forwarded-for, forwarded");
	refused(f, "{'vhosts': [1]}", "gateway.json: vhosts[0]: must be an "
				      "object");
}

static void out_of_range_limit_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'limits': {'burst': -1}")),
		"gateway.json: vhosts[0].limits.burst: must be an integer from 1 "
		"to 100000");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'limits': {'burst': 100001}")),
		"vhosts[0].limits.burst: must be an integer from 1 to 100000");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'limits': {'burst': 1.5}")),
		"vhosts[0].limits.burst: must be an integer from 1 to 100000");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'limits': {'json_depth': 65}")),
		"vhosts[0].limits.json_depth: must be an integer from 1 to 64");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'limits': {'outbound_queue_bytes': 4095}")),
		"vhosts[0].limits.outbound_queue_bytes: must be an integer from "
		"4096 to 1073741824");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'limits': "
				"{'max_message_bytes': 99999999999999999999}")),
		"vhosts[0].limits.max_message_bytes: must be an integer from 64 "
		"to 16777216");
	refused(f, "{'store': {'inbox_size': 0}, 'vhosts': []}",
		"gateway.json: store.inbox_size: must be an integer from 1 to "
		"100000");
}

static void bad_names_are_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE(PUB("a b", "127.0.0.1:1")),
		"gateway.json: vhosts[0].name: must be 1 to 64 characters");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'namespace': 'x/y'")),
		"gateway.json: vhosts[0].namespace: must be 1 to 64 characters");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'plugins': {'Chat': {}}")),
		"gateway.json: vhosts[0].plugins.Chat: plugin names are");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'plugins': {'chat': 1}")),
		"gateway.json: vhosts[0].plugins.chat: must be an object");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'path': 'ws'}")),
		"gateway.json: vhosts[0].websocket.path: must start with \"/\"");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'allowed_origins': []}")),
		"gateway.json: vhosts[0].websocket.allowed_origins: must not be "
		"empty");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1", "'websocket': "
				"{'allowed_origins': ['https://x.org/']}")),
		"gateway.json: vhosts[0].websocket.allowed_origins[0]: must be an "
		"origin");
	refused(f, ONE("{'listen': '127.0.0.1:1', " AUTH "}"),
		"gateway.json: vhosts[0].name: required");
}

static void listen_forms(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"8080", ":8080", "h:0", "h:65536", "h:80x", "::1:80", "[::1]80",
		"[nothost]:80", "256.1.1.1:80", "h h:80", "h:",
	};
	char json[256];

	load_ok(f, ONE(PUB("a", "[::1]:8080")));
	assert_string_equal(f->cfg.vhosts[0].listen_host, "::1");
	assert_int_equal(f->cfg.vhosts[0].port, 8080);
	pav_config_free(&f->cfg);
	/* a network interface, not a host name: lws resolves none */
	load_ok(f, ONE(PUB("a", "lo:65535")));
	assert_string_equal(f->cfg.vhosts[0].listen_host, "lo");
	assert_int_equal(f->cfg.vhosts[0].port, 65535);
	pav_config_free(&f->cfg);
	refused(f, ONE(PUB("a", "localhost:8080")),
		"gateway.json: vhosts[0].listen: \"localhost\" is neither an "
		"IP address nor a network interface of this host");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json), ONE(PUB("a", "%s")), bad[i]);
		refused(f, json, "gateway.json: vhosts[0].listen: must be "
				 "\"host:port\"");
	}
}

static void shared_listen_needs_distinct_hostnames(void **state)
{
	struct fx *f = *state;

	refused(f, "{'vhosts': [" PUB("a", "127.0.0.1:1") "," PUB("b", "127.0.0.1:1") "]}",
		"gateway.json: vhosts[1].listen: also used by vhost \"a\"");
	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:1", "'hostnames': ['x.test']") ","
		   PUB_WITH("b", "127.0.0.1:1", "'hostnames': ['X.test', 'y.test']")
		   "]}",
		"gateway.json: vhosts[1].listen: also used by vhost \"a\"");
	load_ok(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:1", "'hostnames': ['a.test']") ","
		   PUB_WITH("b", "127.0.0.1:1", "'hostnames': ['b.test']") "]}");
	assert_int_equal(f->cfg.nvhosts, 2);
}

/* Listens on one port that are not the same must not overlap: lws would
 * bind the second and fail at start. */
#define UPSTREAM "'tls': {'terminated_upstream': true}"
static void listens_on_one_port_do_not_overlap(void **state)
{
	struct fx *f = *state;
	static const char *const clash[][2] = {
		{"127.0.0.1:7", "lo:7"},      /* an interface and its address */
		{"lo:7", "127.0.0.1:7"},
		{"0.0.0.0:7", "127.0.0.1:7"}, /* a wildcard and anything */
		{"127.0.0.2:7", "[::]:7"},
		{"lo:7", "0.0.0.0:7"},
	};
	char json[512];

	for (size_t i = 0; i < sizeof(clash) / sizeof(clash[0]); i++) {
		snprintf(json, sizeof(json),
			 "{'vhosts': [" PUB_WITH("a", "%s", UPSTREAM ", "
			 "'hostnames': ['a.test']") "," PUB_WITH("b", "%s",
			 UPSTREAM ", 'hostnames': ['b.test']") "]}",
			 clash[i][0], clash[i][1]);
		refused(f, json, "gateway.json: vhosts[1].listen: ");
	}
	refused(f, "{'vhosts': [" PUB("a", "127.0.0.1:7") "," PUB("b", "lo:7")
		   "]}", "gateway.json: vhosts[1].listen: \"lo\" and vhost "
		   "\"a\"'s \"127.0.0.1\" (");
	/* one address written two ways is one listen: shared by hostnames */
	load_ok(f, "{'vhosts': ["
		   PUB_WITH("a", "[::1]:7", "'hostnames': ['a.test']") ","
		   PUB_WITH("b", "[0:0:0:0:0:0:0:1]:7", "'hostnames': ['b.test']")
		   "]}");
	assert_string_equal(f->cfg.vhosts[1].listen_host, "::1");
	pav_config_free(&f->cfg);
	refused(f, "{'vhosts': [" PUB("a", "[::1]:7") "," PUB("b", "[0::1]:7")
		   "]}", "gateway.json: vhosts[1].listen: also used by vhost");
	/* apart: other addresses (with hostnames: lws picks a port's vhost
	 * by Host, see below), other ports */
	load_ok(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'hostnames': ['a.test']") ","
		   PUB_WITH("b", "127.0.0.2:7", "'hostnames': ['b.test']") ","
		   PUB_WITH("c", "[::1]:7", "'hostnames': ['c.test']") ","
		   PUB("d", "lo:8") "]}");
	assert_int_equal(f->cfg.nvhosts, 4);
}

/* lws hands a request to the vhost of its port whose name matches the
 * Host, else to the port's first vhost, whatever listener it came through;
 * every reuse_port vhost is one port to lws. */
static void vhosts_lws_takes_for_one_port_need_hostnames(void **state)
{
	struct fx *f = *state;

	refused(f, "{'vhosts': [" PUB("a", "127.0.0.1:7") ","
		   PUB_WITH("b", "127.0.0.2:7", "'hostnames': ['b.test']") "]}",
		"gateway.json: vhosts[1].hostnames: vhost \"a\" (@/gateway.json) "
		"listens on port 7 too, at \"127.0.0.1\": lws hands a request "
		"to the vhost of its port whose hostname matches its Host, else "
		"to the port's first, whatever the address; give both distinct, "
		"non-empty \"hostnames\"");
	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'hostnames': ['x.test']") ","
		   PUB_WITH("b", "127.0.0.2:7", "'hostnames': ['x.test']") "]}",
		"gateway.json: vhosts[1].hostnames: vhost \"a\"");
	/* reuse_port: whatever the ports */
	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'reuse_port': true") ","
		   PUB_WITH("b", "127.0.0.1:8", "'reuse_port': true") "]}",
		"gateway.json: vhosts[1].hostnames: vhost \"a\" (@/gateway.json) "
		"is \"reuse_port\" too, which lws takes for one port: lws hands "
		"a request to the vhost of its port whose hostname matches its "
		"Host, else to the port's first, whatever the address; give both "
		"distinct, non-empty \"hostnames\"");
	load_ok(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'reuse_port': true, "
			    "'hostnames': ['a.test']") ","
		   PUB_WITH("b", "127.0.0.1:8", "'reuse_port': true, "
			    "'hostnames': ['b.test']") ","
		   PUB("c", "127.0.0.1:9") "]}");
	assert_int_equal(f->cfg.nvhosts, 3);
	pav_config_free(&f->cfg);
	/* one listen, with and without reuse_port: the second bind fails */
	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'reuse_port': true, "
			    "'hostnames': ['a.test']") ","
		   PUB_WITH("b", "127.0.0.1:7", "'hostnames': ['b.test']") "]}",
		"gateway.json: vhosts[1].listen: also used by vhost \"a\" "
		"(@/gateway.json), with \"reuse_port\"; vhosts on one listen "
		"address agree on it");
}

/* lws tries a port's names in order, each compared with the Host only up
 * to the Host's length, and "*.x" is "x" to it. */
static void hostnames_lws_would_hand_to_another_vhost(void **state)
{
	struct fx *f = *state;

	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'hostnames': ['rt.test.example']")
		   "," PUB_WITH("b", "127.0.0.1:7", "'hostnames': ['RT.test']")
		   "]}",
		"gateway.json: vhosts[1].hostnames: a Host \"RT.test\" would go "
		"to vhost \"a\" (@/gateway.json), listed before: lws compares "
		"its \"rt.test.example\" with a Host only up to the Host's "
		"length; list vhost \"b\" first");
	/* any vhosts lws takes for one port */
	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'reuse_port': true, "
			    "'hostnames': ['a.test', 'rt.test.example']") ","
		   PUB_WITH("b", "127.0.0.1:8", "'reuse_port': true, "
			    "'hostnames': ['rt.test']") "]}",
		"gateway.json: vhosts[1].hostnames: a Host \"rt.test\" would go "
		"to vhost \"a\"");
	refused(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'hostnames': ['x.test']") ","
		   PUB_WITH("b", "127.0.0.2:7", "'hostnames': ['*.X.test']") "]}",
		"gateway.json: vhosts[1].hostnames: \"*.X.test\" and vhost "
		"\"a\"'s \"x.test\" (@/gateway.json) are one name to lws, which "
		"serves \"*.x\" as \"x\" and its subdomains");
	/* the shorter name first; a wildcard beside a name under it; names
	 * in lower case */
	load_ok(f, "{'vhosts': ["
		   PUB_WITH("b", "127.0.0.1:7", "'hostnames': ['RT.Test']") ","
		   PUB_WITH("a", "127.0.0.1:7", "'hostnames': ['rt.test.example', "
			    "'*.x.test']") ","
		   PUB_WITH("c", "127.0.0.1:7", "'hostnames': ['api.x.test']")
		   "]}");
	assert_string_equal(f->cfg.vhosts[0].hostnames[0], "rt.test");
	assert_string_equal(pav_hostname_lws(f->cfg.vhosts[1].hostnames[1]),
			    "x.test");
	assert_string_equal(pav_hostname_lws(f->cfg.vhosts[2].hostnames[0]),
			    "api.x.test");
	pav_config_free(&f->cfg);
	/* ports lws keeps apart */
	load_ok(f, "{'vhosts': ["
		   PUB_WITH("a", "127.0.0.1:7", "'hostnames': ['rt.test.example']")
		   "," PUB_WITH("b", "127.0.0.1:8", "'hostnames': ['rt.test']")
		   "]}");
	assert_int_equal(f->cfg.nvhosts, 2);
}

static void websocket_max_message_bytes_is_accepted(void **state)
{
	struct fx *f = *state;

	load_ok(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'max_message_bytes': 4096}")));
	assert_int_equal(f->cfg.vhosts[0].limits.max_message_bytes, 4096);
	pav_config_free(&f->cfg);
	load_ok(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'limits': {'max_message_bytes': 2048}")));
	assert_int_equal(f->cfg.vhosts[0].limits.max_message_bytes, 2048);
	pav_config_free(&f->cfg);
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'max_message_bytes': 4096},"
				"'limits': {'max_message_bytes': 2048}")),
		"gateway.json: vhosts[0].websocket.max_message_bytes: differs "
		"from limits.max_message_bytes");
	refused(f, ONE(PUB_WITH("a", "127.0.0.1:1",
				"'websocket': {'max_message_bytes': 63}")),
		"gateway.json: vhosts[0].websocket.max_message_bytes: must be an "
		"integer from 64 to 16777216");
}

/* ------------------------------------------------------------ auth */

static void missing_key_file_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256'], 'key_file': 'nope.key'}}"),
		"@/gateway.json: vhosts[0].auth.key_file: cannot read @/nope.key: "
		"No such file or directory");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256']}}"),
		"gateway.json: vhosts[0].auth.key_file: required");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256'], 'key_file': '.'}}"),
		"gateway.json: vhosts[0].auth.key_file: ");
}

static void public_vhost_without_auth_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1'}"),
		"gateway.json: vhosts[0].auth: required on a public vhost");
}

static void bad_algorithms_are_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS999'], 'key_file': 'jwt.key'}}"),
		"gateway.json: vhosts[0].auth.algorithms[0]: must be one of "
		"HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['none'], 'key_file': 'jwt.key'}}"),
		"gateway.json: vhosts[0].auth.algorithms[0]: must be one of");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': [], 'key_file': 'jwt.key'}}"),
		"gateway.json: vhosts[0].auth.algorithms: must not be empty");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256', 'RS256'], 'key_file': 'jwt.key'}}"),
		"gateway.json: vhosts[0].auth.algorithms: must be all HS*, or all "
		"RS*/ES*");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256', 'HS256'], 'key_file': 'jwt.key'}}"),
		"gateway.json: vhosts[0].auth.algorithms[1]: duplicate");
	refused(f, ONE("{'name': 'a', 'listen': '127.0.0.1:1', 'auth': "
		       "{'algorithms': ['HS256'], 'key_file': 'jwt.key', "
		       "'leeway_s': 3601}}"),
		"gateway.json: vhosts[0].auth.leeway_s: must be an integer from 0 "
		"to 3600");
}

/* ------------------------------------------------------------ tls */

static void plain_ws_on_any_address_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE(PUB("a", "0.0.0.0:8443")),
		"@/gateway.json: vhosts[0].tls: plain ws is allowed only on a "
		"loopback address or with \"terminated_upstream\": true");
	refused(f, ONE(PUB("a", "[::]:8443")),
		"gateway.json: vhosts[0].tls: plain ws is allowed only");
	refused(f, ONE(PUB_WITH("a", "10.0.0.1:8443",
				"'tls': {'terminated_upstream': false}")),
		"gateway.json: vhosts[0].tls: plain ws is allowed only");
}

static void plain_ws_on_loopback_is_accepted(void **state)
{
	struct fx *f = *state;

	load_ok(f, "{'vhosts': [" PUB("a", "127.0.0.1:1") "," PUB("b", "127.9.8.7:2")
		   "," PUB("c", "[::1]:3") "," PUB("d", "lo:4") "]}");
	assert_int_equal(f->cfg.nvhosts, 4);
	for (size_t i = 0; i < f->cfg.nvhosts; i++)
		assert_int_equal(f->cfg.vhosts[i].tls, 0);
}

static void plain_ws_with_terminated_upstream_is_accepted(void **state)
{
	struct fx *f = *state;

	load_ok(f, ONE(PUB_WITH("a", "0.0.0.0:8443",
				"'tls': {'terminated_upstream': true}")));
	assert_int_equal(f->cfg.vhosts[0].tls, 0);
	assert_int_equal(f->cfg.vhosts[0].tls_terminated_upstream, 1);
}

static void tls_needs_cert_and_key_together(void **state)
{
	struct fx *f = *state;

	load_ok(f, ONE(PUB_WITH("a", "0.0.0.0:8443",
				"'tls': {'cert': 'cert.pem', 'key': 'key.pem'}")));
	assert_int_equal(f->cfg.vhosts[0].tls, 1);
	pav_config_free(&f->cfg);
	refused(f, ONE(PUB_WITH("a", "0.0.0.0:8443", "'tls': {'cert': 'cert.pem'}")),
		"gateway.json: vhosts[0].tls.key: required with tls.cert");
	refused(f, ONE(PUB_WITH("a", "0.0.0.0:8443", "'tls': {'key': 'key.pem'}")),
		"gateway.json: vhosts[0].tls.cert: required with tls.key");
	refused(f, ONE(PUB_WITH("a", "0.0.0.0:8443",
				"'tls': {'cert': 'no.pem', 'key': 'key.pem'}")),
		"gateway.json: vhosts[0].tls.cert: cannot read ");
}

/* The internal API in clear text: only on loopback or behind a TLS proxy;
 * with a certificate it serves HTTPS. */
static void internal_plain_http_on_any_address_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE(INTERNAL("i", "0.0.0.0:8081")),
		"@/gateway.json: vhosts[0].tls: plain HTTP is allowed only on a "
		"loopback address or with \"terminated_upstream\": true");
	refused(f, ONE(INTERNAL("i", "[::]:8081")),
		"gateway.json: vhosts[0].tls: plain HTTP is allowed only");
	refused(f, ONE("{'name': 'i', 'listen': '10.0.0.1:8081', "
		       "'tls': {'terminated_upstream': false}, "
		       "'api': {'keys_file': 'api.keys'}}"),
		"gateway.json: vhosts[0].tls: plain HTTP is allowed only");
}

static void internal_tls_or_terminated_upstream_is_accepted(void **state)
{
	struct fx *f = *state;

	load_ok(f, "{'vhosts': [{'name': 'i', 'listen': '0.0.0.0:8081', "
		   "'tls': {'cert': 'cert.pem', 'key': 'key.pem'}, "
		   "'api': {'keys_file': 'api.keys'}}, "
		   "{'name': 'j', 'listen': '10.0.0.1:8082', "
		   "'tls': {'terminated_upstream': true}, "
		   "'api': {'keys_file': 'api.keys'}}]}");
	assert_int_equal(f->cfg.vhosts[0].kind, PAV_VHOST_INTERNAL);
	assert_int_equal(f->cfg.vhosts[0].tls, 1);
	assert_int_equal(f->cfg.vhosts[1].tls_terminated_upstream, 1);
}

/* lws routes a request by Host among all vhosts of the listener's port,
 * on any address: internal and public vhosts share no port. */
static void internal_and_public_may_not_share_a_port(void **state)
{
	struct fx *f = *state;

	refused(f, "{'vhosts': [" PUB("pub", "127.0.0.2:8080") ","
		   INTERNAL("int", "127.0.0.1:8080") "]}",
		"@/gateway.json: vhosts[1].listen: port 8080 is also used by "
		"public vhost \"pub\" (@/gateway.json); internal and public "
		"vhosts may not share a port, on any address");
	refused(f, "{'vhosts': [" INTERNAL("int", "127.0.0.1:8080") ","
		   PUB("pub", "[::1]:8080") "]}",
		"gateway.json: vhosts[1].listen: port 8080 is also used by "
		"internal vhost \"int\"");
	refused(f, "{'vhosts': [" PUB_WITH("pub", "127.0.0.1:8080",
					  "'hostnames': ['a.test']") ","
		   "{'name': 'int', 'listen': '127.0.0.1:8080', "
		   "'hostnames': ['b.test'], 'api': {'keys_file': 'api.keys'}}]}",
		"gateway.json: vhosts[1].listen: port 8080 is also used by "
		"public vhost \"pub\"");
}

static void internal_and_public_may_not_share_a_hostname(void **state)
{
	struct fx *f = *state;

	put(f, "gateway.json", "{'include': 'conf.d', 'vhosts': ["
	    PUB_WITH("pub", "127.0.0.1:8080",
		     "'hostnames': ['x.test', 'api.test']") "]}");
	mkconfd(f);
	put(f, "conf.d/10-i.json", "{'vhosts': [{'name': 'int', "
	    "'listen': '127.0.0.1:8081', 'hostnames': ['API.test'], "
	    "'api': {'keys_file': 'api.keys'}}]}");
	fails_with(f, "@/conf.d/10-i.json: vhosts[0].hostnames: \"API.test\" "
		   "is also a hostname of public vhost \"pub\" "
		   "(@/gateway.json); internal and public vhosts may not share "
		   "a hostname");
}

/* Only the two kinds are kept apart: internal vhosts may share a port on
 * different addresses (the API checks the listener per request). */
static void internal_vhosts_may_share_a_port(void **state)
{
	struct fx *f = *state;

	load_ok(f, "{'vhosts': ["
		   "{'name': 'a', 'listen': '127.0.0.1:8081', 'hostnames': "
		   "['a.test'], 'api': {'keys_file': 'api.keys'}},"
		   "{'name': 'b', 'listen': '127.0.0.2:8081', 'hostnames': "
		   "['b.test'], 'api': {'keys_file': 'api.keys'}},"
		   PUB("pub", "127.0.0.1:8080") "]}");
	assert_int_equal(f->cfg.nvhosts, 3);
	pav_config_free(&f->cfg);
	refused(f, "{'vhosts': [" INTERNAL("a", "127.0.0.1:8081") ","
		   INTERNAL("b", "127.0.0.2:8081") "]}",
		"gateway.json: vhosts[1].hostnames: vhost \"a\"");
}

/* ------------------------------------------------------------ internal */

static void internal_vhost_with_auth_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE("{'name': 'i', 'listen': '127.0.0.1:1', " AUTH ", "
		       "'api': {'keys_file': 'api.keys'}}"),
		"gateway.json: vhosts[0].auth: not allowed on an internal vhost");
	refused(f, ONE("{'name': 'i', 'listen': '127.0.0.1:1', 'plugins': {}, "
		       "'api': {'keys_file': 'api.keys'}}"),
		"gateway.json: vhosts[0].plugins: not allowed on an internal");
	refused(f, ONE("{'name': 'i', 'listen': '127.0.0.1:1', 'websocket': {},"
		       "'api': {'keys_file': 'api.keys'}}"),
		"gateway.json: vhosts[0].websocket: not allowed on an internal");
	refused(f, ONE("{'name': 'i', 'listen': '127.0.0.1:1', 'api': {}}"),
		"gateway.json: vhosts[0].api.keys_file: required");
}

/* ------------------------------------------------------------ store */

static void redis_without_url_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, "{'store': {'backend': 'redis'}, 'vhosts': []}",
		"@/gateway.json: store.url: required with \"backend\": \"redis\"");
	refused(f, "{'store': {'backend': 'redis', 'url': 'http://x'}, "
		   "'vhosts': []}",
		"gateway.json: store.url: must start with \"redis://\"");
	refused(f, "{'store': {'url': 'redis://x'}, 'vhosts': []}",
		"gateway.json: store.url: only for \"backend\": \"redis\"");
	refused(f, "{'store': {'backend': 'etcd'}, 'vhosts': []}",
		"gateway.json: store.backend: must be one of memory, redis");
	refused(f, "{'event_loop': 'epoll', 'vhosts': []}",
		"gateway.json: event_loop: must be one of ev, poll, uv");
}

static void redis_sentinel_is_parsed(void **state)
{
	struct fx *f = *state;

	load_ok(f, "{'store': {'backend': 'redis', 'sentinel': {'addresses': "
		   "['10.0.0.1:26379', '[::1]', 'sentinel-2.internal:26380'], "
		   "'master': 'pavilion', 'db': 2}}, 'vhosts': ["
		   PUB("pub", "127.0.0.1:8080") "]}");
	assert_int_equal(f->cfg.store.nsentinels, 3);
	assert_string_equal(f->cfg.store.sentinels[0], "10.0.0.1:26379");
	assert_string_equal(f->cfg.store.sentinels[2],
			    "sentinel-2.internal:26380");
	assert_null(f->cfg.store.sentinels[3]);
	assert_string_equal(f->cfg.store.sentinel_master, "pavilion");
	assert_int_equal(f->cfg.store.sentinel_db, 2);
	assert_int_equal(f->cfg.store.nurls, 0);
	pav_config_free(&f->cfg);
}

#define SENTINEL_STORE(more) \
	"{'store': {'backend': 'redis', " more "}, 'vhosts': []}"
#define ONE_SENTINEL "'sentinel': {'addresses': ['h:1'], 'master': 'm'}"

static void redis_sentinel_with_url_or_shards_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, SENTINEL_STORE("'url': 'redis://x', " ONE_SENTINEL),
		"gateway.json: store.url: give one of \"url\", \"shards\" "
		"or \"sentinel\"");
	refused(f, SENTINEL_STORE("'shards': ['redis://x'], " ONE_SENTINEL),
		"gateway.json: store.shards: give one of \"url\", \"shards\" "
		"or \"sentinel\"");
	refused(f, SENTINEL_STORE("'url': 'redis://x', 'shards': "
				  "['redis://y']"),
		"gateway.json: store.url: give one of");
	refused(f, "{'store': {" ONE_SENTINEL "}, 'vhosts': []}",
		"gateway.json: store.sentinel: only for \"backend\": "
		"\"redis\"");
	refused(f, SENTINEL_STORE(ONE_SENTINEL ", 'tls_ca_file': 'x'"),
		"gateway.json: store.tls_ca_file");
}

static void redis_sentinel_bad_parts_are_refused(void **state)
{
	struct fx *f = *state;

	refused(f, SENTINEL_STORE("'sentinel': {'master': 'm'}"),
		"gateway.json: store.sentinel.addresses: required");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h']}"),
		"gateway.json: store.sentinel.master: required");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': [], "
				  "'master': 'm'}"),
		"gateway.json: store.sentinel.addresses:");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h:0'], "
				  "'master': 'm'}"),
		"gateway.json: store.sentinel.addresses[0]: must be "
		"\"host:port\"");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h', 'a b'], "
				  "'master': 'm'}"),
		"gateway.json: store.sentinel.addresses[1]: must be");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['[::1'], "
				  "'master': 'm'}"),
		"gateway.json: store.sentinel.addresses[0]: must be");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'a/b'}"),
		"gateway.json: store.sentinel.master: must be 1 to 64");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': ''}"),
		"gateway.json: store.sentinel.master:");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'db': -1}"),
		"gateway.json: store.sentinel.db:");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'password': 'x'}"),
		"gateway.json: store.sentinel.password:");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['a', 'b', 'c', "
				  "'d', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', "
				  "'m', 'n', 'o', 'p', 'q'], 'master': 'm'}"),
		"gateway.json: store.sentinel.addresses: at most 16 sentinels");
}

static void redis_sentinel_auth_is_parsed(void **state)
{
	struct fx *f = *state;

	put(f, "redis.pw", "m\n");
	put(f, "sentinel.pw", "s\n");
	load_ok(f, "{'store': {'backend': 'redis', 'password_file': "
		   "'redis.pw', 'sentinel': {'addresses': ['h'], 'master': "
		   "'m', 'master_user': 'gw-1', 'sentinel_user': 'watcher', "
		   "'sentinel_password_file': 'sentinel.pw'}}, 'vhosts': ["
		   PUB("pub", "127.0.0.1:8080") "]}");
	assert_string_equal(f->cfg.store.sentinel_master_user, "gw-1");
	assert_string_equal(f->cfg.store.sentinel_user, "watcher");
	assert_non_null(strstr(f->cfg.store.sentinel_password_file,
			       "/sentinel.pw"));
	pav_config_free(&f->cfg);
	/* a password without a user: the sentinels' default user */
	load_ok(f, "{'store': {'backend': 'redis', 'sentinel': {'addresses': "
		   "['h'], 'master': 'm', 'sentinel_password_file': "
		   "'sentinel.pw'}}, 'vhosts': [" PUB("pub", "127.0.0.1:8080")
		   "]}");
	assert_null(f->cfg.store.sentinel_user);
	assert_null(f->cfg.store.sentinel_master_user);
	pav_config_free(&f->cfg);
}

static void redis_sentinel_auth_without_its_password_is_refused(void **state)
{
	struct fx *f = *state;
	char json[512], user[129]; /* one byte over 127 */

	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'master_user': 'gw'}"),
		"@/gateway.json: store.sentinel.master_user: needs "
		"\"password_file\"");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'sentinel_user': 'w'}"),
		"@/gateway.json: store.sentinel.sentinel_user: needs "
		"\"sentinel_password_file\"");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'sentinel_password_file': "
				  "'nope.pw'}"),
		"@/gateway.json: store.sentinel.sentinel_password_file: "
		"cannot read @/nope.pw");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'sentinel_user': ''}"),
		"gateway.json: store.sentinel.sentinel_user: must not be "
		"empty");
	memset(user, 'u', sizeof(user));
	user[128] = '\0';
	snprintf(json, sizeof(json), SENTINEL_STORE("'sentinel': {'addresses': "
		 "['h'], 'master': 'm', 'master_user': '%s'}"), user);
	refused(f, json, "gateway.json: store.sentinel.master_user: must be "
		"an ACL user name of 1 to 127 bytes");
	refused(f, "{'store': {'sentinel_user': 'w'}, 'vhosts': []}",
		"gateway.json: store.sentinel_user: unknown key");
}

static void redis_sentinel_tls_takes_the_tls_files(void **state)
{
	struct fx *f = *state;

	put(f, "ca.pem", "x\n");
	put(f, "client.pem", "x\n");
	put(f, "client.key", "x\n");
	load_ok(f, "{'store': {'backend': 'redis', 'sentinel': {'addresses': "
		   "['h'], 'master': 'm', 'tls': true}, 'tls_ca_file': "
		   "'ca.pem', 'tls_cert_file': 'client.pem', 'tls_key_file': "
		   "'client.key'}, 'vhosts': [" PUB("pub", "127.0.0.1:8080")
		   "]}");
	assert_int_equal(f->cfg.store.sentinel_tls, 1);
	assert_non_null(strstr(f->cfg.store.tls_ca_file, "/ca.pem"));
	pav_config_free(&f->cfg);
	load_ok(f, "{'store': {'backend': 'redis', " ONE_SENTINEL "}, "
		   "'vhosts': [" PUB("pub", "127.0.0.1:8080") "]}");
	assert_int_equal(f->cfg.store.sentinel_tls, 0);
	pav_config_free(&f->cfg);
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'tls': false}, "
				  "'tls_ca_file': 'ca.pem'"),
		"@/gateway.json: store.tls_ca_file: only with a rediss:// URL "
		"(TLS) or \"sentinel\": {\"tls\": true}");
	refused(f, SENTINEL_STORE(ONE_SENTINEL ", 'tls_key_file': "
				  "'client.key'"),
		"@/gateway.json: store.tls_cert_file: required with "
		"\"tls_key_file\"");
	refused(f, SENTINEL_STORE("'sentinel': {'addresses': ['h'], "
				  "'master': 'm', 'tls': 'yes'}"),
		"@/gateway.json: store.sentinel.tls: must be");
}

/* ------------------------------------------------------------ files */

static void invalid_json_names_file(void **state)
{
	struct fx *f = *state;

	refused(f, "{'vhosts': [", "@/gateway.json: invalid JSON: ");
	refused(f, "{'vhosts': [\n1,]}",
		"@/gateway.json: invalid JSON: unexpected character at line 2");
	/* a repeated key is refused where it is, never the last one kept */
	refused(f, "{'vhosts': [],\n  'event_loop': 'poll', 'event_loop': 'uv'}",
		"@/gateway.json: invalid JSON: duplicate key in an object at "
		"line 2, column 25");
	put(f, "gateway.json", "{'include': 'conf.d', 'vhosts': ["
			       PUB("a", "127.0.0.1:1") "]}");
	mkconfd(f);
	put(f, "conf.d/10-x.json", "{");
	fails_with(f, "@/conf.d/10-x.json: invalid JSON: ");
}

static void trailing_garbage_is_refused(void **state)
{
	struct fx *f = *state;

	refused(f, ONE(PUB("a", "127.0.0.1:1")) " x",
		"@/gateway.json: invalid JSON: trailing characters");
	refused(f, ONE(PUB("a", "127.0.0.1:1")) "{}",
		"@/gateway.json: invalid JSON: trailing characters");
	load_ok(f, ONE(PUB("a", "127.0.0.1:1")) " \n\t\n");
}

static void top_level_must_be_an_object(void **state)
{
	struct fx *f = *state;

	refused(f, "[]", "@/gateway.json: must contain a JSON object");
	refused(f, "", "@/gateway.json: invalid JSON: ");
}

static void too_deep_json_is_refused(void **state)
{
	struct fx *f = *state;
	char json[512];
	int n = 0;

	n += snprintf(json + n, sizeof(json) - (size_t)n, "{'a':");
	for (int i = 0; i < 40; i++)
		n += snprintf(json + n, sizeof(json) - (size_t)n, "[");
	for (int i = 0; i < 40; i++)
		n += snprintf(json + n, sizeof(json) - (size_t)n, "]");
	snprintf(json + n, sizeof(json) - (size_t)n, "}");
	refused(f, json, "@/gateway.json: invalid JSON: ");
}

static void invalid_utf8_is_refused(void **state)
{
	struct fx *f = *state;

	put_raw(f, "gateway.json", "{\"vhosts\": [{\"name\": \"\xff\"}]}");
	fails_with(f, "@/gateway.json: invalid JSON: ");
}

static void missing_main_file_is_refused(void **state)
{
	struct fx *f = *state;
	int rc;

	rc = load(f); /* gateway.json not written */
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(f->err, "gateway.json: cannot read: "));
	pav_config_free(&f->cfg); /* harmless on the emptied config */
	pav_config_free(&f->cfg);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(defaults_are_filled),
		T(every_key_of_the_design_example_is_read),
		T(internal_vhost_defaults),
		T(include_merges_sorted_dropins),
		T(dropin_may_hold_all_vhosts),
		T(shipped_conf_d_examples_are_accepted),
		T(no_vhost_at_all_is_refused),
		T(missing_include_dir_is_refused),
		T(include_in_dropin_is_refused),
		T(duplicate_vhost_name_across_files_names_dropin),
		T(the_main_file_is_no_dropin_of_itself),
		T(unknown_top_level_key_names_file_and_key),
		T(unknown_vhost_key_names_file_and_path),
		T(unknown_limits_key_in_dropin_names_dropin),
		T(unknown_nested_keys_are_refused),
		T(wrong_type_is_refused),
		T(out_of_range_limit_is_refused),
		T(bad_names_are_refused),
		T(listen_forms),
		T(shared_listen_needs_distinct_hostnames),
		T(listens_on_one_port_do_not_overlap),
		T(vhosts_lws_takes_for_one_port_need_hostnames),
		T(hostnames_lws_would_hand_to_another_vhost),
		T(websocket_max_message_bytes_is_accepted),
		T(missing_key_file_is_refused),
		T(public_vhost_without_auth_is_refused),
		T(bad_algorithms_are_refused),
		T(plain_ws_on_any_address_is_refused),
		T(plain_ws_on_loopback_is_accepted),
		T(plain_ws_with_terminated_upstream_is_accepted),
		T(tls_needs_cert_and_key_together),
		T(internal_vhost_with_auth_is_refused),
		T(internal_plain_http_on_any_address_is_refused),
		T(internal_tls_or_terminated_upstream_is_accepted),
		T(internal_and_public_may_not_share_a_port),
		T(internal_and_public_may_not_share_a_hostname),
		T(internal_vhosts_may_share_a_port),
		T(redis_without_url_is_refused),
		T(redis_sentinel_is_parsed),
		T(redis_sentinel_with_url_or_shards_is_refused),
		T(redis_sentinel_auth_is_parsed),
		T(redis_sentinel_auth_without_its_password_is_refused),
		T(redis_sentinel_tls_takes_the_tls_files),
		T(redis_sentinel_bad_parts_are_refused),
		T(invalid_json_names_file),
		T(trailing_garbage_is_refused),
		T(top_level_must_be_an_object),
		T(too_deep_json_is_refused),
		T(invalid_utf8_is_refused),
		T(missing_main_file_is_refused),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
