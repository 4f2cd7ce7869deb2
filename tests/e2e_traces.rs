//! End to end on the testkit API server, with an OTLP receiver started by the test in place of
//! an OpenTelemetry Collector (spans decoded with the protocol's own types):
//! - the bootstrap operator with OTEL_EXPORTER_OTLP_ENDPOINT in its Deployment, and the
//!   components it installs from `spec.tracing.otlpEndpoint`, export a span per reconcile of
//!   the install and of a policy, per admission request and per leader transition, each
//!   component under its own `service.name`; their `/metrics` pass `promtool check metrics`;
//! - a server command's JSON log lines carry the trace and span ids of the span they were
//!   logged in, and the spans still queued at SIGTERM are exported before the process ends.

mod common;

use common::e2e::{apply_ok, cluster_running_kube_devops, http_get, install_file, lease_holder, wait_until};
use common::otlp::{ExportedSpan, Receiver};
use kube::api::Api;
use kube_devops::api::DevOpsPolicy;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Instant;

const SHOP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\nspec: {forbidLatestTag: true}\n";

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n\
spec:\n  containers: [{name: web, image: 'nginx:1.27'}]\n";

/// The first span of `service` named `name` whose attributes include `attributes`.
fn find<'a>(
    spans: &'a [ExportedSpan],
    service: &str,
    name: &str,
    attributes: &[(&str, &str)],
) -> Option<&'a ExportedSpan> {
    spans.iter().find(|s| {
        s.service() == service && s.name == name && attributes.iter().all(|(k, v)| s.attribute(k) == Some(*v))
    })
}

