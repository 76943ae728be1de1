-- Replace an endpoint's record with the same endpoint sealed under the current master key,
-- only if the record is still the one read: a change made meanwhile was sealed by whoever
-- made it, and wins. The content is the same, so the endpoint version stays. ARGV: id, the
-- record read, the record sealed anew. Returns 1 when written, 0 when the record changed.
local key = P .. 'ep:' .. ARGV[1]
if redis.call('GET', key) ~= ARGV[2] then return 0 end
redis.call('SET', key, ARGV[3])
return 1
