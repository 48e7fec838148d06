/*
 * redis_scripts.c — the Lua scripts of the "redis" backend (see
 * redis_scripts.h for the keys and each script's arguments).
 *
 * Redis runs Lua 5.1: numbers are doubles, exact for the millisecond
 * times and counters used here (< 2^53), and printed with "%.0f" so that
 * no exponent ever reaches a key or a reply.
 */
#include "redis_scripts.h"

/* Redis TIME in ms. */
#define LUA_NOW \
	"local function now_ms()\n" \
	"  local t = redis.call('TIME')\n" \
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"end\n"

#define LUA_INT \
	"local function int(n) return string.format('%.0f', n) end\n"

/* RFC 3339 UTC with milliseconds, as pav_format_time() writes it: the
 * civil date from days since 1970-01-01 (proleptic Gregorian, by 400-year
 * eras counted from 0000-03-01). */
#define LUA_RFC3339 \
	"local function rfc3339(ms)\n" \
	"  local s = math.floor(ms / 1000)\n" \
	"  local msec = ms - s * 1000\n" \
	"  local days = math.floor(s / 86400)\n" \
	"  local sod = s - days * 86400\n" \
	"  local z = days + 719468\n" \
	"  local era = math.floor(z / 146097)\n" \
	"  local doe = z - era * 146097\n" \
	"  local yoe = math.floor((doe - math.floor(doe / 1460) +\n" \
	"    math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)\n" \
	"  local y = yoe + era * 400\n" \
	"  local doy = doe - (365 * yoe + math.floor(yoe / 4) -\n" \
	"    math.floor(yoe / 100))\n" \
	"  local mp = math.floor((5 * doy + 2) / 153)\n" \
	"  local d = doy - math.floor((153 * mp + 2) / 5) + 1\n" \
	"  local m = mp < 10 and mp + 3 or mp - 9\n" \
	"  if m <= 2 then y = y + 1 end\n" \
	"  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m,\n" \
	"    d, math.floor(sod / 3600), math.floor(sod % 3600 / 60),\n" \
	"    sod % 60, msec)\n" \
	"end\n"

/* A history channel's keys live while the channel has members anywhere
 * (C:n exists) and expire `ttl` after the last change otherwise. */
#define LUA_TTL_FIX \
	"local function ttl_fix(cn, meta, hist)\n" \
	"  if redis.call('EXISTS', meta) == 0 then return end\n" \
	"  if redis.call('EXISTS', cn) == 1 then\n" \
	"    redis.call('PERSIST', meta)\n" \
	"    redis.call('PERSIST', hist)\n" \
	"  else\n" \
	"    local ttl = redis.call('HGET', meta, 'ttl')\n" \
	"    if ttl then\n" \
	"      redis.call('PEXPIRE', meta, ttl)\n" \
	"      redis.call('PEXPIRE', hist, ttl)\n" \
	"    end\n" \
	"  end\n" \
	"end\n"

/* Adds delta to a hash field, removing it at 0 or below; returns the new
 * value. */
#define LUA_ADD \
	"local function add(key, field, delta)\n" \
	"  local v = redis.call('HINCRBY', key, field, delta)\n" \
	"  if v <= 0 then redis.call('HDEL', key, field) end\n" \
	"  return v\n" \
	"end\n"

/* A channel's subscribers: the sum of its C:n (members per node). */
#define LUA_SUBS \
	"local function subs(cn)\n" \
	"  local s = 0\n" \
	"  local v = redis.call('HVALS', cn)\n" \
	"  for i = 1, #v do s = s + tonumber(v[i]) end\n" \
	"  return s\n" \
	"end\n"

/* "ns\x1fname" -> ns, name */
#define LUA_SPLIT \
	"local function split(m)\n" \
	"  local i = string.find(m, '\\31', 1, true)\n" \
	"  if not i then return nil end\n" \
	"  return string.sub(m, 1, i - 1), string.sub(m, i + 1)\n" \
	"end\n"

/* Answers the user's stored status too: a node that holds the user from
 * now on keeps it for a rebuild, as the user may have set it through a
 * connection of another node, before this one held the user (such a
 * change went to no feed).  The token revocation is checked here, not in
 * a call of its own, so that a handshake costs no more round trips;
 * iat * 1000 <= at_ms, as pav_token_revoked() compares. */
