//! The provider's movable clock and the lifetimes of its refresh tokens, so that a
//! test can walk a connection through months of refreshes in milliseconds.

use chrono::{DateTime, TimeDelta, Utc};

use super::FakeProvider;
use crate::state::{RefreshLifetimes, lock};

impl FakeProvider {
    /// The provider's time: real time plus every [`FakeProvider::advance_secs`]
    /// so far. Code and token expiry, access-token validation, refresh-token
    /// lifetimes, `id_token` times and the request log all read this clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Moves the provider's clock forward by `secs` (back when negative). The
    /// total offset is clamped to ±1000 years. Real time keeps running
    /// underneath, so two reads of [`FakeProvider::now`] still differ a little.
    pub fn advance_secs(&self, secs: i64) {
        let offset = self.shared.clock.advance(secs);
        tracing::debug!(offset_secs = offset, "fake provider clock moved");
    }

    /// Makes refresh tokens die like a real provider's. A refresh with a token
    /// unused for longer than `idle` (since it was issued or last used), or older
    /// than `absolute` (since it was issued), answers `invalid_grant` ("Token has
    /// been expired or revoked.") and counts in
    /// [`FakeProvider::dead_refresh_token_refusals`]. `None` (the default) is no
    /// limit.
    ///
    /// With rotation on, every refresh issues a new token with its own issue time,
    /// so both clocks restart; with rotation off the token is kept, a use restarts
    /// only its idle time, and `absolute` counts from the original issue. The
    /// lifetimes are read at each refresh, so they apply to tokens already issued.
    /// They are chrono durations so a catalog entry's
    /// `RefreshSpec::idle_expiry()`/`lifetime()` can be passed as they are.
    pub fn set_refresh_token_lifetimes(
        &self,
        idle: Option<TimeDelta>,
        absolute: Option<TimeDelta>,
    ) {
        lock(&self.shared.settings).refresh_lifetimes = RefreshLifetimes { idle, absolute };
    }
}
