-- Complete: records an attempt and, if the lease is still current, applies its
-- transition: succeed ('s'), reschedule ('r', at ARGV[5]) or exhaust ('f'); disables the
-- endpoint when the core says so (reason ARGV[6], 0 for none: a 410 Gone). Also decides
-- for the endpoint's shared protection: feeds its breaker and its failing-since clock
-- (disabling it once failing too long), and the per-minute rollup; gives back the
-- attempt's slot of its destination host. An attempt of an expunged message keeps no
-- response excerpt.
-- ARGV: now, delivery, token, transition, retry at, disable reason, succeeded (1/0),
-- endpoint failure (1/0), failing period before disabling (ms), default breaker threshold,
-- default breaker open time (ms), started at (ms), latency (us), status code, transport
-- error code, error, response excerpt, rollup minute, counter count, then name/value pairs.
-- Returns {applied, circuit change (0 none, 1 opened, 2 closed), endpoint disabled,
-- unfinished deliveries}.
local now, d, token, tr = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local succeeded, failure = ARGV[7] == '1', ARGV[8] == '1'
local dk = P .. 'd:' .. d
local s = redis.call('HMGET', dk, 's', 'm', 'e', 'et', 'n', 'tok', 'sid', 'pr')
if not s[2] then return {0, 0, 0, tonumber(redis.call('GET', P .. 'backlog') or '0')} end
local m, ep, et = s[2], s[3], s[4]
local number = tonumber(s[5]) + 1
redis.call('HSET', dk, 'n', number, 'u', now)

local applied = s[1] == STATE_IN_FLIGHT and s[6] == token
-- Expunging a message cancels its deliveries: only an attempt that lost its lease can be
-- of an expunged message, and it keeps no response excerpt.
local rx = ARGV[17]
if not applied and redis.call('HEXISTS', P .. 'm:' .. m, 'xp') == 1 then rx = '' end
local a = redis.call('INCR', P .. 'seq:att')
redis.call('HSET', P .. 'a:' .. a, 'd', d, 'm', m, 'e', ep, 'n', number, 'ok', ARGV[7],
  't', ARGV[12], 'l', ARGV[13], 'sc', ARGV[14], 'te', ARGV[15], 'er', ARGV[16], 'rx', rx)
redis.call('ZADD', P .. 'att', a, a)
redis.call('ZADD', P .. 'm:' .. m .. ':a', a, a)
redis.call('ZADD', P .. 'e:' .. ep .. ':a', a, a)

local result = {'k', succeeded and KIND_ATTEMPT_SUCCEEDED or KIND_ATTEMPT_FAILED, 'at', now, 'm', m, 'e', ep, 'et', et, 'an', number,
  'lat', ARGV[13]}
if ARGV[14] ~= '' then result[#result + 1] = 'sc'; result[#result + 1] = ARGV[14] end
if ARGV[15] ~= '' then result[#result + 1] = 'te'; result[#result + 1] = ARGV[15] end
if ARGV[16] ~= '' then result[#result + 1] = 'er'; result[#result + 1] = ARGV[16] end
emit(result)

local gk = P .. 'g:' .. ep
local endpoint_exists = redis.call('EXISTS', gk) == 1
-- The attempt held a slot of its host unless the delivery was taken over by another
-- lease (a reclaim) whose attempt holds it now; a cancelled delivery's slot is free too.
if applied or s[1] ~= STATE_IN_FLIGHT then release_host(dk) end
local change, disabled = 0, 0
if applied then
  redis.call('XACK', P .. 'ready', 'workers', s[7])
  redis.call('XDEL', P .. 'ready', s[7])
  redis.call('SREM', P .. 'inf:' .. ep, d)
  redis.call('HDEL', dk, 'tok', 'sid', 'pr')
  if tr == 's' then
    redis.call('HSET', dk, 's', STATE_SUCCEEDED)
    redis.call('HDEL', dk, 'na')
    pending(ep, et, -1)
  elseif tr == 'r' then
    local at = tonumber(ARGV[5])
    redis.call('HSET', dk, 's', STATE_PENDING, 'na', at)
    redis.call('ZADD', P .. 'due:' .. ep, at, d)
    emit({'k', KIND_RETRY_SCHEDULED, 'at', now, 'm', m, 'e', ep, 'et', et, 'an', number, 'na', at})
  else
    redis.call('HSET', dk, 's', STATE_FAILED, 'fa', now)
    redis.call('HDEL', dk, 'na')
    redis.call('ZADD', P .. 'e:' .. ep .. ':failed', now, d)
    pending(ep, et, -1)
    emit({'k', KIND_DELIVERY_EXHAUSTED, 'at', now, 'm', m, 'e', ep, 'et', et, 'an', number})
  end
  if endpoint_exists then
    redis.call('HINCRBY', gk, 'inf', -1)
    local g = redis.call('HMGET', gk, 'bs', 'bt', 'bo')
    local bs, probe = g[1] or CIRCUIT_CLOSED, s[8] == '1'
    local function open()
      local until_ = now + tonumber(g[3] or ARGV[11])
      redis.call('HSET', gk, 'bs', CIRCUIT_OPEN, 'bu', until_)
      emit({'k', KIND_CIRCUIT_OPENED, 'at', now, 'e', ep, 'na', until_})
      change = 1
    end
    if not failure then
      if bs == CIRCUIT_HALF_OPEN and probe then
        redis.call('HSET', gk, 'bs', CIRCUIT_CLOSED, 'bf', 0)
        emit({'k', KIND_CIRCUIT_CLOSED, 'at', now, 'e', ep})
        change = 2
      elseif bs == CIRCUIT_CLOSED then
        redis.call('HSET', gk, 'bf', 0)
      end
    elseif bs == CIRCUIT_HALF_OPEN and probe then
      open()
    elseif bs == CIRCUIT_CLOSED and redis.call('HINCRBY', gk, 'bf', 1) >= tonumber(g[2] or ARGV[10]) then
      open()
    end
    reschedule(ep)
  end
end

if endpoint_exists then
  if tonumber(ARGV[6]) > 0 and disable(ep, tonumber(ARGV[6]), now) then disabled = 1 end
  if succeeded then
    redis.call('HDEL', gk, 'fs')
  else
    local since = redis.call('HGET', gk, 'fs')
    if not since then
      redis.call('HSET', gk, 'fs', now)
    elseif now - tonumber(since) >= tonumber(ARGV[9]) and disable(ep, REASON_FAILING, now) then
      disabled = 1
    end
  end
end

local minute = ARGV[18]
local rk = P .. 'ru:' .. minute
local prefix = ep .. '\n' .. et .. '\n'
local i = 20
for _ = 1, tonumber(ARGV[19]) do
  local name, value = ARGV[i], tonumber(ARGV[i + 1])
  if name == 'latency_max_us' then
    if value > tonumber(redis.call('HGET', rk, prefix .. name) or '0') then
      redis.call('HSET', rk, prefix .. name, value)
    end
  elseif name == 'latency_min_us' then
    local min = redis.call('HGET', rk, prefix .. name)
    if not min or value < tonumber(min) then
      redis.call('HSET', rk, prefix .. name, value)
    end
  else
    redis.call('HINCRBY', rk, prefix .. name, value)
  end
  i = i + 2
end
if number == 1 then redis.call('HINCRBY', rk, prefix .. 'deliveries', 1) end
if applied and tr == 'f' then redis.call('HINCRBY', rk, prefix .. 'exhausted', 1) end
redis.call('ZADD', P .. 'ru:minutes', minute, minute)
return {applied and 1 or 0, change, disabled, tonumber(redis.call('GET', P .. 'backlog') or '0')}
