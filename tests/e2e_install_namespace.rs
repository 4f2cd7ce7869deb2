//! End to end on the testkit API server: the bootstrap operator installed in a namespace other
//! than `kube-devops`, as OLM does in both install modes the CSV declares (OwnNamespace: a
//! namespace of the user's; AllNamespaces: the global operators namespace), with its namespaced
//! permissions only there (the CSV's `permissions` become a Role in that namespace), on a
//! cluster serving OpenShift's `security.openshift.io/v1`. It installs the components into its
//! own namespace, with no request refused, their pods without pinned user, group or fsGroup
//! (OpenShift assigns them) yet admitted by the namespace's Pod Security `restricted` level and
//! Ready (the webhook reads its TLS Secret without fsGroup), and the webhook judges pods.

mod common;

use common::e2e::condition;

use common::e2e::{apply_ok, cluster_running_kube_devops, refused, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube_devops::api::KubeDevopsInstall;

const NAMESPACE: &str = "operators";

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_installs_the_components_into_its_own_namespace() {
    let cluster = cluster_running_kube_devops();
    apply_ok(&cluster, &common::e2e::openshift_security_crd().to_string());
    // config/default moved to another namespace, as `kustomize edit set namespace` does.
    let dir = tempfile::tempdir().unwrap();
    // kustomize takes only relative paths: from the temporary folder up to / and down again.
    let up = "../".repeat(dir.path().components().count() - 1);
    let default = common::repo_path("config/default");
    let default = format!("{up}{}", default.strip_prefix("/").unwrap().display());
    let kustomization = format!("namespace: {NAMESPACE}\nresources:\n- {default}\n");
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization).unwrap();
    let out = cluster.kubectl(&["kustomize", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rendered = String::from_utf8(out.stdout).unwrap();
    assert!(!rendered.contains("namespace: kube-devops"), "everything moved");
    apply_ok(&cluster, &rendered);
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/samples").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // With the web dashboard, whose read-only ClusterRole the operator may only grant if it
    // holds every permission in it.
    let dashboard = r#"{"spec": {"dashboard": {"enabled": true}}}"#;
    let out = cluster.kubectl(&["patch", "kubedevopsinstall", "default", "--type=merge", "-p", dashboard]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let client = cluster.client().await;
    let installs: Api<KubeDevopsInstall> = Api::all(client.clone());
    wait_until("the install to become Available", 120, || async {
        let install = installs.get("default").await.ok()?;
        (condition(&install, "Available").as_deref() == Some("True")).then_some(())
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let restricted = cluster.kubectl(&["get", "namespace", NAMESPACE, "-o", "jsonpath={.metadata.labels}"]);
    assert!(
        String::from_utf8_lossy(&restricted.stdout).contains("\"pod-security.kubernetes.io/enforce\":\"restricted\"")
    );
    for component in ["watch", "reconcile", "webhook"] {
        let deployment = deployments.get(&format!("kube-devops-{component}")).await.unwrap();
        let pod = deployment.spec.as_ref().unwrap().template.spec.clone().unwrap();
        let ids = pod.security_context.clone().unwrap();
        assert_eq!((ids.run_as_user, ids.run_as_group, ids.fs_group), (None, None, None), "{component}");
        assert_eq!(ids.run_as_non_root, Some(true));
        let container = pod.containers[0].security_context.clone().unwrap();
        assert_eq!((container.run_as_user, container.run_as_group), (None, None), "{component}");
        assert_eq!(deployment.status.and_then(|s| s.ready_replicas), Some(2), "{component} runs in {NAMESPACE}");
    }
    let web = wait_until("the dashboard", 60, || async {
        deployments.get("kube-devops-dashboard").await.ok()?.status?.ready_replicas.filter(|r| *r == 1)
    });
    web.await;
    let operator: Deployment = deployments.get("kube-devops-operator").await.unwrap();
    let operator_ids = operator.spec.unwrap().template.spec.unwrap().security_context.unwrap();
    assert_eq!((operator_ids.run_as_user, operator_ids.fs_group), (None, None), "the operator pins nothing either");
    let stray: Api<Deployment> = Api::namespaced(client.clone(), "kube-devops");
    assert!(stray.list(&Default::default()).await.map(|l| l.items.is_empty()).unwrap_or(true));
    let operator = format!("system:serviceaccount:{NAMESPACE}:kube-devops-operator");
    assert!(cluster.requests().iter().any(|r| r.user == operator && r.verb == "patch"), "the operator applied");
    let refused = refused(&cluster, &operator);
    assert!(refused.is_empty(), "its permissions in its own namespace cover what it does: {refused:?}");

    // The webhook the operator configured (its Service in this namespace, with a certificate
    // for that name) judges: a `:latest` pod in a namespace whose policy forbids it is denied.
    let shop = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
        apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\n\
        spec: {forbidLatestTag: true, enforcementMode: enforce}\n";
    apply_ok(&cluster, shop);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n\
        spec:\n  containers: [{name: web, image: 'nginx:latest'}]\n";
    let denial = common::e2e::wait_for("the webhook to deny a :latest pod", 60, || {
        let out = common::e2e::apply(&cluster, pod);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.success() {
            // Admitted before the webhook's cache had the policy: try again.
            cluster.kubectl(&["delete", "pod", "web", "-n", "shop", "--wait=false"]);
            return None;
        }
        Some(stderr)
    });
    assert!(denial.contains("denied the request"), "{denial}");
}
