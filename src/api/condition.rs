//! Status conditions as the Kubernetes API conventions have them: a condition keeps its
//! `lastTransitionTime` while its status stays, so `kubectl describe` tells since when.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The condition `type_` with `status`, `reason` and `message`, observed at `generation`;
/// its transition time is the one in `old` while the status is unchanged, else `now`.
pub fn condition(
    old: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_does() {
        let (t0, t1): (Timestamp, Timestamp) =
            ("2026-12-01T10:00:00Z".parse().unwrap(), "2026-12-01T11:00:00Z".parse().unwrap());
        let first = condition(&[], "Ready", true, "Evaluated", "a".into(), Some(1), t0);
        assert_eq!(first.last_transition_time, Time(t0));
        let same = condition(std::slice::from_ref(&first), "Ready", true, "Evaluated", "b".into(), Some(2), t1);
        assert_eq!((same.last_transition_time.clone(), same.message.as_str()), (Time(t0), "b"));
        let flipped = condition(&[same], "Ready", false, "SystemNamespace", "c".into(), Some(2), t1);
        assert_eq!((flipped.status.as_str(), flipped.last_transition_time), ("False", Time(t1)));
    }
}
