//! Time and randomness as injectable dependencies, so expiry, lockout and
//! token generation can be tested without sleeping or guessing.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use rand::TryRngCore;

/// Source of the current time for every rule that depends on it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; used by tests to cross expiry and
/// throttling windows instantly.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A manual clock set to the real time, to the whole second. Tests start
    /// here rather than at a fixed date: whatever outside the process checks
    /// times on its own (a JWT library in a client, MongoDB's TTL monitor, a
    /// browser) then agrees with it, so no test expires on a calendar date.
    pub fn starting_now() -> Self {
        use chrono::SubsecRound;
        Self::new(Utc::now().trunc_subsecs(0))
    }

    pub fn advance(&self, by: Duration) {
        // A panic elsewhere cannot leave half a time behind: go on with it.
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// The current time as seconds since the epoch, as in JWT claims.
    pub fn now_ts(&self) -> i64 {
        self.now().timestamp()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Source of the random bytes behind ids, secrets and one-time tokens.
pub trait RandomSource: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    #[allow(
        clippy::expect_used,
        reason = "without the OS's randomness no secret can be made safely"
    )]
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng
            .try_fill_bytes(buf)
            .expect("the operating system's random number generator failed");
    }
}

/// `n` random bytes from `source`, hex encoded: the form used for ids and
/// one-time tokens (URL safe, case-insensitive, easy to log-scrub).
pub fn random_hex(source: &dyn RandomSource, n: usize) -> String {
    let mut buf = vec![0u8; n];
    source.fill(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids and one-time tokens are `random_hex` of the OS source: every one
    /// of 128 bits varies and is set about half the time across 10,000 draws.
    #[test]
    fn random_hex_is_uniform_over_every_bit() {
        let mut ones = [0u32; 128];
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = random_hex(&OsRandom, 16);
            assert_eq!(id.len(), 32);
            let bytes = hex::decode(&id).unwrap();
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += u32::from(bytes[bit / 8] >> (7 - bit % 8) & 1);
            }
            seen.insert(id);
        }
        assert_eq!(seen.len(), 10_000, "all unique");
        for (bit, count) in ones.iter().enumerate() {
            // 10,000 fair coin flips: 5,000 ± 500 is beyond 10 standard deviations.
            assert!(
                (4_500..=5_500).contains(count),
                "bit {bit} set {count} times"
            );
        }
    }
}
