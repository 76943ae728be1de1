-- Release: hands leased deliveries back, due now, without an attempt. ARGV: now, then
-- delivery/token pairs. A probe handed back lets the breaker probe again at once.
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local d, token = ARGV[i], ARGV[i + 1]
  local dk = P .. 'd:' .. d
  local s = redis.call('HMGET', dk, 's', 'tok', 'sid', 'e', 'pr')
  if s[1] == STATE_IN_FLIGHT and s[2] == token then
    local ep, gk = s[4], P .. 'g:' .. s[4]
    redis.call('XACK', P .. 'ready', 'workers', s[3])
    redis.call('XDEL', P .. 'ready', s[3])
    redis.call('SREM', P .. 'inf:' .. ep, d)
    release_host(dk)
    redis.call('HSET', dk, 's', STATE_PENDING, 'na', now)
    redis.call('HDEL', dk, 'tok', 'sid', 'pr')
    redis.call('ZADD', P .. 'due:' .. ep, now, d)
    if redis.call('EXISTS', gk) == 1 then
      redis.call('HINCRBY', gk, 'inf', -1)
      if s[5] == '1' then redis.call('HSET', gk, 'bs', CIRCUIT_OPEN, 'bu', now) end
      reschedule(ep)
    end
  end
end
return 0
