-- The Redis dataset's epoch (docs/guarantees.md, "No silent loss after a failover").
-- The clock records the run id of the Redis server that last wrote it (`node`). A
-- server that finds another one's there is a promoted replica, or a server restarted
-- from a snapshot: it may lack that server's last writes (replication and snapshots
-- lag), so it starts a new epoch, and every offset of the old one is refused
-- (recovered: false) instead of trusted. Offsets carry their epoch; the first is "0".
-- Prepended to the scripts that read or write the clock.
local RUN_ID = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')

-- The clock's epoch, a new one first when another server wrote the clock last.
local function clock_epoch(clock)
  local c = redis.call('HMGET', clock, 'node', 'epoch', 'ms', 'n')
  if not c[3] or c[1] == RUN_ID then return c[2] or '0' end
  if not c[1] then
    -- A clock from before epochs: this server is its first writer that says so.
    redis.call('HSET', clock, 'node', RUN_ID)
    return c[2] or '0'
  end
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if tonumber(c[3]) > ms then ms = tonumber(c[3]) end
  local e = string.format('%.0f', ms * 1000 + tonumber(string.sub(RUN_ID, 1, 3), 16) % 1000)
  local at = string.format('%.0f', ms)
  redis.call('HSET', clock, 'node', RUN_ID, 'epoch', e, 'ms', at,
    'since', at .. '-' .. string.format('%.0f', tonumber(c[4] or '0')))
  return e
end

-- `id` as offsets carry it in `epoch`.
local function in_epoch(epoch, id)
  if epoch == '0' or id == '' then return id end
  return epoch .. ':' .. id
end
