//! The watch controller (`kube-devops watch`): the leader of its replicas watches every pod
//! and exports health scores per namespace and for the cluster. [`Scores`] is the pure part
//! (scored from scratch, or again for the namespaces that changed); [`controller`] is the shell
//! (HTTP endpoints, leader election, the pod cache).
//!
//! Pods are scored with the same evaluator and rules as `kube-devops analyze` (the baseline
//! bundle by default), so the two never disagree about the same pods.

pub mod controller;

use crate::governance::{PodFacts, Rules, Tally, assess};
use crate::podcache::PodCache;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// Health scores of the pods outside system namespaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scores {
    /// Score (0-100) of every namespace that has pods.
    pub namespaces: BTreeMap<String, u32>,
    /// The mean of the namespace scores (the original contract), 100 without namespaces.
    pub cluster: u32,
    /// Pods scored.
    pub pods: u64,
    /// Pods scored in each namespace (what `pods` sums).
    counts: BTreeMap<String, u64>,
}

impl Scores {
    /// Scores `(namespace, pod)` pairs from scratch.
    pub fn of<'a>(pods: impl IntoIterator<Item = (&'a str, &'a PodFacts)>, rules: &Rules, now: Timestamp) -> Scores {
        let pods: Vec<(&str, &PodFacts)> = pods.into_iter().collect();
        let assessment = assess(&pods, rules, now, |(ns, facts)| Some((*ns, *facts)), |_, _, _| {});
        let mut scores = Scores::default();
        for (namespace, tally) in &assessment.namespaces {
            scores.set(namespace, tally);
        }
        scores.total();
        scores
    }

    /// Scores again the `changed` namespaces of `cache` (the others keep their scores: the
    /// cost follows what changed, not the cluster).
    pub fn update<'a>(
        &mut self,
        cache: &PodCache,
        changed: impl IntoIterator<Item = &'a str>,
        rules: &Rules,
        now: Timestamp,
    ) {
        for namespace in changed {
            let pods: Vec<&PodFacts> = cache.pods(namespace).map(|p| &p.facts).collect();
            let assessment = assess(&pods, rules, now, |facts| Some((namespace, *facts)), |_, _, _| {});
            match assessment.namespaces.get(namespace) {
                Some(tally) => self.set(namespace, tally),
                None => {
                    self.namespaces.remove(namespace);
                    self.counts.remove(namespace);
                }
            }
        }
        self.total();
    }

    fn set(&mut self, namespace: &str, tally: &Tally) {
        self.namespaces.insert(namespace.to_string(), tally.score());
        self.counts.insert(namespace.to_string(), u64::from(tally.subjects()));
    }

    fn total(&mut self) {
        self.pods = self.counts.values().sum();
        self.cluster = match self.namespaces.len() as u64 {
            0 => 100,
            n => (self.namespaces.values().map(|s| u64::from(*s)).sum::<u64>() / n) as u32,
        };
    }
}

