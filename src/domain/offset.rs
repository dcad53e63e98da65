//! A position in a user's timeline: a Redis stream id (`<ms>-<n>`) of the Redis
//! dataset's current epoch. On the wire it is `<ms>-<n>` in the first epoch (epoch 0)
//! and `<epoch>:<ms>-<n>` after a failover started another (see `docs/guarantees.md`,
//! "No silent loss after a failover"); clients keep it as an opaque string.

use std::{cmp::Ordering, fmt, hash, str::FromStr};

/// A position in a user's event stream. `ZERO` is "before everything". Offsets order
/// and compare by their stream id alone: a connection's offsets are all of one epoch
/// (a gateway closes a connection whose epoch ended).
#[derive(Debug, Clone, Copy, Default)]
pub struct Offset {
    pub ms: u64,
    pub seq: u64,
    /// The Redis dataset's epoch it belongs to (0: the first).
    pub epoch: u64,
}

impl Offset {
    pub const ZERO: Offset = Offset::new(0, 0);

    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq, epoch: 0 }
    }

    /// The same stream id in `epoch`.
    pub const fn in_epoch(self, epoch: u64) -> Self {
        Self { epoch, ..self }
    }

    /// The stream id alone (`<ms>-<n>`), as Redis knows it.
    pub fn id(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// Parses `<ms>-<n>` or `<epoch>:<ms>-<n>`; the empty string is `ZERO` (no stream yet).
    pub fn parse_or_zero(s: &str) -> Option<Self> {
        if s.is_empty() {
            return Some(Self::ZERO);
        }
        s.parse().ok()
    }
}

impl PartialEq for Offset {
    fn eq(&self, other: &Self) -> bool {
        (self.ms, self.seq) == (other.ms, other.seq)
    }
}

impl Eq for Offset {}

impl PartialOrd for Offset {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Offset {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ms, self.seq).cmp(&(other.ms, other.seq))
    }
}

impl hash::Hash for Offset {
    fn hash<H: hash::Hasher>(&self, state: &mut H) {
        (self.ms, self.seq).hash(state);
    }
}

impl FromStr for Offset {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (epoch, id) = match s.split_once(':') {
            Some((e, id)) => (e.parse().map_err(|_| ())?, id),
            None => (0, s),
        };
        let (ms, seq) = id.split_once('-').ok_or(())?;
        Ok(Offset {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
            epoch,
        })
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_show_on_the_wire_but_not_in_comparisons() {
        let a: Offset = "1700000000000-9".parse().unwrap();
        assert_eq!(a.epoch, 0);
        let b: Offset = "1765000000000123:1700000000000-10".parse().unwrap();
        assert_eq!(
            (b.epoch, b.ms, b.seq),
            (1765000000000123, 1700000000000, 10)
        );
        assert_eq!(b.to_string(), "1765000000000123:1700000000000-10");
        assert_eq!(b.id(), "1700000000000-10");
        assert!(a < b);
        assert_eq!(b, b.in_epoch(0));
        assert!("x:1-2".parse::<Offset>().is_err());
        assert!(":1-2".parse::<Offset>().is_err());
    }
}
