-- Index hosts: stores each endpoint's destination host (whose ceiling it shares) in its
-- protection hash where it was saved before hosts had ceilings. ARGV: endpoint and host
-- pairs. Returns how many were stored.
local stored = 0
for i = 1, #ARGV, 2 do
  local gk = P .. 'g:' .. ARGV[i]
  if redis.call('EXISTS', gk) == 1 and redis.call('HEXISTS', gk, 'hk') == 0 then
    redis.call('HSET', gk, 'hk', ARGV[i + 1])
    stored = stored + 1
  end
end
return stored