/// Scores `pods` against `rules` at `now` (the time Pending durations are measured to).
pub fn score_pods<'a>(pods: impl IntoIterator<Item = &'a Pod>, rules: &Rules, now: Timestamp) -> Scores {
    let facts: Vec<(&str, PodFacts)> = pods
        .into_iter()
        .filter_map(|pod| {
            let spec = pod.spec.as_ref()?;
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            Some((namespace, PodFacts::pod(spec, pod.status.as_ref(), &pod.metadata)))
        })
        .collect();
    Scores::of(facts.iter().map(|(ns, facts)| (*ns, facts)), rules, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bundles::{Bundle, BundleName};
    use crate::fixtures::TestPod;

    fn pod(namespace: &str, name: &str, image: &str) -> Pod {
        TestPod::new(name).in_namespace(namespace).compliant_container("app", image).build()
    }

    fn baseline() -> Rules {
        Rules::from_spec(&Bundle::of(BundleName::Baseline).spec)
    }

    #[test]
    fn namespaces_are_scored_apart_and_the_cluster_is_their_mean() {
        let pods = [pod("shop", "a", "nginx:latest"), pod("shop", "b", "nginx:1.27"), pod("blog", "c", "ghost:5")];
        let scores = score_pods(&pods, &baseline(), Timestamp::now());
        assert_eq!(scores.pods, 3);
        assert_eq!(scores.namespaces["blog"], 100);
        // One of two pods uses :latest (weight 5 at its default severity): 100 - floor(5 / 2).
        assert_eq!(scores.namespaces["shop"], 98);
        assert_eq!(scores.cluster, (100 + 98) / 2);
    }

    #[test]
    fn system_namespaces_and_specless_pods_are_not_scored() {
        let mut broken = pod("shop", "x", "nginx:latest");
        broken.spec = None;
        let pods = [pod("kube-system", "dns", "coredns:latest"), pod("kube-devops", "w", "x:latest"), broken];
        let scores = score_pods(&pods, &baseline(), Timestamp::now());
        assert_eq!(scores, Scores { cluster: 100, ..Default::default() });
    }

    #[test]
    fn the_scores_match_what_analyze_reports_for_the_same_pods() {
        let pods = vec![pod("shop", "a", "nginx:latest"), pod("shop", "b", "redis")];
        let workloads: Vec<_> = pods
            .iter()
            .cloned()
            .filter_map(crate::workload::Workload::from_pod)
            .map(|workload| crate::audit::input::SourcedWorkload { source: "cluster".into(), workload })
            .collect();
        let report = crate::audit::report::AuditReport::build(
            crate::audit::PolicySource::bundle(crate::api::bundles::BundleName::Baseline),
            &baseline(),
            &workloads,
            Timestamp::now(),
        );
        let scores = score_pods(&pods, &baseline(), Timestamp::now());
        assert_eq!(scores.namespaces["shop"], report.namespaces[0].summary.score);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::api::bundles::{Bundle, BundleName};
    use crate::fixtures::TestPod;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn record(namespace: &str, name: &str, image: &str) -> crate::governance::facts::PodRecord {
        let mut pod = TestPod::new(name).in_namespace(namespace).compliant_container("app", image).json();
        pod["metadata"]["uid"] = json!(format!("{namespace}/{name}"));
        serde_json::from_value(pod).unwrap()
    }

    #[test]
    fn updating_the_changed_namespaces_gives_the_scores_of_a_full_rescore() {
        let rules = Rules::from_spec(&Bundle::of(BundleName::Baseline).spec);
        let now = Timestamp::now();
        let mut cache = PodCache::default();
        for pod in [record("shop", "a", "nginx:latest"), record("shop", "b", "nginx:1"), record("blog", "c", "ghost:5")]
        {
            cache.apply(Event::Apply(pod));
        }
        let mut scores = Scores::default();
        let changed = cache.take_changed();
        scores.update(&cache, changed.iter().map(|n| &**n), &rules, now);
        let full = |cache: &PodCache| {
            let pods: Vec<(&str, &PodFacts)> =
                cache.namespaces().flat_map(|ns| cache.pods(ns).map(move |p| (&**ns, &p.facts))).collect();
            Scores::of(pods, &rules, now)
        };
        assert_eq!(scores, full(&cache));
        assert_eq!(scores.pods, 3);

        // One namespace changes: only it is scored again, and the result is the same as a
        // full rescore; a namespace that lost its last pod leaves the scores.
        cache.apply(Event::Apply(record("shop", "a", "nginx:1.27")));
        cache.apply(Event::Delete(record("blog", "c", "ghost:5")));
        let changed = cache.take_changed();
        assert_eq!(changed.len(), 2);
        scores.update(&cache, changed.iter().map(|n| &**n), &rules, now);
        assert_eq!(scores, full(&cache));
        assert_eq!(scores.namespaces.keys().collect::<Vec<_>>(), ["shop"]);
        assert_eq!(scores.namespaces["shop"], 100);
    }
}