static const char conn_add[] =
	"local n = redis.call('HLEN', KEYS[1])\n"
	"local st = redis.call('HGET', KEYS[3], 'status') or ''\n"
	"local rev = redis.call('GET', KEYS[4])\n"
	"if rev and ARGV[5] ~= '-' and (ARGV[5] == '' or\n"
	"    tonumber(ARGV[5]) * 1000 <= tonumber(rev)) then\n"
	"  return {-1, n, st}\n"
	"end\n"
	"if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then\n"
	"  return {1, n, st}\n"
	"end\n"
	"local max = tonumber(ARGV[3])\n"
	"if max > 0 and n >= max then return {0, n, st} end\n"
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"redis.call('SADD', KEYS[2], ARGV[4])\n"
	"return {1, n + 1, st}\n";

/* A token revocation never lowers the cut-off a key holds: two calls
 * racing through two nodes, a wall clock stepped back, or a node writing
 * back what it kept after Redis restarted (that one also keeps an equal
 * cut-off, which is the same revocation).  What it writes it publishes
 * in the same step (ARGV[5] on ARGV[4]), for every node to keep. */
static const char tokens_revoke[] =
	"local cur = tonumber(redis.call('GET', KEYS[1]) or '')\n"
	"local at = tonumber(ARGV[1])\n"
	"if cur and (cur > at or (cur == at and ARGV[3] == '1')) then\n"
	"  return 0\n"
	"end\n"
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
	"redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
	"return 1\n";

/* One step of a node's catch-up on the revocation keys a shard holds,
 * with each key's value and PTTL, in one round trip.  A key of another
 * type answers nil rather than failing the step: Redis is the
 * operator's, and the node logs and skips it. */
static const char revoked_scan[] =
	"local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2],\n"
	"                     'COUNT', ARGV[3])\n"
	"local out = {r[1]}\n"
	"for _, k in ipairs(r[2]) do\n"
	"  local v = redis.pcall('GET', k)\n"
	"  if type(v) ~= 'string' then v = false end\n"
	"  out[#out + 1] = k\n"
	"  out[#out + 1] = v\n"
	"  out[#out + 1] = redis.call('PTTL', k)\n"
	"end\n"
	"return out\n";

/* The node leaves N:users once it holds no connection of the user. */
static const char conn_remove[] =
	"redis.call('HDEL', KEYS[1], ARGV[1])\n"
	"local vals = redis.call('HVALS', KEYS[1])\n"
	"for i = 1, #vals do\n"
	"  if vals[i] == ARGV[2] then return #vals end\n"
	"end\n"
	"redis.call('SREM', KEYS[2], ARGV[3])\n"
	"return #vals\n";

static const char presence_get[] =
	"local p = redis.call('HMGET', KEYS[1], 'status', 'last')\n"
	"return {p[1], p[2], redis.call('HLEN', KEYS[2])}\n";

/* The change and its announcement in one step: every node sees one
 * user's changes in the order they were applied.  'chosen' is the status
 * the user is to have while connected: what it set itself (even when
 * that was already its status), or what a connection opening set.  A
 * close, or a reaper's offline, leaves it: a node that was taken for dead
 * with the user's connections alive restores it (see user_sync). */
