-- Appends events (mode "s") to their recipients' streams and to group chats' timelines,
-- and publishes one push per gateway holding a recipient's connection or following a
-- group. Every kept event gets one id from the global clock ({p}clock: ms, n, since),
-- used in every stream it goes to, so ids grow across all streams and pushes go out in
-- id order: a gateway subscribed all along sees every event of its users in order.
-- Pushed ids carry the dataset's epoch (epoch.lua, prepended).
-- In Redis Cluster mode (a user key closing "}" given) each user's ids come from
-- their own clock (`<user key>:clock`, in their slot) instead, and the script is run
-- per slot with the targets of that slot (no group targets: the caller expanded them).
-- ARGV: prefix, channel prefix, cap, retention window (s), mode ("s" keep | "e"
-- ephemeral), number of payloads, user key opening and closing (a user's keys are
-- opening .. id .. closing .. ':events' etc.), then per payload: data, chat, sequence, membership
-- code (0 none, 1 joined, 2 left), group event name ("" none), group except
-- (comma-separated), number of per-user targets, then per target (user, event name).
-- Streams do not expire here: the worker's sweep removes idle ones and trims entries
-- older than the window.
local prefix, chan, cap, window, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local nd = tonumber(ARGV[6])
local uopen, uclose = ARGV[7], ARGV[8]
local own = uclose ~= ''
local call = redis.call
local routes, per, order = {}, {}, {}
local clock = prefix .. 'clock'
local ms, n, since
local given = false

local epoch = '0'
if mode == 's' and not own then
  epoch = clock_epoch(clock)
  local c = call('HMGET', clock, 'ms', 'n', 'since')
  local t = call('TIME')
  ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if c[1] and tonumber(c[1]) > ms then ms = tonumber(c[1]) end
  n = tonumber(c[2] or '0')
  since = c[3]
end

local function next_id()
  n = n + 1
  given = true
  local id = string.format('%.0f-%.0f', ms, n)
  if not since then
    since = id
    call('HSETNX', clock, 'since', id)
  end
  return id
end

-- Cluster mode: the clocks of the users this run gave ids, by user key.
local clocks, touched = {}, {}
local function user_id(ukey)
  local c = clocks[ukey]
  if c == nil then
    local key = ukey .. ':clock'
    local e = clock_epoch(key)
    local h = call('HMGET', key, 'ms', 'n', 'since')
    local t = call('TIME')
    local m = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if h[1] and tonumber(h[1]) > m then m = tonumber(h[1]) end
    c = { key = key, epoch = e, ms = m, n = tonumber(h[2] or '0'), since = h[3] }
    clocks[ukey] = c
    touched[#touched + 1] = c
  end
  c.n = c.n + 1
  local id = string.format('%.0f-%.0f', c.ms, c.n)
  if not c.since then
    c.since = id
    call('HSETNX', c.key, 'since', id)
  end
  return id, c.epoch
end

-- Appends one entry (with one optional extra field k = v) to a stream under `id`.
local function append(key, id, name, data, chat, seq, k, v)
  if k then
    call('XADD', key, 'MAXLEN', '~', cap, id, 'n', name, 'd', data, 'c', chat, 's', seq, k, v)
  else
    call('XADD', key, 'MAXLEN', '~', cap, id, 'n', name, 'd', data, 'c', chat, 's', seq)
  end
end

local function push_of(g)
  local p = per[g]
  if p == nil then
    p = { idx = {}, d = {}, c = {}, s = {}, m = {}, t = {}, g = {}, n = 0, nt = 0, ng = 0, hasm = false }
    per[g] = p
    order[#order + 1] = g
  end
  return p
end

-- The push-local index of payload `di` (its data added on first use).
local function slot(p, di, data, chat, seq, mcode)
  local li = p.idx[di]
  if li == nil then
    p.n = p.n + 1
    li = tostring(p.n - 1)
    p.idx[di] = li
    p.d[p.n] = data
    p.c[p.n] = '"' .. chat .. '"'
    p.s[p.n] = seq
    p.m[p.n] = mcode
    if mcode ~= '0' then p.hasm = true end
  end
  return li
end

local i = 9
for di = 0, nd - 1 do
  local data, chat, seq, mcode = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local gname, gexcept, nt = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  i = i + 7
  local id = ''
  if mode == 's' and not own and (nt > 0 or gname ~= '') then id = next_id() end
  for _ = 1, nt do
    local user, name = ARGV[i], ARGV[i + 1]
    i = i + 2
    local ukey = uopen .. user .. uclose
    local tid, tepoch = id, epoch
    if mode == 's' and own then tid, tepoch = user_id(ukey) end
    if mode == 's' then
      if mcode == '0' then
        append(ukey .. ':events', tid, name, data, chat, seq)
      else
        append(ukey .. ':events', tid, name, data, chat, seq, 'm', mcode == '1' and 'j' or 'l')
        if mcode == '2' then
          call('HSET', ukey .. ':left', chat, tid)
          call('EXPIRE', ukey .. ':left', window)
        else
          call('HDEL', ukey .. ':left', chat)
        end
      end
    end
    local gws = routes[user]
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
      local p = push_of(g)
      local li = slot(p, di, data, chat, seq, mcode)
      p.nt = p.nt + 1
      p.t[p.nt] = '[' .. li .. ',"' .. user .. '","' .. in_epoch(tepoch, tid) .. '","' .. name .. '"]'
    end
  end
  if gname ~= '' then
    local ckey = prefix .. 'chat:' .. chat
    if mode == 's' then
      if gexcept == '' then
        append(ckey .. ':events', id, gname, data, chat, seq)
      else
        append(ckey .. ':events', id, gname, data, chat, seq, 'x', gexcept)
      end
    end
    local ex = '[]'
    if gexcept ~= '' then ex = '["' .. (string.gsub(gexcept, ',', '","')) .. '"]' end
    for _, g in ipairs(call('SMEMBERS', ckey .. ':gws')) do
      local p = push_of(g)
      local li = slot(p, di, data, chat, seq, mcode)
      p.ng = p.ng + 1
      p.g[p.ng] = '[' .. li .. ',"' .. chat .. '","' .. in_epoch(epoch, id) .. '","' .. gname .. '",' .. ex .. ']'
    end
  end
end

if given then
  call('HSET', clock, 'ms', string.format('%.0f', ms), 'n', string.format('%.0f', n), 'node', RUN_ID)
end
for _, c in ipairs(touched) do
  call('HSET', c.key, 'ms', string.format('%.0f', c.ms), 'n', string.format('%.0f', c.n), 'node', RUN_ID)
end

for _, g in ipairs(order) do
  local p = per[g]
  local body = '{"d":[' .. table.concat(p.d, ',') .. '],"c":[' ..
    table.concat(p.c, ',') .. '],"s":[' .. table.concat(p.s, ',') .. '],"t":[' ..
    table.concat(p.t, ',') .. ']'
  if p.hasm then body = body .. ',"m":[' .. table.concat(p.m, ',') .. ']' end
  if p.ng > 0 then body = body .. ',"g":[' .. table.concat(p.g, ',') .. ']' end
  call('PUBLISH', chan .. g, body .. '}')
end
return #order
