//! End to end on the testkit API server: an upgrade of an installation made by the bootstrap
//! operator (`config/default` + an install with `failurePolicy: Fail`). The operator's own image
//! and the install's version change together; the three components roll to the new image one
//! replica at a time, never fewer ready replicas than asked for, the webhook answering every
//! admission call throughout, the leases passing to new pods, and the install's status showing
//! the new version only once every component runs it.

mod common;

use common::e2e::condition;

use common::e2e::{apply_ok, cluster_running_kube_devops, install_file, lease_holder, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_devops::api::KubeDevopsInstall;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const REPOSITORY: &str = kube_devops::api::install::DEFAULT_IMAGE_REPOSITORY;
const COMPONENTS: [&str; 3] = ["watch", "reconcile", "webhook"];

/// The images of the pods of a component that are not terminating.
async fn images(pods: &Api<Pod>, component: &str) -> Vec<String> {
    let selector = format!("app.kubernetes.io/name=kube-devops,app.kubernetes.io/component={component}");
    let list = pods.list(&ListParams::default().labels(&selector)).await.map(|l| l.items).unwrap_or_default();
    list.into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec?.containers.first()?.image.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_rolls_every_component_with_no_failed_admission_call() {
    let cluster = cluster_running_kube_devops();
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = "  serviceMonitor: {enabled: false}\n  webhook: {failurePolicy: Fail}\n";
    apply_ok(&cluster, &install_file(spec));
    let client = cluster.client().await;
    let installs: Api<KubeDevopsInstall> = Api::all(client.clone());
    let old = env!("CARGO_PKG_VERSION");
    wait_until("the installation", 120, || async {
        let install = installs.get("default").await.ok()?;
        let settled = condition(&install, "Available").as_deref() == Some("True")
            && condition(&install, "Progressing").as_deref() == Some("False");
        (settled && install.status?.version.as_deref() == Some(old)).then_some(())
    })
    .await;
    apply_ok(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");

    // Admission calls one after the other (dry runs, judged by the webhook) while it upgrades.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = common::e2e::admission_calls(client.clone(), "shop", stop.clone());

    // The upgrade: the operator's new image, and the install asking for the same version.
    let new = "9.9.9";
    let image = format!("{REPOSITORY}:v{new}");
    let started = Instant::now();
    let out = cluster.kubectl(&[
        "set",
        "image",
        "deployment/kube-devops-operator",
        "-n",
        "kube-devops",
        &format!("operator={image}"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tag = format!(r#"{{"spec": {{"image": {{"tag": "v{new}"}}}}}}"#);
    let out = cluster.kubectl(&["patch", "kubedevopsinstall", "default", "--type=merge", "-p", &tag]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-devops");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-devops");
    let mut fewest_ready: BTreeMap<&str, i32> = COMPONENTS.iter().map(|c| (*c, i32::MAX)).collect();
    let mut versions_seen = Vec::new();
    loop {
        assert!(started.elapsed().as_secs() < 240, "timed out waiting for every component on the new image");
        let mut all_new = true;
        for component in COMPONENTS {
            let running = images(&pods, component).await;
            all_new &= !running.is_empty() && running.iter().all(|i| *i == image);
            let deployment = deployments.get(&format!("kube-devops-{component}")).await.unwrap();
            let ready = deployment.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            let fewest = fewest_ready.get_mut(component).unwrap();
            *fewest = (*fewest).min(ready);
        }
        let version = installs.get("default").await.unwrap().status.and_then(|s| s.version);
        if all_new && version.as_deref() == Some(new) {
            break;
        }
        if !all_new {
            versions_seen.push(version);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let upgraded = started.elapsed();
    assert!(!versions_seen.is_empty(), "the rollout was seen under way");
    assert!(versions_seen.iter().all(|v| v.as_deref() == Some(old)), "the old version until all run the new one");
    for (component, fewest) in &fewest_ready {
        assert!(*fewest >= 2, "{component} had only {fewest} ready replicas during the upgrade");
    }

    // Each lease is held by a pod of the new image.
    for lease in [
        kube_devops::watch::controller::LEASE_NAME,
        kube_devops::reconcile::controller::LEASE_NAME,
        kube_devops::bootstrap::LEASE_NAME,
    ] {
        wait_until(&format!("a new pod to hold {lease}"), 30, || async {
            let (holder, _) = lease_holder(&cluster, lease)?;
            let pod = pods.get(&holder).await.ok()?;
            (pod.spec?.containers.first()?.image.as_deref() == Some(image.as_str())).then_some(())
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let (calls, failures) = caller.await.unwrap();
    eprintln!("upgrade to {new} in {upgraded:?}: {calls} admission calls, {} failed", failures.len());
    assert!(calls > 50, "the calls kept going: {calls}");
    assert!(failures.is_empty(), "admission failed during the upgrade: {failures:#?}");
}
