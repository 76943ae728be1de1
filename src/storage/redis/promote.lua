-- Promote: moves due deliveries of endpoints with room (in-flight cap, shared token
-- bucket, shared breaker) whose destination host has room too (its in-flight ceiling and
-- token bucket in `hg:<host>`, shared by every endpoint pointing at it) into the ready
-- stream, at most ARGV[2] of them. ARGV: now, budget, then the defaults an endpoint
-- without override has: in-flight cap, rate limit (0: none), rate window (ms), burst,
-- then each host's ceiling: in-flight cap, rate limit (0: none), rate window (ms), burst;
-- then the calling process's pacing: the room its slow endpoints share, the room of an
-- endpoint it does not list (-1: timely, not held back), how long (ms) an endpoint its
-- pacing holds back waits before it is looked at again, and pairs of endpoint and room
-- (-1: timely). Pacing is the process's own, not in Redis: the wait is what lets the next
-- look find its room again, and keeps endpoints held back from the head of `sched`.
-- An endpoint held back by its host's full in-flight ceiling waits in `hw:<host>` until
-- an attempt to that host ends. Returns {endpoints that used their last token, earliest
-- scheduled time or '', endpoint version, endpoints held back by their host}.
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local host_cap, host_rl = tonumber(ARGV[7]), tonumber(ARGV[8])
local host_rw, host_rb = tonumber(ARGV[9]), tonumber(ARGV[10])
local slow_room, unknown_pace, pace_wait = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local paces = {}
for i = 14, #ARGV, 2 do paces[ARGV[i]] = tonumber(ARGV[i + 1]) end
local hits, host_waits = {}, 0
local eps = redis.call('ZRANGEBYSCORE', P .. 'sched', '-inf', now, 'LIMIT', 0, 128)
for _, ep in ipairs(eps) do
  if budget <= 0 then break end
  local gk = P .. 'g:' .. ep
  local g = redis.call('HMGET', gk, 'en', 'cap', 'rl', 'rw', 'rb', 'inf', 'tk', 'tt', 'bs', 'bu',
    'hk')
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
    local pace = paces[ep] or unknown_pace
    local slow, paced = pace >= 0, false
    if slow and room > 0 and math.min(pace, slow_room) < room then
      room, paced = math.max(math.min(pace, slow_room), 0), true
    end
    local hk, hg, host_inf, host_tk, held = g[11], nil, 0, nil, false
    if hk and room > 0 then
      hg = P .. 'hg:' .. hk
      local h = redis.call('HMGET', hg, 'inf', 'tk', 'tt')
      host_inf = tonumber(h[1] or '0')
      local host_room = host_cap - host_inf
      if host_rl > 0 then
        host_tk = tokens(h[2], h[3], now, host_rl, host_rw, host_rb)
        host_room = math.min(host_room, math.floor(host_tk))
      end
      if host_room < room then room, held = math.max(host_room, 0), true end
    end
    local ids = {}
    if room > 0 then
      ids = redis.call('ZRANGEBYSCORE', P .. 'due:' .. ep, '-inf', now, 'LIMIT', 0,
        math.min(room, budget))
    end
    for _, d in ipairs(ids) do
      redis.call('ZREM', P .. 'due:' .. ep, d)
      redis.call('HSET', P .. 'd:' .. d, 's', STATE_IN_FLIGHT, 'pr', probe and 1 or 0, 'u', now)
      if hg then redis.call('HSET', P .. 'd:' .. d, 'hk', hk) end
      redis.call('SADD', P .. 'inf:' .. ep, d)
      redis.call('XADD', P .. 'ready', '*', 'd', d)
    end
    local n = #ids
    budget = budget - n
    if slow then slow_room = slow_room - n end
    if n > 0 then
      redis.call('HINCRBY', gk, 'inf', n)
      if probe then redis.call('HSET', gk, 'bs', CIRCUIT_HALF_OPEN) end
    end
    if hg and n > 0 then
      host_inf = redis.call('HINCRBY', hg, 'inf', n)
      redis.call('PERSIST', hg)
      if host_tk then redis.call('HSET', hg, 'tk', host_tk - n, 'tt', now) end
    end
    if host_tk and host_tk - n < 1 then
      wake = math.max(wake or 0, now + math.ceil((1 - (host_tk - n)) * host_rw / host_rl))
    end
    if tk then
      tk = tk - n
      redis.call('HSET', gk, 'tk', tk, 'tt', now)
      if n > 0 and tk < 1 then hits[#hits + 1] = ep end
      if tk < 1 then wake = math.max(wake or 0, now + math.ceil((1 - tk) * rw / rl)) end
    end
    local next_at = earliest(ep)
    if held and next_at and next_at <= now then host_waits = host_waits + 1 end
    if not next_at or inf + n >= cap or (probe and n > 0) or bs == CIRCUIT_HALF_OPEN then
      -- Nothing pending, or blocked until an attempt ends: its end schedules it again.
      redis.call('ZREM', P .. 'sched', ep)
    elseif hg and host_inf >= host_cap and next_at <= now then
      -- Blocked until an attempt to its host ends, whichever endpoint's it is.
      redis.call('ZREM', P .. 'sched', ep)
      redis.call('SADD', P .. 'hw:' .. hk, ep)
    else
      if wake and wake > next_at then next_at = wake end
      if paced and next_at <= now then next_at = now + pace_wait end
      redis.call('ZADD', P .. 'sched', next_at, ep)
    end
  end
end
local first = redis.call('ZRANGE', P .. 'sched', 0, 0, 'WITHSCORES')
return {hits, first[2] or '', redis.call('GET', P .. 'epver') or '0', host_waits}
