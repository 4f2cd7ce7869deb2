//! End to end on the testkit API server: the project's own binary, installed with the
//! manifests of `deploy generate-all`, runs as two webhook replicas that become Ready through
//! their real HTTPS `/readyz`, denies through the ValidatingWebhookConfiguration what an
//! enforce-mode DevOpsPolicy forbids (also in a bare pod that carries a copied owner reference,
//! and in `kubectl set image`) while the ReplicaSet controller's pods pass, survives a certificate rotation without a restart, and
//! fails open when it is down.

mod common;

use common::e2e::{apply, apply_ok, cluster_running_kube_devops, sample, wait_for, wait_ready};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use std::time::Instant;
use testkit::harness::TestCluster;

const INSTALL: &str = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  watch: {enabled: false}\n  reconcile: {enabled: false}\n  serviceMonitor: {enabled: false}\n";

const LATEST_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n";

/// A Deployment that breaks the policy applied after it (its pods run `:latest`).
const LEGACY_DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: legacy, namespace: shop}\nspec:\n  \
    replicas: 1\n  selector: {matchLabels: {app: legacy}}\n  template:\n    metadata: {labels: {app: legacy}}\n    \
    spec: {containers: [{name: web, image: 'nginx:latest'}]}\n";

fn render(command: &str) -> String {
    common::e2e::render(command, INSTALL)
}