static const char presence_set[] =
	LUA_NOW LUA_INT LUA_RFC3339
	"local n = redis.call('HLEN', KEYS[2])\n"
	"local p = redis.call('HMGET', KEYS[1], 'status', 'last', 'owed')\n"
	"local cur = p[1] or 'offline'\n"
	"local w = ARGV[2]\n"
	"local at = tonumber(ARGV[3])\n"
	"if at <= 0 then at = now_ms() end\n"
	"if w == '0' then\n"
	"  redis.call('HSET', KEYS[1], 'chosen', ARGV[1])\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
	"end\n"
	"-- a reaper set the user offline and owes the announcement: this is it\n"
	"if w == '2' and n == 0 and p[3] then cur = '' end\n"
	"if w == '2' and n == 0 and p[1] == ARGV[1] and cur ~= '' then\n"
	"  -- the last close of a user who had set this status: it stays,\n"
	"  -- unannounced, but the user was active until now\n"
	"  redis.call('HSET', KEYS[1], 'last', int(at))\n"
	"  return {0, cur, int(at), n}\n"
	"end\n"
	"if (w == '1' and n == 0) or (w == '2' and n > 0) or\n"
	"   cur == ARGV[1] then\n"
	"  return {0, cur, p[2] or '0', n}\n"
	"end\n"
	"redis.call('HSET', KEYS[1], 'status', ARGV[1], 'last', int(at))\n"
	"redis.call('HDEL', KEYS[1], 'owed')\n"
	"if w ~= '2' then redis.call('HSET', KEYS[1], 'chosen', ARGV[1]) end\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
	"if n > 1 then\n"
	"  redis.call('PUBLISH', ARGV[6], ARGV[5] .. '0\\n' .. ARGV[1])\n"
	"end\n"
	"if #ARGV >= 11 then\n"
	"  local stamp = ''\n"
	"  if ARGV[10] == '1' then stamp = rfc3339(at) end\n"
	"  local msg = ARGV[7] .. '0\\n' .. ARGV[8] .. stamp .. ARGV[9]\n"
	"  for i = 11, #ARGV do redis.call('PUBLISH', ARGV[i], msg) end\n"
	"end\n"
	"return {1, ARGV[1], int(at), n}\n";

/* Committing a staged notification into the inbox (at its publication,
 * or when it was never published): KEYS inbox inbox:t read inbox:new
 * inbox:s inbox:c inbox:seq; evicts the oldest past size.  inbox:c
 * numbers the commits: notifications staged on two nodes may enter the
 * inbox in another order than their createdAt (see inbox_list). */
#define LUA_COMMIT \
	"local function commit(k, id, size, ttl)\n" \
	"  local t = redis.call('ZSCORE', k[5], id)\n" \
	"  local j = redis.call('HGET', k[4], id)\n" \
	"  if not t or not j then return 0 end\n" \
	"  redis.call('ZREM', k[5], id)\n" \
	"  redis.call('HDEL', k[4], id)\n" \
	"  redis.call('ZADD', k[2], t, id)\n" \
	"  redis.call('HSET', k[1], id, j)\n" \
	"  redis.call('ZADD', k[6], redis.call('INCR', k[7]), id)\n" \
	"  local over = redis.call('ZCARD', k[2]) - tonumber(size)\n" \
	"  if over > 0 then\n" \
	"    local old = redis.call('ZPOPMIN', k[2], over)\n" \
	"    for i = 1, #old, 2 do\n" \
	"      redis.call('HDEL', k[1], old[i])\n" \
	"      redis.call('SREM', k[3], old[i])\n" \
	"      redis.call('ZREM', k[6], old[i])\n" \
	"    end\n" \
	"  end\n" \
	"  for _, i in ipairs({1, 2, 3, 6, 7}) do\n" \
	"    redis.call('PEXPIRE', k[i], ttl)\n" \
	"  end\n" \
	"  return 1\n" \
	"end\n"

/* Notifications created by `since` (ms) that entered the inbox after the
 * newest one created by then, newest first as {id, createdAt}: a reader
 * that saw that one may not have seen them (staged before it on another
 * node, or never published and committed as an orphan). */
#define LUA_LATE \
	"local function late(k, since)\n" \
	"  local out = {}\n" \
	"  if tonumber(since) <= 0 then return out end\n" \
	"  local by = redis.call('ZREVRANGEBYSCORE', k[2], since, '-inf',\n" \
	"    'LIMIT', 0, 1)\n" \
	"  local seq = by[1] and redis.call('ZSCORE', k[6], by[1])\n" \
	"  if not seq then return out end\n" \
	"  for _, id in ipairs(redis.call('ZRANGEBYSCORE', k[6],\n" \
	"      '(' .. seq, '+inf')) do\n" \
	"    local t = redis.call('ZSCORE', k[2], id)\n" \
	"    if t and tonumber(t) <= tonumber(since) then\n" \
	"      out[#out + 1] = {id, t}\n" \
	"    end\n" \
	"  end\n" \
	"  table.sort(out, function(a, b)\n" \
	"    return tonumber(a[2]) > tonumber(b[2])\n" \
	"  end)\n" \
	"  return out\n" \
	"end\n"

