/*
 * presence.c — user presence: the "presence" message, automatic
 * online/offline, and "status_update" delivery (DESIGN section 2,
 * "Presence").
 *
 *   presence {"status": "online" | "offline" | "busy" | "away"} → stores
 *       the status (else 1002) and, when it changed, announces it.
 *   A user's first connection (across all nodes) sets "online"; closing
 *   the last sets "offline" with lastActive = that moment.
 *   Announcing = one status_update {userId, status, lastActive} to every
 *   connection that shares a zone:/channel:/chat: channel with the user,
 *   and to the user's other connections; the acting connection is left
 *   out.  An unchanged status is not re-sent (the store says -EALREADY).
 *   Joining a zone:/channel:/chat: channel that no other connection of the
 *   user is in sends the user's current status to that channel.
 *   subscribe with parameters.presence = true is followed by one
 *   status_update per distinct user in the channel (the first 1000, the
 *   subscriber included).
 *
 * The channels a user shares are gathered from the user's connections on
 * this node (those subscribed to "user:<id>", plus the acting one);
 * pav_host.publish then sends each connection one copy.
 *
 * Options: none (the plugin's options object must be empty).
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
/* DESIGN: a presence snapshot lists at most this many users. */
#define SNAPSHOT_MAX_USERS 1000
/* Bound on the channels one announcement goes to: 16 connections of 128
 * subscriptions each (the defaults) need 2048. */
#define ANNOUNCE_MAX_CHANNELS 8192
/* "user:" + a 64-character id + NUL, with room to spare. */
#define CHANNEL_BUF 128
#define TIME_BUF 64

struct presence {
	const struct pav_host *host;
	pav_vhost *vh;
};

/* ---- a small set of copied strings, insertion order kept ---- */

struct strset {
	char **items;   /* insertion order */
	size_t n, max;  /* max: add() refuses beyond it */
	size_t *index;  /* open addressing: item number + 1, 0 = empty */
	size_t nindex;  /* a power of two, > 2 * n */
};

static void strset_init(struct strset *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

static void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i]);
	free(s->items);
	free(s->index);
	memset(s, 0, sizeof(*s));
}

/* FNV-1a. */
static size_t strset_hash(const char *str)
{
	size_t h = 14695981039346656037ull & (size_t)-1;

	for (; *str; str++)
		h = (h ^ (unsigned char)*str) * (size_t)1099511628211ull;
	return h;
}

/* The index slot holding str, or the empty slot where it would go. */
static size_t *strset_slot(const struct strset *s, const char *str)
{
	size_t mask = s->nindex - 1;

	for (size_t i = strset_hash(str) & mask;; i = (i + 1) & mask) {
		size_t *slot = &s->index[i];

		if (!*slot || strcmp(s->items[*slot - 1], str) == 0)
			return slot;
	}
}

/* Doubles the item array and rebuilds the index for it. */
static int strset_grow(struct strset *s)
{
	size_t cap = s->nindex ? s->nindex : 16;
	char **items = realloc(s->items, cap * sizeof(*items));
	size_t *index = calloc(2 * cap, sizeof(*index));

	if (items)
		s->items = items;
	if (!items || !index) {
		free(index);
		return -ENOMEM;
	}
	free(s->index);
	s->index = index;
	s->nindex = 2 * cap;
	for (size_t i = 0; i < s->n; i++)
		*strset_slot(s, s->items[i]) = i + 1;
	return 0;
}

/* 1 added, 0 already there, -ENOSPC at max, -ENOMEM. */
static int strset_add(struct strset *s, const char *str)
{
	size_t *slot;

	if (s->nindex && *strset_slot(s, str))
		return 0;
	if (s->n >= s->max)
		return -ENOSPC;
	if (2 * (s->n + 1) > s->nindex && strset_grow(s) < 0)
		return -ENOMEM;
	slot = strset_slot(s, str);
	s->items[s->n] = strdup(str);
	if (!s->items[s->n])
		return -ENOMEM;
	*slot = ++s->n;
	return 1;
}

/* ---- status_update ---- */

static const char *const statuses[] = {"online", "offline", "busy", "away"};

/* The static spelling of a valid status, or NULL. */
static const char *status_of(const char *s)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
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

/* {userId, status, lastActive}.  last_active_ms is 0 for a user the store
 * never saw; "now" is then the least wrong time to show. */
static json_object *status_payload(const struct pav_host *host,
				   const char *user, const char *status,
				   int64_t last_active_ms)
{
	json_object *o = json_object_new_object();
	char when[TIME_BUF];

	if (!o)
		return NULL;
	host->format_time(last_active_ms > 0 ? last_active_ms : host->now_ms(),
			  when, sizeof(when));
	json_object_object_add(o, "userId", json_object_new_string(user));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "lastActive", json_object_new_string(when));
	return o;
}

