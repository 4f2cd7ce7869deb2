//! The Helm chart `helm/kube-devops`, rendered and linted with the Helm SDK (PyPI
//! helm-python-sdk; there is no helm binary): with default values it renders the objects of
//! `kube-devops deploy generate-all`, `--set` values change what the matching deploy options
//! change, it lints clean with --strict for Kubernetes 1.30 and 1.37, and its output is valid.

mod common;

use common::tools::{copy_dir, difference, documents, normalise, python_with, render, repo_path, validate_all};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Renders `chart` (release kube-devops in namespace argv[2], as an install) with `--set`-style
/// expressions; prints a JSON list of manifests or {"error": ...}.
const RENDER: &str = r#"
import json, sys
import helm_python as helm
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
values = {}
for expression in sys.argv[3:]:
    values = merge(values, helm.parse_set_string(expression))
try:
    with helm.Chart.load(sys.argv[1]) as chart:
        out = chart.render(values=values, name="kube-devops", namespace=sys.argv[2], is_install=True)
    print(json.dumps([out[k] for k in sorted(out) if not k.endswith("NOTES.txt")]))
except helm.HelmError as e:
    print(json.dumps({"error": str(e)}))
"#;

const LINT: &str = r#"
import json, sys
import helm_python as helm
print(json.dumps([helm.lint(sys.argv[1], strict=True, kube_version=v) for v in ("v1.30.0", "v1.37.0")]))
"#;

fn chart() -> PathBuf {
    repo_path("helm/kube-devops")
}

fn python(script: &str, args: &[&str]) -> Option<Value> {
    let python = python_with("helm_python")?;
    let out = Command::new(python).arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The release namespace of the seed's install command,
/// `helm install kube-devops ./helm/kube-devops -n kube-devops --create-namespace`.
const SEED_NAMESPACE: &str = "kube-devops";

/// The chart's objects as the seed's install command renders them, or Err(message) when
/// Helm refuses to render.
fn helm_template(chart: &Path, set: &[&str]) -> Option<Result<Vec<Value>, String>> {
    helm_template_in(chart, SEED_NAMESPACE, set)
}

/// The chart's objects for a release in `namespace`.
fn helm_template_in(chart: &Path, namespace: &str, set: &[&str]) -> Option<Result<Vec<Value>, String>> {
    let mut args = vec![chart.to_str().unwrap(), namespace];
    args.extend(set);
    let out = python(RENDER, &args)?;
    if let Some(error) = out.get("error") {
        return Some(Err(error.as_str().unwrap().to_string()));
    }
    let manifests = out.as_array().unwrap().iter().map(|m| m.as_str().unwrap());
    Some(Ok(manifests.flat_map(documents).collect()))
}

fn deploy(args: &[&str]) -> Vec<Value> {
    documents(&render(&[&["deploy", "generate-all"], args].concat()))
}

/// The chart with `set` renders what `deploy generate-all` with `args` renders, but for the
/// Namespace: with the seed's command Helm creates it (`--create-namespace`) and would refuse
/// to install a chart that renders it too.
fn assert_same(set: &[&str], args: &[&str]) {
    let Some(rendered) = helm_template(&chart(), set) else { return };
    let helm = normalise(rendered.unwrap_or_else(|e| panic!("helm {set:?}: {e}")));
    let ours = normalise(deploy(args).into_iter().filter(|o| o["kind"] != "Namespace").collect());
    assert!(helm == ours, "helm {set:?} vs deploy {args:?}:\n{}", difference(&helm, &ours));
}

#[test]
fn default_values_render_the_objects_of_deploy_generate_all() {
    assert_same(&[], &[]);
    // A release kept in another namespace gets the Namespace too, with its Pod Security labels.
    let Some(rendered) = helm_template_in(&chart(), "default", &[]) else { return };
    let helm = normalise(rendered.unwrap());
    let ours = normalise(deploy(&[]));
    assert!(helm == ours, "helm -n default vs deploy:\n{}", difference(&helm, &ours));
    assert!(helm.iter().any(|o| o["kind"] == "Namespace"));
}

#[test]
fn set_values_change_what_the_deploy_options_change() {
    assert_same(&["replicaCount=3"], &["--replicas", "3"]);
    assert_same(&["image.tag=v9.9.9"], &["--image", "ghcr.io/stochastic/kube-devops:v9.9.9"]);
    assert_same(&["replicaCount=1"], &["--replicas", "1"]);
}

#[test]
fn disabling_parts_matches_an_install_file_that_disables_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let spec = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  \
                serviceMonitor: {enabled: false}\n  grafanaDashboard: {enabled: false}\n  pdb: {enabled: false}\n  \
                webhook: {failurePolicy: Fail, timeoutSeconds: 10}\n  image: {pullPolicy: Always}\n";
    std::fs::write(&file, spec).unwrap();
    let set = [
        "serviceMonitor.enabled=false",
        "grafanaDashboard.enabled=false",
        "pdb.enabled=false",
        "webhook.failurePolicy=Fail",
        "webhook.timeoutSeconds=10",
        "image.pullPolicy=Always",
    ];
    assert_same(&set, &["-f", file.to_str().unwrap()]);
}