/// Tries to create the `:latest` pod until the webhook denies it; returns the denial.
fn until_denied(cluster: &TestCluster, what: &str) -> String {
    wait_for(what, 30, || {
        let out = apply(cluster, LATEST_POD);
        if out.status.success() {
            // Admitted (failurePolicy Ignore while the webhook could not judge): try again.
            let _ = cluster.kubectl(&["delete", "pod", "web", "-n", "shop", "--wait=false"]);
            return None;
        }
        Some(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// Every try to create the `:latest` pod for `duration` is denied by the webhook: the API
/// server reaches it all the time (with `failurePolicy: Ignore` a gap would admit the pod).
fn always_denied_for(cluster: &TestCluster, duration: std::time::Duration) {
    let started = Instant::now();
    let mut tries = 0;
    while started.elapsed() < duration {
        let out = apply(cluster, LATEST_POD);
        assert!(
            !out.status.success(),
            "admitted {:?} after the renewal: the API server could not reach the webhook",
            started.elapsed()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Denied by DevOpsPolicy strict"), "{stderr}");
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(tries > 10, "{tries}");
}

/// `/metrics` of every webhook pod, fetched as Prometheus does with the webhook's
/// ServiceMonitor: over HTTPS, verified against `ca.crt` of the TLS Secret for the Service name.
fn scrape_webhook_pods(cluster: &TestCluster) -> Vec<String> {
    try_scrape_webhook_pods(cluster, false).expect("every webhook pod serves a certificate of the Secret's CA")
}

/// [`scrape_webhook_pods`], trusting only the newest CA of the bundle when `newest_only`; None
/// when a pod's certificate does not verify.
fn try_scrape_webhook_pods(cluster: &TestCluster, newest_only: bool) -> Option<Vec<String>> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    use std::io::{Read, Write};
    let jsonpath = |args: &[&str]| String::from_utf8(cluster.kubectl(args).stdout).unwrap();
    let bundle =
        jsonpath(&["get", "secret", "kube-devops-webhook-tls", "-n", "kube-devops", "-o", "jsonpath={.data.ca\\.crt}"]);
    let mut cas = openssl::x509::X509::stack_from_pem(&openssl::base64::decode_block(&bundle).unwrap()).unwrap();
    if newest_only {
        cas.truncate(1);
    }
    let ips = jsonpath(&[
        "get",
        "pods",
        "-n",
        "kube-devops",
        "-l",
        "app.kubernetes.io/component=webhook",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    ips.split_whitespace()
        .map(|ip| {
            let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
            for ca in &cas {
                connector.cert_store_mut().add_cert(ca.clone()).unwrap();
            }
            connector.set_verify(SslVerifyMode::PEER);
            let tcp = std::net::TcpStream::connect((ip, 8443)).unwrap();
            let mut tls = connector.build().connect("kube-devops-webhook.kube-devops.svc", tcp).ok()?;
            tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: kube-devops-webhook\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = String::new();
            tls.read_to_string(&mut response).unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            Some(response.split_once("\r\n\r\n").unwrap().1.to_string())
        })
        .collect()
}

/// Waits until both webhook pods serve a certificate of the newest CA (the kubelet has
/// delivered it and the webhook reloaded it).
fn wait_for_the_new_certificate(cluster: &TestCluster) {
    wait_for("the pods to serve the new certificate", 30, || {
        try_scrape_webhook_pods(cluster, true).filter(|scrapes| scrapes.len() == 2)
    });
}

/// The sum over `scrapes` of the sample named exactly `series` (name and labels).
fn sample_sum(scrapes: &[String], series: &str) -> f64 {
    scrapes.iter().filter_map(|s| sample(s, series)).sum()
}

/// The webhook pods' uids and restart counts: equal before and after means the same pods
/// kept running.
fn restart_counts(cluster: &TestCluster) -> String {
    let path = "jsonpath={range .items[*]}{.metadata.uid}:{.status.containerStatuses[*].restartCount} {end}";
    String::from_utf8_lossy(&cluster.kubectl(&["get", "pods", "-n", "kube-devops", "-o", path]).stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_webhook_replicas_become_ready_and_enforce_policies() {
    let cluster = cluster_running_kube_devops();
    apply_ok(&cluster, &render("generate-all"));
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "kube-devops");
    let started = Instant::now();
    wait_ready(&cluster, "kube-devops-webhook", 2).await;
    eprintln!("2 webhook replicas Ready after {:?}", started.elapsed());

    // A Deployment written before the policy: its ReplicaSet's pods keep being made after it.
    assert!(apply(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n").status.success());
    apply_ok(&cluster, LEGACY_DEPLOYMENT);
    // An enforce-mode policy in a namespace: a :latest pod is denied by the project's webhook.
    let policy = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\nspec: {forbidLatestTag: true, enforcementMode: enforce}\n";
    assert!(apply(&cluster, policy).status.success());
    let denial = until_denied(&cluster, "the webhook to see the policy");
    assert!(
        denial.contains("admission webhook \"validate.devops.stochastic.io\" denied the request: Denied by DevOpsPolicy strict: container 'web' uses :latest tag"),
        "{denial}"
    );
    let pinned = LATEST_POD.replace("nginx:latest", "nginx:1.27.3").replace("name: web,", "name: pinned,");
    assert!(apply(&cluster, &pinned).status.success());

    // No bypass: an owner reference copied from a real ReplicaSet into a bare pod proves nothing.
    let replicaset = String::from_utf8(
        cluster.kubectl(&["get", "replicasets", "-n", "shop", "-o", "jsonpath={.items[0].metadata.uid}"]).stdout,
    )
    .unwrap();
    let forged = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: forged\n  namespace: shop\n  ownerReferences: \
         [{{apiVersion: apps/v1, kind: ReplicaSet, name: legacy, uid: '{replicaset}', controller: true}}]\n\
         spec:\n  containers: [{{name: web, image: 'nginx:latest'}}]\n"
    );
    let out = apply(&cluster, &forged);
    assert!(!out.status.success(), "a forged owner reference is judged as a bare pod");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uses :latest tag"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ReplicaSet controller's own pods are trusted: the legacy Deployment still scales.
    let legacy: Api<Deployment> = Api::namespaced(cluster.client().await, "shop");
    legacy
        .patch("legacy", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})))
        .await
        .unwrap();
    wait_for("the legacy Deployment's second pod", 30, || {
        let out = cluster.kubectl(&["get", "pods", "-n", "shop", "-l", "app=legacy", "-o", "name"]);
        (String::from_utf8_lossy(&out.stdout).lines().count() == 2).then_some(())
    });
    // `kubectl set image pod/...` is judged like a create.
    let out = cluster.kubectl(&["set", "image", "pod/pinned", "-n", "shop", "pinned=nginx:latest"]);
    assert!(!out.status.success(), "set image to :latest is denied");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Denied by DevOpsPolicy strict"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cluster.kubectl(&["set", "image", "pod/pinned", "-n", "shop", "pinned=nginx:1.27.4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Both replicas serve their metrics as the ServiceMonitor scrapes them: the denial is
    // counted under its check, the admitted pod as an allowed CREATE.
    let scrapes = scrape_webhook_pods(&cluster);
    assert_eq!(scrapes.len(), 2);
    common::tools::promtool_check("the webhook", &scrapes[0]);
    let denied = r#"webhook_denials_total{namespace="shop",violation="latest_tag"}"#;
    assert!(sample_sum(&scrapes, denied) >= 1.0, "{scrapes:?}");
    assert!(sample_sum(&scrapes, r#"webhook_requests_total{allowed="true",operation="CREATE"}"#) >= 1.0, "{scrapes:?}");
    assert!(sample_sum(&scrapes, "webhook_request_duration_seconds_count") >= 2.0, "{scrapes:?}");
    let webhook_user = "system:serviceaccount:kube-devops:kube-devops";
    let requests = cluster.requests();
    assert!(requests.iter().any(|r| r.user == webhook_user), "the webhook reads policies with its own service account");
    assert!(requests.iter().all(|r| r.user != webhook_user || r.code < 400), "RBAC lets the webhook do what it needs");

    // Certificate rotation from the CLI, given the current Secret: a new CA and serving
    // certificate, with the previous CA still in the caBundle. The kubelet takes its time to
    // update the mounted Secret (12 s here), meanwhile the API server still reaches the pods
    // serving the old certificate; the webhook then reloads it without a restart.
    const REFRESH: std::time::Duration = std::time::Duration::from_secs(12);
    cluster.set_volume_refresh_delay(REFRESH);
    let before = restart_counts(&cluster);
    let current = cluster.kubectl(&["get", "secret", "kube-devops-webhook-tls", "-n", "kube-devops", "-o", "yaml"]);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.yaml");
    std::fs::write(&secret, &current.stdout).unwrap();
    let renewal = common::e2e::render_with("generate-webhook", INSTALL, &["--previous-ca", secret.to_str().unwrap()]);
    let out = apply(&cluster, &renewal);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    always_denied_for(&cluster, REFRESH + std::time::Duration::from_secs(3));
    wait_for_the_new_certificate(&cluster);
    assert_eq!(restart_counts(&cluster), before, "no restart was needed");

    // The webhook down: failurePolicy Ignore lets the pod in (fail open).
    let scale_to_zero = Patch::Merge(serde_json::json!({"spec": {"replicas": 0}}));
    deployments.patch("kube-devops-webhook", &PatchParams::default(), &scale_to_zero).await.unwrap();
    wait_for("the webhook pods to go", 30, || {
        let out = cluster.kubectl(&["get", "pods", "-n", "kube-devops", "-o", "name"]);
        String::from_utf8_lossy(&out.stdout).trim().is_empty().then_some(())
    });
    let out = apply(&cluster, LATEST_POD);
    assert!(out.status.success(), "fails open: {}", String::from_utf8_lossy(&out.stderr));
}

/// The bootstrap operator renews the webhook's certificate (here because the Secret no longer
/// says when it expires) while the kubelet takes 20 s to put the new one into the pods, as a
/// real kubelet takes up to a minute or two. The caBundle keeps the previous CA, so the API
/// server reaches the webhook throughout: every pod the policy forbids is denied, none slips
/// through a failing-open webhook. (A renewal that dropped the previous CA fails this test.)
#[tokio::test(flavor = "multi_thread")]
async fn the_operator_renews_the_certificate_without_a_gap_in_admission() {
    const REFRESH: std::time::Duration = std::time::Duration::from_secs(20);
    let cluster = cluster_running_kube_devops();
    cluster.set_volume_refresh_delay(REFRESH);
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    apply_ok(&cluster, INSTALL);
    let out = cluster.kubectl(&["wait", "kubedevopsinstall/default", "--for=condition=Available", "--timeout=90s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(apply(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n").status.success());
    let policy = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\nspec: {forbidLatestTag: true, enforcementMode: enforce}\n";
    assert!(apply(&cluster, policy).status.success());
    until_denied(&cluster, "the webhook to see the policy");

    let ca = |cluster: &TestCluster| {
        let out = cluster.kubectl(&[
            "get",
            "secret",
            "kube-devops-webhook-tls",
            "-n",
            "kube-devops",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = ca(&cluster);
    let restarts = restart_counts(&cluster);
    let out = cluster.kubectl(&[
        "annotate",
        "secret",
        "kube-devops-webhook-tls",
        "-n",
        "kube-devops",
        "devops.stochastic.io/tls-not-after-",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the operator to renew the certificate", 30, || (ca(&cluster) != before).then_some(()));
    // Until well after the kubelet has delivered the new certificate, every try is denied.
    always_denied_for(&cluster, REFRESH + std::time::Duration::from_secs(5));
    // The pods serve the new certificate now (the ServiceMonitor-style scrape verifies it
    // against the new CA), without a restart.
    wait_for_the_new_certificate(&cluster);
    assert_eq!(restart_counts(&cluster), restarts, "no restart was needed");
}
