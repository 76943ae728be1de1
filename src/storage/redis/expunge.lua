-- Expunge: empties the payload of each message ARGV[3..] and the response excerpts of its
-- attempts, records ARGV[1] as its expunge time (`xp`) and cancels its unfinished
-- deliveries (an attempt in flight is recorded when it ends, without its excerpt). A
-- message expunged before is left as it is. When ARGV[2] names a tenant, another
-- tenant's message is skipped as a missing one. Returns per message {expunge time,
-- 1 when expunged by this call else 0, deliveries cancelled}, or {-1, 0, 0} when there is
-- no such message.
local now, tenant = tonumber(ARGV[1]), ARGV[2]
local out = {}
for i = 3, #ARGV do
  local mk = P .. 'm:' .. ARGV[i]
  local f = redis.call('HMGET', mk, 'et', 'tn', 'xp')
  if not f[1] or (tenant ~= '' and (f[2] or 'default') ~= tenant) then
    out[#out + 1] = {-1, 0, 0}
  elseif f[3] then
    out[#out + 1] = {tonumber(f[3]), 0, 0}
  else
    redis.call('DECRBY', P .. 'bytes', redis.call('HSTRLEN', mk, 'p'))
    redis.call('HSET', mk, 'p', '', 'xp', now)
    for _, a in ipairs(redis.call('ZRANGE', mk .. ':a', 0, -1)) do
      local ak = P .. 'a:' .. a
      if redis.call('HEXISTS', ak, 'rx') == 1 then redis.call('HSET', ak, 'rx', '') end
    end
    local cancelled = 0
    for _, d in ipairs(redis.call('HVALS', mk .. ':d')) do
      if cancel(d, now) then cancelled = cancelled + 1 end
    end
    out[#out + 1] = {now, 1, cancelled}
  end
end
return out