/* Staged notifications never published (their delivery failed) are in
 * the inbox all the same once they are this old. */
#define LUA_COMMIT_ORPHANS \
	"local function commit_orphans(k, now, size, ttl)\n" \
	"  local ids = redis.call('ZRANGEBYSCORE', k[5], '-inf', now - 10000)\n" \
	"  for _, id in ipairs(ids) do commit(k, id, size, ttl) end\n" \
	"end\n"

/* A notification is staged (inbox:new, inbox:s) and enters the inbox in
 * the same step as its delivery is published (see publish): a replay read
 * meets only notifications whose live copy went out before it.  createdAt
 * is Redis' clock, bumped past the newest one of the inbox on a tie: one
 * inbox's order by createdAt is the order of creation, which makes
 * `since` exact. */
static const char inbox_add[] =
	LUA_NOW LUA_INT LUA_COMMIT LUA_COMMIT_ORPHANS
	"if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or\n"
	"   redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return false end\n"
	"local t = now_ms()\n"
	"commit_orphans(KEYS, t, ARGV[3], ARGV[4])\n"
	"for k = 2, 5, 3 do\n"
	"  local last = redis.call('ZRANGE', KEYS[k], -1, -1, 'WITHSCORES')\n"
	"  if last[2] and tonumber(last[2]) >= t then\n"
	"    t = tonumber(last[2]) + 1\n"
	"  end\n"
	"end\n"
	"redis.call('ZADD', KEYS[5], int(t), ARGV[1])\n"
	"redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])\n"
	"local over = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[3])\n"
	"if over > 0 then\n"
	"  local old = redis.call('ZPOPMIN', KEYS[5], over)\n"
	"  for i = 1, #old, 2 do redis.call('HDEL', KEYS[4], old[i]) end\n"
	"end\n"
	"for i = 4, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end\n"
	"return int(t)\n";

/* Those created after `since`, then those that entered the inbox late
 * (LUA_LATE): all older than the first.  With a limit: the newest `limit`
 * that match, walking back from the newest; answered oldest first.  Then
 * a fence message on this node's own channel: the node answers once it
 * has seen it, so that every live copy published before this read has
 * reached it. */
static const char inbox_list[] =
	LUA_NOW LUA_COMMIT LUA_COMMIT_ORPHANS LUA_LATE
	"commit_orphans(KEYS, now_ms(), ARGV[4], ARGV[5])\n"
	"local limit = tonumber(ARGV[3])\n"
	"local unread = ARGV[2] == '1'\n"
	"local ids\n"
	"if limit > 0 and not unread then\n"
	"  ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf',\n"
	"    '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit)\n"
	"else\n"
	"  ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf',\n"
	"    '(' .. ARGV[1], 'WITHSCORES')\n"
	"end\n"
	"local out = {}\n"
	"local function keep(id, t)\n"
	"  local read = redis.call('SISMEMBER', KEYS[3], id)\n"
	"  if unread and read == 1 then return false end\n"
	"  local j = redis.call('HGET', KEYS[1], id)\n"
	"  if j then out[#out + 1] = {id, t, j, read} end\n"
	"  return limit > 0 and #out >= limit\n"
	"end\n"
	"local full = false\n"
	"for i = 1, #ids, 2 do\n"
	"  full = keep(ids[i], ids[i + 1])\n"
	"  if full then break end\n"
	"end\n"
	"if not full then\n"
	"  for _, e in ipairs(late(KEYS, ARGV[1])) do\n"
	"    if keep(e[1], e[2]) then break end\n"
	"  end\n"
	"end\n"
	"local r = {}\n"
	"for i = #out, 1, -1 do\n"
	"  for k = 1, 4 do r[#r + 1] = out[i][k] end\n"
	"end\n"
	"if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end\n"
	"return r\n";

/* The read set expires with the inbox. */
static const char inbox_mark_read[] =
	"if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
	"redis.call('SADD', KEYS[2], ARGV[1])\n"
	"local ttl = redis.call('PTTL', KEYS[1])\n"
	"if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end\n"
	"return 1\n";

