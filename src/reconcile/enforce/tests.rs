//! Enforcement against the testkit API server, in process: Deployments rolled out by its
//! controllers, field ownership by server-side apply, Events.

use super::*;
use crate::api::policy::{DefaultProbe, DefaultResources, RemediationSpec};
use crate::api::{DevOpsPolicySpec, DevOpsPolicyStatus};
use crate::fixtures::cluster_with_crds;
use crate::metrics::catalog;
use crate::metrics::{Metrics, counter};
use crate::reconcile::owned::extract;
use crate::reconcile::remediation::PATCHED_BY;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use testkit::harness::TestCluster;

const OWNER: &str = "argocd-controller";

struct Setup {
    cluster: TestCluster,
    client: kube::Client,
    enforcer: Enforcer,
    metrics: Metrics,
}

async fn setup() -> Setup {
    let cluster = cluster_with_crds();
    cluster.kubectl(&["create", "namespace", "shop"]);
    let client = cluster.client().await;
    let metrics = Metrics::new().unwrap();
    let meter = metrics.meter();
    let (applied, failed) =
        (counter(&meter, &catalog::REMEDIATIONS_APPLIED), counter(&meter, &catalog::REMEDIATIONS_FAILED));
    let enforcer = Enforcer::new(client.clone(), Events::new(client.clone(), "kube-devops-reconcile"), applied, failed);
    Setup { cluster, client, enforcer, metrics }
}

fn deployments(client: &kube::Client) -> Api<Deployment> {
    Api::namespaced(client.clone(), "shop")
}

/// A Deployment of one replica as a GitOps tool would apply it.
fn deployment(name: &str, containers: Value, template_annotations: Option<Value>, annotations: Option<Value>) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}});
    if let Some(a) = template_annotations {
        d["spec"]["template"]["metadata"]["annotations"] = a;
    }
    if let Some(a) = annotations {
        d["metadata"]["annotations"] = a;
    }
    d
}

/// Server-side applies `body` as [`OWNER`].
async fn owner_applies(client: &kube::Client, body: Value) {
    let name = body["metadata"]["name"].as_str().unwrap().to_string();
    deployments(client).patch(&name, &PatchParams::apply(OWNER), &Patch::Apply(body)).await.unwrap();
}

fn app(name: &str, port: i32) -> Value {
    json!({"name": name, "image": format!("{name}:1"), "ports": [{"containerPort": port}]})
}

fn enforcing(remediation: Option<RemediationSpec>) -> DevOpsPolicySpec {
    DevOpsPolicySpec {
        require_resources: Some(true),
        require_readiness_probe: Some(true),
        enforcement_mode: Some(crate::api::EnforcementMode::Enforce),
        default_probe: Some(DefaultProbe::default()),
        default_resources: Some(DefaultResources::default()),
        remediation,
        ..Default::default()
    }
}

async fn create_policy(client: &kube::Client, name: &str, spec: DevOpsPolicySpec) -> DevOpsPolicy {
    let policies: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "shop");
    policies.create(&PostParams::default(), &DevOpsPolicy::new(name, spec)).await.unwrap()
}

/// The controllers of the pods of Deployment `name` (its ReplicaSets), once a pod exists.
async fn owners_of(client: &kube::Client, name: &str) -> Vec<OwnerReference> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    for _ in 0..100 {
        let listed = pods.list(&ListParams::default().labels(&format!("app={name}"))).await.unwrap().items;
        if let Some(pod) = listed.first() {
            return vec![controller(&pod.metadata).cloned().unwrap()];
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no pod of {name}");
}

fn container<'a>(d: &'a Deployment, name: &str) -> &'a k8s_openapi::api::core::v1::Container {
    let spec = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    spec.containers.iter().find(|c| c.name == name).unwrap()
}

/// Whether a container has resource limits (the server gives every container `resources: {}`).
fn limited(c: &k8s_openapi::api::core::v1::Container) -> bool {
    c.resources.as_ref().is_some_and(|r| r.limits.is_some())
}

fn patches(cluster: &TestCluster, resource: &str) -> usize {
    cluster.requests().iter().filter(|r| r.resource == resource && r.verb == "patch").count()
}

async fn events(client: &kube::Client, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    let all = events.list(&ListParams::default()).await.unwrap().items;
    all.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).collect()
}

