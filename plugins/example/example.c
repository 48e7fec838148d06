/*
 * example.c — the smallest useful pavilion-gateway plugin; copy it to start
 * your own.
 *
 * It handles one client message type, "echo", and answers with a server
 * message of the same type:
 *
 *   client: {"type": "echo", "payload": {...}}
 *   server: {"type": "echo", "payload": {"greeting": "<greeting>",
 *                                        "echo": {...}}, "timestamp": ...}
 *
 * Options (the vhost's "plugins": {"example": {...}} object):
 *   "greeting"  string, default "hello": put in every answer.
 *
 * Build it outside the gateway's tree with
 *   cc -shared -fPIC -o example.so example.c \
 *      $(pkg-config --cflags --libs pavilion-plugin)
 * and drop example.so into one of the gateway's plugin directories.
 *
 * Everything the plugin may do goes through struct pav_host (see
 * pavilion/plugin.h): a plugin links against nothing of the gateway.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup() under a strict -std=c11 */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#define PLUGIN_NAME "example"
#define DEFAULT_GREETING "hello"

/* The instance: one per vhost that enables the plugin. */
struct example {
	const struct pav_host *host; /* lives as long as the process */
	char *greeting;
};

/* Handles "echo".  The request and its payload are borrowed: whatever we
 * keep beyond this call must be copied or referenced. */
static int on_echo(void *instance, pav_conn *c, struct pav_request *req)
{
	struct example *ex = instance;
	json_object *payload = json_object_new_object();

	if (!payload)
		return PAV_ERR_INTERNAL;
	json_object_object_add(payload, "greeting",
			       json_object_new_string(ex->greeting));
	/* json_object_get(): the answer shares the request's payload, so it
	 * takes its own reference; json_object_put() below drops both. */
	json_object_object_add(payload, "echo", json_object_get(req->payload));
	/* send() only borrows the payload (NULL: no "channel" member).  It fails only when the connection
	 * is closing or its queue is full; the gateway handles both, so there
	 * is nothing useful to answer. */
	ex->host->send(c, NULL, "echo", payload);
	json_object_put(payload);
	return 0; /* success: the gateway acks when the client gave an id */
}

/* Validates the options and fills the instance; "key: reason" on error. */
static int read_options(struct example *ex, json_object *options, char *err,
			size_t errlen)
{
	const char *greeting = DEFAULT_GREETING;

	json_object_object_foreach(options, key, val) {
		if (strcmp(key, "greeting") != 0) {
			snprintf(err, errlen, "%s: unknown option", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, json_type_string)) {
			snprintf(err, errlen, "greeting: must be a string");
			return -EINVAL;
		}
		greeting = json_object_get_string(val);
	}
	ex->greeting = strdup(greeting); /* options are borrowed */
	return ex->greeting ? 0 : -ENOMEM;
}

static void example_destroy(void *instance)
{
	struct example *ex = instance;

	if (!ex)
		return;
	free(ex->greeting);
	free(ex);
}

static int example_create(const struct pav_host *host, pav_vhost *vh,
			  json_object *options, void **instance, char *err,
			  size_t errlen)
{
	struct example *ex = calloc(1, sizeof(*ex));
	int rc;

	if (!ex)
		return -ENOMEM;
	ex->host = host;
	rc = read_options(ex, options, err, errlen);
	if (rc == 0)
		rc = host->register_handler(vh, "echo", on_echo);
	if (rc < 0) {
		example_destroy(ex);
		return rc;
	}
	*instance = ex;
	return 0;
}

PAV_PLUGIN_EXPORT = {
	.magic = PAV_PLUGIN_MAGIC,
	.abi_version = PAV_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = "1.0.0",
	.description = "echoes a client's payload back with a greeting",
	.vhost_create = example_create,
	.vhost_destroy = example_destroy,
};
