//! The status of each host of a scan group, from one scan to the next. Pure: no I/O.
//!
//! A host missing from a scan (absent, down, or timed out) is only `missed` until it has
//! been missed `downAfter` scans in a row; then it is `down`, and that is alerted once.
//! This suppresses the false alarms that scan time-outs and flapping hosts cause.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A host's status code. Each is documented in the README with its transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    /// Seen for the first time in the latest scan.
    New,
    /// Seen, unchanged since it was last seen.
    Up,
    /// Seen, with ports, services, names or OS changed since it was last seen.
    Changed,
    /// Not seen in the latest scan(s), fewer than `downAfter` in a row: not yet alerted.
    Missed,
    /// Not seen in `downAfter` scans in a row: alerted as down.
    Down,
    /// Seen again after being down: alerted.
    BackUp,
    /// Its address is no longer among the group's targets: no longer scanned.
    Gone,
}

impl HostStatus {
    /// Every status, in the README's order.
    pub const ALL: [HostStatus; 7] =
        [Self::New, Self::Up, Self::Changed, Self::Missed, Self::Down, Self::BackUp, Self::Gone];

    /// The code as stored and shown.
    pub fn code(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Up => "up",
            Self::Changed => "changed",
            Self::Missed => "missed",
            Self::Down => "down",
            Self::BackUp => "back-up",
            Self::Gone => "gone",
        }
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for HostStatus {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.code() == code).ok_or_else(|| format!("unknown host status `{code}`"))
    }
}

/// What the latest scan says about a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Seen up; `changed` when it differs from when it was last seen.
    Seen {
        /// Whether anything about it changed.
        changed: bool,
    },
    /// Not seen up: absent, down, or timed out.
    Missed,
}

/// A status change that is alerted on its own (port changes are alerted separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusEvent {
    /// A host never seen before.
    HostNew,
    /// A host missed `downAfter` scans in a row.
    HostDown,
    /// A down host seen again.
    HostBackUp,
}

/// A host's status after a scan, and the event to alert, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The new status.
    pub status: HostStatus,
    /// Consecutive scans the host has been missed.
    pub misses: u32,
    /// The status event to alert.
    pub event: Option<StatusEvent>,
}

/// The next status of a host (`None` when never seen) after a scan.
pub fn next(current: Option<(HostStatus, u32)>, sighting: Sighting, down_after: u32) -> Transition {
    use HostStatus::*;
    let down_after = down_after.max(1);
    let to = |status, misses, event| Transition { status, misses, event };
    match (current, sighting) {
        (None | Some((Gone, _)), Sighting::Seen { .. }) => to(New, 0, Some(StatusEvent::HostNew)),
        (None, Sighting::Missed) => to(Missed, 1, None),
        (Some((Down, _)), Sighting::Seen { .. }) => to(BackUp, 0, Some(StatusEvent::HostBackUp)),
        (Some(_), Sighting::Seen { changed: true }) => to(Changed, 0, None),
        (Some(_), Sighting::Seen { changed: false }) => to(Up, 0, None),
        (Some((Gone, misses)), Sighting::Missed) => to(Gone, misses.saturating_add(1), None),
        (Some((Down, misses)), Sighting::Missed) => to(Down, misses.saturating_add(1), None),
        (Some((_, misses)), Sighting::Missed) => {
            let misses = misses.saturating_add(1);
            if misses >= down_after { to(Down, misses, Some(StatusEvent::HostDown)) } else { to(Missed, misses, None) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HostStatus::*;
    use super::StatusEvent::*;
    use super::*;

    const SEEN: Sighting = Sighting::Seen { changed: false };
    const CHANGED: Sighting = Sighting::Seen { changed: true };
    const MISSED: Sighting = Sighting::Missed;

    /// Every transition, as documented in the README.
    #[test]
    fn transitions() {
        let cases = [
            (None, SEEN, 3, New, 0, Some(HostNew)),
            (Some((New, 0)), SEEN, 3, Up, 0, None),
            (Some((Up, 0)), CHANGED, 3, Changed, 0, None),
            (Some((Changed, 0)), SEEN, 3, Up, 0, None),
            (Some((Up, 0)), MISSED, 3, Missed, 1, None),
            (Some((Missed, 1)), MISSED, 3, Missed, 2, None),
            (Some((Missed, 2)), MISSED, 3, Down, 3, Some(HostDown)),
            (Some((Missed, 2)), SEEN, 3, Up, 0, None),
            (Some((Missed, 1)), CHANGED, 3, Changed, 0, None),
            (Some((Down, 3)), MISSED, 3, Down, 4, None),
            (Some((Down, 4)), SEEN, 3, BackUp, 0, Some(HostBackUp)),
            (Some((Down, 4)), CHANGED, 3, BackUp, 0, Some(HostBackUp)),
            (Some((BackUp, 0)), SEEN, 3, Up, 0, None),
            (Some((BackUp, 0)), MISSED, 1, Down, 1, Some(HostDown)),
            (Some((Up, 0)), MISSED, 1, Down, 1, Some(HostDown)),
            (Some((Gone, 0)), MISSED, 3, Gone, 1, None),
            (Some((Gone, 5)), SEEN, 3, New, 0, Some(HostNew)),
            (None, MISSED, 3, Missed, 1, None),
        ];
        for (current, sighting, down_after, status, misses, event) in cases {
            let got = next(current, sighting, down_after);
            assert_eq!(
                got,
                Transition { status, misses, event },
                "{current:?} + {sighting:?} (downAfter {down_after})"
            );
        }
    }

    #[test]
    fn codes_round_trip() {
        for status in HostStatus::ALL {
            assert_eq!(status.code().parse::<HostStatus>(), Ok(status));
        }
        assert!("sideways".parse::<HostStatus>().is_err());
    }
}
