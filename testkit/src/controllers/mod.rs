//! Controllers that make the API server a cluster: garbage collection, namespace deletion,
//! deployments, replica sets, endpoints, disruption budgets, and the kubelet.
//! They run on one background thread, a pass after each change of the store (each pass looks at
//! the whole store: few objects have owners or belong to services), and write through the same
//! code paths as API requests so watches see every change.

pub mod crds;
pub mod endpoints;
pub mod gc;
pub mod pdb;
pub mod workloads;

use crate::cluster::{Cluster, now_rfc3339};
use crate::registry::GroupResource;
use crate::server::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the controllers look at the store.
pub const TICK: Duration = Duration::from_millis(50);

/// The controller thread; stops when dropped.
pub struct Controllers {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Controllers {
    pub fn start(state: Arc<State>) -> Controllers {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("testkit-controllers".into())
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("controller runtime");
                let mut backoff = std::collections::HashMap::new();
                let mut leaving = std::collections::HashMap::new();
                let mut seen = None;
                while !flag.load(Ordering::Relaxed) {
                    // A pass only when the store changed (its own writes included, so a pass
                    // that wrote is followed by one that sees the result) or a timer waits: a
                    // still cluster costs no CPU, however many objects it holds.
                    let (rv, collect) = {
                        let cluster = state.cluster.lock().unwrap();
                        let rv = cluster.store.resource_version();
                        (
                            rv,
                            seen != Some(rv)
                                && seen
                                    .and_then(|v| cluster.store.changes_since(v))
                                    .is_none_or(|c| c.iter().any(|e| gc::concerns(e))),
                        )
                    };
                    let mut pause = TICK;
                    if seen != Some(rv) || !backoff.is_empty() || !leaving.is_empty() {
                        seen = Some(rv);
                        let started = std::time::Instant::now();
                        if collect {
                            gc::pass(&state);
                        }
                        crds::pass(&state);
                        endpoints::pass(&state, &mut leaving);
                        workloads::pass(&state, &runtime, &mut backoff);
                        pdb::pass(&state);
                        // On a large store passes are slow and hold the lock: keep them to
                        // about a fifth of the time, so API requests go on being served.
                        pause = pause.max(started.elapsed() * 4);
                    }
                    std::thread::sleep(pause);
                }
            })
            .expect("controller thread");
        Controllers { stop, thread: Some(thread) }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Records a core/v1 Event about `object` as the controllers' event recorders do: a repeat of
/// the same reason and message bumps `count` and `lastTimestamp` of the one Event.
pub fn record_event(cluster: &mut Cluster, object: &Value, type_: &str, reason: &str, message: &str, component: &str) {
    let meta = &object["metadata"];
    let namespace = meta["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or("default").to_string();
    let key = format!("{}{reason}{message}", meta["uid"].as_str().unwrap_or_default());
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let name = format!("{}.{:016x}", meta["name"].as_str().unwrap_or_default(), hash);
    let events = GroupResource { group: String::new(), resource: "events".into() };
    let now = now_rfc3339();
    let event = match cluster.store.get(&events, &namespace, &name) {
        Some(existing) => {
            let mut event = existing.clone();
            event["count"] = json!(existing["count"].as_i64().unwrap_or(1) + 1);
            event["lastTimestamp"] = json!(now);
            event
        }
        None => json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace, "uid": cluster.store.next_uid(), "creationTimestamp": now},
            "involvedObject": {"apiVersion": object["apiVersion"], "kind": object["kind"], "name": meta["name"],
                "namespace": meta["namespace"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "source": {"component": component},
            "reportingComponent": component, "reportingInstance": "",
        }),
    };
    cluster.store.put(&events, event);
}
