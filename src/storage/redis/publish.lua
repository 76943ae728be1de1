-- Publish: per message, the idempotency check, the message, a delivery per target and
-- the idempotency record. ARGV: now, endpoint version the targets were matched against,
-- idempotency ttl (ms), message count, backlog limit, then per message: id, tenant, event
-- type, content type, payload, channels, metadata, idempotency key ('' for none), the key
-- it is remembered under (scoped by tenant), trace context ('' for none), content hash,
-- expiry (ms), target count, targets. Each message is indexed by expiry in `exp`. Returns
-- {'stale'} when endpoints changed since; {'backlogged', backlog, incoming} when the
-- deliveries the batch would create take the backlog past its limit (nothing is
-- written); else per message {'c'|'d'|'x', message id, deliveries}.
local now = tonumber(ARGV[1])
if tonumber(redis.call('GET', P .. 'epver') or '0') ~= tonumber(ARGV[2]) then
  return {'stale'}
end
-- The deliveries the batch would create: none for a message whose key was seen, in
-- Redis or earlier in the batch.
local incoming, keys, i = 0, {}, 6
for _ = 1, tonumber(ARGV[4]) do
  local sk, targets = ARGV[i + 8], tonumber(ARGV[i + 12])
  if sk == '' or not (keys[sk] or redis.call('EXISTS', P .. 'idem:' .. sk) == 1) then
    incoming = incoming + targets
  end
  if sk ~= '' then keys[sk] = true end
  i = i + 13 + targets
end
local backlog = tonumber(redis.call('GET', P .. 'backlog') or '0')
if incoming > 0 and backlog + incoming > tonumber(ARGV[5]) then
  return {'backlogged', tostring(backlog), tostring(incoming)}
end
local results, created = {}, 0
i = 6
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
