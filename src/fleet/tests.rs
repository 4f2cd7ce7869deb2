use super::*;
use crate::api::bundles::{Bundle, BundleName};
use crate::audit::{AuditReport, SourcedWorkload};
use crate::fixtures::TestPod;

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn pod(namespace: &str, name: &str, image: &str) -> Workload {
    Workload::from_pod(TestPod::new(name).in_namespace(namespace).container("app", image).build()).unwrap()
}

fn baseline() -> Rules {
    Rules::from_spec(&Bundle::of(BundleName::Baseline).spec)
}

#[test]
fn a_cluster_scores_what_analyze_scores() {
    let pods = vec![pod("shop", "a", "nginx:latest"), pod("shop", "b", "nginx:1.27"), pod("batch", "c", "x:1")];
    let pods = [pods, vec![pod("kube-system", "dns", "coredns:latest")]].concat();
    let rules = baseline();
    let cluster = assess_cluster(&pods, &Judge::Rules(&rules), now());
    let sourced: Vec<SourcedWorkload> =
        pods.iter().map(|w| SourcedWorkload { source: w.name.clone(), workload: w.clone() }).collect();
    let analyze = AuditReport::build(crate::audit::PolicySource::bundle(BundleName::Baseline), &rules, &sourced, now());
    let report = report("bundle baseline".into(), vec![("a".into(), Ok(cluster))], true);
    assert_eq!(report.aggregate, analyze.summary);
    assert_eq!(report.clusters[0].skipped_system_workloads, analyze.skipped_system_workloads);
    let namespaces: Vec<(&str, &Summary)> =
        report.clusters[0].namespaces.iter().map(|n| (n.namespace.as_str(), &n.summary)).collect();
    let expected: Vec<(&str, &Summary)> =
        analyze.namespaces.iter().map(|n| (n.namespace.as_str(), &n.summary)).collect();
    assert_eq!(namespaces, expected);
}

#[test]
fn the_aggregate_weighs_every_pod_the_same() {
    let rules = baseline();
    // One pod with :latest and no readiness probe: 7 points -> 93. Three clean pods: 100.
    let small = assess_cluster(&[pod("shop", "a", "nginx:latest")], &Judge::Rules(&rules), now());
    let clean: Vec<Workload> = (0..3)
        .map(|i| Workload::from_pod(TestPod::new(&format!("p{i}")).compliant_container("c", "x:1").build()).unwrap())
        .collect();
    let large = assess_cluster(&clean, &Judge::Rules(&rules), now());
    let report = report("p".into(), vec![("small".into(), Ok(small)), ("large".into(), Ok(large))], false);
    let scores: Vec<(&str, u32, u32)> =
        report.clusters.iter().map(|c| (c.context.as_str(), c.summary.score, c.summary.subjects)).collect();
    assert_eq!(scores, [("large", 100, 3), ("small", 93, 1)]);
    // 7 points over 4 pods -> floor(1.75) = 1 -> 99 (the mean of the clusters would be 96).
    assert_eq!((report.aggregate.score, report.aggregate.subjects), (99, 4));
    assert!(report.clusters.iter().all(|c| c.namespaces.is_empty()), "namespaces only with --per-cluster");
}

fn policy(namespace: &str, name: &str, bundle: BundleName) -> DevOpsPolicy {
    Bundle::of(bundle).policy(namespace, Some(name.into()))
}

#[test]
fn cluster_policies_score_their_namespace_by_the_worst_and_skip_the_rest() {
    let pods = vec![
        pod("shop", "a", "nginx:1.27"),
        pod("batch", "b", "nginx:1.27"),
        pod("batch", "c", "nginx:1.27"),
        pod("kube-system", "d", "x:latest"),
    ];
    let policies = vec![
        policy("shop", "lenient", BundleName::Permissive),
        policy("shop", "strict", BundleName::Restricted),
        policy("kube-system", "ignored", BundleName::Restricted),
    ];
    let cluster = assess_cluster(&pods, &Judge::ClusterPolicies(&policies), now());
    assert_eq!(cluster.without_policy, Some(2));
    assert_eq!(cluster.skipped_system, 1);
    let shop = &cluster.namespaces["shop"];
    assert_eq!(shop.policy.as_deref(), Some("strict"));
    let strict = Rules::from_spec(&Bundle::of(BundleName::Restricted).spec);
    let alone = assess_cluster(&pods[..1], &Judge::Rules(&strict), now());
    assert_eq!(shop.tally, alone.namespaces["shop"].tally);
    assert_eq!(cluster.namespaces.len(), 1);
}

fn failure(status: Reachability) -> Failure {
    Failure { status, reason: "x".into() }
}

#[test]
fn the_exit_code_needs_one_cluster_read_and_gates_on_the_aggregate() {
    let rules = baseline();
    let read = || assess_cluster(&[pod("shop", "a", "nginx:latest")], &Judge::Rules(&rules), now());
    let none = report("p".into(), vec![("a".into(), Err(failure(Reachability::Unreachable)))], false);
    assert_eq!(exit_code(&none, None, false), crate::cli::exit::ERROR);
    let some = report(
        "p".into(),
        vec![("a".into(), Err(failure(Reachability::Unauthorised))), ("b".into(), Ok(read()))],
        false,
    );
    assert_eq!(some.failed[0].context, "a");
    assert_eq!(exit_code(&some, None, false), crate::cli::exit::OK);
    assert_eq!(exit_code(&some, Some(93), false), crate::cli::exit::OK);
    assert_eq!(exit_code(&some, Some(94), false), crate::cli::exit::BELOW_THRESHOLD);
    // --require-all: one unread cluster fails the gate, whatever the others score.
    assert_eq!(exit_code(&some, Some(93), true), crate::cli::exit::ERROR);
    let all = report("p".into(), vec![("b".into(), Ok(read()))], false);
    assert_eq!(exit_code(&all, Some(93), true), crate::cli::exit::OK);
}

#[test]
fn refusals_are_unauthorised_and_other_answers_errors() {
    let api =
        |code: u16| kube::Error::Api(Box::new(kube::core::Status { code, message: "no".into(), ..Default::default() }));
    assert_eq!(Failure::of(&api(401)).status, Reachability::Unauthorised);
    assert_eq!(Failure::of(&api(403)), Failure { status: Reachability::Unauthorised, reason: "no (HTTP 403)".into() });
    assert_eq!(Failure::of(&api(500)).status, Reachability::Error);
    let timed_out = Failure::timed_out(std::time::Duration::from_secs(2));
    assert_eq!((timed_out.status, timed_out.reason.as_str()), (Reachability::Unreachable, "no answer within 2s"));
}

#[test]
fn the_table_lists_clusters_the_total_and_what_was_not_read() {
    let rules = baseline();
    let cluster = assess_cluster(&[pod("shop", "a", "nginx:latest")], &Judge::Rules(&rules), now());
    let outcomes = vec![("prod".into(), Ok(cluster)), ("lab".into(), Err(failure(Reachability::Unreachable)))];
    let table =
        render::render(&report("bundle baseline".into(), outcomes, true), crate::audit::render::OutputFormat::Table);
    assert_eq!(
        table,
        "Policy: bundle baseline\n\nCLUSTER               PODS  VIOLATIONS  SCORE  CLASSIFICATION\n\
         prod                  1     2           93     Healthy\nTOTAL (pod-weighted)  1     2           93     Healthy\n\n\
         Cluster prod:\nNAMESPACE  PODS  VIOLATIONS  SCORE  CLASSIFICATION\nshop       1     2           93     Healthy\n\n\
         Not read:\nlab  unreachable  x\n"
    );
}
