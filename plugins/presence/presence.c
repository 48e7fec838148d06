/*
 * presence.c — user presence: the "presence" message, automatic
 * online/offline, "status_update" delivery and snapshots.
 *
 *   presence {"status": "online" | "offline" | "busy" | "away"} → stores
 *       the status (else 1002) and, when it changed, announces it.
 *   A user's first connection (on any node) sets "online"; closing the
 *   last (on every node) sets "offline" with lastActive = that moment.
 *   Announcing = one status_update {userId, status, lastActive} to the
 *   user's own connections ("user:<id>") and to every connection that
 *   shares a zone:/channel:/chat: channel with the user — each connection
 *   once; the acting connection is left out.  The store applies a change
 *   and publishes its announcement in one step, so every node sees one
 *   user's changes in the order they happened; an unchanged status is not
 *   re-sent.
 *   Joining a zone:/channel:/chat: channel that no other connection of the
 *   user is in sends the user's current status to that channel.
 *   subscribe with parameters.presence = true (a boolean, else 1002) is
 *   followed by one status_update per distinct user in the channel (the
 *   first 1000).
 *
 * At scale (option "max_broadcast", default 1000): a channel with more
 * subscribers than that (on all nodes) gets no status_update broadcasts —
 * neither joins nor status changes — so nothing costs work proportional to
 * a big channel; its subscribers can still ask for a snapshot.  A user's
 * own connections always get the user's status.
 *
 * Internal API: GET /v1/users/{id}/presence → {userId, status, lastActive,
 * connections}; POST /v1/publish of type "status_update" is checked for
 * the spec's shape.
 *
 * Store calls are asynchronous: whatever a callback needs is copied into
 * its context, and connections are found again by id.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pavilion/plugin.h>

#define PLUGIN_NAME "presence"
#define SNAPSHOT_MAX_USERS 1000
#define DEFAULT_MAX_BROADCAST 1000
/* Bound on the channels one announcement goes to: 16 connections of 128
 * subscriptions each (the defaults) need 2048. */
#define ANNOUNCE_MAX_CHANNELS 8192

struct presence {
	const struct pav_host *host;
	pav_vhost *vh;
	long max_broadcast;
};

static const char *const statuses[] = {"online", "offline", "busy", "away"};

/* The static spelling of a valid status, or NULL. */
static const char *status_of(const char *s)
{
	for (size_t i = 0; s && i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(s, statuses[i]) == 0)
			return statuses[i];
	return NULL;
}

/* zone:, channel: and chat: channels are the ones users share. */
static int is_shared_channel(const char *channel)
{
	return strncmp(channel, "zone:", 5) == 0 ||
	       strncmp(channel, "channel:", 8) == 0 ||
	       strncmp(channel, "chat:", 5) == 0;
}

/* {userId, status, lastActive?}.  last_active_ms 0: a user the store never
 * saw; "now" is then the least wrong time to show.  -1: left out (the
 * store stamps it). */
static json_object *status_payload(const struct pav_host *host,
				   const char *user, const char *status,
				   int64_t last_active_ms)
{
	json_object *o = json_object_new_object();
	char when[PAV_TIME_BUF];

	if (!o)
		return NULL;
	json_object_object_add(o, "userId", json_object_new_string(user));
	json_object_object_add(o, "status", json_object_new_string(status));
	if (last_active_ms >= 0) {
		host->format_time(last_active_ms > 0 ? last_active_ms
						     : host->now_ms(),
				  when, sizeof(when));
		json_object_object_add(o, "lastActive",
				       json_object_new_string(when));
	}
	return o;
}

/* ---- announcing a status change ---- */

/* A status change on its way: the channels it goes to, then their
 * subscriber counts, then the store. */
struct announce {
	struct presence *pr;
	uint64_t conn_id; /* the acting connection: left out */
	pav_reply *reply; /* the presence message's, or NULL (hooks) */
	char user[PAV_ID_MAX + 1];
	const char *status; /* static */
	enum pav_presence_when when;
	int64_t at_ms;   /* 0: now */
	char **channels; /* [0] is "user:<id>" */
	size_t n, cap;
	/* the first of them announced to: 1 for a hook's change (the user's
	 * first connection opened, or the last closed), as "user:<id>" then
	 * has no other connection of the user to tell */
	size_t from;
	int truncated;
};

static void announce_free(struct announce *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->channels[i]);
	free(a->channels);
	free(a);
}

