//! Kubernetes Events on the objects the controllers act for (`kubectl describe` shows them),
//! through kube-runtime's recorder (events.k8s.io/v1, repeated events folded into a series).
//! An Event that cannot be written is logged, never a reason to fail a reconcile.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Why an Event is recorded: its reason, the action it reports, and whether it is a Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A policy's evaluation changed (a Warning when the score fell below Stable).
    Evaluated { degraded: bool },
    /// The bootstrap operator minted a webhook CA and serving certificate.
    CertificateIssued,
    /// The bootstrap operator could not apply part of the installation.
    ApplyFailed,
    /// Enforcement patched a workload.
    Remediated,
    /// Enforcement would patch a workload (a dry run).
    RemediationPlanned,
    /// Enforcement could not patch a workload (a conflict with another manager, a refusal).
    RemediationFailed,
    /// Enforcement left a workload alone (opted out, or the patch would not make it pass).
    RemediationSkipped,
}

impl Reason {
    /// The Event's `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Evaluated { .. } => "Evaluated",
            Reason::CertificateIssued => "CertificateIssued",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::Remediated => "Remediated",
            Reason::RemediationPlanned => "RemediationPlanned",
            Reason::RemediationFailed => "RemediationFailed",
            Reason::RemediationSkipped => "RemediationSkipped",
        }
    }

    /// The Event's `action`: what the controller did.
    pub const fn action(self) -> &'static str {
        match self {
            Reason::Evaluated { .. } => "Evaluate",
            Reason::CertificateIssued => "IssueCertificate",
            Reason::ApplyFailed => "Apply",
            Reason::Remediated | Reason::RemediationFailed | Reason::RemediationSkipped => "Remediate",
            Reason::RemediationPlanned => "PlanRemediation",
        }
    }

    pub const fn warning(self) -> bool {
        matches!(self, Reason::Evaluated { degraded: true } | Reason::ApplyFailed | Reason::RemediationFailed)
    }
}

/// Publishes Events as `controller` (e.g. `kube-devops-reconcile`), from this pod.
#[derive(Clone)]
pub struct Events(Recorder);

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Events {
        let instance = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
        Events(Recorder::new(client, Reporter { controller: controller.into(), instance }))
    }

    /// An Event for `reason` on `object`.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, object: &K, reason: Reason, note: String) {
        let event = Event {
            type_: if reason.warning() { EventType::Warning } else { EventType::Normal },
            reason: reason.as_str().into(),
            note: Some(fit_note(note)),
            action: reason.action().into(),
            secondary: None,
        };
        if let Err(e) = self.0.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(reason = reason.as_str(), error = %e, "cannot record the Event");
        }
    }
}

/// The API server refuses Event notes over 1,024 bytes: a longer note is cut at the last
/// character boundary that fits, with an ellipsis.
pub fn fit_note(note: String) -> String {
    const MAX: usize = 1024;
    if note.len() <= MAX {
        return note;
    }
    let ellipsis = "…";
    let mut end = MAX - ellipsis.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_to_1024_bytes_on_a_character_boundary() {
        assert_eq!(fit_note("short".into()), "short");
        let exact = "a".repeat(1024);
        assert_eq!(fit_note(exact.clone()), exact);
        // Three-byte characters: 1,000 of them are 3,000 bytes.
        let wide = "€".repeat(1000);
        let cut = fit_note(wide);
        assert!(cut.len() <= 1024, "{} bytes", cut.len());
        assert!(cut.ends_with('…') && cut.trim_end_matches('…').chars().all(|c| c == '€'));
        let mixed = format!("{}é{}", "a".repeat(1020), "b".repeat(100));
        let cut = fit_note(mixed);
        assert!(cut.len() <= 1024 && cut.starts_with(&"a".repeat(1020)), "{}", cut.len());
    }
}
