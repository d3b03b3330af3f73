//! When a failed delivery is tried again: the Standard Webhooks example schedule
//! ("Retry schedule": 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, ...), cut at two 10-hour waits
//! so that an endpoint is given up on about a day after the event, each wait with ±10 %
//! jitter so that endpoints that failed together are not all retried together.

use std::time::Duration;

use rand::Rng;

/// The wait after the n-th failed attempt, before jitter (index n - 1).
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts made before a delivery is given up: the first, then one per retry delay.
pub const MAX_ATTEMPTS: u32 = RETRY_DELAYS.len() as u32 + 1;

/// The largest relative change jitter makes to a wait.
pub const JITTER: f64 = 0.1;

/// The wait before the next attempt, when `attempts_made` attempts have failed: `None`
/// once [`MAX_ATTEMPTS`] have been made (give up), zero before the first attempt.
pub fn next_delay(attempts_made: u32) -> Option<Duration> {
    next_delay_with(attempts_made, &mut rand::thread_rng())
}

/// [`next_delay`] with the randomness as a parameter.
pub fn next_delay_with(attempts_made: u32, rng: &mut impl Rng) -> Option<Duration> {
    let base = base_delay(attempts_made)?;
    Some(base.mul_f64(rng.gen_range(1.0 - JITTER..=1.0 + JITTER)))
}

/// The wait without jitter.
pub fn base_delay(attempts_made: u32) -> Option<Duration> {
    match attempts_made.checked_sub(1) {
        None => Some(Duration::ZERO),
        Some(index) => RETRY_DELAYS.get(index as usize).copied(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn the_first_attempt_goes_out_at_once() {
        assert_eq!(next_delay(0), Some(Duration::ZERO));
    }

    #[test]
    fn each_retry_waits_its_scheduled_time_within_ten_percent() {
        let mut rng = StdRng::seed_from_u64(1);
        for (i, base) in RETRY_DELAYS.iter().enumerate() {
            let attempts = u32::try_from(i).unwrap() + 1;
            for _ in 0..200 {
                let delay = next_delay_with(attempts, &mut rng).unwrap();
                assert!(delay >= base.mul_f64(0.9), "{attempts}: {delay:?}");
                assert!(delay <= base.mul_f64(1.1), "{attempts}: {delay:?}");
            }
        }
        assert_eq!(base_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(base_delay(7), Some(Duration::from_secs(36_000)));
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let mut rng = StdRng::seed_from_u64(2);
        let waits: std::collections::HashSet<Duration> = (0..20)
            .map(|_| next_delay_with(3, &mut rng).unwrap())
            .collect();
        assert!(waits.len() > 10);
    }

    #[test]
    fn delivery_is_given_up_after_the_last_attempt() {
        assert_eq!(MAX_ATTEMPTS, 8);
        assert!(next_delay(MAX_ATTEMPTS - 1).is_some());
        assert_eq!(next_delay(MAX_ATTEMPTS), None);
        assert_eq!(next_delay(u32::MAX), None);
    }

    #[test]
    fn the_whole_schedule_spans_about_a_day() {
        let total: Duration = RETRY_DELAYS.iter().sum();
        // 27 h 35 min 5 s before jitter: a day and a bit, never a week.
        assert_eq!(total, Duration::from_secs(27 * 3600 + 35 * 60 + 5));
        assert!(total.mul_f64(1.0 - JITTER) > Duration::from_secs(24 * 3600));
        assert!(total.mul_f64(1.0 + JITTER) < Duration::from_secs(31 * 3600));
    }
}