#[tokio::test]
async fn a_deployment_is_fixed_once_rolled_out_and_its_owners_fields_stay_theirs() {
    let Setup { cluster, client, enforcer, metrics } = setup().await;
    owner_applies(&client, deployment("web", json!([app("app", 8080)]), None, None)).await;
    let policy = create_policy(&client, "strict", enforcing(None)).await;
    let owners = owners_of(&client, "web").await;

    let round = enforcer.remediate(&policy, &owners, &[], Timestamp::now()).await.unwrap();
    let applied = RemediationRecord {
        workload: "Deployment/web".into(),
        result: RemediationResult::Applied,
        changes: "app: resources, readinessProbe".into(),
        message: None,
    };
    assert_eq!((round.applied, round.failed, round.records), (1, 0, vec![applied]));
    let web = deployments(&client).get("web").await.unwrap();
    let fixed = container(&web, "app");
    assert_eq!(fixed.image.as_deref(), Some("app:1"));
    let probe = fixed.readiness_probe.as_ref().unwrap().tcp_socket.as_ref().unwrap();
    assert_eq!(probe.port, IntOrString::Int(8080), "the port the container declares");
    assert!(limited(fixed));
    let annotations = web.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.clone().unwrap();
    assert_eq!(annotations[PATCHED_BY], "strict");
    // Enforcement owns what it set and nothing else; the owner still owns the image.
    let value = serde_json::to_value(&web).unwrap();
    let mine = extract(&value, FIELD_MANAGER).unwrap();
    assert!(mine["spec"]["template"]["spec"]["containers"][0].get("image").is_none(), "{mine}");
    assert_eq!(extract(&value, OWNER).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"], "app:1");
    assert!(metrics.render().contains("devopspolicy_remediations_applied_total 1"), "{}", metrics.render());
    assert_eq!(events(&client, "Remediated").await.len(), 2, "on the Deployment and on the policy");

    // The Deployment rolls out: its new pods carry the resources.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    for attempt in 0.. {
        let listed = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
        let rolled = listed.iter().all(|p| limited(&p.spec.as_ref().unwrap().containers[0]));
        if rolled && !listed.is_empty() {
            break;
        }
        assert!(attempt < 200, "not rolled out: {listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Evaluated again (the old ReplicaSet's pods, then the new ones): nothing to do, no write.
    cluster.clear_requests();
    let owners_now = owners_of(&client, "web").await;
    for owners in [&owners, &owners_now] {
        let round = enforcer.remediate(&policy, owners, &[], Timestamp::now()).await.unwrap();
        assert_eq!(round, Round::default());
    }
    assert_eq!(patches(&cluster, "deployments"), 0, "no second patch");

    // The owner adds a container with its own apply (which leaves enforcement's fields alone);
    // enforcement's next apply must carry its first one, or the server would take it away.
    owner_applies(&client, deployment("web", json!([app("app", 8080), app("sidecar", 9000)]), None, None)).await;
    let round = enforcer.remediate(&policy, &owners_now, &[], Timestamp::now()).await.unwrap();
    assert_eq!(round.records[0].changes, "sidecar: resources, readinessProbe");
    let web = deployments(&client).get("web").await.unwrap();
    for name in ["app", "sidecar"] {
        let c = container(&web, name);
        assert!(limited(c) && c.readiness_probe.is_some(), "{name}: {c:?}");
    }
}

#[tokio::test]
async fn another_managers_field_an_opt_out_and_the_rate_limit_are_respected() {
    let Setup { cluster, client, enforcer, metrics } = setup().await;
    // Exported from a cluster after an earlier remediation and committed: the GitOps tool
    // owns the annotation with another value.
    let gitops = deployment("gitops", json!([app("app", 80)]), Some(json!({PATCHED_BY: "baseline"})), None);
    owner_applies(&client, gitops).await;
    let legacy =
        deployment("legacy", json!([app("app", 80)]), None, Some(json!({"devops.stochastic.io/enforce": "false"})));
    owner_applies(&client, legacy).await;
    for name in ["a", "b"] {
        owner_applies(&client, deployment(name, json!([app("app", 80)]), None, None)).await;
    }
    let rate = RemediationSpec { max_workloads_per_minute: Some(1), ..Default::default() };
    let policy = create_policy(&client, "strict", enforcing(Some(rate))).await;
    let mut owners = Vec::new();
    for name in ["gitops", "legacy", "a", "b"] {
        owners.extend(owners_of(&client, name).await);
    }
    cluster.clear_requests();
    let round = enforcer.remediate(&policy, &owners, &[], Timestamp::now()).await.unwrap();
    let results: Vec<(&str, RemediationResult)> =
        round.records.iter().map(|r| (r.workload.as_str(), r.result)).collect();
    assert_eq!(
        results,
        [
            ("Deployment/gitops", RemediationResult::Conflict),
            ("Deployment/legacy", RemediationResult::Skipped),
            ("Deployment/a", RemediationResult::Applied),
            ("Deployment/b", RemediationResult::Deferred),
        ]
    );
    assert_eq!((round.applied, round.failed), (1, 1));
    assert!(round.records[0].message.as_deref().unwrap().contains(OWNER), "{:?}", round.records[0]);
    let kept = deployments(&client).get("gitops").await.unwrap();
    assert_eq!(kept.spec.unwrap().template.metadata.unwrap().annotations.unwrap()[PATCHED_BY], "baseline");
    for (name, why) in [("gitops", "nothing of it applied"), ("legacy", "opted out"), ("b", "next minute")] {
        assert!(!limited(container(&deployments(&client).get(name).await.unwrap(), "app")), "{name}: {why}");
    }
    let patched: Vec<String> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments" && r.verb == "patch")
        .map(|r| format!("{} {}", r.path.rsplit('/').next().unwrap(), r.code))
        .collect();
    assert_eq!(patched, ["gitops 409", "a 200"]);
    let failed = events(&client, "RemediationFailed").await;
    assert_eq!(failed.len(), 2, "on the Deployment and the policy");
    assert_eq!(failed[0].type_.as_deref(), Some("Warning"));
    let rendered = metrics.render();
    assert!(rendered.contains("devopspolicy_remediations_failed_total 1"), "{rendered}");

    // The next round announces nothing it announced already.
    let previous = DevOpsPolicyStatus { remediated_workloads: round.records.clone(), ..Default::default() };
    let policy = DevOpsPolicy { status: Some(previous), ..policy };
    enforcer.remediate(&policy, &owners[..2], &[], Timestamp::now()).await.unwrap();
    assert_eq!(events(&client, "RemediationFailed").await.len(), 2, "no new Event for the same conflict");
}

#[tokio::test]
async fn a_dry_run_and_an_opted_out_namespace_write_nothing() {
    let Setup { cluster, client, enforcer, .. } = setup().await;
    owner_applies(&client, deployment("web", json!([app("app", 80)]), None, None)).await;
    let dry = RemediationSpec { dry_run: Some(true), ..Default::default() };
    let policy = create_policy(&client, "preview", enforcing(Some(dry))).await;
    let owners = owners_of(&client, "web").await;
    cluster.clear_requests();
    let round = enforcer.remediate(&policy, &owners, &[], Timestamp::now()).await.unwrap();
    assert_eq!(round.records[0].result, RemediationResult::Planned);
    assert_eq!(round.records[0].changes, "app: resources, readinessProbe");
    assert_eq!(patches(&cluster, "deployments"), 0);
    let planned = events(&client, "RemediationPlanned").await;
    assert!(planned.iter().any(|e| e.note.as_deref().unwrap().starts_with("Deployment/web: would set app: resources")));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let opt_out = json!({"metadata": {"annotations": {"devops.stochastic.io/enforce": "false"}}});
    namespaces.patch("shop", &PatchParams::default(), &Patch::Merge(opt_out)).await.unwrap();
    let policy = create_policy(&client, "strict", enforcing(None)).await;
    cluster.clear_requests();
    let round = enforcer.remediate(&policy, &owners, &[], Timestamp::now()).await.unwrap();
    assert_eq!(round.records[0].workload, "Namespace/shop");
    assert_eq!(round.records[0].result, RemediationResult::Skipped);
    assert!(!cluster.requests().iter().any(|r| r.resource == "deployments"), "not even read");
}

#[tokio::test]
async fn a_cronjobs_template_gets_resources_and_no_probes() {
    let Setup { cluster: _cluster, client, enforcer, .. } = setup().await;
    let cron: CronJob =
        serde_json::from_value(json!({"metadata": {"name": "nightly"}, "spec": {"schedule": "0 3 * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [app("run", 80)]}}}}}}))
        .unwrap();
    let cron = Api::<CronJob>::namespaced(client.clone(), "shop").create(&PostParams::default(), &cron).await.unwrap();
    let owner = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: "nightly".into(),
        uid: cron.metadata.uid.clone().unwrap(),
        controller: Some(true),
        ..Default::default()
    };
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "nightly-1", "ownerReferences": [owner]},
        "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [app("run", 80)]}}}}))
    .unwrap();
    let job = Api::<Job>::namespaced(client.clone(), "shop").create(&PostParams::default(), &job).await.unwrap();
    let job_ref = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: "nightly-1".into(),
        uid: job.metadata.uid.unwrap(),
        controller: Some(true),
        ..Default::default()
    };
    let policy = create_policy(&client, "strict", enforcing(None)).await;
    let round = enforcer.remediate(&policy, &[job_ref], &[], Timestamp::now()).await.unwrap();
    assert_eq!(round.records[0].workload, "CronJob/nightly");
    assert_eq!(round.records[0].changes, "run: resources", "a Job's pods run to completion: no probe");
    let cron = Api::<CronJob>::namespaced(client, "shop").get("nightly").await.unwrap();
    let template = cron.spec.unwrap().job_template.spec.unwrap().template;
    assert!(limited(&template.spec.unwrap().containers[0]));
    assert_eq!(template.metadata.unwrap().annotations.unwrap()[PATCHED_BY], "strict");
}
