-- Publish: per message, the idempotency check, the message, a delivery per target and
-- the idempotency record. ARGV: now, endpoint version the targets were matched against,
-- idempotency ttl (ms), message count, then per message: id, tenant, event type, content
-- type, payload, channels, metadata, idempotency key ('' for none), the key it is
-- remembered under (scoped by tenant), trace context ('' for none), content hash, expiry
-- (ms), target count, targets. Each message is indexed by expiry in `exp`. Returns {'stale'} when endpoints changed since, else per message
-- {'c'|'d'|'x', message id, deliveries}.
local now = tonumber(ARGV[1])
if tonumber(redis.call('GET', P .. 'epver') or '0') ~= tonumber(ARGV[2]) then
  return {'stale'}
end
local results, i, created = {}, 5, 0
for _ = 1, tonumber(ARGV[4]) do
  local id, tn, et, ct, body, ch, md, ik, sk, tc, hash, x = ARGV[i], ARGV[i + 1], ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9],
    ARGV[i + 10], ARGV[i + 11]
  local targets = tonumber(ARGV[i + 12])
  local first = i + 13
  i = first + targets
  local seen = {}
  if sk ~= '' then seen = redis.call('HMGET', P .. 'idem:' .. sk, 'm', 'h', 'n') end
  if seen[1] then
    if seen[2] == hash then
      results[#results + 1] = {'d', seen[1], seen[3]}
    else
      results[#results + 1] = {'x', seen[1], '0'}
    end
  else
    redis.call('HSET', P .. 'm:' .. id, 'tn', tn, 'et', et, 'ct', ct, 'p', body, 'ch', ch,
      'md', md, 'ik', ik, 'tc', tc, 'c', now, 'x', x)
    redis.call('ZADD', P .. 'exp', x, id)
    redis.call('INCRBY', P .. 'bytes', #body)
    for t = first, first + targets - 1 do
      create_delivery(id, ARGV[t], et, now)
    end
    if sk ~= '' then
      redis.call('HSET', P .. 'idem:' .. sk, 'm', id, 'h', hash, 'n', targets)
      redis.call('PEXPIRE', P .. 'idem:' .. sk, ARGV[3])
    end
    created = created + targets
    results[#results + 1] = {'c', id, tostring(targets)}
  end
end
if created > 0 then redis.call('PUBLISH', P .. 'work', '') end
return results
