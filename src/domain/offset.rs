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

/// The longest offset on the wire: three u64 of at most 20 digits, a colon and a dash.
pub const MAX_LEN: usize = 62;

impl Offset {
    /// Writes the wire form (`<ms>-<n>`, or `<epoch>:<ms>-<n>` after the first epoch) into
    /// `buf`, with no allocation and no formatter: the gateway does it on every emit (the
    /// trailing offset argument), where it costs ~20 ns against ~75 ns through `Display`'s
    /// formatter machinery. `Display` writes the same.
    pub fn encode<'b>(&self, buf: &'b mut [u8; MAX_LEN]) -> &'b str {
        let mut at = digits(self.seq, buf, MAX_LEN) - 1;
        buf[at] = b'-';
        at = digits(self.ms, buf, at);
        if self.epoch != 0 {
            at -= 1;
            buf[at] = b':';
            at = digits(self.epoch, buf, at);
        }
        // Only ASCII digits, '-' and ':' were written.
        std::str::from_utf8(&buf[at..]).unwrap_or_default()
    }
}

/// Writes `v`'s digits into `buf` before `at`; returns where they start.
fn digits(mut v: u64, buf: &mut [u8; MAX_LEN], mut at: usize) -> usize {
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return at;
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0; MAX_LEN]))
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

    #[test]
    fn the_wire_form_is_ms_dash_n_with_the_epoch_before_a_colon() {
        for (o, wire) in [
            (Offset::ZERO, "0-0".to_string()),
            (Offset::new(9, 10), "9-10".to_string()),
            (
                Offset::new(1_765_137_600_123, 0),
                "1765137600123-0".to_string(),
            ),
            (
                Offset::new(1_765_137_600_123, 4).in_epoch(1),
                "1:1765137600123-4".to_string(),
            ),
            (
                Offset::new(u64::MAX, u64::MAX).in_epoch(u64::MAX),
                format!("{0}:{0}-{0}", u64::MAX),
            ),
        ] {
            assert_eq!(o.to_string(), wire);
            assert_eq!(o.encode(&mut [0; MAX_LEN]), wire);
            assert_eq!(
                wire.parse::<Offset>().map(|p| (p.ms, p.seq, p.epoch)),
                Ok((o.ms, o.seq, o.epoch))
            );
        }
    }
}
