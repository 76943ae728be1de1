-- Delete an endpoint: cancels its pending and in-flight deliveries (an attempt under way
-- is recorded when it ends, and changes nothing). ARGV: now, endpoint. Returns how many
-- were cancelled, or -1 when there is no such endpoint.
local now, ep = tonumber(ARGV[1]), ARGV[2]
if redis.call('EXISTS', P .. 'ep:' .. ep) == 0 then return -1 end
local ids = redis.call('ZRANGE', P .. 'due:' .. ep, 0, -1)
for _, d in ipairs(redis.call('SMEMBERS', P .. 'inf:' .. ep)) do ids[#ids + 1] = d end
local cancelled = 0
for _, d in ipairs(ids) do
  if cancel(d, now) then cancelled = cancelled + 1 end
end
unindex_endpoint(ep)
redis.call('DEL', P .. 'due:' .. ep, P .. 'inf:' .. ep, P .. 'g:' .. ep, P .. 'ep:' .. ep)
redis.call('ZREM', P .. 'eps', ep)
redis.call('ZREM', P .. 'sched', ep)
redis.call('INCR', P .. 'epver')
return cancelled
