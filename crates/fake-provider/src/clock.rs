//! The provider's clock: real time plus an offset that a test moves, so that codes,
//! access tokens and refresh tokens can age by days or months without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// How far the clock may be moved either way: 1000 years, so that every
/// `now + lifetime` the provider computes stays inside chrono's range.
pub(crate) const MAX_OFFSET_SECS: i64 = 1000 * 366 * 24 * 3600;

/// Real time shifted by an offset in whole seconds.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    /// The provider's current time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let real = Utc::now();
        // The offset is clamped on every change, so both steps succeed; falling
        // back to real time keeps this free of panics all the same.
        TimeDelta::try_seconds(self.offset_secs())
            .and_then(|offset| real.checked_add_signed(offset))
            .unwrap_or(real)
    }

    /// Moves the clock by `secs` (back when negative), clamped to
    /// ±[`MAX_OFFSET_SECS`] in total; returns the new offset.
    pub(crate) fn advance(&self, secs: i64) -> i64 {
        let step = |offset: i64| {
            Some(
                offset
                    .saturating_add(secs)
                    .clamp(-MAX_OFFSET_SECS, MAX_OFFSET_SECS),
            )
        };
        let previous = self
            .offset_secs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, step)
            // `step` never declines, so the error arm cannot happen.
            .unwrap_or_else(|current| current);
        step(previous).unwrap_or(previous)
    }

    /// Seconds between the provider's time and real time.
    pub(crate) fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_by_that_many_seconds() {
        let clock = Clock::default();
        assert_eq!(clock.advance(86_400), 86_400);
        assert_eq!(clock.advance(-400), 86_000);
        let drift = clock.now() - Utc::now() - TimeDelta::seconds(86_000);
        assert!(drift.num_seconds().abs() <= 1, "{drift}");
    }

    #[test]
    fn the_offset_is_clamped_instead_of_overflowing() {
        let clock = Clock::default();
        assert_eq!(clock.advance(i64::MAX), MAX_OFFSET_SECS);
        assert_eq!(clock.advance(i64::MAX), MAX_OFFSET_SECS);
        assert!(clock.now() > Utc::now() + TimeDelta::days(365 * 999));
        assert_eq!(clock.advance(i64::MIN), -MAX_OFFSET_SECS);
        assert!(clock.now() < Utc::now() - TimeDelta::days(365 * 999));
    }
}
