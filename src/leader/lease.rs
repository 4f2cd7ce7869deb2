//! The leader-election decisions, pure: what a replica writes to the Lease given what it read,
//! as client-go's leader election does it.
//!
//! - A lease is expired when its record has not changed for `leaseDurationSeconds` *as this
//!   replica observed it* (its own monotonic clock): no node's clock is compared with another's.
//! - A leader renews every retry period; when it has not renewed for the renew deadline
//!   (shorter than the lease duration) it stops leading, before any standby may take over.
//! - Releasing empties the holder, which standbys (polling every retry period) take at once.

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use std::time::{Duration, Instant};

/// How long a lease lasts, how long a leader may go without renewing it, how often replicas
/// try to acquire or renew it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// client-go's defaults for controllers (kube-controller-manager, kube-scheduler).
pub const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry_period: Duration::from_secs(2),
};

/// The record this replica last read, and when it first saw it (its own clock).
#[derive(Clone, Debug, Default)]
pub struct Observation {
    record: Option<LeaseSpec>,
    since: Option<Instant>,
}

impl Observation {
    /// Notes the record read (or written) at `now`; an unchanged record keeps its time.
    pub fn observe(&mut self, record: &LeaseSpec, now: Instant) {
        if self.record.as_ref() != Some(record) {
            self.record = Some(record.clone());
            self.since = Some(now);
        }
    }
}

/// What to do after reading the lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// There is no lease: create it, held by this replica.
    Create(LeaseSpec),
    /// Write this record over the one read (optimistically: a conflict means someone else wrote
    /// first). Either a renewal, or taking over a free or expired lease.
    Update(LeaseSpec),
    /// Another replica holds the lease and it has not expired.
    HeldBy(String),
}

fn holder(record: &LeaseSpec) -> Option<&str> {
    record.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// Decides what replica `me` does, given the lease it read (`None`: not found) at `now`
/// (`wall` for the timestamps written into the record).
pub fn attempt(
    me: &str,
    current: Option<&LeaseSpec>,
    seen: &mut Observation,
    now: Instant,
    wall: Timestamp,
    timing: &Timing,
) -> Attempt {
    let time = Some(MicroTime(wall));
    let duration = Some(timing.lease_duration.as_secs() as i32);
    let Some(current) = current else {
        return Attempt::Create(LeaseSpec {
            holder_identity: Some(me.into()),
            lease_duration_seconds: duration,
            acquire_time: time.clone(),
            renew_time: time,
            lease_transitions: Some(0),
            ..Default::default()
        });
    };
    seen.observe(current, now);
    match holder(current) {
        Some(h) if h == me => {
            Attempt::Update(LeaseSpec { renew_time: time, lease_duration_seconds: duration, ..current.clone() })
        }
        Some(other) if !expired(current, seen, now) => Attempt::HeldBy(other.to_string()),
        _ => Attempt::Update(LeaseSpec {
            holder_identity: Some(me.into()),
            lease_duration_seconds: duration,
            acquire_time: time.clone(),
            renew_time: time,
            lease_transitions: Some(current.lease_transitions.unwrap_or(0) + 1),
            ..current.clone()
        }),
    }
}

/// Whether `record`, unchanged since `seen` first saw it, has outlived its duration.
fn expired(record: &LeaseSpec, seen: &Observation, now: Instant) -> bool {
    let duration = Duration::from_secs(record.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    seen.since.is_none_or(|since| now.saturating_duration_since(since) >= duration)
}

/// The record that hands the lease back (holder emptied), when `me` holds it.
pub fn release(me: &str, current: &LeaseSpec, wall: Timestamp) -> Option<LeaseSpec> {
    (holder(current) == Some(me)).then(|| LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(wall)),
        ..current.clone()
    })
}

