//! End to end on the testkit API server: the reconcile operator and the admission webhook,
//! installed with `deploy generate-all`, and a namespace whose policy is switched from
//! `audit` to `enforce`. The operator patches the one Deployment it can fix (resources and a
//! readiness probe on its declared port), the Deployment rolls out, the webhook lets the patch
//! through (and refuses a user's edit that takes the fix back out), and nothing is patched
//! twice. The Deployment that opted out, the one whose image the policy forbids, and the one
//! whose annotation a GitOps tool owns are left as they are, each reported in the status; a
//! dry-run policy in another namespace reports what it would do and writes nothing; the
//! remediation counters are exported from the start.

mod common;

use common::e2e::{
    apply_ok, cluster_running_kube_devops, http_get, install_file, lease_holder, refused, render, sample, wait_ready,
    wait_until,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube_devops::api::DevOpsPolicy;
use kube_devops::api::policy::RemediationResult;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;

const ENFORCER: &str = "kube-devops-enforcer";
const PATCHED_BY: &str = "devops.stochastic.io/patched-by";

fn deployment(namespace: &str, name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}}}})
}

fn policy(namespace: &str, name: &str, mode: &str, dry_run: bool) -> Value {
    json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy", "metadata": {"name": name, "namespace": namespace},
        "spec": {"enforcementMode": mode, "forbidLatestTag": true, "requireResources": true, "requireReadinessProbe": true,
            "defaultProbe": {}, "defaultResources": {"memoryLimit": "512Mi"}, "remediation": {"dryRun": dry_run}}})
}

fn yaml(objects: &[Value]) -> String {
    objects.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("\n---\n")
}

fn leader_metrics(cluster: &TestCluster) -> Option<String> {
    let (_, ip) = lease_holder(cluster, "kube-devops-reconcile")?;
    http_get(&ip, 9090, "/metrics")
}

/// Patches of the enforcer to Deployments in `namespace`, with their answers.
fn enforcer_patches(cluster: &TestCluster, namespace: &str) -> Vec<(String, u16)> {
    let requests = cluster.requests();
    let patches = requests.iter().filter(|r| {
        r.resource == "deployments"
            && r.verb == "patch"
            && r.namespace == namespace
            && r.field_manager.as_deref() == Some(ENFORCER)
    });
    patches.map(|r| (r.path.rsplit('/').next().unwrap_or_default().to_string(), r.code)).collect()
}

fn has_limits(pod_spec: &k8s_openapi::api::core::v1::PodSpec) -> bool {
    pod_spec.containers.iter().all(|c| c.resources.as_ref().is_some_and(|r| r.limits.is_some()))
}