#[test]
fn policy_reports_match_an_install_file_that_turns_them_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let spec = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  \
                policyReports: {enabled: true}\n";
    std::fs::write(&file, spec).unwrap();
    assert_same(&["policyReports.enabled=true"], &["-f", file.to_str().unwrap()]);
}

/// A tracing endpoint gives every component OTEL_EXPORTER_OTLP_ENDPOINT and opens its port
/// (given, or the scheme's) in the NetworkPolicies, as an install file with it does.
#[test]
fn a_tracing_endpoint_matches_an_install_file_that_sets_it() {
    let dir = tempfile::tempdir().unwrap();
    for endpoint in ["http://otel-collector.observability:4318", "https://traces.example.com"] {
        let file = dir.path().join("install.yaml");
        let spec = format!(
            "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {{name: default}}\nspec:\n  \
             tracing: {{otlpEndpoint: '{endpoint}'}}\n"
        );
        std::fs::write(&file, spec).unwrap();
        let set = format!("tracing.otlpEndpoint={endpoint}");
        assert_same(&[&set], &["-f", file.to_str().unwrap()]);
    }
    let Some(Ok(objects)) = helm_template(&chart(), &["tracing.otlpEndpoint=http://collector:4318"]) else { return };
    let policy = objects.iter().find(|o| o["kind"] == "NetworkPolicy").unwrap();
    assert_eq!(policy["spec"]["egress"][2], json!({"ports": [{"port": 4318, "protocol": "TCP"}]}), "{policy}");
}

/// The web dashboard renders as an install file that turns it on does, with tracing and
/// unpinned IDs applying to it too.
#[test]
fn the_dashboard_matches_an_install_file_that_turns_it_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let spec = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  \
                dashboard: {enabled: true, bundle: restricted}\n  pinIds: false\n  tracing: {otlpEndpoint: 'http://c:4318'}\n";
    std::fs::write(&file, spec).unwrap();
    let set =
        ["dashboard.enabled=true", "dashboard.bundle=restricted", "pinIds=false", "tracing.otlpEndpoint=http://c:4318"];
    assert_same(&set, &["-f", file.to_str().unwrap()]);
    let Some(Ok(objects)) = helm_template(&chart(), &["dashboard.enabled=true"]) else { return };
    let dashboard = objects.iter().filter(|o| o["metadata"]["name"] == "kube-devops-dashboard").count();
    assert_eq!(dashboard, 6, "ServiceAccount, ClusterRole, ClusterRoleBinding, Service, Deployment, NetworkPolicy");
}

/// Components can be left out, as an install file's `enabled: false` leaves them out.
#[test]
fn components_are_left_out_as_an_install_file_leaves_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let head = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n";
    std::fs::write(&file, format!("{head}  watch: {{enabled: false}}\n  reconcile: {{enabled: false}}\n")).unwrap();
    assert_same(&["watch.enabled=false", "reconcile.enabled=false"], &["-f", file.to_str().unwrap()]);
    std::fs::write(&file, format!("{head}  webhook: {{enabled: false}}\n")).unwrap();
    assert_same(&["webhook.enabled=false"], &["-f", file.to_str().unwrap()]);
    let Some(rendered) = helm_template(&chart(), &["webhook.enabled=false"]) else { return };
    let kinds: Vec<String> = rendered.unwrap().iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect();
    assert!(!kinds.iter().any(|k| k == "ValidatingWebhookConfiguration" || k == "Secret"), "{kinds:?}");
}

