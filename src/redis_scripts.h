/*
 * redis_scripts.h — the Lua scripts of the "redis" backend, one atomic
 * step each.  Every multi-key change of the shared state is one of these.
 *
 * Keys (prefix "pav:"; the part in braces is a Redis Cluster hash tag, so
 * that every key of one user, one channel or one node lives together):
 *   U = {u:<ns>:<user>}   C = {c:<ns>:<channel>}   N = {n:<node>}
 *   pav:U:conns      HASH "<node>:<conn hex>" -> node
 *   pav:U:presence   HASH status, last (ms), chosen (the status the user
 *                    is to have while connected), owed (set offline by a
 *                    reaper, not yet announced); 30 days after each change
 *   pav:U:inbox      HASH id -> notification JSON (with "id")
 *   pav:U:inbox:t    ZSET id -> createdAt ms (strictly increasing)
 *   pav:U:read       SET of read ids
 *   pav:U:inbox:new  HASH, pav:U:inbox:s ZSET: notifications added and not
 *                    yet published; they enter the inbox in the step that
 *                    publishes them (or 10 s later if that never comes)
 *   pav:U:inbox:c    ZSET id -> commit number (the order of entering the
 *                    inbox), from the counter pav:U:inbox:seq
 *   pav:U:chans      HASH "<node>|<channel>" -> count (shared channels)
 *   pav:U:revoked    STRING at_ms: the user's tokens issued at or before it
 *                    are refused (a token revocation); PX its time;
 *                    never lowered (a node writes back the ones it kept
 *                    when Redis lost them)
 *   pav:C:n          HASH node -> members on that node
 *   pav:C:u:<node>   HASH user -> count (that node's members)
 *   pav:C:seq        counter of a channel without history (1 h)
 *   pav:C:meta       HASH epoch, offset, ttl (ms) of a history channel
 *   pav:C:hist       LIST of frames, the newest `size`
 *   pav:nodes        ZSET node -> last heartbeat (ms, Redis TIME)
 *   pav:N:alive      STRING, PX node_ttl
 *   pav:N:users      SET "ns\x1fuser" with connections on the node
 *   pav:N:chans      SET "ns\x1fchannel" with members on the node
 *   pav:reap:<node>  STRING, the reaper's lock (NX PX)
 * Pub/sub: a gateway channel is published on "pav:p:<ns>:<channel>"
 * ("pav:p@<db>:..." on a database other than 0); a node's fence channel
 * is "pav:f:<node>" ("pav:f@<db>:<node>").  A user channel "user:<id>"
 * lives on the user's shard, with the user's keys.
 *
 * meta and hist of a channel expire ttl after its last publication while
 * the channel has no member on any node, and do not expire while it has
 * (every script that changes C:n settles that), so that an epoch outlives
 * a quiet spell of a channel people are in.
 *
 * Published messages (the wire): "P1 <pub_id hex> <except> <kind> <key>
 * <type> <offset>\n<frame>" — except "-" or "<node>:<conn hex>", kind F
 * (a frame) or R (revoke), key "-" or %-escaped, type %-escaped, offset
 * the frame's history offset (0: none).  Scripts get the header up to the
 * offset and append it.
 */
#ifndef PAV_REDIS_SCRIPTS_H
#define PAV_REDIS_SCRIPTS_H

