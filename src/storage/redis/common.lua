-- Shared by every script. KEYS[1] is the key prefix (`{prefix}:`); all keys share its
-- hash tag, so one Redis Cluster slot holds a deployment. RETENTION, HOST_IDLE_MS and the
-- codes (STATE_*, KIND_*, REASON_*, CIRCUIT_*) are set by the loader from Rust's own
-- tables.
local P = KEYS[1]

-- Appends a status event; its stream id `0-<cursor>` is its cursor.
local function emit(fields)
  local cursor = redis.call('INCR', P .. 'seq:ev')
  redis.call('XADD', P .. 'ev', 'MAXLEN', '~', RETENTION, '0-' .. cursor, unpack(fields))
  return cursor
end

-- Counts unfinished deliveries per endpoint and event type, and in all.
local function pending(ep, et, n)
  redis.call('HINCRBY', P .. 'pend', ep .. '\n' .. et, n)
  redis.call('INCRBY', P .. 'backlog', n)
end

-- The earliest due time of the endpoint's pending deliveries, or nil.
local function earliest(ep)
  local first = redis.call('ZRANGE', P .. 'due:' .. ep, 0, 0, 'WITHSCORES')
  if first[2] then return tonumber(first[2]) end
  return nil
end

-- The tokens in an endpoint's bucket at `now`: what its last use left (`tk` at `tt`,
-- full when never used), refilled at `rl` per `rw` ms, at most the burst `rb`.
local function tokens(tk, tt, now, rl, rw, rb)
  return math.min(rb, tonumber(tk or rb) + (now - tonumber(tt or now)) * rl / rw)
end

-- Makes the scheduler look at an enabled endpoint no later than its earliest due time.
local function reschedule(ep)
  local at = earliest(ep)
  if at and redis.call('HGET', P .. 'g:' .. ep, 'en') == '1' then
    redis.call('ZADD', P .. 'sched', 'LT', at, ep)
  end
end

-- Gives back the slot of its destination host that delivery key `dk` holds (field `hk`,
-- set when the promote script let it go), once, and makes the endpoints waiting for that
-- host's room look again. A host with nothing in flight keeps its bucket for HOST_IDLE_MS,
-- by which time a new one would be as full.
local function release_host(dk)
  local hk = redis.call('HGET', dk, 'hk')
  if not hk then return end
  redis.call('HDEL', dk, 'hk')
  local hg = P .. 'hg:' .. hk
  local inf = redis.call('HINCRBY', hg, 'inf', -1)
  if inf <= 0 then
    if inf < 0 then redis.call('HSET', hg, 'inf', 0) end
    redis.call('PEXPIRE', hg, HOST_IDLE_MS)
  end
  local hw = P .. 'hw:' .. hk
  for _, ep in ipairs(redis.call('SMEMBERS', hw)) do reschedule(ep) end
  redis.call('DEL', hw)
end

-- A new pending delivery of message `m` (event type `et`) to `ep`, due at `now`.
local function create_delivery(m, ep, et, now)
  local d = redis.call('INCR', P .. 'seq:dlv')
  redis.call('HSET', P .. 'd:' .. d, 'm', m, 'e', ep, 'et', et, 's', STATE_PENDING, 'n', 0, 'rs', 0,
    'na', now, 'c', now, 'u', now)
  redis.call('HSET', P .. 'm:' .. m .. ':d', ep, d)
  redis.call('ZADD', P .. 'due:' .. ep, now, d)
  redis.call('ZADD', P .. 'sched', 'LT', now, ep)
  pending(ep, et, 1)
  return d
end

-- Cancels delivery `d` if it is unfinished and frees what it holds of its endpoint: its
-- due entry, or its in-flight room and ready-stream entry (a probe lets the breaker probe
-- again at once, as when handed back). An attempt under way is recorded when it ends, and
-- changes nothing; its host slot is given back then (or, never claimed, when the claim
-- drops its entry). Returns whether it was cancelled.
local function cancel(d, now)
  local dk = P .. 'd:' .. d
  local s = redis.call('HMGET', dk, 's', 'm', 'e', 'et', 'sid', 'pr')
  local ep = s[3]
  if s[1] == STATE_PENDING then
    redis.call('ZREM', P .. 'due:' .. ep, d)
  elseif s[1] == STATE_IN_FLIGHT then
    redis.call('SREM', P .. 'inf:' .. ep, d)
    if s[5] then
      redis.call('XACK', P .. 'ready', 'workers', s[5])
      redis.call('XDEL', P .. 'ready', s[5])
    end
    local gk = P .. 'g:' .. ep
    if redis.call('EXISTS', gk) == 1 then
      redis.call('HINCRBY', gk, 'inf', -1)
      if s[6] == '1' then redis.call('HSET', gk, 'bs', CIRCUIT_OPEN, 'bu', now) end
      reschedule(ep)
    end
  else
    return false
  end
  redis.call('HSET', dk, 's', STATE_CANCELLED, 'u', now)
  redis.call('HDEL', dk, 'na', 'tok', 'sid', 'pr')
  pending(ep, s[4], -1)
  emit({'k', KIND_DELIVERY_CANCELLED, 'at', now, 'm', s[2], 'e', ep})
  return true
end

-- Disables an enabled endpoint for `reason`; its pending deliveries wait.
local function disable(ep, reason, now)
  local g = P .. 'g:' .. ep
  if redis.call('HGET', g, 'en') ~= '1' then return false end
  redis.call('HSET', g, 'en', 0, 'dr', reason, 'u', now)
  redis.call('ZREM', P .. 'sched', ep)
  redis.call('INCR', P .. 'epver')
  emit({'k', KIND_ENDPOINT_DISABLED, 'at', now, 'e', ep, 'dr', reason})
  return true
end

-- The tenant of an endpoint's record (written before tenants existed: the default).
local function tenant_of(ep)
  local record = redis.call('GET', P .. 'ep:' .. ep)
  if not record then return nil end
  return cjson.decode(record).tenant or 'default'
end

-- Takes an endpoint out of its tenant's index and count.
local function unindex_endpoint(ep)
  local tenant = tenant_of(ep)
  if not tenant then return end
  redis.call('ZREM', P .. 't:' .. tenant .. ':eps', ep)
  if redis.call('HINCRBY', P .. 'tenants', tenant, -1) <= 0 then
    redis.call('HDEL', P .. 'tenants', tenant)
  end
end
