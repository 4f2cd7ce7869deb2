//! Controllers that make the API server a cluster: garbage collection, namespace deletion,
//! deployments, replica sets, endpoints, disruption budgets, and the kubelet.
//! They run on one background thread, each pass looking at the whole store (test clusters are
//! small), and write through the same code paths as API requests so watches see every change.

pub mod endpoints;
pub mod gc;
pub mod pdb;
pub mod workloads;

use crate::server::State;
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
                while !flag.load(Ordering::Relaxed) {
                    gc::pass(&state);
                    endpoints::pass(&state, &mut leaving);
                    workloads::pass(&state, &runtime, &mut backoff);
                    pdb::pass(&state);
                    std::thread::sleep(TICK);
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
