//! `kube-devops watch`: the shell around [`super::Scores`].
//!
//! The HTTP server (`/healthz`, `/readyz`, `/metrics`) starts before leader election, so every
//! replica passes its probes. The replicas elect a leader through the Lease
//! `kube-devops-leader` ([`crate::leader`], the pod name as identity). Only the leader watches
//! pods (into the slim [`PodCache`], with back-off) and exports scores; a standby exports none,
//! so dashboards never see two writers. The namespaces whose pods changed are scored again at
//! most once a second, and every namespace every 15 s (Pending durations grow without events). On SIGTERM the server drains and
//! the lease is handed back, so a standby takes over within about 2 s.

use super::Scores;
use crate::api::bundles::{Bundle, BundleName};
use crate::governance::Rules;
use crate::governance::facts::PodRecord;
use crate::leader;
use crate::metrics::catalog;
use crate::metrics::{Metrics, counter, gauge};
use crate::podcache::PodCache;
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::{WatchStreamExt, watcher};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Lease the watch replicas elect their leader with (contract).
pub const LEASE_NAME: &str = "kube-devops-leader";
/// Scores are recomputed at least this often while leading.
const RESCORE_EVERY: Duration = Duration::from_secs(15);

/// Where and as whom the controller runs.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Address of the HTTP server.
    pub addr: String,
    /// The built-in bundle pods are scored against.
    pub bundle: BundleName,
}

impl WatchOptions {
    /// Defaults: `$POD_IP:8080` (the Lease is in `$POD_NAMESPACE`, with `$POD_NAME` as
    /// identity: see [`leader::Election::from_env`]) and the baseline bundle.
    pub fn from_env(addr: Option<String>, bundle: Option<BundleName>) -> WatchOptions {
        WatchOptions {
            addr: addr.unwrap_or_else(|| crate::http::pod_addr(8080)),
            bundle: bundle.unwrap_or(BundleName::Baseline),
        }
    }
}

/// Registers the watch controller's gauges, which report `scores` when there are any.
fn register_gauges(metrics: &Metrics, scores: &Arc<Mutex<Option<Scores>>>) {
    let meter = metrics.meter();
    let s = scores.clone();
    gauge(&meter, &catalog::CLUSTER_HEALTH_SCORE, move |o| {
        if let Some(scores) = s.lock().unwrap().as_ref() {
            o.observe(u64::from(scores.cluster), &[]);
        }
    });
    let s = scores.clone();
    gauge(&meter, &catalog::NAMESPACE_HEALTH_SCORE, move |o| {
        for (namespace, score) in s.lock().unwrap().iter().flat_map(|scores| &scores.namespaces) {
            o.observe(u64::from(*score), &[KeyValue::new("namespace", namespace.clone())]);
        }
    });
    let s = scores.clone();
    gauge(&meter, &catalog::PODS_TRACKED, move |o| {
        if let Some(scores) = s.lock().unwrap().as_ref() {
            o.observe(scores.pods, &[]);
        }
    });
}

/// Runs the watch controller until SIGTERM/SIGINT.
pub fn run(opts: WatchOptions) -> anyhow::Result<()> {
    let rules = Rules::from_spec(&Bundle::of(opts.bundle).spec);
    actix_web::rt::System::new().block_on(async move {
        let metrics = Metrics::new()?;
        let scores = Arc::new(Mutex::new(None));
        register_gauges(&metrics, &scores);
        let events = counter(&metrics.meter(), &catalog::POD_EVENTS);
        let client = crate::cluster::watch_client().await?;
        let (lead_scores, idle_scores) = (scores.clone(), scores.clone());
        let lead = move || score_while_leading(client.clone(), rules.clone(), lead_scores.clone(), events.clone());
        let stand_by = move || *idle_scores.lock().unwrap() = None;
        leader::serve_elected("watch", LEASE_NAME, &opts.addr, metrics, lead, stand_by).await
    })
}

/// Watches every pod and keeps `scores` current, until aborted.
async fn score_while_leading(
    client: kube::Client,
    rules: Rules,
    scores: Arc<Mutex<Option<Scores>>>,
    events: Counter<u64>,
) {
    // Pods are read straight into what scoring needs (PodRecord): a cluster's pods must fit
    // in the container's memory, relists included.
    let pods = watcher(kube::Api::<PodRecord>::all(client), watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(pods);
    let mut cache = PodCache::default();
    let mut current = Scores::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut scored_at = None::<Instant>;
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(event)) => {
                    // A relist replays every pod: not events.
                    if cache.apply(event) {
                        events.add(1, &[]);
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "watching pods"),
                None => return,
            },
            _ = tick.tick() => {
                if !cache.synced() {
                    continue;
                }
                let now = Timestamp::now();
                let mut changed = cache.take_changed();
                // Pending durations grow without events: every namespace is scored again now
                // and then.
                if scored_at.is_none_or(|at| at.elapsed() >= RESCORE_EVERY) {
                    changed.extend(cache.namespaces().cloned());
                    scored_at = Some(Instant::now());
                }
                if !changed.is_empty() || scores.lock().unwrap().is_none() {
                    current.update(&cache, changed.iter().map(|n| &**n), &rules, now);
                    *scores.lock().unwrap() = Some(current.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn scores(namespaces: &[(&str, u32)]) -> Scores {
        let namespaces: BTreeMap<String, u32> = namespaces.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        let mut s = Scores { cluster: 90, pods: 4, ..Default::default() };
        s.namespaces = namespaces;
        s
    }

    fn lines(text: &str, prefix: &str) -> Vec<String> {
        text.lines().filter(|l| l.starts_with(prefix)).map(String::from).collect()
    }

    /// The gauges show the leader's current scores only: a namespace without pods any more
    /// leaves no stale series, and a standby exports none.
    #[test]
    fn gauges_follow_the_current_scores_and_vanish_on_a_standby() {
        let metrics = Metrics::new().unwrap();
        let current = Arc::new(Mutex::new(None));
        register_gauges(&metrics, &current);
        assert!(lines(&metrics.render(), "namespace_health_score").is_empty());

        *current.lock().unwrap() = Some(scores(&[("blog", 100), ("shop", 80)]));
        let text = metrics.render();
        assert_eq!(
            lines(&text, "namespace_health_score{"),
            ["namespace_health_score{namespace=\"blog\"} 100", "namespace_health_score{namespace=\"shop\"} 80"]
        );
        assert_eq!(lines(&text, "cluster_health_score "), ["cluster_health_score 90"]);
        assert_eq!(lines(&text, "pods_tracked "), ["pods_tracked 4"]);
        assert!(text.contains("# TYPE namespace_health_score gauge"), "{text}");

        *current.lock().unwrap() = Some(scores(&[("shop", 70)]));
        assert_eq!(
            lines(&metrics.render(), "namespace_health_score{"),
            ["namespace_health_score{namespace=\"shop\"} 70"]
        );

        *current.lock().unwrap() = None;
        let text = metrics.render();
        assert!(
            lines(&text, "namespace_health_score{").is_empty() && lines(&text, "cluster_health_score ").is_empty(),
            "{text}"
        );
    }
}
