-- Appends events to their recipients' streams (mode "s") and publishes one push per
-- gateway holding a recipient's connection.
-- ARGV: prefix, channel prefix, cap, ttl ms, mode ("s" keep | "e" ephemeral), number of
-- payloads, then per payload (data, chat, sequence), then per target
-- (payload index from 0, user, event name).
local prefix, chan, cap, ttl, mode = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local nd = tonumber(ARGV[6])
local base = 6
local last, routes, per, order = {}, {}, {}, {}

for i = base + nd * 3 + 1, #ARGV, 3 do
  local di, user, name = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local j = base + di * 3
  local id, prev = '', ''
  if mode == 's' then
    local key = prefix .. 'user:' .. user .. ':events'
    prev = last[key]
    if prev == nil then
      local r = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
      if r[1] then prev = r[1][1] else prev = '' end
    end
    id = redis.call('XADD', key, 'MAXLEN', '~', cap, '*',
      'n', name, 'd', ARGV[j + 1], 'c', ARGV[j + 2], 's', ARGV[j + 3])
    redis.call('PEXPIRE', key, ttl)
    last[key] = id
  end
  local gws = routes[user]
  if gws == nil then
    gws = redis.call('HVALS', prefix .. 'user:' .. user .. ':sockets')
    routes[user] = gws
  end
  local seen = {}
  for _, g in ipairs(gws) do
    if not seen[g] then
      seen[g] = true
      local p = per[g]
      if p == nil then
        p = { idx = {}, d = {}, c = {}, s = {}, t = {} }
        per[g] = p
        order[#order + 1] = g
      end
      local li = p.idx[di]
      if li == nil then
        li = #p.d
        p.idx[di] = li
        p.d[li + 1] = ARGV[j + 1]
        p.c[li + 1] = '"' .. ARGV[j + 2] .. '"'
        p.s[li + 1] = ARGV[j + 3]
      end
      p.t[#p.t + 1] = '[' .. li .. ',"' .. user .. '","' .. id .. '","' .. prev .. '","' .. name .. '"]'
    end
  end
end

for _, g in ipairs(order) do
  local p = per[g]
  redis.call('PUBLISH', chan .. g, '{"d":[' .. table.concat(p.d, ',') .. '],"c":[' ..
    table.concat(p.c, ',') .. '],"s":[' .. table.concat(p.s, ',') .. '],"t":[' ..
    table.concat(p.t, ',') .. ']}')
end
return #order
