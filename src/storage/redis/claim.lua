-- Claim: leases up to ARGV[4] ready deliveries to consumer ARGV[3]: first (when ARGV[5]
-- is '1') entries whose holder let their lease (ARGV[2] ms) run out (a dead instance),
-- then new ones. Entries
-- of deliveries no longer waiting (cancelled) are dropped. ARGV[1] is now. Returns per
-- claim {delivery, token, message, endpoint, attempts, round start, probe}. A delivery
-- whose endpoint was disabled since it became ready goes back to wait, unattempted; it
-- and a dropped entry give back their host slot.
local now, lease, consumer, count = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local stream = P .. 'ready'
local entries = {}
if ARGV[5] == '1' then
  local stale = redis.call('XAUTOCLAIM', stream, 'workers', consumer, lease, '0-0', 'COUNT', count)
  for _, e in ipairs(stale[2]) do entries[#entries + 1] = e end
end
if #entries < count then
  local fresh = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', count - #entries,
    'STREAMS', stream, '>')
  if fresh and fresh[1] then
    for _, e in ipairs(fresh[1][2]) do entries[#entries + 1] = e end
  end
end
local out = {}
for _, e in ipairs(entries) do
  local sid, fields = e[1], e[2]
  local d = fields and fields[2]
  local s = {}
  if d then s = redis.call('HMGET', P .. 'd:' .. d, 's', 'm', 'e', 'et', 'n', 'rs', 'pr') end
  local gk = s[3] and P .. 'g:' .. s[3]
  if s[1] == STATE_IN_FLIGHT and redis.call('HGET', gk, 'en') ~= '1' then
    redis.call('HSET', P .. 'd:' .. d, 's', STATE_PENDING, 'na', now)
    redis.call('HDEL', P .. 'd:' .. d, 'pr')
    redis.call('ZADD', P .. 'due:' .. s[3], now, d)
    redis.call('SREM', P .. 'inf:' .. s[3], d)
    release_host(P .. 'd:' .. d)
    if redis.call('EXISTS', gk) == 1 then
      redis.call('HINCRBY', gk, 'inf', -1)
      if s[7] == '1' then redis.call('HSET', gk, 'bs', CIRCUIT_OPEN, 'bu', now) end
    end
    s[1] = 'returned'
  end
  if s[1] == STATE_IN_FLIGHT then
    local token = redis.call('INCR', P .. 'seq:lease')
    redis.call('HSET', P .. 'd:' .. d, 'tok', token, 'sid', sid, 'na', now + lease)
    emit({'k', KIND_ATTEMPT_STARTED, 'at', now, 'm', s[2], 'e', s[3], 'et', s[4], 'an', tonumber(s[5]) + 1})
    out[#out + 1] = {d, token, s[2], s[3], s[5], s[6], s[7] or '0'}
  else
    -- No longer waiting (cancelled): never attempted, so its host slot is free again.
    if d then release_host(P .. 'd:' .. d) end
    redis.call('XACK', stream, 'workers', sid)
    redis.call('XDEL', stream, sid)
  end
end
return out
