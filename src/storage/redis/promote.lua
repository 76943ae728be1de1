-- Promote: moves due deliveries of endpoints with room (in-flight cap, shared token
-- bucket, shared breaker) into the ready stream, at most ARGV[2] of them. ARGV: now,
-- budget, then the defaults an endpoint without override has: in-flight cap, rate limit
-- (0: none), rate window (ms), burst. Returns {endpoints that used their last token,
-- earliest scheduled time or '', endpoint version}.
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local hits = {}
local eps = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', now, 'LIMIT', 0, 128)
for _, ep in ipairs(eps) do
  if budget <= 0 then break end
  local gk = P .. 'g:' .. ep
  local g = redis.call('HMGET', gk, 'en', 'cap', 'rl', 'rw', 'rb', 'inf', 'tk', 'tt', 'bs', 'bu')
  if g[1] ~= '1' then
    -- Disabled or deleted: enabling schedules it again.
    redis.call('ZREM', P .. 'sched', ep)
  else
    local cap, inf = tonumber(g[2] or ARGV[3]), tonumber(g[6] or '0')
    local room, wake, probe = cap - inf, nil, false
    local bs = g[9] or CIRCUIT_CLOSED
    if bs == CIRCUIT_OPEN then
      local until_ = tonumber(g[10])
      if now < until_ then
        room, wake = 0, until_
      else
        room, probe = math.min(room, 1), true
      end
    elseif bs == CIRCUIT_HALF_OPEN then
      room = 0
    end
    local rl, rw, tk = tonumber(g[3] or ARGV[4]), tonumber(g[4] or ARGV[5]), nil
    if rl > 0 and room > 0 then
      local rb = tonumber(g[5] or ARGV[6])
      tk = tokens(g[7], g[8], now, rl, rw, rb)
      room = math.min(room, math.floor(tk))
    end
    local ids = {}
    if room > 0 then
      ids = redis.call('ZRANGEBYSCORE', P .. 'due:' .. ep, '-inf', now, 'LIMIT', 0,
        math.min(room, budget))
    end
    for _, d in ipairs(ids) do
      redis.call('ZREM', P .. 'due:' .. ep, d)
      redis.call('HSET', P .. 'd:' .. d, 's', STATE_IN_FLIGHT, 'pr', probe and 1 or 0, 'u', now)
      redis.call('SADD', P .. 'inf:' .. ep, d)
      redis.call('XADD', P .. 'ready', '*', 'd', d)
    end
    local n = #ids
    budget = budget - n
    if n > 0 then
      redis.call('HINCRBY', gk, 'inf', n)
      if probe then redis.call('HSET', gk, 'bs', CIRCUIT_HALF_OPEN) end
    end
    if tk then
      tk = tk - n
      redis.call('HSET', gk, 'tk', tk, 'tt', now)
      if n > 0 and tk < 1 then hits[#hits + 1] = ep end
      if tk < 1 then wake = math.max(wake or 0, now + math.ceil((1 - tk) * rw / rl)) end
    end
    local next_at = earliest(ep)
    if not next_at or inf + n >= cap or (probe and n > 0) or bs == CIRCUIT_HALF_OPEN then
      -- Nothing pending, or blocked until an attempt ends: its end schedules it again.
      redis.call('ZREM', P .. 'sched', ep)
    else
      if wake and wake > next_at then next_at = wake end
      redis.call('ZADD', P .. 'sched', next_at, ep)
    end
  end
end
local first = redis.call('ZRANGE', P .. 'sched', 0, 0, 'WITHSCORES')
return {hits, first[2] or '', redis.call('GET', P .. 'epver') or '0'}