/* The user's count over nodes: its entry in each node's C:u. */
static const char member_add[] =
	LUA_TTL_FIX
	"redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
	"redis.call('HINCRBY', KEYS[2], ARGV[2], 1)\n"
	"redis.call('SADD', KEYS[3], ARGV[3])\n"
	"ttl_fix(KEYS[1], KEYS[4], KEYS[5])\n"
	"local subs, uc = 0, 0\n"
	"local h = redis.call('HGETALL', KEYS[1])\n"
	"for i = 1, #h, 2 do\n"
	"  subs = subs + tonumber(h[i + 1])\n"
	"  local c = redis.call('HGET', ARGV[4] .. h[i], ARGV[2])\n"
	"  if c then uc = uc + tonumber(c) end\n"
	"end\n"
	"return {subs, uc}\n";

static const char member_remove[] =
	LUA_TTL_FIX LUA_ADD
	"if add(KEYS[1], ARGV[1], -1) <= 0 then\n"
	"  redis.call('SREM', KEYS[3], ARGV[3])\n"
	"end\n"
	"add(KEYS[2], ARGV[2], -1)\n"
	"ttl_fix(KEYS[1], KEYS[4], KEYS[5])\n"
	"return 1\n";

static const char hash_add[] =
	LUA_ADD
	"return add(KEYS[1], ARGV[1], ARGV[2])\n";

static const char channel_counts[] =
	LUA_SUBS
	"local out = {}\n"
	"for k = 1, #KEYS do out[k] = subs(KEYS[k]) end\n"
	"return out\n";

/* Bounded: stops at max distinct users, scanning each node's C:u. */
static const char channel_users[] =
	"local max = tonumber(ARGV[2])\n"
	"local seen, out = {}, {}\n"
	"if max <= 0 then return out end\n"
	"for _, node in ipairs(redis.call('HKEYS', KEYS[1])) do\n"
	"  local cursor = '0'\n"
	"  repeat\n"
	"    local r = redis.call('HSCAN', ARGV[1] .. node, cursor,\n"
	"      'COUNT', 200)\n"
	"    cursor = r[1]\n"
	"    for i = 1, #r[2], 2 do\n"
	"      local u = r[2][i]\n"
	"      if not seen[u] then\n"
	"        seen[u] = true\n"
	"        out[#out + 1] = u\n"
	"        if #out >= max then return out end\n"
	"      end\n"
	"    end\n"
	"  until cursor == '0'\n"
	"end\n"
	"return out\n";

/* Offset, history append and publication in one step: every node sees
 * a channel's publications in this order.  No meta: a new epoch (the one
 * the node made up for the case), so lost history is detected. */
static const char publish[] =
	LUA_INT LUA_TTL_FIX LUA_COMMIT LUA_SUBS
	"local size = tonumber(ARGV[5])\n"
	"local off, epoch, hoff, frame = 0, false, '0', ARGV[3]\n"
	"if size > 0 then\n"
	"  if redis.call('EXISTS', KEYS[1]) == 0 then\n"
	"    redis.call('DEL', KEYS[2])\n"
	"    redis.call('HSET', KEYS[1], 'epoch', ARGV[7], 'offset', 0)\n"
	"  end\n"
	"  redis.call('HSET', KEYS[1], 'ttl', ARGV[6])\n"
	"  off = redis.call('HINCRBY', KEYS[1], 'offset', 1)\n"
	"  epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
	"  hoff = int(off)\n"
	"  frame = ARGV[3] .. hoff .. ARGV[4]\n"
	"  redis.call('RPUSH', KEYS[2], frame)\n"
	"  redis.call('LTRIM', KEYS[2], -size, -1)\n"
	"  ttl_fix(KEYS[4], KEYS[1], KEYS[2])\n"
	"elseif ARGV[8] == '1' then\n"
	"  off = redis.call('INCR', KEYS[3])\n"
	"  redis.call('PEXPIRE', KEYS[3], 3600000)\n"
	"end\n"
	"redis.call('PUBLISH', ARGV[1], ARGV[2] .. hoff .. '\\n' .. frame)\n"
	"if #KEYS == 11 then\n"
	"  commit({unpack(KEYS, 5, 11)}, ARGV[9], ARGV[10], ARGV[11])\n"
	"end\n"
	"return {off, epoch, subs(KEYS[4])}\n";

