-- Appends events to their recipients' streams (mode "s") and publishes one push per
-- gateway holding a recipient's connection. Pushes go out in stream order, so a
-- gateway subscribed all along sees every event of its users in order.
-- ARGV: prefix, channel prefix, cap, (unused), mode ("s" keep | "e" ephemeral), number of
-- payloads, then per payload (data, chat, sequence), then per target
-- (payload index from 0, user, event name).
-- Each redis.call costs a few µs of its own: one XADD per target and one HVALS per
-- user. Streams do not expire here: the worker's sweep removes idle ones and trims
-- entries older than the window.
local prefix, chan, cap, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local nd = tonumber(ARGV[6])
local base = 6
local call = redis.call
local routes, per, order = {}, {}, {}

for i = base + nd * 3 + 1, #ARGV, 3 do
  local di, user, name = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local j = base + di * 3
  local ukey = prefix .. 'user:' .. user
  local gws = routes[user]
  local id = ''
  if mode == 's' then
    local key = ukey .. ':events'
    id = call('XADD', key, 'MAXLEN', '~', cap, '*',
      'n', name, 'd', ARGV[j + 1], 'c', ARGV[j + 2], 's', ARGV[j + 3])
  end
  if gws == nil then
    gws = {}
    local seen = {}
    for _, g in ipairs(call('HVALS', ukey .. ':sockets')) do
      if not seen[g] then
        seen[g] = true
        gws[#gws + 1] = g
      end
    end
    routes[user] = gws
  end
  for _, g in ipairs(gws) do
    local p = per[g]
    if p == nil then
      p = { idx = {}, d = {}, c = {}, s = {}, t = {}, n = 0, nt = 0 }
      per[g] = p
      order[#order + 1] = g
    end
    local li = p.idx[di]
    if li == nil then
      p.n = p.n + 1
      li = tostring(p.n - 1)
      p.idx[di] = li
      p.d[p.n] = ARGV[j + 1]
      p.c[p.n] = '"' .. ARGV[j + 2] .. '"'
      p.s[p.n] = ARGV[j + 3]
    end
    p.nt = p.nt + 1
    p.t[p.nt] = '[' .. li .. ',"' .. user .. '","' .. id .. '","' .. name .. '"]'
  end
end

for _, g in ipairs(order) do
  local p = per[g]
  call('PUBLISH', chan .. g, '{"d":[' .. table.concat(p.d, ',') .. '],"c":[' ..
    table.concat(p.c, ',') .. '],"s":[' .. table.concat(p.s, ',') .. '],"t":[' ..
    table.concat(p.t, ',') .. ']}')
end
return #order