async fn wait_for_span(receiver: &Receiver, service: &str, name: &str, attributes: &[(&str, &str)]) -> ExportedSpan {
    let what = format!("a {name:?} span of {service} with {attributes:?}");
    let found = wait_until(&what, 90, || async { find(&receiver.spans(), service, name, attributes).cloned() }).await;
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_and_every_component_export_their_spans_to_the_installs_endpoint() {
    let receiver = Receiver::start();
    let cluster = cluster_running_kube_devops();
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The operator's own traces: the variable set on its Deployment, as for any OTel SDK.
    let endpoint = format!("OTEL_EXPORTER_OTLP_ENDPOINT={}", receiver.endpoint);
    let out = cluster.kubectl(&["set", "env", "deployment/kube-devops-operator", "-n", "kube-devops", &endpoint]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = format!(
        "  serviceMonitor: {{enabled: false}}\n  reconcile: {{evaluationIntervalSeconds: 2}}\n  \
         tracing: {{otlpEndpoint: '{}'}}\n",
        receiver.endpoint
    );
    apply_ok(&cluster, &install_file(&spec));
    let started = Instant::now();

    let install = wait_for_span(&receiver, "kube-devops-operator", "reconcile", &[("kind", "KubeDevopsInstall")]).await;
    assert_eq!(install.attribute("name"), Some("default"));
    assert!(matches!(install.attribute("result"), Some("applied" | "degraded")), "{install:?}");
    assert_eq!(install.resource.get("service.version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")));
    assert!(
        install.resource.get("k8s.pod.name").is_some_and(|p| p.starts_with("kube-devops-operator-")),
        "{install:?}"
    );
    eprintln!("the operator's reconcile span arrived after {:?}", started.elapsed());
    for component in ["operator", "watch", "reconcile"] {
        let service = format!("kube-devops-{component}");
        let leads = wait_for_span(
            &receiver,
            &service,
            "leader transition",
            &[("component", component), ("transition", "acquired")],
        )
        .await;
        assert!(leads.parent_span_id.is_empty(), "a transition is a trace of its own: {leads:?}");
    }

    apply_ok(&cluster, SHOP);
    let policy = [("kind", "DevOpsPolicy"), ("namespace", "shop"), ("name", "strict"), ("result", "evaluated")];
    let evaluated = wait_for_span(&receiver, "kube-devops-reconcile", "reconcile", &policy).await;
    assert_eq!(evaluated.status, 0, "a successful reconcile has no error status: {evaluated:?}");
    assert_eq!(evaluated.trace_id.len(), 32, "{evaluated:?}");

    // An admission request once both webhook replicas judge (before, failurePolicy Ignore
    // admits without asking).
    common::e2e::wait_ready(&cluster, "kube-devops-webhook", 2).await;
    apply_ok(&cluster, POD);
    let admission = [("operation", "CREATE"), ("kind", "Pod"), ("namespace", "shop"), ("name", "web")];
    let admitted = wait_for_span(&receiver, "kube-devops-webhook", "admission", &admission).await;
    assert_eq!(admitted.attribute("decision"), Some("allowed"), "{admitted:?}");
    assert_eq!(admitted.attribute("violations"), Some("0"), "{admitted:?}");

    // Each component's /metrics is valid exposition text (the webhook's is checked by
    // e2e_webhook, over its HTTPS port).
    let leases = [
        (kube_devops::bootstrap::LEASE_NAME, 8081),
        (kube_devops::watch::controller::LEASE_NAME, 8080),
        (kube_devops::reconcile::controller::LEASE_NAME, 9090),
    ];
    for (lease, port) in leases {
        let (_, ip) = lease_holder(&cluster, lease).unwrap_or_else(|| panic!("a holder of the lease {lease}"));
        common::tools::promtool_check(lease, &http_get(&ip, port, "/metrics").expect("/metrics"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_name_their_trace_and_the_last_spans_are_exported_at_exit() {
    let receiver = Receiver::start();
    let cluster = cluster_running_kube_devops();
    apply_ok(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-devops}\n");
    apply_ok(&cluster, SHOP);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("reconcile.log");
    // Batches every minute: what arrives before that comes from the flush at exit.
    let child = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(["reconcile", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("POD_NAME", "reconcile-0")
        .env("POD_NAMESPACE", "kube-devops")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let policies: Api<DevOpsPolicy> = Api::namespaced(cluster.client().await, "shop");
    wait_until("the policy's status", 45, || async { policies.get("strict").await.ok()?.status?.health_score }).await;
    assert!(receiver.spans().is_empty(), "nothing is exported before the first batch is due");

    let stopped = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let exit = child.wait_with_output().unwrap();
    assert!(exit.status.success(), "{:?}", exit.status);
    let spans = receiver.spans();
    assert!(receiver.errors().is_empty(), "{:?}", receiver.errors());
    let service = "kube-devops-reconcile";
    let acquired = find(&spans, service, "leader transition", &[("transition", "acquired")]).expect("acquired");
    let lost = find(&spans, service, "leader transition", &[("transition", "lost")]);
    assert!(lost.is_some(), "the transition at shutdown is exported before the process ends: {spans:#?}");
    assert!(find(&spans, service, "reconcile", &[("name", "strict"), ("result", "evaluated")]).is_some(), "{spans:#?}");
    assert_eq!(acquired.resource.get("deployment.environment").map(String::as_str), Some("test"));
    assert_eq!(acquired.resource.get("k8s.namespace.name").map(String::as_str), Some("kube-devops"));

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let leads = lines.iter().find(|l| l["message"] == "leads").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(leads["trace_id"].as_str(), Some(acquired.trace_id.as_str()), "{leads}");
    assert_eq!(leads["span_id"].as_str(), Some(acquired.span_id.as_str()), "{leads}");
    let outside = lines.iter().find(|l| l["message"] == "serving HTTP").unwrap_or_else(|| panic!("{text}"));
    assert!(outside.get("trace_id").is_none(), "a line outside any span names no trace: {outside}");
    let exporting = lines.iter().find(|l| l["message"] == "exporting traces over OTLP/HTTP");
    assert!(exporting.is_some_and(|l| l["endpoint"] == receiver.endpoint.as_str()), "{text}");
}