/// Controllers the webhook trusts besides the built-in ones (Argo Rollouts and the like).
#[test]
fn trusted_controllers_match_an_install_file_that_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let rollouts = "system:serviceaccount:argo-rollouts:argo-rollouts";
    let spec = format!(
        "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {{name: default}}\nspec:\n  \
         webhook: {{trustedControllers: ['{rollouts}', 'ops']}}\n"
    );
    std::fs::write(&file, spec).unwrap();
    assert_same(&[&format!("webhook.trustedControllers={{{rollouts},ops}}")], &["-f", file.to_str().unwrap()]);
    let webhook = deploy(&["-f", file.to_str().unwrap()])
        .into_iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kube-devops-webhook")
        .unwrap();
    let args = &webhook["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(
        args.as_array().unwrap()[6..],
        [json!("--trusted-controller"), json!(rollouts), json!("--trusted-controller"), json!("ops")]
    );
}

/// A Prometheus that selects ServiceMonitors by label (kube-prometheus-stack's `release`).
#[test]
fn service_monitor_labels_match_an_install_file_that_sets_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let spec = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  \
                serviceMonitor: {enabled: true, labels: {release: prom}}\n";
    std::fs::write(&file, spec).unwrap();
    assert_same(
        &["serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom"],
        &["-f", file.to_str().unwrap()],
    );
    let monitors: Vec<Value> =
        deploy(&["-f", file.to_str().unwrap()]).into_iter().filter(|o| o["kind"] == "ServiceMonitor").collect();
    assert_eq!(monitors.len(), 3);
    assert!(monitors.iter().all(|m| m["metadata"]["labels"]["release"] == "prom"));
}

/// Installs the chart into the cluster of argv[1] as `helm install --dry-run=server` does (Helm
/// discovers what the cluster serves); prints the kinds it would create and the notes.
const INSTALL: &str = r#"
import json, sys
import helm_python as helm
config = helm.Config(kubeconfig_path=sys.argv[1], namespace="kube-devops")
release = config.install(sys.argv[2], "kube-devops", {}, namespace="kube-devops", dry_run="server", create_namespace=True)
kinds = [line[len("kind: "):] for line in release["manifest"].splitlines() if line.startswith("kind: ")]
print(json.dumps({"kinds": kinds, "notes": release["notes"], "pinned": "runAsUser: 1000" in release["manifest"]}))
"#;

/// `helm install` sees the cluster: with the default `serviceMonitor.enabled: auto` it renders
/// ServiceMonitors only where the Prometheus Operator's CRDs are installed, and its notes say
/// when it left them out (a plain cluster installs cleanly).
#[test]
fn helm_install_renders_service_monitors_only_where_the_cluster_serves_them() {
    let cluster = testkit::harness::TestCluster::stand_in();
    let install = || python(INSTALL, &[cluster.kubeconfig().to_str().unwrap(), chart().to_str().unwrap()]);
    let Some(plain) = install() else { return };
    let monitors =
        |release: &Value| release["kinds"].as_array().unwrap().iter().filter(|k| *k == "ServiceMonitor").count();
    assert_eq!(monitors(&plain), 0, "{plain}");
    assert!(plain["kinds"].as_array().unwrap().iter().any(|k| k == "Deployment"), "{plain}");
    assert!(plain["notes"].as_str().unwrap().contains("No ServiceMonitors were installed"), "{plain}");

    common::e2e::apply_ok(&cluster, &common::e2e::service_monitor_crd().to_string());
    let monitored = install().unwrap();
    assert_eq!(monitors(&monitored), 3, "{monitored}");
    assert!(!monitored["notes"].as_str().unwrap().contains("ServiceMonitors"), "{monitored}");

    // Likewise OpenShift's security API: the pods run as the platform assigns.
    assert_eq!(monitored["pinned"], true, "{monitored}");
    common::e2e::apply_ok(&cluster, &common::e2e::openshift_security_crd().to_string());
    assert_eq!(install().unwrap()["pinned"], false);
}

/// Unpinned IDs (`pinIds`) render as an install file that sets them, and as `deploy` renders
/// for a cluster serving OpenShift's security API: no runAsUser, runAsGroup or fsGroup, and a
/// TLS Secret readable without fsGroup.
#[test]
fn unpinned_ids_match_an_install_file_and_the_openshift_api() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    let spec = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  \
                pinIds: false\n";
    std::fs::write(&file, spec).unwrap();
    assert_same(&["pinIds=false"], &["-f", file.to_str().unwrap()]);
    assert_same(&["pinIds=false"], &["--api-versions", "security.openshift.io/v1"]);
    let Some(Ok(objects)) = helm_template(&chart(), &["pinIds=false"]) else { return };
    let webhook = objects.iter().find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kube-devops-webhook");
    let pod = &webhook.unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"].get("fsGroup").is_none() && pod["securityContext"].get("runAsUser").is_none());
    assert_eq!(pod["volumes"][1]["secret"]["defaultMode"], 0o444);
}

