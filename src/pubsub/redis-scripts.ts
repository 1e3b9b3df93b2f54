/**
 * The Lua scripts the Redis broker runs, and the format of what they
 * publish. A script runs atomically in Redis, so each publish is one step:
 * no other client sees the offset taken without the history entry or the
 * channel message, and history and live delivery cannot disagree.
 *
 * Keys of a topic share a hash tag (`{topic}`) so that they would live on
 * one node of a Redis Cluster; this broker speaks to one Redis.
 *
 * Time comes from Redis (`TIME`), not from the nodes, so history age and
 * presence expiry do not depend on the nodes' clocks agreeing.
 */

/**
 * KEYS: 1 meta hash {e: epoch, o: offset}, 2 history stream.
 * ARGV: 1 channel, 2 payload, 3 binary flag ("1"/"0"), 4 origin node,
 *       5 history size, 6 history age ms, 7 meta TTL ms, 8 epoch to use if the topic is new.
 * Returns {epoch, offset}.
 *
 * A topic without meta (never published, expired, or a Redis that lost
 * its data) starts a new epoch, and any stream left from an older life is
 * deleted so its entry ids (the offsets) start again at 1.
 * The published envelope is "epoch\noffset\norigin\nbinary\n" + payload.
 */
export const PUBLISH_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[8]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local size = tonumber(ARGV[5])
if size > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-1', 'd', ARGV[2], 'b', ARGV[3], 't', now)
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[1], epoch .. '\\n' .. offset .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[2])
return {epoch, offset}
`;

/**
 * KEYS: 1 meta hash, 2 history stream.
 * ARGV: 1 read entries after this offset, 2 most entries, 3 epoch to use if the topic is new, 4 meta TTL ms.
 * Returns {epoch, offset now, now ms, entries}: entries as XRANGE gives
 * them (id, {d, payload, b, flag, t, stored at}), from the first one kept
 * after ARGV[1]. A topic never published gets its epoch here, so a
 * position taken before its first message is valid after it.
 */
export const HISTORY_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = {}
local count = tonumber(ARGV[2])
if count > 0 and offset > tonumber(ARGV[1]) then
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-1', '+', 'COUNT', count)
end
return {epoch, offset, now, entries}
`;

/**
 * Presence. KEYS: 1 sorted set (member id, scored by expiry ms), 2 hash (id -> data JSON).
 * Join ARGV: 1 channel, 2 TTL ms, then id, data pairs. Adds or refreshes
 * the members; publishes a join event for each that was not there, or
 * whose data changed.
 */
export const PRESENCE_JOIN_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local id, data = ARGV[i], ARGV[i + 1]
  local added = redis.call('ZADD', KEYS[1], now + ttl, id)
  local old = redis.call('HGET', KEYS[2], id)
  if added == 1 or old ~= data then
    redis.call('HSET', KEYS[2], id, data)
    redis.call('PUBLISH', ARGV[1], cjson.encode({type = 'join', id = id, data = data}))
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return 1
`;

/**
 * Claim. ARGV as for join. For each id, adds it only if no live member
 * has it (an entry past its expiry counts as gone: it is removed with its
 * leave event first), or refreshes it if the member there has the same
 * data (the claimant's own entry). Returns one 1 (claimed or refreshed) or
 * 0 (held by someone else) per id. Being one script, a check and its add
 * cannot be split by another node's claim.
 */
export const PRESENCE_CLAIM_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local id, data = ARGV[i], ARGV[i + 1]
  local expiry = redis.call('ZSCORE', KEYS[1], id)
  if expiry and tonumber(expiry) <= now then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('PUBLISH', ARGV[1], cjson.encode({type = 'leave', id = id, expired = true}))
    expiry = false
  end
  if not expiry then
    redis.call('ZADD', KEYS[1], now + ttl, id)
    redis.call('HSET', KEYS[2], id, data)
    redis.call('PUBLISH', ARGV[1], cjson.encode({type = 'join', id = id, data = data}))
    out[#out + 1] = 1
  elseif redis.call('HGET', KEYS[2], id) == data then
    redis.call('ZADD', KEYS[1], now + ttl, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return out
`;

/** Leave. ARGV: 1 channel, 2 id, 3 (optional) the data the member must still have. */
export const PRESENCE_LEAVE_SCRIPT = `
if ARGV[3] and redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then
  return 0
end
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('PUBLISH', ARGV[1], cjson.encode({type = 'leave', id = ARGV[2], expired = false}))
end
return 1
`;

/**
 * Sweep and list. ARGV: 1 channel. Removes the members whose expiry has
 * passed (their node stopped refreshing them), publishing a leave event
 * for each, then returns the live ones as id, data, id, data ...
 */
export const PRESENCE_MEMBERS_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('PUBLISH', ARGV[1], cjson.encode({type = 'leave', id = id, expired = true}))
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
if #ids > 0 then
  local datas = redis.call('HMGET', KEYS[2], unpack(ids))
  for i, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = datas[i] or 'null'
  end
end
return out
`;

/** A live message as the publish script sends it on the topic's channel. */
export interface Envelope {
  readonly epoch: string;
  readonly offset: number;
  readonly origin: string;
  readonly binary: boolean;
  readonly data: Buffer;
}

const NEWLINE = 0x0a;

/** Parse "epoch\noffset\norigin\nbinary\n" + payload; null for anything else. */
export function parseEnvelope(raw: Buffer): Envelope | null {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < 4; i++) {
    const end = raw.indexOf(NEWLINE, start);
    if (end < 0) return null;
    fields.push(raw.toString('latin1', start, end));
    start = end + 1;
  }
  const offset = Number(fields[1]);
  if (!Number.isSafeInteger(offset) || offset < 1) return null;
  return { epoch: fields[0]!, offset, origin: fields[2]!, binary: fields[3] === '1', data: raw.subarray(start) };
}
