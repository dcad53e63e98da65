-- A user's timeline: the clock's bounds, then per stream (the user's own, then each
-- group chat's) what it kept and the entries after ARGV[1].
-- KEYS: the clock, the user's stream, then the chats' timelines.
-- ARGV: after ("" for the bounds only), most entries per stream, "1" for a new
-- connection (a missing clock is created, and a missing user stream starts with a
-- marker entry, so the connection's offset is a position in it), then per chat the
-- last id to read ("" for all).
-- Returns {last id, since, {{exists, length, entries-added, first id, last-generated
-- id, entries}...}, epoch}; {"", "", {}, "0"} when there is no clock and ARGV[3] is
-- not "1". The ids are stream ids: the epoch (epoch.lua, prepended) is returned apart.
local clock, after, limit, start = KEYS[1], ARGV[1], ARGV[2], ARGV[3] == '1'
local epoch = clock_epoch(clock)
local c = redis.call('HMGET', clock, 'ms', 'n', 'since')
if not c[1] and not start then return { '', '', {}, epoch } end
if start and (not c[1] or redis.call('EXISTS', KEYS[2]) == 0) then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if c[1] and tonumber(c[1]) > ms then ms = tonumber(c[1]) end
  local n = tonumber(c[2] or '0')
  local first = string.format('%.0f-%.0f', ms, n)
  if redis.call('EXISTS', KEYS[2]) == 0 then
    n = n + 1
    redis.call('XADD', KEYS[2], string.format('%.0f-%.0f', ms, n), 'n', '')
  end
  redis.call('HSET', clock, 'ms', string.format('%.0f', ms), 'n', string.format('%.0f', n), 'node', RUN_ID)
  redis.call('HSETNX', clock, 'since', first)
  c = redis.call('HMGET', clock, 'ms', 'n', 'since')
end
local last = c[1] .. '-' .. c[2]
local since = c[3] or last
local streams = {}
for k = 2, #KEYS do
  local key = KEYS[k]
  local upto = '+'
  if k > 2 and ARGV[k + 1] ~= '' then upto = ARGV[k + 1] end
  if redis.call('EXISTS', key) == 0 then
    streams[#streams + 1] = { 0, 0, 0, '', '', {} }
  else
    local info = redis.call('XINFO', 'STREAM', key)
    local len, added, first, lastgen = 0, 0, '', ''
    for i = 1, #info, 2 do
      local f = info[i]
      if f == 'length' then len = info[i + 1]
      elseif f == 'entries-added' then added = info[i + 1]
      elseif f == 'last-generated-id' then lastgen = info[i + 1]
      elseif f == 'first-entry' and info[i + 1] then first = info[i + 1][1] end
    end
    local entries = {}
    if after ~= '' then
      entries = redis.call('XRANGE', key, '(' .. after, upto, 'COUNT', limit)
    end
    streams[#streams + 1] = { 1, len, added, first, lastgen, entries }
  end
end
return { last, since, streams, epoch }