/* One message to several channels at once: a node subscribed to more
 * than one of them receives the copies back to back. */
static const char publish_multi[] =
	"for i = 2, #ARGV do redis.call('PUBLISH', ARGV[i], ARGV[1]) end\n"
	"return 1\n";

/* As memory_state.c reads a ring: complete when every publication after
 * `after` is still held and fits in max.  A channel without meta gets one
 * (a new epoch), so a subscriber's epoch is the channel's.  Then a fence
 * (see inbox_list): the live copy of every publication read here reaches
 * the node before the answer is used. */
static const char history_read[] =
	LUA_INT LUA_TTL_FIX
	"if redis.call('EXISTS', KEYS[1]) == 0 then\n"
	"  redis.call('DEL', KEYS[2])\n"
	"  redis.call('HSET', KEYS[1], 'epoch', ARGV[3], 'offset', 0,\n"
	"    'ttl', ARGV[4])\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
	"  ttl_fix(KEYS[3], KEYS[1], KEYS[2])\n"
	"end\n"
	"local m = redis.call('HMGET', KEYS[1], 'epoch', 'offset')\n"
	"local offset = tonumber(m[2])\n"
	"local after = tonumber(ARGV[1])\n"
	"local max = tonumber(ARGV[2])\n"
	"local count = redis.call('LLEN', KEYS[2])\n"
	"local oldest = offset - count + 1\n"
	"local first = math.max(after + 1, oldest)\n"
	"local complete = 0\n"
	"if after <= offset and first == after + 1 and\n"
	"   offset - after <= max then complete = 1 end\n"
	"local out = {m[1], m[2], complete}\n"
	"if first <= offset and max > 0 then\n"
	"  local n = math.min(offset - first + 1, max)\n"
	"  local from = first - oldest\n"
	"  out[4] = int(first)\n"
	"  local frames = redis.call('LRANGE', KEYS[2], from, from + n - 1)\n"
	"  for i = 1, #frames do out[#out + 1] = frames[i] end\n"
	"end\n"
	"if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end\n"
	"return out\n";

/* Did someone else find this node dead meanwhile (no alive key)? */
static const char heartbeat[] =
	LUA_NOW LUA_INT
	"local t = now_ms()\n"
	"local had = redis.call('EXISTS', KEYS[2])\n"
	"redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])\n"
	"redis.call('ZADD', KEYS[1], int(t), ARGV[1])\n"
	"return {had, int(t)}\n";

/* Nodes whose last heartbeat is older than ttl and whose alive key is
 * gone, each locked for this node to reap. */
static const char find_dead[] =
	LUA_NOW LUA_INT
	"local t = now_ms()\n"
	"local c = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',\n"
	"  int(t - tonumber(ARGV[1])), 'WITHSCORES', 'LIMIT', 0, 16)\n"
	"local out = {}\n"
	"for i = 1, #c, 2 do\n"
	"  local node = c[i]\n"
	"  if node ~= ARGV[3] and\n"
	"     redis.call('EXISTS', 'pav:{n:' .. node .. '}:alive') == 0 and\n"
	"     redis.call('SET', 'pav:reap:' .. node, ARGV[3], 'NX', 'PX',\n"
	"       ARGV[2]) then\n"
	"    out[#out + 1] = node\n"
	"    out[#out + 1] = c[i + 1]\n"
	"  end\n"
	"end\n"
	"return out\n";

/* A user popped from a dead node's users, with no connection left, is
 * offline (since the node's last heartbeat) in the same step: were it
 * left to the reaper's presence change that follows, a reaper dying in
 * between would leave the user online for the life of its record.  That
 * change still announces it ('owed'; see presence_set).  A user without
 * a record, or offline already, is left as it is. */
#define LUA_GONE_OFFLINE \
	"local function gone_offline(P, last, ttl)\n" \
	"  local st = redis.call('HGET', P, 'status')\n" \
	"  if not st or st == 'offline' then return end\n" \
	"  redis.call('HSET', P, 'status', 'offline', 'last', last,\n" \
	"    'owed', '1')\n" \
	"  redis.call('PEXPIRE', P, ttl)\n" \
	"end\n"

