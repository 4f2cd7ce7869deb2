//! The watch controller (`kube-devops watch`): the leader of its replicas watches every pod
//! and exports health scores per namespace and for the cluster. [`score_pods`] is the pure
//! part; [`controller`] is the shell (HTTP endpoints, leader election, the pod watch).
//!
//! Pods are scored with the same evaluator and rules as `kube-devops analyze` (the baseline
//! bundle by default), so the two never disagree about the same pods.

pub mod controller;

use crate::governance::{Rules, assess, pod_subject};
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
}

/// Scores `pods` against `rules` at `now` (the time Pending durations are measured to).
pub fn score_pods<'a>(pods: impl IntoIterator<Item = &'a Pod>, rules: &Rules, now: Timestamp) -> Scores {
    let assessment = assess(pods, rules, now, pod_subject, |_, _, _| {});
    let namespaces: BTreeMap<String, u32> =
        assessment.namespaces.iter().map(|(ns, tally)| (ns.clone(), tally.score())).collect();
    let cluster = match namespaces.len() as u64 {
        0 => 100,
        n => (namespaces.values().map(|s| u64::from(*s)).sum::<u64>() / n) as u32,
    };
    Scores { namespaces, cluster, pods: u64::from(assessment.total().subjects()) }
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
        assert_eq!(scores, Scores { namespaces: BTreeMap::new(), cluster: 100, pods: 0 });
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
        let report =
            crate::audit::report::AuditReport::build("baseline".into(), &baseline(), &workloads, Timestamp::now());
        let scores = score_pods(&pods, &baseline(), Timestamp::now());
        assert_eq!(scores.namespaces["shop"], report.namespaces[0].summary.score);
    }
}
