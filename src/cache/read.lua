-- A user's stream: {last generated id, first retained id, entries after ARGV[1] (at
-- most ARGV[2])}; {'', '', {}} when the stream does not exist, unless ARGV[3] is '1':
-- then a marker entry (empty name) starts the stream, so the offset handed to a new
-- connection is a real position that a later reconnect can resume from.
-- ARGV[4]: the stream's cap.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  if ARGV[3] ~= '1' then return { '', '', {} } end
  redis.call('XADD', key, 'MAXLEN', '~', ARGV[4], '*', 'n', '')
end
local info = redis.call('XINFO', 'STREAM', key)
local lastid, first = '', ''
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then lastid = info[i + 1]
  elseif info[i] == 'first-entry' and info[i + 1] then first = info[i + 1][1] end
end
local entries = {}
if ARGV[1] ~= '' then
  entries = redis.call('XRANGE', key, '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return { lastid, first, entries }