/* Bounded work per call: `batch` channels, then `batch` users at a time.
 * The channels go first: a user announced offline is weighed against
 * channel counts that no longer hold the dead node's members (a channel
 * within max_broadcast once they are gone gets the announcement).  Users
 * left with no connection come back with the dead node's shared channels
 * of theirs, for their offline announcement.  Stops (2) when the node
 * turns out alive: it re-registers itself.  Mode 'c' (another shard than
 * the reaper's lock, whose channels go before the users of that one):
 * channels only, and 3 once none is left; the lock is not touched. */
static const char reap[] =
	LUA_TTL_FIX LUA_SPLIT LUA_GONE_OFFLINE
	"local dead = ARGV[1]\n"
	"local N = 'pav:{n:' .. dead .. '}'\n"
	"local lock = 'pav:reap:' .. dead\n"
	"local batch = tonumber(ARGV[2])\n"
	"local only_chans = ARGV[4] == 'c'\n"
	"if redis.call('EXISTS', N .. ':alive') == 1 then\n"
	"  if not only_chans then redis.call('DEL', lock) end\n"
	"  return {2, {}}\n"
	"end\n"
	"local out = {}\n"
	"local chans = redis.call('SPOP', N .. ':chans', batch)\n"
	"for _, m in ipairs(chans) do\n"
	"  local ns, ch = split(m)\n"
	"  if ns then\n"
	"    local C = 'pav:{c:' .. ns .. ':' .. ch .. '}'\n"
	"    redis.call('HDEL', C .. ':n', dead)\n"
	"    redis.call('DEL', C .. ':u:' .. dead)\n"
	"    ttl_fix(C .. ':n', C .. ':meta', C .. ':hist')\n"
	"  end\n"
	"end\n"
	"if only_chans then return {#chans == 0 and 3 or 0, {}} end\n"
	"if #chans == 0 then\n"
	"  local pre = dead .. '|'\n"
	"  local last = redis.call('ZSCORE', KEYS[1], dead) or '0'\n"
	"  local users = redis.call('SPOP', N .. ':users', batch)\n"
	"  for _, m in ipairs(users) do\n"
	"    local ns, user = split(m)\n"
	"    if ns then\n"
	"      local U = 'pav:{u:' .. ns .. ':' .. user .. '}'\n"
	"      local h = redis.call('HGETALL', U .. ':conns')\n"
	"      for i = 1, #h, 2 do\n"
	"        if h[i + 1] == dead then\n"
	"          redis.call('HDEL', U .. ':conns', h[i])\n"
	"        end\n"
	"      end\n"
	"      local uch = {}\n"
	"      local uc = redis.call('HGETALL', U .. ':chans')\n"
	"      for i = 1, #uc, 2 do\n"
	"        if string.sub(uc[i], 1, #pre) == pre then\n"
	"          redis.call('HDEL', U .. ':chans', uc[i])\n"
	"          uch[#uch + 1] = string.sub(uc[i], #pre + 1)\n"
	"        end\n"
	"      end\n"
	"      if redis.call('HLEN', U .. ':conns') == 0 then\n"
	"        gone_offline(U .. ':presence', last, ARGV[5])\n"
	"        out[#out + 1] = {ns, user, uch}\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  if #users == 0 then\n"
	"    redis.call('DEL', N .. ':users', N .. ':chans', lock)\n"
	"    redis.call('ZREM', KEYS[1], dead)\n"
	"    return {1, out}\n"
	"  end\n"
	"end\n"
	"redis.call('PEXPIRE', lock, ARGV[3])\n"
	"return {0, out}\n";

/* Makes the user's entries of this node what the node holds (absolute),
 * and restores presence lost with Redis' data (the status the node kept,
 * as the user's chosen one too).  A user set offline while the node held
 * connections of it (a reaper took the node for dead) is left offline and
 * answered back = 1 with the status it had chosen (the one the node kept
 * when the store has none): the node's open hooks set that again and
 * announce it, as they did at its first connection. */
