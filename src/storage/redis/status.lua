-- Status: an endpoint's shared protection as GetEndpoint shows it, with its bucket as
-- the promote script would see it now. ARGV: now, endpoint, then the rate limit the
-- endpoint resolves to: limit (0: none), window (ms), burst. Returns {circuit state,
-- open until (ms), consecutive failures, attempts in flight, requests of the window}.
local now, ep = tonumber(ARGV[1]), ARGV[2]
local rl, rw, rb = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local g = redis.call('HMGET', P .. 'g:' .. ep, 'bs', 'bu', 'bf', 'inf', 'tk', 'tt')
local used = 0
if rl > 0 then used = math.max(0, math.floor(rb - tokens(g[5], g[6], now, rl, rw, rb) + 0.5)) end
return {g[1] or CIRCUIT_CLOSED, tonumber(g[2] or '0'), tonumber(g[3] or '0'),
  math.max(0, tonumber(g[4] or '0')), used}