static void add_channel(const char *channel, void *arg)
{
	struct announce *a = arg;
	char **grown;

	if (!is_shared_channel(channel))
		return;
	if (a->n == ANNOUNCE_MAX_CHANNELS) {
		if (!a->truncated++)
			a->pr->host->log(PAV_LOG_WARN, PLUGIN_NAME,
					 "user %s: status_update limited to %d "
					 "channels", a->user,
					 ANNOUNCE_MAX_CHANNELS);
		return;
	}
	/* grown as needed: most users share a few channels, not the bound */
	if (a->n == a->cap) {
		grown = realloc(a->channels, 2 * a->cap * sizeof(*grown));
		if (!grown)
			return;
		a->channels = grown;
		a->cap *= 2;
	}
	if ((a->channels[a->n] = strdup(channel)))
		a->n++;
}

static struct announce *announce_new(struct presence *pr, pav_conn *c,
				     const char *status,
				     enum pav_presence_when when)
{
	const struct pav_host *host = pr->host;
	struct announce *a = calloc(1, sizeof(*a));
	char own[PAV_CHANNEL_BUF];

	if (!a)
		return NULL;
	a->pr = pr;
	a->conn_id = host->conn_id(c);
	a->status = status;
	a->when = when;
	snprintf(a->user, sizeof(a->user), "%s", host->conn_user(c));
	a->cap = 8;
	a->channels = malloc(a->cap * sizeof(*a->channels));
	if (!a->channels || host->user_channel(a->user, own, sizeof(own)) < 0 ||
	    !(a->channels[0] = strdup(own))) {
		announce_free(a);
		return NULL;
	}
	a->n = 1;
	return a;
}

static void status_stored(void *arg, int err, const struct pav_presence *p)
{
	struct announce *a = arg;
	const struct pav_host *host = a->pr->host;
	int failed = err < 0 && err != -EALREADY;

	(void)p;
	if (failed)
		host->log(PAV_LOG_ERROR, PLUGIN_NAME,
			  "user %s: storing status %s failed: %s", a->user,
			  a->status, strerror(-err));
	if (a->reply)
		host->reply(a->reply, failed ? PAV_ERR_INTERNAL : 0,
			    failed ? "internal server error" : NULL, NULL);
	announce_free(a);
}

/* The counts of channels [1, n) are in (counts[i - 1]): keep "user:<id>"
 * and the channels small enough to broadcast to, then store and announce
 * in one step (from a->from on: with nothing to announce to, the status is
 * only stored). */
static void counted(void *arg, int err, const int64_t *counts, size_t n)
{
	struct announce *a = arg;
	struct presence *pr = a->pr;
	const struct pav_host *host = pr->host;
	size_t kept = 1;
	struct pav_presence_change ch = {
		.user = a->user,
		.status = a->status,
		.when = a->when,
		.stamp_member = "lastActive",
		.at_ms = a->at_ms,
	};

	for (size_t i = 1; i < a->n; i++) {
		if (!err && i <= n && counts[i - 1] >= 0 &&
		    counts[i - 1] <= pr->max_broadcast) {
			a->channels[kept++] = a->channels[i];
			continue;
		}
		free(a->channels[i]);
	}
	a->n = kept;
	ch.announce = (struct pav_publication){
		(const char *const *)a->channels + a->from, a->n - a->from,
		"status_update",
		a->n > a->from ? status_payload(host, a->user, a->status, -1)
			       : NULL,
		host->conn_find(pr->vh, a->conn_id), NULL, 1};
	host->presence_set(pr->vh, &ch, status_stored, a);
	json_object_put(ch.announce.payload);
}

/* Gathers where the change goes and asks how big those channels are. */
static int set_status(struct presence *pr, pav_conn *c, const char *status,
		      enum pav_presence_when when, int closing,
		      const struct pav_request *req)
{
	const struct pav_host *host = pr->host;
	struct announce *a = announce_new(pr, c, status, when);

	if (!a)
		return -ENOMEM;
	if (req && !(a->reply = host->defer(c, req))) {
		announce_free(a);
		return -ENOMEM;
	}
	a->from = !req; /* a hook's change: "user:<id>" left out */
	/* a closed connection is no longer among the user's: its own
	 * channels count (the user's other connections are gone, or the
	 * status would not change) */
	if (closing) {
		a->at_ms = host->conn_closed_ms(c);
		host->conn_channels(c, add_channel, a);
	}
	else
		host->user_channels(pr->vh, a->user, add_channel, a);
	/* only the shared channels are weighed: "user:<id>" is always kept,
	 * and a user who shares none needs no store call at all */
	if (a->n == 1)
		counted(a, 0, NULL, 0);
	else
		host->channel_counts(pr->vh,
				     (const char *const *)a->channels + 1,
				     a->n - 1, counted, a);
	return 0;
}