#[test]
fn the_rendered_chart_is_valid_for_kubernetes_1_30_and_1_37() {
    let Some(objects) = helm_template(&chart(), &[]) else { return };
    validate_all(&objects.unwrap());
    let Some(objects) = helm_template(&chart(), &["nodeSelector.disktype=ssd", "image.pullSecrets[0].name=regcred"])
    else {
        return;
    };
    let objects = objects.unwrap();
    validate_all(&objects);
    let pod = &objects.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["disktype"], "ssd");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
}

#[test]
fn the_chart_lints_clean_with_strict() {
    let Some(reports) = python(LINT, &[chart().to_str().unwrap()]) else { return };
    for report in reports.as_array().unwrap() {
        assert_eq!(report["total_charts_linted"], 1, "{report}");
        assert_eq!(report["errors"], json!([]), "{report}");
        // Severity 1 is information ("icon is recommended"); warnings fail with --strict.
        let problems: Vec<_> =
            report["messages"].as_array().unwrap().iter().filter(|m| m["severity"].as_i64() > Some(1)).collect();
        assert!(problems.is_empty(), "{problems:?}");
    }
}

#[test]
fn the_values_schema_rejects_values_that_would_render_a_broken_installation() {
    for set in [
        "replicaCount=-1",
        "replicaCount=11",
        "webhook.failurePolicy=Maybe",
        "serviceMonitor.interval=soon",
        "replicas=3",
        "resources.request.cpu=1",
        "resources.limits.memory=lots",
    ] {
        let Some(result) = helm_template(&chart(), &[set]) else { return };
        let error = result.err().unwrap_or_else(|| panic!("{set} was accepted"));
        assert!(error.contains("values don't meet the specifications of the schema"), "{set}: {error}");
    }
}