enum pav_rb_script {
	/* KEYS U:conns N:users U:presence U:revoked; ARGV field node max
	 * member iat (the token's, in seconds; '' none; '-' not checked)
	 * -> {1 added or already there | 0 over max | -1 token revoked,
	 * count, status|''} */
	PAV_RB_CONN_ADD,
	/* KEYS U:conns N:users; ARGV field node member -> count */
	PAV_RB_CONN_REMOVE,
	/* KEYS U:presence U:conns -> {status|nil, last|nil, count} */
	PAV_RB_PRESENCE_GET,
	/* KEYS U:presence U:conns; ARGV status when(0|1|2) at_ms ttl_ms
	 * (when 0, status becomes the user's chosen one, applied or not)
	 * shdr userfeed [hdr head tail stamp(0|1) pubchan...]; an applied
	 * status of a user with more than one connection also goes to the
	 * user's feed as shdr + "0\n" + status (the other nodes holding the
	 * user keep it for a rebuild; with one, no other node holds it)
	 * -> {applied 1|0, status, last, count} */
	PAV_RB_PRESENCE_SET,
	/* KEYS inbox inbox:t read inbox:new inbox:s inbox:c inbox:seq; ARGV
	 * id json size ttl_ms
	 * -> createdAt ms, or nil when the id is taken */
	PAV_RB_INBOX_ADD,
	/* KEYS inbox inbox:t read inbox:new inbox:s inbox:c inbox:seq; ARGV
	 * since_ms unread(0|1) limit size ttl_ms fence_channel|'' fence_seq
	 * -> {id, createdAt, json, read(0|1)}... oldest first */
	PAV_RB_INBOX_LIST,
	/* KEYS inbox read; ARGV id -> 1, or 0 when not in the inbox */
	PAV_RB_INBOX_MARK_READ,
	/* KEYS C:n C:u:<node> N:chans C:meta C:hist; ARGV node user member
	 * C:u: -> {subscribers, the user's count} */
	PAV_RB_MEMBER_ADD,
	/* KEYS C:n C:u:<node> N:chans C:meta C:hist; ARGV node user member
	 * -> 1 */
	PAV_RB_MEMBER_REMOVE,
	/* KEYS hash; ARGV field delta -> the new value (field gone at <= 0) */
	PAV_RB_HASH_ADD,
	/* KEYS C:n... -> subscribers of each */
	PAV_RB_CHANNEL_COUNTS,
	/* KEYS C:n; ARGV C:u: max -> distinct users, at most max */
	PAV_RB_CHANNEL_USERS,
	/* KEYS C:meta C:hist C:seq C:n [inbox inbox:t read inbox:new inbox:s
	 * inbox:c inbox:seq]; ARGV pubchan hdr head tail size ttl_ms epoch
	 * count(0|1) [key inbox_size inbox_ttl_ms] -> {offset, epoch|nil, subscribers}; with
	 * the inbox keys (a user channel, a key) the staged notification of
	 * that id enters the inbox */
	PAV_RB_PUBLISH,
	/* ARGV message pubchan... -> 1 (one message to several channels) */
	PAV_RB_PUBLISH_MULTI,
	/* KEYS C:meta C:hist C:n; ARGV after max epoch ttl_ms
	 * fence_channel|'' fence_seq -> {epoch, offset, complete, first?,
	 * frame...} */
	PAV_RB_HISTORY_READ,
	/* KEYS pav:nodes N:alive; ARGV node ttl_ms -> {alive was set, now} */
	PAV_RB_HEARTBEAT,
	/* KEYS pav:nodes; ARGV ttl_ms lock_ms me -> {node, last}... locked */
	PAV_RB_FIND_DEAD,
	/* KEYS pav:nodes; ARGV dead batch lock_ms mode(u|c) presence_ttl_ms
	 * -> {state 0 more|1 done|2 it is alive|3 no channel left (mode c),
	 *     {{ns, user, {chan...}}...}} */
	PAV_RB_REAP,
	/* KEYS U:conns U:chans U:presence N:users; ARGV node member status
	 * last_ms ttl_ms nconns field... (chanfield count)...
	 * -> {count, {removed channel...}, back 1|0, chosen status|''} */
	PAV_RB_USER_SYNC,
	/* KEYS C:n C:u:<node> N:chans C:meta C:hist; ARGV node member total
	 * (user count)... -> 1 */
	PAV_RB_CHAN_SYNC,
	/* KEYS U:revoked; ARGV at_ms ttl_ms keep_equal(0|1) channel message
	 * -> 1 set (and message published on channel), or 0 when the key
	 * holds a later cut-off (or the same, with keep_equal): then nothing
	 * changes */
	PAV_RB_TOKENS_REVOKE,
	/* no KEYS (it reads the keys SCAN finds: one server, not a
	 * cluster); ARGV cursor pattern count
	 * -> {next cursor, (key, value|nil when not a string, pttl)...} */
	PAV_RB_REVOKED_SCAN,
	PAV_RB_NSCRIPTS,
};

/* The text of each script, indexed by enum pav_rb_script. */
extern const char *const pav_rb_lua[PAV_RB_NSCRIPTS];

#endif
