//! Limits every listener applies: a request rate per client address, and a cap on connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket per client address: `burst` requests at once, refilled at `per_second`.
/// The table is bounded: when it is full, buckets that have refilled are forgotten (they hold
/// no information), and if none has, the client is limited (a flood of new addresses cannot
/// grow memory).
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// How many client addresses a [`RateLimiter`] tracks at most.
pub const MAX_TRACKED: usize = 65_536;

impl RateLimiter {
    /// A limiter allowing `per_second` requests a second after a burst of `burst`.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter { per_second: f64::from(per_second), burst: f64::from(burst), buckets: Mutex::default() }
    }

    /// Whether `client` may make a request now (taking it from its bucket if so).
    pub fn allow(&self, client: IpAddr) -> bool {
        self.allow_at(client, Instant::now())
    }

    /// A bucket's tokens at `now`, refilled since `at` (uncapped).
    fn refilled(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        tokens + now.duration_since(at).as_secs_f64() * self.per_second
    }

    fn allow_at(&self, client: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&client) && buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
            if buckets.len() >= MAX_TRACKED {
                return false;
            }
        }
        let bucket = buckets.entry(client).or_insert((self.burst, now));
        let tokens = self.refilled(*bucket, now).min(self.burst);
        let allowed = tokens >= 1.0;
        *bucket = (if allowed { tokens - 1.0 } else { tokens }, now);
        allowed
    }

    /// Whether `client` has a request left now, without taking it.
    pub fn available(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.get(&client).is_none_or(|bucket| self.refilled(*bucket, now) >= 1.0)
    }

    /// How long until `client` may make one request.
    pub fn retry_after(&self, client: IpAddr) -> Duration {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = buckets.get(&client).map_or(self.burst, |(t, _)| *t);
        Duration::from_secs_f64(((1.0 - tokens).max(0.0) / self.per_second.max(f64::MIN_POSITIVE)).min(3600.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(10, 3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow_at(a, t0)));
        assert!(!limiter.allow_at(a, t0), "the burst is spent");
        assert!(limiter.allow_at(b, t0), "another client has its own bucket");
        assert!(limiter.allow_at(a, t0 + Duration::from_millis(100)), "refilled at 10 a second");
        assert!(!limiter.allow_at(a, t0 + Duration::from_millis(120)));
    }
}