/// When a leader whose last successful renewal was at `renewed` must have stopped leading.
pub fn deadline(renewed: Instant, timing: &Timing) -> Instant {
    renewed + timing.renew_deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "reconcile-a";
    const OTHER: &str = "reconcile-b";

    fn wall() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn held_by(who: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(who.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime("2026-12-01T11:00:00Z".parse().unwrap())),
            renew_time: Some(MicroTime("2026-12-01T11:59:58Z".parse().unwrap())),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created_held_by_me() {
        let Attempt::Create(record) = attempt(ME, None, &mut Observation::default(), Instant::now(), wall(), &TIMING)
        else {
            panic!("expected a create");
        };
        assert_eq!(record.holder_identity.as_deref(), Some(ME));
        assert_eq!(record.lease_duration_seconds, Some(15));
        assert_eq!(record.lease_transitions, Some(0));
    }

    #[test]
    fn a_leader_renews_without_counting_a_transition() {
        let mine = held_by(ME, 3);
        let Attempt::Update(renewed) =
            attempt(ME, Some(&mine), &mut Observation::default(), Instant::now(), wall(), &TIMING)
        else {
            panic!("expected a renewal");
        };
        assert_eq!(renewed.renew_time, Some(MicroTime(wall())));
        assert_eq!((renewed.acquire_time, renewed.lease_transitions), (mine.acquire_time, Some(3)));
    }

    #[test]
    fn another_holder_is_respected_until_its_record_stood_still_for_the_lease_duration() {
        let mut seen = Observation::default();
        let start = Instant::now();
        let theirs = held_by(OTHER, 3);
        // Whatever the timestamps inside say (another node's clock), expiry counts from when
        // this replica saw the record.
        assert_eq!(attempt(ME, Some(&theirs), &mut seen, start, wall(), &TIMING), Attempt::HeldBy(OTHER.into()));
        let later = start + Duration::from_secs(14);
        assert_eq!(attempt(ME, Some(&theirs), &mut seen, later, wall(), &TIMING), Attempt::HeldBy(OTHER.into()));
        // A renewal (a changed record) restarts the count.
        let renewed = LeaseSpec { renew_time: Some(MicroTime(wall())), ..theirs.clone() };
        assert_eq!(attempt(ME, Some(&renewed), &mut seen, later, wall(), &TIMING), Attempt::HeldBy(OTHER.into()));
        let expired = later + Duration::from_secs(15);
        let Attempt::Update(taken) = attempt(ME, Some(&renewed), &mut seen, expired, wall(), &TIMING) else {
            panic!("an expired lease is taken over");
        };
        assert_eq!(taken.holder_identity.as_deref(), Some(ME));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(wall())));
    }

    #[test]
    fn a_released_lease_is_taken_at_once_and_only_its_holder_can_release_it() {
        let mine = held_by(ME, 3);
        let released = release(ME, &mine, wall()).unwrap();
        assert_eq!((released.holder_identity.clone(), released.lease_duration_seconds), (None, Some(1)));
        assert_eq!(release(OTHER, &mine, wall()), None);
        let mut seen = Observation::default();
        let Attempt::Update(taken) = attempt(OTHER, Some(&released), &mut seen, Instant::now(), wall(), &TIMING) else {
            panic!("a free lease is taken");
        };
        assert_eq!((taken.holder_identity.as_deref(), taken.lease_transitions), (Some(OTHER), Some(4)));
        let empty = LeaseSpec { holder_identity: Some(String::new()), ..held_by(ME, 0) };
        assert!(matches!(attempt(OTHER, Some(&empty), &mut seen, Instant::now(), wall(), &TIMING), Attempt::Update(_)));
    }

    #[test]
    fn a_leader_stops_before_anyone_may_take_over() {
        assert!(TIMING.renew_deadline < TIMING.lease_duration);
        assert!(TIMING.retry_period * 2 < TIMING.renew_deadline, "several renewals fit in the deadline");
        let renewed = Instant::now();
        assert_eq!(deadline(renewed, &TIMING), renewed + Duration::from_secs(10));
    }
}
