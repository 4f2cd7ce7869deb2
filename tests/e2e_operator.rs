//! End to end on the testkit API server: `kubectl apply -k config/default` installs the
//! bootstrap operator, which runs this binary under its own least-privilege RBAC. The sample
//! (`kubectl apply -k config/samples`), on a cluster without the Prometheus Operator, makes it
//! install the three components (webhook TLS included; every one this binary too) until the
//! install reports Available and not Degraded, ServiceMonitors skipped until their CRD
//! appears and created then; it heals a deleted Service and an edited Deployment, scales when the
//! install is edited, keeps the webhook's certificate across reconciles, and removes a
//! component that is switched off. A deleted ClusterRole is put back within seconds too.

mod common;

use common::e2e::condition;

use common::e2e::{
    apply_ok, cluster_running_kube_devops, http_get, install_file, lease_holder, refused, sample, wait_until,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube_devops::api::KubeDevopsInstall;
use kube_devops::api::install::IntegrationState;
use std::time::Instant;

fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"))
}

async fn ready_replicas(deployments: &Api<Deployment>, name: &str) -> Option<i32> {
    deployments.get_opt(name).await.ok()??.status?.ready_replicas
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_installs_heals_scales_and_removes_components() {
    let cluster = cluster_running_kube_devops();
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The sample, as a new user applies it, on a cluster without the Prometheus Operator.
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/samples").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Policies evaluated every 2 s, so a few seconds span several evaluations (below).
    let interval = r#"{"spec": {"reconcile": {"evaluationIntervalSeconds": 2}}}"#;
    let out = cluster.kubectl(&["patch", "kubedevopsinstall", "default", "--type=merge", "-p", interval]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let client = cluster.client().await;
    let installs: Api<KubeDevopsInstall> = Api::all(client.clone());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-devops");
    let started = Instant::now();
    wait_until("the install to become Available", 90, || async {
        let install = installs.get("default").await.ok()?;
        (condition(&install, "Available").as_deref() == Some("True")).then_some(())
    })
    .await;
    eprintln!("Available after {:?}", started.elapsed());
    // The edit of the evaluation interval may still be rolling out.
    let installed = wait_until("the rollout to finish", 60, || async {
        let install = installs.get("default").await.ok()?;
        (condition(&install, "Progressing").as_deref() == Some("False")
            && install.status.as_ref()?.observed_generation == install.metadata.generation)
            .then_some(install)
    })
    .await;
    let status = installed.status.clone().unwrap();
    assert_eq!(status.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(status.components.webhook.as_ref().map(|c| c.ready_replicas), Some(2));
    assert_eq!(status.components.watch.as_ref().map(|c| c.ready_replicas), Some(2));
    assert_eq!(status.components.reconcile.as_ref().map(|c| c.ready_replicas), Some(2), "every component runs");
    let out = cluster.kubectl(&["wait", "kubedevopsinstall/default", "--for=condition=Available", "--timeout=10s"]);
    assert!(out.status.success(), "kubectl wait: {}", String::from_utf8_lossy(&out.stderr));
    // The operator's own metrics: its reconciles by result, and that it leads.
    let (_, operator_ip) = lease_holder(&cluster, "kube-devops-operator").expect("the operator leads");
    let metrics = http_get(&operator_ip, 8081, "/metrics").expect("the operator's /metrics");
    let applied = sample(&metrics, "kubedevopsinstall_reconcile_total{result=\"applied\"}");
    assert!(applied.is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(metrics.contains("kubedevopsinstall_reconcile_duration_seconds_bucket"), "{metrics}");
    assert_eq!(sample(&metrics, "kube_devops_leader{component=\"operator\"}"), Some(1.0), "{metrics}");
    // Healthy on a plain cluster: ServiceMonitors are skipped, and the status says why.
    assert_eq!(condition(&installed, "Degraded").as_deref(), Some("False"), "{:?}", status.conditions);
    let monitors = &status.integrations[0];
    assert_eq!((monitors.name.as_str(), monitors.state), ("serviceMonitors", IntegrationState::Skipped));
    assert!(monitors.message.contains("monitoring.coreos.com/v1"), "{}", monitors.message);

    // The Prometheus Operator's CRDs arrive later: the ServiceMonitors follow within seconds.
    apply_ok(&cluster, &common::e2e::service_monitor_crd().to_string());
    let monitors_api =
        Api::<DynamicObject>::namespaced_with(client.clone(), "kube-devops", &service_monitor_resource());
    let arrived = Instant::now();
    wait_until("the ServiceMonitors to be created", 30, || async {
        (monitors_api.list(&Default::default()).await.ok()?.items.len() == 3).then_some(())
    })
    .await;
    eprintln!("ServiceMonitors created {:?} after their CRD", arrived.elapsed());
    wait_until("the status to show them", 30, || async {
        let install = installs.get("default").await.ok()?;
        let state = install.status?.integrations.first()?.state;
        (state == IntegrationState::Active).then_some(())
    })
    .await;

    // The webhook TLS the operator minted: the caBundle is the Secret's CA.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-devops");
    let secret = secrets.get("kube-devops-webhook-tls").await.unwrap();
    let ca = secret.data.as_ref().unwrap()["ca.crt"].0.clone();
    let vwc = cluster.kubectl(&[
        "get",
        "validatingwebhookconfiguration",
        "kube-devops-webhook",
        "-o",
        "jsonpath={.webhooks[0].clientConfig.caBundle}",
    ]);
    assert_eq!(openssl::base64::decode_block(String::from_utf8_lossy(&vwc.stdout).trim()).unwrap(), ca);

    // Idle means idle: once everything has settled, the whole platform (operator, watch,
    // reconcile with a policy evaluated every 2 s, webhook) writes nothing but its Leases.
    let writes = || {
        let requests = cluster.requests();
        let other: Vec<String> = requests
            .iter()
            .filter(|r| r.is_write() && r.resource != "leases")
            .map(|r| format!("{} {} {}", r.verb, r.path, r.user_agent))
            .collect();
        (other, requests.iter().filter(|r| r.is_write() && r.resource == "leases").count())
    };
    let settled = Instant::now();
    let mut last = writes().0.len();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let now = writes().0.len();
        if now == last {
            break;
        }
        assert!(settled.elapsed().as_secs() < 90, "never quiet: {:#?}", &writes().0[last..]);
        last = now;
    }
    let (before, leases_before) = writes();
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let (after, leases_after) = writes();
    assert_eq!(after[before.len()..], [] as [String; 0], "writes while nothing changed");
    eprintln!("idle for 8 s (4 evaluation intervals): 0 writes but {} lease renewals", leases_after - leases_before);

    // Healing: a deleted Service comes back; a hand-edited Deployment is put back.
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-devops");
    services.delete("kube-devops-webhook", &DeleteParams::default()).await.unwrap();
    let healed = Instant::now();
    wait_until("the webhook Service to come back", 30, || async {
        services.get_opt("kube-devops-webhook").await.ok()?
    })
    .await;
    eprintln!("Service recreated after {:?}", healed.elapsed());
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles.delete("kube-devops", &DeleteParams::default()).await.unwrap();
    wait_until("the components' ClusterRole to come back", 10, || async { roles.get_opt("kube-devops").await.ok()? })
        .await;
    let scale = Patch::Merge(serde_json::json!({"spec": {"replicas": 1}}));
    deployments.patch("kube-devops-watch", &PatchParams::default(), &scale).await.unwrap();
    wait_until("the watch Deployment to be put back to 2 replicas", 30, || async {
        let d = deployments.get("kube-devops-watch").await.ok()?;
        (d.spec?.replicas == Some(2)).then_some(())
    })
    .await;

    // `kubectl edit kubedevopsinstall`: 3 replicas, and the watch controller switched off.
    let edit = Patch::Merge(serde_json::json!({"spec": {"replicas": 3, "watch": {"enabled": false}}}));
    installs.patch("default", &PatchParams::default(), &edit).await.unwrap();
    wait_until("3 ready webhook replicas", 60, || async {
        (ready_replicas(&deployments, "kube-devops-webhook").await? == 3).then_some(())
    })
    .await;
    wait_until("the watch Deployment to go", 30, || async {
        deployments.get_opt("kube-devops-watch").await.ok()?.is_none().then_some(())
    })
    .await;
    let install = wait_until("the status to follow the edit", 30, || async {
        let install = installs.get("default").await.ok()?;
        let status = install.status.as_ref()?;
        (status.observed_generation == install.metadata.generation
            && condition(&install, "Available").as_deref() == Some("True"))
        .then_some(install)
    })
    .await;
    assert!(install.status.unwrap().components.watch.is_none());

    // The certificate was kept through every reconcile.
    let kept = secrets.get("kube-devops-webhook-tls").await.unwrap();
    assert_eq!(kept.data.unwrap()["ca.crt"].0, ca, "the webhook's CA was not rotated");

    // `kubectl describe kubedevopsinstall default` tells when the certificate was issued (the
    // Event of a cluster-scoped object lives in `default`).
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let issued = events.list(&Default::default()).await.unwrap().items.into_iter().filter(|e| {
        e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("KubeDevopsInstall")
            && e.reason.as_deref() == Some("CertificateIssued")
    });
    assert_eq!(issued.count(), 1, "one certificate for the whole test");

    let operator = "system:serviceaccount:kube-devops:kube-devops-operator";
    let requests = cluster.requests();
    assert!(requests.iter().any(|r| r.user == operator && r.verb == "patch"), "the operator applied the objects");
    let refused = refused(&cluster, operator);
    assert!(refused.is_empty(), "its RBAC allows what it does: {refused:?}");

    // Uninstalling: deleting the install removes the installation (garbage collection) and
    // nothing is left Terminating; the sample's policy goes at once, with no operator to wait for.
    installs.delete("default", &DeleteParams::default()).await.unwrap();
    wait_until("the components to go", 60, || async {
        let left = deployments.list(&Default::default()).await.ok()?.items;
        left.iter().all(|d| d.metadata.name.as_deref() == Some("kube-devops-operator")).then_some(())
    })
    .await;
    let policies: Api<kube_devops::api::DevOpsPolicy> = Api::namespaced(client.clone(), "default");
    policies.delete("baseline", &DeleteParams::default()).await.unwrap();
    wait_until("the sample policy to go", 10, || async {
        policies.get_opt("baseline").await.ok()?.is_none().then_some(())
    })
    .await;
    wait_until("nothing left Terminating", 30, || async {
        let out = cluster.kubectl(&[
            "get",
            "all",
            "-n",
            "kube-devops",
            "-o",
            "jsonpath={.items[*].metadata.deletionTimestamp}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().is_empty().then_some(())
    })
    .await;
}

/// `kubectl logs` of the operator's pod.
fn operator_log(cluster: &testkit::harness::TestCluster) -> String {
    let out = cluster.kubectl(&["logs", "-n", "kube-devops", "deployment/kube-devops-operator"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An installed CRD older than the operator (its status lacks a field the operator writes):
/// the server-side apply of the status is refused, and the operator says so in its log rather
/// than having the field silently dropped.
#[tokio::test(flavor = "multi_thread")]
async fn a_crd_without_a_status_field_the_operator_writes_is_reported_in_its_log() {
    let cluster = cluster_running_kube_devops();
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut crd = common::yaml_documents(&common::repo_path("crds/kubedevopsinstalls.yaml")).remove(0);
    let status = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    // A field every status write carries (the version only once every component runs).
    let removed = status.as_object_mut().unwrap().remove("observedGeneration");
    assert!(removed.is_some(), "the CRD declares status.observedGeneration");
    apply_ok(&cluster, &crd.to_string());
    apply_ok(
        &cluster,
        &install_file("  watch: {enabled: false}\n  reconcile: {enabled: false}\n  serviceMonitor: {enabled: false}\n"),
    );

    let log = wait_until("the operator to report the refused status", 60, || async {
        let log = operator_log(&cluster);
        log.contains(".status.observedGeneration: field not declared in schema").then_some(log)
    })
    .await;
    assert!(log.contains("reconcile failed"), "{log}");
    let installs: Api<KubeDevopsInstall> = Api::all(cluster.client().await);
    let install = installs.get("default").await.unwrap();
    assert!(install.status.is_none_or(|s| s.conditions.is_empty()), "no status was written without the field");
}

/// The install namespace enforces the restricted Pod Security profile: a pod template that
/// breaks it (here `hostPID`, set on the webhook's Deployment by another field manager before
/// the operator creates it, which the operator's apply leaves alone) gets no pod, and the
/// install does not become Available until the template complies again.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_compliant_pod_template_keeps_the_install_from_becoming_available() {
    let cluster = cluster_running_kube_devops();
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let install =
        install_file("  watch: {enabled: false}\n  reconcile: {enabled: false}\n  serviceMonitor: {enabled: false}\n");
    let rendered = common::e2e::render("generate-deployments", &install);
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&rendered).unwrap();
    let mut webhook = documents
        .into_iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "kube-devops-webhook")
        .expect("the webhook Deployment is rendered");
    webhook["spec"]["template"]["spec"]["hostPID"] = serde_json::json!(true);
    let client = cluster.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-devops");
    let params = PatchParams::apply("e2e-test");
    deployments.patch("kube-devops-webhook", &params, &Patch::Apply(&webhook)).await.unwrap();
    apply_ok(&cluster, &install);

    let events = wait_until("the ReplicaSet to report the refused pods", 60, || async {
        let out = cluster.kubectl(&[
            "get",
            "events",
            "-n",
            "kube-devops",
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("violates PodSecurity").then_some(text)
    })
    .await;
    assert!(events.contains("host namespaces (hostPID=true)"), "{events}");
    let installs: Api<KubeDevopsInstall> = Api::all(client.clone());
    let install = wait_until("the install status", 30, || async {
        let install = installs.get("default").await.ok()?;
        condition(&install, "Available").is_some().then_some(install)
    })
    .await;
    assert_eq!(condition(&install, "Available").as_deref(), Some("False"));
    let available = install.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(available.message, "webhook 0/2 ready");

    // Compliant again: the pods are admitted and the install becomes Available.
    let remove = Patch::Json::<()>(
        serde_json::from_value(serde_json::json!([
        {"op": "remove", "path": "/spec/template/spec/hostPID"}]))
        .unwrap(),
    );
    deployments.patch("kube-devops-webhook", &PatchParams::default(), &remove).await.unwrap();
    wait_until("the install to become Available", 90, || async {
        let install = installs.get("default").await.ok()?;
        (condition(&install, "Available").as_deref() == Some("True")).then_some(())
    })
    .await;
}
