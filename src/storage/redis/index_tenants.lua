-- Brings a deployment written before tenants up to them, once (`tidx` marks it done):
-- builds the tenant indexes (`tenants`, `t:<tenant>:eps`) of its endpoints, and moves
-- its idempotency records to the default tenant's keys (`idem:default/<key>`), as the
-- embedded store's migration does. Returns how many endpoints were indexed.
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
-- Every old key is found before any is moved, so none is seen (and moved) twice; SCAN
-- may name a key more than once, hence the set. A rename keeps the key's expiry.
local idem = P .. 'idem:'
local pattern = (string.gsub(idem, '[%*%?%[%]\\]', '\\%0')) .. '*'
local old, cursor = {}, '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
  cursor = page[1]
  for _, k in ipairs(page[2]) do old[k] = true end
until cursor == '0'
for k in pairs(old) do
  redis.call('RENAME', k, idem .. 'default/' .. string.sub(k, #idem + 1))
end
redis.call('SET', P .. 'tidx', 1)
return #ids