/// On upgrade the chart looks up the TLS Secret and keeps it until 30 days before it
/// expires; a renewal keeps trusting the previous CA while it is valid. `helm template` cannot
/// look up, so the test replaces the lookup with a Secret.
#[test]
fn an_upgrade_keeps_a_valid_certificate_and_renews_an_expiring_one() {
    use openssl::x509::X509;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("kube-devops");
    copy_dir(&chart(), &copy);
    let template = copy.join("templates/webhook-admission.yaml");
    let text = std::fs::read_to_string(&template).unwrap();
    let lookup = r#"lookup "v1" "Secret" $ns $secretName"#;
    assert!(text.contains(lookup), "the template looks the Secret up");
    let b64 = |s: &str| openssl::base64::encode_block(s.as_bytes());
    let old = kube_devops::manifests::webhook::generate_tls().unwrap();
    let existing = |not_after: &str| {
        format!(
            r#"dict "data" (dict "ca.crt" "{}" "tls.crt" "{}" "tls.key" "{}") "metadata" (dict "annotations" (dict "devops.stochastic.io/tls-not-after" "{not_after}"))"#,
            b64(&old.ca_crt),
            b64(&old.tls_crt),
            b64(&old.tls_key)
        )
    };
    let secret_and_ca = |not_after: &str| {
        std::fs::write(&template, text.replace(lookup, &existing(not_after))).unwrap();
        let objects = helm_template(&copy, &[])?.unwrap();
        let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap().clone();
        let vwc = objects.iter().find(|o| o["kind"] == "ValidatingWebhookConfiguration").unwrap();
        Some((secret, vwc["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap().to_string()))
    };
    let decode = |v: &str| openssl::base64::decode_block(v).unwrap();
    let Some((kept, ca_bundle)) = secret_and_ca("2999-01-01T00:00:00Z") else { return };
    assert_eq!(kept["data"]["tls.key"], b64(&old.tls_key));
    assert_eq!(ca_bundle, b64(&old.ca_crt), "the caBundle stays the kept CA");
    assert_eq!(kept["metadata"]["annotations"]["devops.stochastic.io/tls-not-after"], "2999-01-01T00:00:00Z");

    // Within 30 days of expiry: a new pair, and the previous CA stays trusted beside it.
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(10 * 24)).strftime("%Y-%m-%dT%H:%M:%SZ");
    let (renewed, ca_bundle) = secret_and_ca(&soon.to_string()).unwrap();
    assert_ne!(renewed["data"]["tls.key"], b64(&old.tls_key));
    assert_eq!(json!(ca_bundle), renewed["data"]["ca.crt"], "the caBundle is the Secret's CA bundle");
    let cas = X509::stack_from_pem(&decode(&ca_bundle)).unwrap();
    assert_eq!(cas.len(), 2, "the new CA and the previous one");
    assert_eq!(cas[1].to_pem().unwrap(), old.ca_crt.as_bytes());
    let cert = X509::from_pem(&decode(renewed["data"]["tls.crt"].as_str().unwrap())).unwrap();
    assert!(cert.verify(&cas[0].public_key().unwrap()).unwrap(), "the new certificate is the new CA's");

    // An expired previous CA is dropped.
    let (_, ca_bundle) = secret_and_ca("2020-01-01T00:00:00Z").unwrap();
    assert_eq!(X509::stack_from_pem(&decode(&ca_bundle)).unwrap().len(), 1);
}

/// With webhook.certManager.enabled, cert-manager issues the certificate: the chart renders a
/// CA chain of Issuers and Certificates, the serving Certificate writes the Secret the webhook
/// mounts and covers every name of the webhook Service, and cainjector fills the caBundle.
#[test]
fn cert_manager_issues_the_certificate_when_asked() {
    let Some(rendered) = helm_template(&chart(), &["webhook.certManager.enabled=true"]) else { return };
    let objects = rendered.unwrap();
    assert!(!objects.iter().any(|o| o["kind"] == "Secret"), "cert-manager writes the Secret");
    let kinds = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).count();
    assert_eq!((kinds("Issuer"), kinds("Certificate")), (2, 2));
    let serving = objects.iter().find(|o| o["kind"] == "Certificate" && o["metadata"]["name"] == "kube-devops-webhook");
    let spec = &serving.unwrap()["spec"];
    assert_eq!(spec["secretName"], "kube-devops-webhook-tls");
    assert_eq!(spec["issuerRef"]["name"], "kube-devops-webhook-ca");
    let names: Vec<&str> = spec["dnsNames"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for name in kube_devops::manifests::webhook::certificate_dns_names() {
        assert!(names.contains(&name.as_str()), "{name} missing from {names:?}");
    }
    let vwc = objects.iter().find(|o| o["kind"] == "ValidatingWebhookConfiguration").unwrap();
    assert_eq!(vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"], "kube-devops/kube-devops-webhook");
    assert!(vwc["webhooks"][0]["clientConfig"]["caBundle"].is_null(), "cainjector fills it");
    // The webhook still mounts the Secret cert-manager writes.
    let webhook = objects.iter().find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kube-devops-webhook");
    let volumes = &webhook.unwrap()["spec"]["template"]["spec"]["volumes"];
    assert!(volumes.as_array().unwrap().iter().any(|v| v["secret"]["secretName"] == "kube-devops-webhook-tls"));
}

/// With default values the chart generates (Sprig `genCA`/`genSignedCert`) a CA and a serving
/// certificate the API server accepts: the certificate is signed by the CA in the
/// ValidatingWebhookConfiguration's `caBundle`, covers every DNS name of the webhook Service,
/// and the Secret holds the matching key.
#[test]
fn the_chart_generates_a_certificate_the_api_server_trusts_for_the_webhook_service() {
    use openssl::x509::X509;
    let Some(rendered) = helm_template(&chart(), &[]) else { return };
    let objects = rendered.unwrap();
    let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
    let vwc = objects.iter().find(|o| o["kind"] == "ValidatingWebhookConfiguration").unwrap();
    let decode = |v: &Value| openssl::base64::decode_block(v.as_str().unwrap()).unwrap();
    let ca_bundle = decode(&vwc["webhooks"][0]["clientConfig"]["caBundle"]);
    assert_eq!(ca_bundle, decode(&secret["data"]["ca.crt"]));
    let ca = X509::from_pem(&ca_bundle).unwrap();
    let cert = X509::from_pem(&decode(&secret["data"]["tls.crt"])).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&decode(&secret["data"]["tls.key"])).unwrap();
    assert!(cert.verify(&ca.public_key().unwrap()).unwrap(), "the certificate is signed by the caBundle's CA");
    assert!(cert.public_key().unwrap().public_eq(&key), "the key matches the certificate");
    let sans: Vec<String> =
        cert.subject_alt_names().unwrap().iter().filter_map(|n| n.dnsname().map(String::from)).collect();
    for name in kube_devops::manifests::webhook::certificate_dns_names() {
        assert!(sans.contains(&name), "{name} missing from {sans:?}");
    }
    let service = &vwc["webhooks"][0]["clientConfig"]["service"];
    assert!(sans.contains(&format!(
        "{}.{}.svc",
        service["name"].as_str().unwrap(),
        service["namespace"].as_str().unwrap()
    )));
}
