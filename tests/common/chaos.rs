//! The API server of a busy cluster, for the kube-devops components only (their User-Agent
//! starts `kube-devops/`; kubectl and the tests' own client are spared): 20% of writes fail
//! with 500, 5% of reads (get, list, watch) fail with 500, every request waits 100-300 ms, every
//! watch is dropped every 10 s and the change history is compacted every 15 s (a resume from
//! before it gets 410 Gone).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use testkit::harness::TestCluster;
use testkit::observe::{Fault, RequestRecord};

/// The User-Agent part every component sends.
pub const AGENT: &str = "kube-devops/";

/// Faults on until [`Chaos::stop`].
pub struct Chaos {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<testkit::server::State>,
}

pub fn start(cluster: &TestCluster) -> Chaos {
    for verb in ["create", "update", "patch", "delete"] {
        cluster.inject(Fault::parse(&format!("verb={verb} status=500 every=5 agent={AGENT}")).unwrap());
    }
    for verb in ["get", "list", "watch"] {
        cluster.inject(Fault::parse(&format!("verb={verb} status=500 every=20 agent={AGENT}")).unwrap());
    }
    cluster.inject(Fault::parse(&format!("latency=100ms..300ms agent={AGENT}")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let state = cluster.state().clone();
    let thread = {
        let (stop, state) = (stop.clone(), state.clone());
        std::thread::spawn(move || {
            let mut tick = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                tick += 1;
                if tick.is_multiple_of(10) {
                    state.drop_watches();
                }
                if tick.is_multiple_of(15) {
                    state.cluster.lock().unwrap().store.compact();
                }
            }
        })
    };
    Chaos { stop, thread: Some(thread), state }
}

impl Chaos {
    /// Faults off.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.state.faults.lock().unwrap().clear();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        self.end();
    }
}

/// The components' requests in the log.
pub fn component_requests(cluster: &TestCluster) -> Vec<RequestRecord> {
    cluster.requests().into_iter().filter(|r| r.user_agent.starts_with(AGENT)).collect()
}

/// The most requests one component pod (told apart by the pod name in its User-Agent) sent
/// in any `window` seconds of `requests` (windows aligned to the clock), per second.
pub fn peak_rate(requests: &[RequestRecord], window: u64) -> f64 {
    let mut per_window = std::collections::HashMap::<(&str, u64), usize>::new();
    for r in requests {
        *per_window.entry((r.user_agent.as_str(), r.received_ms / 1000 / window)).or_default() += 1;
    }
    per_window.values().copied().max().unwrap_or(0) as f64 / window as f64
}

/// Waits (up to `seconds`) until the components have sent no write but Lease renewals for
/// `quiet` seconds; returns how long that took.
pub fn wait_idle(cluster: &TestCluster, quiet: u64, seconds: u64) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let recent: Vec<RequestRecord> = component_requests(cluster)
            .into_iter()
            .filter(|r| r.received_ms + quiet * 1000 >= now_ms)
            .filter(|r| r.is_write() && r.resource != "leases")
            .collect();
        if recent.is_empty() && started.elapsed() >= Duration::from_secs(quiet) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "still writing after {seconds} s: {:?}",
            recent.iter().map(|r| format!("{} {} {}", r.verb, r.path, r.code)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
