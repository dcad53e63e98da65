-- A user's timeline: the clock's bounds, then per stream (the user's own, then each
-- group chat's) what it kept and the entries after ARGV[1].
-- KEYS: the clock, the user's stream, then the chats' timelines.
-- ARGV: after ("" for the bounds only), most entries per stream, "1" to create a
-- missing clock (a new connection needs an offset it can resume from), then per chat
-- the last id to read ("" for all).
-- Returns {last id, since, {{exists, length, entries-added, first id, last-generated
-- id, entries}...}}; {"", "", {}} when there is no clock and ARGV[3] is not "1".
local clock, after, limit = KEYS[1], ARGV[1], ARGV[2]
local c = redis.call('HMGET', clock, 'ms', 'n', 'since')
if not c[1] then
  if ARGV[3] ~= '1' then return { '', '', {} } end
  local t = redis.call('TIME')
  local ms = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('HSET', clock, 'ms', ms, 'n', '0')
  redis.call('HSETNX', clock, 'since', ms .. '-0')
  c = redis.call('HMGET', clock, 'ms', 'n', 'since')
end
local last = c[1] .. '-' .. c[2]
local since = c[3] or last
local streams = {}
if after ~= '' then
  for k = 2, #KEYS do
    local key = KEYS[k]
    local upto = '+'
    if k > 2 and ARGV[k + 2] ~= '' then upto = ARGV[k + 2] end
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
      streams[#streams + 1] = { 1, len, added, first, lastgen,
        redis.call('XRANGE', key, '(' .. after, upto, 'COUNT', limit) }
    end
  end
end
return { last, since, streams }