static void publish_status(const struct pav_host *host, const char *ns,
			   const char *const *channels, size_t n,
			   const struct pav_presence *p, const pav_conn *except)
{
	json_object *payload = status_payload(host, p->user, p->status,
					      p->last_active_ms);

	if (!payload)
		return;
	if (n > 0)
		host->publish(ns, channels, n, "status_update", payload,
			      except);
	json_object_put(payload);
}

/* ---- announcing a status change ---- */

/* A status change on its way through the store. */
struct announce {
	const struct pav_host *host;
	uint64_t conn_id;   /* the acting connection: left out */
	pav_reply *reply;   /* the presence message's, or NULL (hooks) */
	char *ns, *user;
	const char *status; /* static */
	int64_t at_ms;
	struct strset channels; /* where the change goes */
	int truncated;          /* channels hit its bound */
};

static void announce_free(struct announce *a)
{
	strset_free(&a->channels);
	free(a->ns);
	free(a->user);
	free(a);
}

static struct announce *announce_new(const struct pav_host *host,
				     const char *ns, pav_conn *c,
				     const char *status)
{
	struct announce *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->host = host;
	a->conn_id = host->conn_id(c);
	a->status = status;
	a->at_ms = host->now_ms();
	a->ns = strdup(ns);
	a->user = strdup(host->conn_user(c));
	strset_init(&a->channels, ANNOUNCE_MAX_CHANNELS);
	if (!a->ns || !a->user) {
		announce_free(a);
		return NULL;
	}
	return a;
}

static void add_shared_channel(const char *channel, void *arg)
{
	struct announce *a = arg;

	if (!is_shared_channel(channel) ||
	    strset_add(&a->channels, channel) >= 0 || a->truncated)
		return;
	a->truncated = 1; /* say it once per announcement */
	a->host->log(PAV_LOG_WARN, PLUGIN_NAME,
		     "user %s: status_update limited to %zu channels", a->user,
		     a->channels.n);
}

static int add_conn_channels(pav_conn *c, void *arg)
{
	struct announce *a = arg;

	a->host->conn_channels(c, add_shared_channel, a);
	return 0;
}

/*
 * Gathers where a change of the user's status goes, now, while the acting
 * connection is still there: "user:<id>" (the user's other connections)
 * and every shared channel of the user's local connections.
 */
static int collect_channels(struct announce *a, pav_conn *c)
{
	char own[CHANNEL_BUF];

	snprintf(own, sizeof(own), "user:%s", a->user);
	if (strset_add(&a->channels, own) < 0)
		return -ENOMEM;
	a->host->conn_channels(c, add_shared_channel, a);
	a->host->channel_conns(a->ns, own, add_conn_channels, a);
	return 0;
}

static void announce_publish(const struct announce *a)
{
	const struct pav_presence p = {
		.user = a->user,
		.status = a->status,
		.last_active_ms = a->at_ms,
	};

	publish_status(a->host, a->ns, (const char *const *)a->channels.items,
		       a->channels.n, &p, a->host->conn_find(a->conn_id));
}

static void status_stored(void *arg, int err)
{
	struct announce *a = arg;
	const struct pav_host *host = a->host;
	int failed = err < 0 && err != -EALREADY;

	if (failed)
		host->log(PAV_LOG_ERROR, PLUGIN_NAME,
			  "user %s: storing status %s failed: %s", a->user,
			  a->status, strerror(-err));
	if (a->reply)
		host->reply(a->reply, failed ? PAV_ERR_INTERNAL : 0,
			    failed ? "internal server error" : NULL, NULL);
	if (err == 0)
		announce_publish(a);
	announce_free(a);
}

/* Stores the status of c's user and announces it when it changed.  With
 * req (the presence message), the answer waits for the store. */
static int set_status(struct presence *pr, pav_conn *c, const char *status,
		      const struct pav_request *req)
{
	const struct pav_host *host = pr->host;
	struct announce *a =
		announce_new(host, host->vhost_namespace(pr->vh), c, status);

	if (!a || collect_channels(a, c) < 0)
		goto fail;
	if (req && !(a->reply = host->defer(c, req)))
		goto fail;
	host->store->presence_set(a->ns, a->user, a->status, a->at_ms,
				  status_stored, a);
	return 0;
fail:
	host->log(PAV_LOG_ERROR, PLUGIN_NAME, "out of memory");
	if (a)
		announce_free(a);
	return -ENOMEM;
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
	return set_status(instance, c, status, req) < 0 ? PAV_ERR_INTERNAL
							 : PAV_PENDING;
}

static void presence_on_open(void *instance, pav_conn *c, int first)
{
	if (first)
		set_status(instance, c, "online", NULL);
}

