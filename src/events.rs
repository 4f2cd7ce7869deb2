//! Kubernetes Events on the objects the controllers act for (`kubectl describe` shows them),
//! through kube-runtime's recorder (events.k8s.io/v1, repeated events folded into a series).
//! An Event that cannot be written is logged, never a reason to fail a reconcile.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes Events as `controller` (e.g. `kube-devops-reconcile`), from this pod.
#[derive(Clone)]
pub struct Events(Recorder);

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Events {
        let instance = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
        Events(Recorder::new(client, Reporter { controller: controller.into(), instance }))
    }

    /// A `Normal` Event, or a `Warning` one when `warning`, on `object`.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            // The API server refuses notes over 1 kB.
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.0.publish(&event, &object.object_ref(&())).await {
            eprintln!("cannot record the Event {reason}: {e}");
        }
    }
}
