//! The one source of "now". Jobs take `now` as an argument; the CLI's `--now`
//! and the tests choose it, everything else asks the clock.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }

    /// Waits until `at` on this clock. A fixed clock never moves, so there is
    /// nothing to wait for: tests see the schedule without sleeping.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        if let (Clock::System, Ok(wait)) = (self, (at - Utc::now()).to_std()) {
            tokio::time::sleep(wait).await;
        }
    }
}