/* The connection still lists its channels here, so the offline status
 * reaches everyone who saw this user through it. */
static void presence_on_close(void *instance, pav_conn *c, int last)
{
	if (last)
		set_status(instance, c, "offline", NULL);
}

/* ---- joining a channel ---- */

/* The user's status on its way to one channel it just joined. */
struct joined {
	const struct pav_host *host;
	uint64_t conn_id;
	char *ns;
	char channel[CHANNEL_BUF];
};

static void joined_got(void *arg, int err, const struct pav_presence *p)
{
	struct joined *j = arg;
	const char *chans[] = {j->channel};

	if (err == 0 && p && p->status)
		publish_status(j->host, j->ns, chans, 1, p,
			       j->host->conn_find(j->conn_id));
	free(j->ns);
	free(j);
}

/* Tells a channel's other subscribers the status of a user who joined. */
static void announce_join(const struct pav_host *host, const char *ns,
			  pav_conn *c, const char *channel)
{
	struct joined *j = calloc(1, sizeof(*j));

	if (!j || !(j->ns = strdup(ns)) ||
	    strlen(channel) >= sizeof(j->channel)) {
		free(j);
		return;
	}
	j->host = host;
	j->conn_id = host->conn_id(c);
	strcpy(j->channel, channel);
	host->store->presence_get(j->ns, host->conn_user(c), joined_got, j);
}

/* A presence snapshot of one channel on its way to one connection; freed
 * when the last store answer is in. */
struct snapshot {
	const struct pav_host *host;
	uint64_t conn_id;
	char *ns;
	char *channel;
	size_t pending;
	struct strset users;
};

static void snapshot_release(struct snapshot *s)
{
	if (--s->pending > 0)
		return;
	strset_free(&s->users);
	free(s->ns);
	free(s->channel);
	free(s);
}

static void snapshot_got(void *arg, int err, const struct pav_presence *p)
{
	struct snapshot *s = arg;
	pav_conn *c = s->host->conn_find(s->conn_id);
	json_object *payload;

	if (c && err == 0 && p && p->status &&
	    (payload = status_payload(s->host, p->user, p->status,
				      p->last_active_ms))) {
		s->host->send_channel(c, s->channel, "status_update", payload);
		json_object_put(payload);
	}
	snapshot_release(s);
}

/* Collects a channel's distinct users; stops at the snapshot's bound. */
static int add_conn_user(pav_conn *c, void *arg)
{
	struct snapshot *s = arg;

	return strset_add(&s->users, s->host->conn_user(c)) < 0;
}

static void send_snapshot(const struct pav_host *host, const char *ns,
			  pav_conn *c, const char *channel)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	if (!s || !(s->ns = strdup(ns)) || !(s->channel = strdup(channel))) {
		if (s)
			free(s->ns);
		free(s);
		return;
	}
	s->host = host;
	s->conn_id = host->conn_id(c);
	s->pending = 1; /* ours, until every call is made */
	strset_init(&s->users, SNAPSHOT_MAX_USERS);
	host->channel_conns(ns, channel, add_conn_user, s);
	for (size_t i = 0; i < s->users.n; i++) {
		s->pending++;
		host->store->presence_get(s->ns, s->users.items[i],
					  snapshot_got, s);
	}
	snapshot_release(s);
}

static int wants_snapshot(json_object *params)
{
	json_object *v;

	return params && json_object_object_get_ex(params, "presence", &v) &&
	       json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static void presence_on_subscribed(void *instance, pav_conn *c,
				   const char *channel,
				   json_object *parameters, int user_first)
{
	struct presence *pr = instance;
	const char *ns = pr->host->vhost_namespace(pr->vh);

	if (!is_shared_channel(channel))
		return;
	if (user_first)
		announce_join(pr->host, ns, c, channel);
	if (wants_snapshot(parameters))
		send_snapshot(pr->host, ns, c, channel);
}

/* ---- the instance ---- */

static void presence_destroy(void *instance)
{
	free(instance);
}

static int presence_create(const struct pav_host *host, pav_vhost *vh,
			   json_object *options, void **instance, char *err,
			   size_t errlen)
{
	struct presence *pr;
	int rc;

	json_object_object_foreach(options, key, val) {
		(void)val;
		snprintf(err, errlen, "%s: unknown option", key);
		return -EINVAL;
	}
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	pr->host = host;
	pr->vh = vh;
	rc = host->register_handler(vh, "presence", on_presence);
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
	.version = "1.0.0",
	.description = "presence, status_update, automatic online/offline",
	.vhost_create = presence_create,
	.vhost_destroy = presence_destroy,
	.on_open = presence_on_open,
	.on_close = presence_on_close,
	.on_subscribed = presence_on_subscribed,
};
