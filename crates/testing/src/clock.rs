//! A clock that tests move by hand.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokenwarden_server::Clock;

/// Real time plus an offset the test controls, so ordering with the real world (the
/// database, other processes) is kept while expiry can be reached without sleeping.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_ms: AtomicI64,
}

impl ManualClock {
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let ms = Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::SeqCst);
        DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
    }
}