static int on_presence(void *instance, pav_conn *c, struct pav_request *req)
{
	json_object *v;
	const char *status = NULL;

	if (req->payload &&
	    json_object_object_get_ex(req->payload, "status", &v) &&
	    json_object_is_type(v, json_type_string))
		status = status_of(json_object_get_string(v));
	if (!status) {
		req->error_message =
			"status must be one of online, offline, busy, away";
		return PAV_ERR_FORMAT;
	}
	return set_status(instance, c, status, PAV_PRESENCE_ALWAYS, 0, req) < 0
		       ? PAV_ERR_INTERNAL
		       : PAV_PENDING;
}

static void presence_on_open(void *instance, pav_conn *c, int first)
{
	if (first)
		set_status(instance, c, "online", PAV_PRESENCE_IF_CONNECTED, 0,
			   NULL);
}

static void presence_on_close(void *instance, pav_conn *c, int last)
{
	if (last)
		set_status(instance, c, "offline",
			   PAV_PRESENCE_IF_DISCONNECTED, 1, NULL);
}

/* ---- joining a channel ---- */

/* The user's status on its way to one channel it just joined, or a
 * snapshot's users on their way to one connection. */
struct joined {
	struct presence *pr;
	uint64_t conn_id;
	char channel[PAV_CHANNEL_BUF];
	size_t pending; /* snapshot: store answers still to come */
};

static struct joined *joined_new(struct presence *pr, pav_conn *c,
				 const char *channel)
{
	struct joined *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->pr = pr;
	j->conn_id = pr->host->conn_id(c);
	snprintf(j->channel, sizeof(j->channel), "%s", channel);
	return j;
}

static void joined_got(void *arg, int err, const struct pav_presence *p)
{
	struct joined *j = arg;
	const struct pav_host *host = j->pr->host;
	const char *chans[] = {j->channel};
	json_object *payload;
	struct pav_publication pub = {chans, 1, "status_update", NULL, NULL,
				      NULL, 1};

	if (err == 0 && p && p->status &&
	    (payload = status_payload(host, p->user, p->status,
				      p->last_active_ms))) {
		pub.payload = payload;
		pub.except = host->conn_find(j->pr->vh, j->conn_id);
		host->publish(j->pr->vh, &pub, NULL, NULL);
		json_object_put(payload);
	}
	free(j);
}

static void snapshot_got(void *arg, int err, const struct pav_presence *p)
{
	struct joined *j = arg;
	const struct pav_host *host = j->pr->host;
	pav_conn *c = host->conn_find(j->pr->vh, j->conn_id);
	json_object *payload;

	if (c && err == 0 && p && p->status &&
	    (payload = status_payload(host, p->user, p->status,
				      p->last_active_ms))) {
		pav_send_replay(host, c, j->channel, "status_update", payload);
		json_object_put(payload);
	}
	if (--j->pending == 0)
		free(j);
}

static void snapshot_users(void *arg, int err, const char *const *users,
			   size_t n)
{
	struct joined *j = arg;

	j->pending = 1; /* ours, until every call is made */
	for (size_t i = 0; !err && i < n; i++) {
		j->pending++;
		j->pr->host->presence_get(j->pr->vh, users[i], snapshot_got, j);
	}
	if (--j->pending == 0)
		free(j);
}

static int wants_snapshot(json_object *params)
{
	json_object *v;

	return params && json_object_object_get_ex(params, "presence", &v) &&
	       json_object_get_boolean(v);
}

static void presence_on_subscribed(void *instance, pav_conn *c,
				   const struct pav_subscribed *ev)
{
	struct presence *pr = instance;
	const struct pav_host *host = pr->host;
	struct joined *j;

	if (!is_shared_channel(ev->channel))
		return;
	if (ev->user_first && ev->subscribers >= 0 &&
	    ev->subscribers <= pr->max_broadcast &&
	    (j = joined_new(pr, c, ev->channel)))
		host->presence_get(pr->vh, host->conn_user(c), joined_got, j);
	if (wants_snapshot(ev->parameters) &&
	    (j = joined_new(pr, c, ev->channel)))
		host->channel_users(pr->vh, ev->channel, SNAPSHOT_MAX_USERS,
				    snapshot_users, j);
}

static int presence_check_parameters(void *instance, pav_conn *c,
				     const char *channel, json_object *params,
				     const char **why)
{
	json_object *v;

	(void)instance;
	(void)c;
	(void)channel;
	if (json_object_object_get_ex(params, "presence", &v) &&
	    !json_object_is_type(v, json_type_boolean)) {
		*why = "payload.parameters.presence must be true or false";
		return PAV_ERR_FORMAT;
	}
	return 0;
}