static const char user_sync[] =
	"local node = ARGV[1]\n"
	"local nc = tonumber(ARGV[6])\n"
	"local want = {}\n"
	"for i = 7, 6 + nc do want[ARGV[i]] = true end\n"
	"local h = redis.call('HGETALL', KEYS[1])\n"
	"for i = 1, #h, 2 do\n"
	"  if h[i + 1] == node and not want[h[i]] then\n"
	"    redis.call('HDEL', KEYS[1], h[i])\n"
	"  end\n"
	"end\n"
	"for i = 7, 6 + nc do redis.call('HSET', KEYS[1], ARGV[i], node) end\n"
	"local wantc = {}\n"
	"for i = 7 + nc, #ARGV - 1, 2 do wantc[ARGV[i]] = ARGV[i + 1] end\n"
	"local pre = node .. '|'\n"
	"local removed = {}\n"
	"local uc = redis.call('HGETALL', KEYS[2])\n"
	"for i = 1, #uc, 2 do\n"
	"  if string.sub(uc[i], 1, #pre) == pre and not wantc[uc[i]] then\n"
	"    redis.call('HDEL', KEYS[2], uc[i])\n"
	"    removed[#removed + 1] = string.sub(uc[i], #pre + 1)\n"
	"  end\n"
	"end\n"
	"for f, c in pairs(wantc) do redis.call('HSET', KEYS[2], f, c) end\n"
	"if nc > 0 then\n"
	"  redis.call('SADD', KEYS[4], ARGV[2])\n"
	"else\n"
	"  redis.call('SREM', KEYS[4], ARGV[2])\n"
	"end\n"
	"local back, chosen = 0, ''\n"
	"if nc > 0 and ARGV[3] ~= '' then\n"
	"  local p = redis.call('HMGET', KEYS[3], 'status', 'chosen')\n"
	"  chosen = p[2] or ARGV[3]\n"
	"  if not p[1] then\n"
	"    redis.call('HSET', KEYS[3], 'status', ARGV[3], 'last', ARGV[4],\n"
	"      'chosen', ARGV[3])\n"
	"    redis.call('PEXPIRE', KEYS[3], ARGV[5])\n"
	"  elseif p[1] == 'offline' and chosen ~= 'offline' then\n"
	"    back = 1\n"
	"  end\n"
	"end\n"
	"return {redis.call('HLEN', KEYS[1]), removed, back, chosen}\n";

static const char chan_sync[] =
	LUA_TTL_FIX
	"redis.call('DEL', KEYS[2])\n"
	"if tonumber(ARGV[3]) > 0 then\n"
	"  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
	"  for i = 4, #ARGV - 1, 2 do\n"
	"    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])\n"
	"  end\n"
	"  redis.call('SADD', KEYS[3], ARGV[2])\n"
	"else\n"
	"  redis.call('HDEL', KEYS[1], ARGV[1])\n"
	"  redis.call('SREM', KEYS[3], ARGV[2])\n"
	"end\n"
	"ttl_fix(KEYS[1], KEYS[4], KEYS[5])\n"
	"return 1\n";

const char *const pav_rb_lua[PAV_RB_NSCRIPTS] = {
	[PAV_RB_CONN_ADD] = conn_add,
	[PAV_RB_CONN_REMOVE] = conn_remove,
	[PAV_RB_PRESENCE_GET] = presence_get,
	[PAV_RB_PRESENCE_SET] = presence_set,
	[PAV_RB_INBOX_ADD] = inbox_add,
	[PAV_RB_INBOX_LIST] = inbox_list,
	[PAV_RB_INBOX_MARK_READ] = inbox_mark_read,
	[PAV_RB_MEMBER_ADD] = member_add,
	[PAV_RB_MEMBER_REMOVE] = member_remove,
	[PAV_RB_HASH_ADD] = hash_add,
	[PAV_RB_CHANNEL_COUNTS] = channel_counts,
	[PAV_RB_CHANNEL_USERS] = channel_users,
	[PAV_RB_PUBLISH] = publish,
	[PAV_RB_PUBLISH_MULTI] = publish_multi,
	[PAV_RB_HISTORY_READ] = history_read,
	[PAV_RB_HEARTBEAT] = heartbeat,
	[PAV_RB_FIND_DEAD] = find_dead,
	[PAV_RB_REAP] = reap,
	[PAV_RB_USER_SYNC] = user_sync,
	[PAV_RB_CHAN_SYNC] = chan_sync,
	[PAV_RB_TOKENS_REVOKE] = tokens_revoke,
	[PAV_RB_REVOKED_SCAN] = revoked_scan,
};
