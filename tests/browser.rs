//! The HTML report and the live dashboard in a real browser: headless Chromium (Debian's
//! package, which scripts/test.sh installs) loads the offline report of `audit -o html` and
//! the page `kube-devops dashboard` serves from a testkit cluster, runs their script, and the
//! tests read the rendered DOM (namespaces, scores, a finding, the severity filter applied from
//! the URL, a policy's score trend). Screenshots of both go to `target/screenshots/` for people
//! to look at.

mod common;

use common::e2e::{apply_ok, cluster_running_kube_devops, wait_for};
use common::tools::{kube_devops, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian's Chromium, or None (with a note) where it is not installed.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        assert!(
            std::env::var_os("KUBE_DEVOPS_REQUIRE_VALIDATORS").is_none(),
            "chromium is required but not installed (scripts/test.sh installs Debian's package)"
        );
        eprintln!("chromium not installed: skipping the browser tests (apt-get install chromium)");
    }
    found.map(PathBuf::from)
}

/// Runs headless Chromium on `url` with `action` (`--dump-dom`, or `--screenshot=FILE`);
/// returns its stdout. The flags keep it off the network and out of the machine's profile.
fn headless(chromium: &Path, url: &str, action: &str) -> String {
    headless_at(chromium, url, action, "1280,1600")
}

/// [`headless`] in a window of `size` (`WIDTH,HEIGHT`).
fn headless_at(chromium: &Path, url: &str, action: &str, size: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium {action} {url} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot(chromium: &Path, url: &str, name: &str) {
    let dir = common::repo_path("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    headless(chromium, url, &format!("--screenshot={}", file.display()));
    let png = std::fs::read(&file).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} is a picture", file.display());
}

#[test]
fn the_offline_report_renders_and_filters_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let out = kube_devops(&["audit", common::repo_path("examples/workloads").to_str().unwrap(), "-o", "html"]);
    let html = stdout(&out);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();
    let url = format!("file://{}", file.display());

    let dom = headless(&chromium, &url, "--dump-dom");
    let json =
        stdout(&kube_devops(&["audit", common::repo_path("examples/workloads").to_str().unwrap(), "-o", "json"]));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        dom.contains(&format!(
            "id=\"cluster-score\" class=\"big class-{}\">{}</span>",
            report["classification"].as_str().unwrap().to_lowercase(),
            report["score"]
        )),
        "the cluster's score"
    );
    for ns in report["namespaces"].as_array().unwrap() {
        assert!(dom.contains(&format!("<tr data-namespace=\"{}\">", ns["namespace"].as_str().unwrap())), "{ns}");
    }
    let total = report["violations"].as_u64().unwrap();
    assert!(total > 0);
    assert!(dom.contains(&format!("{total} of {total} findings shown")), "the script ran");
    assert!(dom.contains("data-check=\"latest_tag\""), "a finding");

    // The filter, from the URL as a bookmark gives it: only the low findings stay.
    let low = report["bySeverity"]["low"].as_u64().unwrap();
    let filtered = headless(&chromium, &format!("{url}#severity=low"), "--dump-dom");
    assert!(filtered.contains(&format!("{low} of {total} findings shown")), "the filter applied");
    assert!(filtered.contains("<tr class=\"finding hidden\" data-severity=\"high\""), "a high finding is hidden");
    assert!(!filtered.contains("<tr class=\"finding hidden\" data-severity=\"low\""), "no low finding is hidden");
    screenshot(&chromium, &url, "report.png");
    // On a phone: the same content, the findings one column each.
    let dir = common::repo_path("target/screenshots");
    let phone = dir.join("report-phone.png");
    headless_at(&chromium, &format!("{url}#severity=high"), &format!("--screenshot={}", phone.display()), "390,844");
    assert!(std::fs::read(&phone).unwrap().starts_with(b"\x89PNG"));
}

const CLUSTER: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n---\n\
apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\nspec: {forbidLatestTag: true, enforcementMode: enforce}\n";

fn audit_result(name: &str, minute: u32, score: u32) -> String {
    format!(
        "apiVersion: devops.stochastic.io/v1\nkind: PolicyAuditResult\nmetadata: {{name: {name}, namespace: shop}}\n\
         spec: {{policyName: strict, timestamp: '2026-12-01T10:{minute:02}:00Z', healthScore: {score}, \
         classification: Stable, totalPods: 1, totalViolations: 1}}\n"
    )
}

#[test]
fn the_live_dashboard_shows_the_cluster_and_a_policy_trend() {
    let Some(chromium) = chromium() else { return };
    let cluster = cluster_running_kube_devops();
    apply_ok(&cluster, CLUSTER);
    for (i, score) in [62, 71, 85].into_iter().enumerate() {
        apply_ok(&cluster, &audit_result(&format!("strict-{i}"), i as u32, score));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(["dashboard", "--addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the dashboard to be ready", 30, || common::e2e::http_get("127.0.0.1", port, "/readyz"));
    let url = format!("http://127.0.0.1:{port}/");
    let dom = headless(&chromium, &url, "--dump-dom");
    assert!(dom.contains("<h1>kube-devops dashboard</h1>"), "{dom}");
    assert!(dom.contains("<tr data-namespace=\"shop\">"), "the namespace");
    assert!(dom.contains("data-check=\"latest_tag\""), "its finding");
    assert!(dom.contains("<tr data-policy=\"shop/strict\">"), "the policy");
    assert!(dom.contains("<td>enforce</td>"), "its mode");
    assert!(dom.contains("aria-label=\"scores: 62, 71, 85\""), "its audit results as a trend, oldest first");
    screenshot(&chromium, &url, "dashboard.png");
    server.kill().unwrap();
    let _ = server.wait();
}

/// `spec.dashboard.enabled`: the dashboard runs in the cluster under its own account, which
/// may read what the page shows and nothing more; it answers on its pod (where the Service and
/// `kubectl port-forward` reach it) and writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_in_cluster_dashboard_reads_with_its_own_account_and_writes_nothing() {
    let cluster = cluster_running_kube_devops();
    let install = common::e2e::install_file(
        "  watch: {enabled: false}\n  reconcile: {enabled: false}\n  webhook: {enabled: false}\n  \
         serviceMonitor: {enabled: false}\n  dashboard: {enabled: true}\n",
    );
    apply_ok(&cluster, &common::e2e::render("generate-all", &install));
    apply_ok(&cluster, CLUSTER);
    common::e2e::wait_ready(&cluster, "kube-devops-dashboard", 1).await;
    let ip = common::e2e::component_pod_ips(&cluster, "dashboard").remove(0);
    let page = wait_for("the dashboard's page", 30, || common::e2e::http_get(&ip, 8090, "/"));
    assert!(page.contains("<h1>kube-devops dashboard</h1>"), "{page}");
    assert!(page.contains("<tr data-policy=\"shop/strict\">"), "it reads the policies");
    let account = "system:serviceaccount:kube-devops:kube-devops-dashboard";
    let requests: Vec<_> = cluster.requests().into_iter().filter(|r| r.user == account).collect();
    assert!(requests.iter().any(|r| r.resource == "pods" && r.verb == "list"), "it read the pods itself");
    assert!(requests.iter().all(|r| !r.is_write()), "read-only: {requests:?}");
    let refused = common::e2e::refused(&cluster, account);
    assert!(refused.is_empty(), "its RBAC covers what it reads: {refused:?}");
}
