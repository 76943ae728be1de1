-- Builds the tenant indexes (`tenants`, `t:<tenant>:eps`) of endpoints written before
-- they existed, once per deployment (`tidx` marks it done). Returns how many endpoints
-- were indexed.
if redis.call('EXISTS', P .. 'tidx') == 1 then return 0 end
redis.call('DEL', P .. 'tenants')
local ids = redis.call('ZRANGE', P .. 'eps', 0, -1)
for _, ep in ipairs(ids) do
  local tenant = tenant_of(ep)
  if tenant then
    redis.call('HINCRBY', P .. 'tenants', tenant, 1)
    redis.call('ZADD', P .. 't:' .. tenant .. ':eps', 0, ep)
  end
end
redis.call('SET', P .. 'tidx', 1)
return #ids
