-- Sweep: deletes at most ARGV[2] settled messages whose expiry (`exp`) is at or before
-- ARGV[1], with their deliveries, attempts and payloads, and every index entry naming
-- them. A message with a delivery still pending or in flight is kept and looked at again
-- ARGV[3] ms later. Returns {messages, deliveries, attempts, payload bytes, more}: more
-- is 1 when the batch was full.
local now, limit, recheck = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', now, 'LIMIT', 0, limit)
local messages, deliveries, attempts, bytes = 0, 0, 0, 0
for _, id in ipairs(ids) do
  local mk = P .. 'm:' .. id
  local targets = redis.call('HGETALL', mk .. ':d')
  local open = false
  for i = 2, #targets, 2 do
    local s = redis.call('HGET', P .. 'd:' .. targets[i], 's')
    if s == STATE_PENDING or s == STATE_IN_FLIGHT then
      open = true
      break
    end
  end
  if open then
    redis.call('ZADD', P .. 'exp', now + recheck, id)
    redis.call('HSET', mk, 'x', now + recheck)
  else
    for _, a in ipairs(redis.call('ZRANGE', mk .. ':a', 0, -1)) do
      local ak = P .. 'a:' .. a
      local ep = redis.call('HGET', ak, 'e')
      if ep then redis.call('ZREM', P .. 'e:' .. ep .. ':a', a) end
      redis.call('ZREM', P .. 'att', a)
      redis.call('DEL', ak)
      attempts = attempts + 1
    end
    for i = 1, #targets, 2 do
      redis.call('ZREM', P .. 'e:' .. targets[i] .. ':failed', targets[i + 1])
      redis.call('DEL', P .. 'd:' .. targets[i + 1])
      deliveries = deliveries + 1
    end
    if redis.call('EXISTS', mk) == 1 then
      bytes = bytes + redis.call('HSTRLEN', mk, 'p')
      messages = messages + 1
    end
    redis.call('DEL', mk, mk .. ':d', mk .. ':a')
    redis.call('ZREM', P .. 'exp', id)
  end
end
if bytes > 0 then redis.call('DECRBY', P .. 'bytes', bytes) end
return {messages, deliveries, attempts, bytes, #ids == limit and 1 or 0}
