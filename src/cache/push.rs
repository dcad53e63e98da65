//! The pusher's memory in Redis: per device and chat, the last push (which message,
//! when, up to which sequence) and whether coalesced messages wait for a trailing
//! flush; per device and message, that it was pushed (dedupe of redeliveries).
//! A device's keys share its id as hash tag.

use std::{sync::LazyLock, time::Duration};

use redis::Script;
use uuid::Uuid;

use super::Cache;

/// What to do with a message for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Push it now (this message leads a new coalescing window).
    Send,
    /// Already pushed (a redelivery).
    Duplicate,
    /// Within the window of an earlier push (the first such schedules a flush), or
    /// covered by an earlier push whose latest message is not older than this one's.
    Coalesced { schedule_flush: bool },
}

static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        -- KEYS: co, trail, done. ARGV: lead, now, window, mention, seq, mode.
        -- 'seq' in co is the highest sequence a push took (in flight or sent): a
        -- concurrent claim it covers does not push the same notification again.
        if redis.call('EXISTS', KEYS[3]) == 1 then return 'dup' end
        local claim = redis.call('HGET', KEYS[1], 'mid')
        local now = tonumber(ARGV[2])
        local window = tonumber(ARGV[3])
        local seq = tonumber(ARGV[5])
        local pushed = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        local function take()
          redis.call('HSET', KEYS[1], 'mid', ARGV[1], 'by', ARGV[6], 'at', ARGV[2],
            'seq', math.max(seq, pushed))
          redis.call('PEXPIRE', KEYS[1], window * 3 + 60000)
          return 'send'
        end
        -- The claim's own redelivery (its push may not have gone out before a crash).
        if claim == ARGV[1] and redis.call('HGET', KEYS[1], 'by') == ARGV[6] then
          return take()
        end
        if ARGV[6] == 'flush' then
          if seq <= pushed then return 'covered' end
          return take()
        end
        local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
        if (not claim) or now - at >= window then
          -- A new window, unless an earlier push already said all this one would (its
          -- latest message is not newer): e.g. a message redelivered after a crash.
          if seq <= pushed then return 'covered' end
          return take()
        end
        if ARGV[4] == '1' then redis.call('HSET', KEYS[2], 'mention', '1') end
        if redis.call('HSETNX', KEYS[2], 'due', tostring(at + window)) == 1 then
          redis.call('PEXPIRE', KEYS[2], window * 3 + 60000)
          return 'flush'
        end
        return 'coalesced'
        ",
    )
});

/// Who claims a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimant {
    /// A new message; `mention` when it mentions the device's owner.
    Message { mention: bool },
    /// A trailing flush, led by the chat's latest message.
    Flush,
}

/// What a trailing flush finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trail {
    /// A coalesced message mentioned the user.
    pub mention: bool,
    /// The last sequence a push to this device took in this chat.
    pub pushed_seq: i64,
}

impl Cache {
    fn push_keys(&self, device: Uuid, chat: Uuid) -> (String, String) {
        let p = self.keys.prefix();
        (
            format!("{p}push:{{{device}}}:co:{chat}"),
            format!("{p}push:{{{device}}}:trail:{chat}"),
        )
    }

    fn push_done_key(&self, device: Uuid, message: Uuid) -> String {
        format!("{}push:{{{device}}}:done:{message}", self.keys.prefix())
    }

    /// Decides, atomically, whether a push led by `message` and covering the chat up
    /// to sequence `seq` goes to `device` now. A push it says to send has taken `seq`:
    /// claims racing it (a flush, a redelivery after a crash) see themselves covered.
    pub async fn push_claim(
        &self,
        (device, chat): (Uuid, Uuid),
        (message, seq): (Uuid, i64),
        window: Duration,
        by: Claimant,
    ) -> redis::RedisResult<Claim> {
        let (co, trail) = self.push_keys(device, chat);
        let (mention, mode) = match by {
            Claimant::Message { mention } => (mention, "message"),
            Claimant::Flush => (false, "flush"),
        };
        let mut c = self.conn.clone();
        let out: String = CLAIM
            .key(co)
            .key(trail)
            .key(self.push_done_key(device, message))
            .arg(message.to_string())
            .arg(chrono::Utc::now().timestamp_millis())
            .arg(window.as_millis() as u64)
            .arg(if mention { "1" } else { "0" })
            .arg(seq)
            .arg(mode)
            .invoke_async(&mut c)
            .await?;
        Ok(match out.as_str() {
            "send" => Claim::Send,
            "dup" => Claim::Duplicate,
            "flush" => Claim::Coalesced {
                schedule_flush: true,
            },
            _ => Claim::Coalesced {
                schedule_flush: false,
            },
        })
    }

    /// Records that the push led by `message` reached `device` (its redeliveries are
    /// duplicates).
    pub async fn push_sent(&self, device: Uuid, message: Uuid) -> redis::RedisResult<()> {
        let mut c = self.conn.clone();
        redis::cmd("SET")
            .arg(self.push_done_key(device, message))
            .arg(1)
            .arg("EX")
            .arg(86_400)
            .query_async(&mut c)
            .await
    }

    /// What waits for `device`'s trailing flush in `chat`.
    pub async fn push_trail(&self, device: Uuid, chat: Uuid) -> redis::RedisResult<Trail> {
        let (co, trail) = self.push_keys(device, chat);
        let mut c = self.conn.clone();
        let (mention, seq): (Option<String>, Option<i64>) = redis::pipe()
            .hget(&trail, "mention")
            .hget(&co, "seq")
            .query_async(&mut c)
            .await?;
        Ok(Trail {
            mention: mention.is_some(),
            pushed_seq: seq.unwrap_or(0),
        })
    }

    /// Ends `device`'s trailing flush in `chat` (the next coalesced message schedules
    /// another).
    pub async fn push_trail_done(&self, device: Uuid, chat: Uuid) -> redis::RedisResult<()> {
        let (_, trail) = self.push_keys(device, chat);
        let mut c = self.conn.clone();
        redis::cmd("DEL").arg(trail).query_async(&mut c).await
    }

    /// Whether each of `users` holds a live connection (socket or SSE stream) on any
    /// gateway right now (the presence grace period does not count).
    pub async fn connected_now(&self, users: &[Uuid]) -> redis::RedisResult<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in users {
            pipe.cmd("HLEN").arg(self.keys.user_sockets(*u));
        }
        let mut c = self.conn.clone();
        let counts: Vec<u64> = pipe.query_async(&mut c).await?;
        Ok(counts.into_iter().map(|n| n > 0).collect())
    }
}
