//! A send's settings resolved once, as a value: the config's `[smtp]` with the command
//! line's overrides, and what kind of send it is. The engine and the campaign read this
//! instead of loose arguments.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::campaign::Ask;
use super::engine::RetryPolicy;
use crate::config::{Config, LedgerSync};
use crate::error::{Error, Result};
use crate::kind::Kind;
use crate::week::Week;

/// How a run goes through its audience.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// When each message's records are durable (see the ledger's journal).
    pub sync: LedgerSync,
    /// Parallel connections.
    pub concurrency: usize,
    /// Messages per second over all connections; 0 means unlimited.
    pub rate_per_s: f64,
    pub retry: RetryPolicy,
    /// `--retry-failed`: readers who failed for good are tried again.
    pub retry_failed: bool,
    /// How many times a message whose outcome stayed unknown may be sent again, over all
    /// runs (`smtp.resend_unknown`).
    pub resend_unknown: u32,
}

/// What `send` is asked to do, resolved.
#[derive(Debug, Clone)]
pub(crate) struct SendPlan {
    pub kind: Kind,
    /// Which weeks: `--week`, or what is new.
    pub week: Option<Week>,
    /// `--to`: the addresses of a test send.
    pub to: Vec<String>,
    pub pace: Pace,
}

/// The command line's part of a plan, as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides<'a> {
    pub week: Option<Week>,
    pub to: &'a [String],
    pub concurrency: Option<u16>,
    pub rate: Option<&'a str>,
    pub retry_failed: bool,
}

impl SendPlan {
    /// Resolve `given` against `config`. `started` (the wall clock) names a test send.
    pub(crate) fn resolve(
        config: &Config,
        given: &Overrides<'_>,
        started: DateTime<Utc>,
    ) -> Result<SendPlan> {
        let smtp = &config.smtp;
        let kind = if given.to.is_empty() {
            Kind::Real
        } else {
            Kind::test_at(started)
        };
        Ok(SendPlan {
            kind,
            week: given.week,
            to: given.to.to_vec(),
            pace: Pace {
                sync: smtp.ledger_sync,
                concurrency: given.concurrency.map_or(smtp.concurrency, usize::from),
                rate_per_s: parse_rate(given.rate, smtp.rate_per_s)?,
                retry: RetryPolicy {
                    max_attempts: smtp.max_attempts,
                    base_delay: Duration::from_millis(smtp.retry_delay_ms),
                },
                retry_failed: given.retry_failed,
                resend_unknown: smtp.resend_unknown,
            },
        })
    }

    /// The week selection the campaign answers.
    pub(crate) fn ask(&self) -> Ask {
        Ask {
            week: self.week,
            test_send: !self.kind.is_real(),
            retry_failed: self.pace.retry_failed,
        }
    }
}

/// `--rate`: messages per second, such as `20` or `20/s`.
fn parse_rate(rate: Option<&str>, default: f64) -> Result<f64> {
    let Some(rate) = rate else { return Ok(default) };
    rate.trim_end_matches("/s")
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--rate: expected messages per second such as 20 or 20/s, found {rate:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_with_or_without_the_unit_and_refused_when_negative() {
        assert_eq!(parse_rate(Some("20/s"), 0.0).unwrap(), 20.0);
        assert_eq!(parse_rate(Some("2.5"), 0.0).unwrap(), 2.5);
        assert_eq!(parse_rate(None, 7.0).unwrap(), 7.0);
        let e = parse_rate(Some("-1"), 0.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--rate: expected messages per second such as 20 or 20/s, found \"-1\""
        );
    }
}