/* ---- internal API ---- */

struct api_ctx {
	const struct pav_host *host;
	pav_api_call *call;
};

static void presence_listed(void *arg, int err, const struct pav_presence *p)
{
	struct api_ctx *x = arg;
	const struct pav_host *host = x->host;
	char ts[PAV_TIME_BUF];
	json_object *o;

	if (err) {
		pav_api_store_error(host, x->call, err);
		free(x);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "userId", json_object_new_string(p->user));
	json_object_object_add(o, "status", json_object_new_string(p->status));
	if (p->last_active_ms) {
		host->format_time(p->last_active_ms, ts, sizeof(ts));
		json_object_object_add(o, "lastActive",
				       json_object_new_string(ts));
	} else {
		json_object_object_add(o, "lastActive", NULL);
	}
	json_object_object_add(o, "connections",
			       json_object_new_int(p->connections));
	host->api_answer(x->call, 200, o);
	free(x);
}

static void get_presence(void *instance, pav_api_call *call,
			 const struct pav_api_request *req)
{
	struct presence *pr = instance;
	struct api_ctx *x = malloc(sizeof(*x));

	if (!x)
		return pr->host->api_error(call, 500, "out of memory");
	*x = (struct api_ctx){pr->host, call};
	pr->host->presence_get(pr->vh, req->args[0], presence_listed, x);
}

/* A published status_update: {userId, status, lastActive (RFC 3339)}. */
static int check_published(void *instance, const char *channel,
			   json_object *p, const char **why)
{
	struct presence *pr = instance;
	json_object *u, *s, *l;
	int64_t ms;

	(void)channel;
	if (!json_object_object_get_ex(p, "userId", &u) ||
	    !json_object_is_type(u, json_type_string) ||
	    !pr->host->id_valid(json_object_get_string(u),
				(size_t)json_object_get_string_len(u)) ||
	    !json_object_object_get_ex(p, "status", &s) ||
	    !json_object_is_type(s, json_type_string)) {
		*why = "status_update needs userId and status";
		return -EINVAL;
	}
	if (!status_of(json_object_get_string(s))) {
		*why = "status must be one of online, offline, busy, away";
		return -EINVAL;
	}
	if (!json_object_object_get_ex(p, "lastActive", &l) ||
	    !json_object_is_type(l, json_type_string) ||
	    pr->host->parse_time(json_object_get_string(l), &ms) < 0) {
		*why = "status_update needs an RFC 3339 lastActive";
		return -EINVAL;
	}
	return 0;
}

/* ---- the instance ---- */

static int read_options(struct presence *pr, json_object *options, char *err,
			size_t errlen)
{
	pr->max_broadcast = DEFAULT_MAX_BROADCAST;
	json_object_object_foreach(options, key, val) {
		if (strcmp(key, "max_broadcast") != 0) {
			snprintf(err, errlen, "%s: unknown option", key);
			return -EINVAL;
		}
		if (!json_object_is_type(val, json_type_int) ||
		    json_object_get_int64(val) < 0 ||
		    json_object_get_int64(val) > 1000000000) {
			snprintf(err, errlen, "max_broadcast: must be an "
				 "integer from 0 to 1000000000");
			return -EINVAL;
		}
		pr->max_broadcast = (long)json_object_get_int64(val);
	}
	return 0;
}

static void presence_destroy(void *instance)
{
	free(instance);
}

static int presence_create(const struct pav_host *host, pav_vhost *vh,
			   json_object *options, void **instance, char *err,
			   size_t errlen)
{
	struct presence *pr = calloc(1, sizeof(*pr));
	int rc;

	if (!pr)
		return -ENOMEM;
	pr->host = host;
	pr->vh = vh;
	rc = read_options(pr, options, err, errlen);
	if (rc == 0)
		rc = host->register_handler(vh, "presence", on_presence);
	if (rc == 0)
		rc = host->register_route(vh, "GET", "/v1/users/{id}/presence",
					  get_presence);
	if (rc == 0)
		rc = host->register_payload_check(vh, "status_update",
						  check_published);
	if (rc < 0) {
		free(pr);
		return rc;
	}
	*instance = pr;
	return 0;
}

PAV_PLUGIN_EXPORT = {
	.magic = PAV_PLUGIN_MAGIC,
	.abi_version = PAV_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = "2.0.0",
	.description = "presence, status_update, automatic online/offline",
	.vhost_create = presence_create,
	.vhost_destroy = presence_destroy,
	.on_open = presence_on_open,
	.on_close = presence_on_close,
	.on_subscribed = presence_on_subscribed,
	.check_parameters = presence_check_parameters,
};