#[tokio::test(flavor = "multi_thread")]
async fn enforce_mode_fixes_what_it_may_rolls_it_out_once_and_reports_the_rest() {
    let cluster = cluster_running_kube_devops();
    let install = install_file(
        "  watch: {enabled: false}\n  serviceMonitor: {enabled: false}\n  reconcile: {evaluationIntervalSeconds: 2}\n",
    );
    apply_ok(&cluster, &render("generate-all", &install));
    wait_ready(&cluster, "kube-devops-reconcile", 2).await;
    wait_ready(&cluster, "kube-devops-webhook", 2).await;
    let client = cluster.client().await;

    // Present from the start, before any policy enforces anything.
    let metrics = wait_until("the leader's metrics", 30, || async { leader_metrics(&cluster) }).await;
    assert_eq!(sample(&metrics, "devopspolicy_remediations_applied_total"), Some(0.0), "{metrics}");
    assert_eq!(sample(&metrics, "devopspolicy_remediations_failed_total"), Some(0.0));

    // The workloads exist while the policies only audit (the webhook warns, and lets them in).
    let mut legacy = deployment("shop", "legacy", "legacy:3");
    legacy["metadata"]["annotations"] = json!({"devops.stochastic.io/enforce": "false"});
    let namespaces = json!([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging"}}]);
    let mut objects: Vec<Value> = namespaces.as_array().unwrap().clone();
    objects.extend([
        deployment("shop", "web", "web:1.4"),
        legacy,
        deployment("shop", "tagged", "tagged:latest"),
        deployment("staging", "web", "web:1.5"),
        policy("shop", "strict", "audit", false),
        policy("staging", "preview", "enforce", true),
    ]);
    apply_ok(&cluster, &yaml(&objects));
    // Applied by a GitOps tool from a repository that kept an earlier remediation's annotation.
    let mut gitops = deployment("shop", "gitops", "gitops:2");
    gitops["spec"]["template"]["metadata"]["annotations"] = json!({PATCHED_BY: "baseline"});
    let shop: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    shop.patch("gitops", &PatchParams::apply("argocd-controller"), &Patch::Apply(&gitops)).await.unwrap();
    for name in ["web", "legacy", "tagged", "gitops"] {
        wait_until(&format!("{name} to be available"), 60, || async {
            (shop.get(name).await.ok()?.status?.available_replicas == Some(2)).then_some(())
        })
        .await;
    }
    let policies: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "shop");
    wait_until("the audit evaluation of all 8 pods", 45, || async {
        let message = policies.get("strict").await.ok()?.status?.message?;
        message.contains("across 8 pods").then_some(())
    })
    .await;
    let status = policies.get("strict").await.unwrap().status.unwrap();
    assert_eq!((status.remediations_applied, status.remediated_workloads.len()), (None, 0), "audit mode: none");
    assert!(enforcer_patches(&cluster, "shop").is_empty(), "audit mode patches nothing");

    // Enforce: the one fixable Deployment is patched, and the status says what happened.
    let started = Instant::now();
    let enforce = Patch::Merge(json!({"spec": {"enforcementMode": "enforce"}}));
    policies.patch("strict", &PatchParams::default(), &enforce).await.unwrap();
    let status = wait_until("the enforce round's status", 45, || async {
        let status = policies.get("strict").await.ok()?.status?;
        (status.remediations_applied == Some(1)).then_some(status)
    })
    .await;
    eprintln!("remediated {:?} after the switch to enforce", started.elapsed());
    let outcome = |workload: &str| {
        let record = status.remediated_workloads.iter().find(|r| r.workload == workload);
        record.map(|r| (r.result, r.changes.clone()))
    };
    assert_eq!(
        outcome("Deployment/web"),
        Some((RemediationResult::Applied, "app: resources, readinessProbe".to_string()))
    );
    assert_eq!(outcome("Deployment/legacy").map(|o| o.0), Some(RemediationResult::Skipped));
    assert_eq!(outcome("Deployment/tagged").map(|o| o.0), Some(RemediationResult::Skipped));
    assert_eq!(outcome("Deployment/gitops").map(|o| o.0), Some(RemediationResult::Conflict));
    assert_eq!(status.remediations_failed, Some(1));
    let tagged = status.remediated_workloads.iter().find(|r| r.workload == "Deployment/tagged").unwrap();
    assert!(tagged.message.as_deref().unwrap().contains("latest_tag"), "{tagged:?}");

    // The patch: the policy's values, the declared port, the annotation; the image untouched.
    let web = shop.get("web").await.unwrap();
    let template = web.spec.as_ref().unwrap().template.clone();
    let container = &template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("web:1.4"));
    assert_eq!(container.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0, "512Mi");
    let probe = container.readiness_probe.as_ref().unwrap().tcp_socket.as_ref().unwrap();
    assert_eq!(probe.port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080));
    assert_eq!(template.metadata.unwrap().annotations.unwrap()[PATCHED_BY], "strict");

    // Rolled out: every pod of web runs the fixed template.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    wait_until("web to roll out", 60, || async {
        let d = shop.get("web").await.ok()?;
        let s = d.status.as_ref()?;
        let done = s.observed_generation == d.metadata.generation
            && s.updated_replicas == Some(2)
            && s.replicas == Some(2)
            && s.available_replicas == Some(2);
        let listed = pods.list(&ListParams::default().labels("app=web")).await.ok()?.items;
        (done && listed.len() == 2 && listed.iter().all(|p| has_limits(p.spec.as_ref().unwrap()))).then_some(())
    })
    .await;
    eprintln!("rolled out {:?} after the switch to enforce", started.elapsed());

    // Kept: the opted-out and forbidden-image Deployments, and the GitOps tool's annotation.
    for name in ["legacy", "tagged", "gitops"] {
        let d = shop.get(name).await.unwrap();
        assert!(!has_limits(d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()), "{name} was not patched");
    }
    let gitops = shop.get("gitops").await.unwrap();
    assert_eq!(gitops.spec.unwrap().template.metadata.unwrap().annotations.unwrap()[PATCHED_BY], "baseline");

    // Nothing patched twice: over three more evaluations, web gets no other patch and no new
    // generation (only the conflicting apply is tried again, and refused).
    let generation = shop.get("web").await.unwrap().metadata.generation;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let patches = enforcer_patches(&cluster, "shop");
    let web_patches: Vec<_> = patches.iter().filter(|(name, _)| name == "web").collect();
    assert_eq!(web_patches, [&("web".to_string(), 200)], "{patches:?}");
    assert!(patches.iter().all(|(name, code)| name == "web" || (name == "gitops" && *code == 409)), "{patches:?}");
    assert_eq!(shop.get("web").await.unwrap().metadata.generation, generation);
    let status = policies.get("strict").await.unwrap().status.unwrap();
    assert_eq!(status.remediations_applied, Some(0), "the last evaluation patched nothing");
    assert!(status.remediated_workloads.iter().all(|r| r.workload != "Deployment/web"), "{status:?}");

    // The webhook judges the Deployment like any other: taking the probe back out is refused.
    let undo = json!([{"op": "remove", "path": "/spec/template/spec/containers/0/readinessProbe"}]);
    let refused_edit =
        shop.patch("web", &PatchParams::default(), &Patch::Json::<()>(serde_json::from_value(undo).unwrap())).await;
    match refused_edit {
        Err(kube::Error::Api(e)) => assert!(e.message.contains("DevOpsPolicy strict"), "{}", e.message),
        other => panic!("the webhook should refuse the edit: {other:?}"),
    }

    // Events where `kubectl describe` shows them.
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    let listed = events.list(&ListParams::default()).await.unwrap().items;
    let on = |kind: &str, name: &str, reason: &str| {
        listed.iter().any(|e| {
            let regarding = e.regarding.as_ref().unwrap();
            regarding.kind.as_deref() == Some(kind)
                && regarding.name.as_deref() == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
    };
    assert!(on("Deployment", "web", "Remediated") && on("DevOpsPolicy", "strict", "Remediated"));
    assert!(on("Deployment", "gitops", "RemediationFailed"));

    // The dry run: planned, reported, not written.
    let staging: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "staging");
    let preview = wait_until("the dry run's status", 30, || async {
        let status = staging.get("preview").await.ok()?.status?;
        (!status.remediated_workloads.is_empty()).then_some(status)
    })
    .await;
    assert_eq!(preview.remediated_workloads[0].result, RemediationResult::Planned);
    assert_eq!(preview.remediated_workloads[0].changes, "app: resources, readinessProbe");
    assert!(enforcer_patches(&cluster, "staging").is_empty());
    let staged: Api<Deployment> = Api::namespaced(client.clone(), "staging");
    assert!(!has_limits(staged.get("web").await.unwrap().spec.unwrap().template.spec.as_ref().unwrap()));

    // The counters: one patch applied, and the refused applies counted as failures.
    let metrics = leader_metrics(&cluster).unwrap();
    assert_eq!(sample(&metrics, "devopspolicy_remediations_applied_total"), Some(1.0), "{metrics}");
    let failed = sample(&metrics, "devopspolicy_remediations_failed_total").unwrap();
    let conflicts = enforcer_patches(&cluster, "shop").iter().filter(|(_, code)| *code == 409).count();
    assert!(failed >= 1.0 && failed <= conflicts as f64, "{failed} failures, {conflicts} refused applies");
    // `kubectl get dop -o wide` shows the remediation columns.
    let table =
        String::from_utf8_lossy(&cluster.kubectl(&["get", "dop", "-n", "shop", "-o", "wide"]).stdout).to_string();
    assert!(table.contains("REMEDIATED") && table.contains("UNREMEDIATED"), "{table}");

    let user = "system:serviceaccount:kube-devops:kube-devops";
    let refused = refused(&cluster, user);
    assert!(refused.is_empty(), "RBAC lets enforcement do what it needs: {refused:?}");
}
