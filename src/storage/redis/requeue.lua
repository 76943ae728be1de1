-- Requeue: makes the deliveries of message ARGV[2] to the endpoints ARGV[3..] due at
-- ARGV[1] with a fresh retry schedule, creating them where needed. Returns per endpoint
-- {1 (queued), 0 (an attempt is in flight) or -1 (no such endpoint), attempts so far,
-- created at}, or for every endpoint {-2 (the message was expunged), 0, expunge time}.
local now, m = tonumber(ARGV[1]), ARGV[2]
local f = redis.call('HMGET', P .. 'm:' .. m, 'et', 'xp')
local et = f[1]
local out = {}
if f[2] then
  for _ = 3, #ARGV do out[#out + 1] = {-2, 0, tonumber(f[2])} end
  return out
end
for i = 3, #ARGV do
  local ep = ARGV[i]
  local d = redis.call('HGET', P .. 'm:' .. m .. ':d', ep)
  if redis.call('EXISTS', P .. 'ep:' .. ep) == 0 or not et then
    out[#out + 1] = {-1, 0, 0}
  elseif not d then
    create_delivery(m, ep, et, now)
    out[#out + 1] = {1, 0, now}
  else
    local dk = P .. 'd:' .. d
    local s = redis.call('HMGET', dk, 's', 'n', 'c')
    if s[1] == STATE_IN_FLIGHT then
      out[#out + 1] = {0, 0, 0}
    else
      if s[1] ~= STATE_PENDING then
        pending(ep, et, 1)
        redis.call('ZREM', P .. 'e:' .. ep .. ':failed', d)
      end
      redis.call('HSET', dk, 's', STATE_PENDING, 'na', now, 'rs', s[2], 'u', now)
      redis.call('HDEL', dk, 'fa')
      redis.call('ZADD', P .. 'due:' .. ep, now, d)
      reschedule(ep)
      out[#out + 1] = {1, tonumber(s[2]), tonumber(s[3])}
    end
  end
end
redis.call('PUBLISH', P .. 'work', '')
return out
