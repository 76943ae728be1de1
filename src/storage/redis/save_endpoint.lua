-- Save an endpoint: its record and its protection overrides ('' for the default), and
-- its enabled state. ARGV: now, id, record, 'create' or 'update', enabled ('1', '0' or ''
-- to keep), reason when disabling, then cap, rate limit, rate window, burst, breaker
-- threshold, breaker open time, then the tenant and (on create) how many endpoints it may
-- have, then its destination host (`host:port`, whose ceiling it shares). Returns 'ok',
-- 'exists', 'full' or 'missing'.
local now, ep, mode = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local tenant, most = ARGV[13], tonumber(ARGV[14])
local key, gk = P .. 'ep:' .. ep, P .. 'g:' .. ep
local exists = redis.call('EXISTS', key) == 1
if mode == 'create' and exists then return 'exists' end
if mode == 'update' and not exists then return 'missing' end
if mode == 'create' then
  if tonumber(redis.call('HGET', P .. 'tenants', tenant) or '0') >= most then return 'full' end
  redis.call('HINCRBY', P .. 'tenants', tenant, 1)
  redis.call('ZADD', P .. 't:' .. tenant .. ':eps', 0, ep)
end
redis.call('SET', key, ARGV[3])
redis.call('HSET', gk, 'hk', ARGV[15])
redis.call('ZADD', P .. 'eps', 0, ep)
local names = {'cap', 'rl', 'rw', 'rb', 'bt', 'bo'}
for i, name in ipairs(names) do
  local v = ARGV[6 + i]
  if v == '' then redis.call('HDEL', gk, name) else redis.call('HSET', gk, name, v) end
end
if mode == 'create' then
  if ARGV[5] == '0' then
    redis.call('HSET', gk, 'en', 0, 'dr', ARGV[6], 'inf', 0)
  else
    redis.call('HSET', gk, 'en', 1, 'inf', 0)
  end
else
  local was = redis.call('HGET', gk, 'en')
  if ARGV[5] == '1' and was ~= '1' then
    redis.call('HSET', gk, 'en', 1)
    redis.call('HDEL', gk, 'dr')
    emit({'k', KIND_ENDPOINT_ENABLED, 'at', now, 'e', ep})
    reschedule(ep)
    redis.call('PUBLISH', P .. 'work', '')
  elseif ARGV[5] == '0' and was == '1' then
    disable(ep, tonumber(ARGV[6]), now)
  end
end
redis.call('INCR', P .. 'epver')
return 'ok'
