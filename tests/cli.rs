//! The `kube-devops` binary as a user runs it: outputs, exit codes and error messages.

mod common;

use common::repo_path;
use common::tools::{stderr, stdout};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn kube_devops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-devops")).args(args).current_dir(common::repo_root()).output().unwrap()
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn json_report(args: &[&str]) -> Value {
    let out = kube_devops(args);
    assert!(out.status.code().is_some(), "killed by a signal: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn namespace<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == name)
        .unwrap_or_else(|| panic!("no namespace {name}"))
}

/// `(workload, check)` pairs of a namespace's violations, as `Kind/name container check`.
fn violations(report: &Value, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in namespace(report, ns)["workloads"].as_array().unwrap() {
        for v in w["violations"].as_array().unwrap() {
            out.push(format!(
                "{}/{} {} {}",
                w["kind"].as_str().unwrap(),
                w["name"].as_str().unwrap(),
                v["container"].as_str().unwrap_or("-"),
                v["check"].as_str().unwrap()
            ));
        }
    }
    out
}

#[test]
fn the_readme_audit_of_the_examples_prints_a_table_by_namespace() {
    let out = kube_devops(&["audit", "examples/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("Policy: bundle baseline\n"), "{table}");
    for ns in ["batch", "legacy", "payments", "shop", "TOTAL"] {
        assert!(table.lines().any(|l| l.starts_with(ns)), "no row for {ns}:\n{table}");
    }
    assert!(!table.contains("kube-system"), "system namespaces are not evaluated:\n{table}");
    assert!(table.contains("Deployment/old-frontend  nginx"), "{table}");
    assert!(table.contains("workload(s) in system namespaces"), "{table}");
}

/// The original six checks (the rest are the catalogue's newer ones).
const ORIGINAL: [&str; 6] =
    ["latest_tag", "missing_liveness", "missing_readiness", "missing_resources", "high_restarts", "pending"];

/// `violations` of the original six checks only.
fn original_violations(report: &Value, ns: &str) -> Vec<String> {
    violations(report, ns).into_iter().filter(|v| ORIGINAL.iter().any(|c| v.ends_with(&format!(" {c}")))).collect()
}

#[test]
fn the_restricted_bundle_finds_what_the_examples_do_wrong() {
    let report = json_report(&["audit", "examples/workloads", "--bundle", "RESTRICTED", "-o", "json"]);
    assert_eq!(report["policy"], "bundle restricted");
    assert_eq!(
        original_violations(&report, "legacy"),
        [
            "Deployment/old-frontend nginx latest_tag",
            "Deployment/old-frontend nginx missing_liveness",
            "Deployment/old-frontend nginx missing_readiness",
            "Deployment/old-frontend nginx missing_resources",
            "Deployment/billing billing latest_tag",
            "Deployment/billing billing missing_liveness",
            "Deployment/billing billing missing_resources",
            "DaemonSet/log-agent fluent-bit missing_resources",
        ]
    );
    // The restricted Pod Security Standard's controls: no legacy container sets a
    // securityContext, and the log agent mounts the node's /var/log.
    let legacy = violations(&report, "legacy");
    for container in ["Deployment/old-frontend nginx", "Deployment/billing billing", "DaemonSet/log-agent fluent-bit"] {
        for check in [
            "run_as_root_allowed",
            "privilege_escalation_allowed",
            "capabilities_not_dropped",
            "missing_seccomp_profile",
        ] {
            assert!(legacy.contains(&format!("{container} {check}")), "{container} {check}: {legacy:?}");
        }
    }
    assert!(legacy.contains(&"DaemonSet/log-agent - host_path".to_string()), "{legacy:?}");
    // shop is hardened the way restricted asks: nothing to find.
    assert_eq!(violations(&report, "shop"), Vec::<String>::new());
    assert_eq!(namespace(&report, "shop")["score"], 100);
    assert_eq!(
        original_violations(&report, "batch"),
        ["Job/db-migrate migrate latest_tag", "Job/db-migrate migrate missing_resources"]
    );
    assert_eq!(
        original_violations(&report, "payments"),
        ["Deployment/payments-api envoy missing_liveness", "Deployment/payments-api envoy missing_resources"]
    );
    // The original checks alone scored legacy 85; its security findings bring it to Stable.
    assert_eq!(namespace(&report, "legacy")["classification"], "Stable");
    assert!(namespace(&report, "legacy")["score"].as_u64().unwrap() < 85);
    assert_eq!(report["skippedSystemWorkloads"], 1);
    assert_eq!(report["errors"], Value::Array(vec![]));
    assert!(report["checks"].as_array().unwrap().iter().any(|c| c == "privileged"), "the checks it applied");
}

#[test]
fn policy_reports_are_printed_per_namespace_with_passes_counted() {
    let out = kube_devops(&["audit", "examples/workloads", "--bundle", "restricted", "-o", "policyreport"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reports: Vec<Value> = kube_devops::yaml::from_documents(&stdout(&out)).unwrap();
    let json = json_report(&["audit", "examples/workloads", "--bundle", "restricted", "-o", "json"]);
    let namespaces: Vec<&str> =
        json["namespaces"].as_array().unwrap().iter().map(|n| n["namespace"].as_str().unwrap()).collect();
    let reported: Vec<&str> = reports.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
    assert_eq!(reported, namespaces, "one report per namespace");
    let checks = json["checks"].as_array().unwrap().len() as u64;
    for (report, ns) in reports.iter().zip(json["namespaces"].as_array().unwrap()) {
        assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(report["kind"], "PolicyReport");
        let failures = ns["violations"].as_u64().unwrap();
        assert_eq!(report["summary"]["fail"], failures);
        assert_eq!(report["results"].as_array().unwrap().len() as u64, failures);
        // Every (workload, check) pair passed or failed; a check failing in two containers of
        // one workload is one failed pair and two results.
        let (pass, pairs) = (report["summary"]["pass"].as_u64().unwrap(), ns["subjects"].as_u64().unwrap() * checks);
        assert!(pass <= pairs && pass + failures >= pairs, "{pass} of {pairs}");
    }
    let legacy = reports.iter().find(|r| r["metadata"]["namespace"] == "legacy").unwrap();
    let host_path = legacy["results"].as_array().unwrap().iter().find(|r| r["rule"] == "host_path").unwrap();
    assert_eq!(host_path["policy"], "restricted");
    assert_eq!(host_path["result"], "fail");
    assert_eq!(host_path["severity"], "high");
    assert_eq!(host_path["category"], "Host access");
    assert_eq!(
        host_path["resources"][0],
        serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "log-agent", "namespace": "legacy"})
    );
    let shop = reports.iter().find(|r| r["metadata"]["namespace"] == "shop").unwrap();
    assert_eq!(shop["summary"]["pass"], 3 * checks, "every check of every shop workload passed");
}

#[test]
fn a_severity_override_in_a_policy_file_changes_the_score() {
    let dir = tempfile::tempdir().unwrap();
    let policy = |severity: &str| {
        let path = dir.path().join(format!("{severity}.yaml"));
        std::fs::write(&path, format!("apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {{name: tags}}\nspec:\n  forbidLatestTag: true\n  severityOverrides: {{latestTag: {severity}}}\n")).unwrap();
        path
    };
    let score = |severity: &str| {
        let path = policy(severity);
        let report =
            json_report(&["audit", "examples/workloads/legacy.yaml", "--policy", path.to_str().unwrap(), "-o", "json"]);
        assert_eq!(report["policy"], format!("DevOpsPolicy tags from {}", path.display()));
        namespace(&report, "legacy")["score"].as_u64().unwrap()
    };
    // Two :latest deployments of three: 10 points at high -> 3 per workload -> 97.
    assert_eq!(score("high"), 97);
    assert_eq!(score("critical"), 96);
    assert_eq!(score("low"), 99);
}

#[test]
fn fail_below_turns_the_audit_into_a_ci_gate() {
    let pass = kube_devops(&["audit", "examples/workloads", "--bundle", "restricted", "--fail-below", "50"]);
    assert_eq!(pass.status.code(), Some(0), "{}", stderr(&pass));
    let fail = kube_devops(&["audit", "examples/workloads", "--bundle", "restricted", "--fail-below", "99"]);
    assert_eq!(fail.status.code(), Some(1));
    assert!(stderr(&fail).contains("is below --fail-below 99"), "{}", stderr(&fail));
    let bad = kube_devops(&["audit", "examples/workloads", "--fail-below", "101"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn stdin_is_audited_with_dash_and_yaml_output_parses() {
    let manifest = std::fs::read_to_string(repo_path("examples/workloads/legacy.yaml")).unwrap();
    let out = with_stdin(&["audit", "-", "--output", "yaml"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_saphyr::from_str(&stdout(&out)).unwrap();
    let sources: Vec<_> = report["namespaces"][0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sources, ["<stdin>#1", "<stdin>#3", "<stdin>#4"]);
}

#[test]
fn bad_input_is_named_by_file_and_document_and_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: typo}\n---\n- just\n- a list\n---\nkind: Pod\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: 'nginx:1.27'}]\n",
    )
    .unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "kind: [unclosed\n").unwrap();
    let out = kube_devops(&["audit", file.to_str().unwrap(), broken.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    let f = file.display();
    assert!(err.contains(&format!("{f}#1: unknown kind 'Deploymnet' in apps/v1")), "{err}");
    assert!(err.contains(&format!("{f}#2: not a Kubernetes object: expected a mapping, found a list")), "{err}");
    assert!(err.contains(&format!("{f}#3: not a Kubernetes object: missing 'apiVersion'")), "{err}");
    assert!(err.contains(&format!("{}#1: not valid YAML", broken.display())), "{err}");
    // The rest is still audited and reported.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["subjects"], 1);
    assert_eq!(report["errors"].as_array().unwrap().len(), 4);

    let missing = kube_devops(&["audit", "does/not/exist.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("does/not/exist.yaml: cannot read"), "{}", stderr(&missing));
}

#[test]
fn unknown_bundles_and_missing_policy_files_are_clear_errors() {
    let out = kube_devops(&["audit", "examples/workloads", "--bundle", "strict"]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("invalid value 'strict'"), "{message}");
    assert!(message.contains("[possible values: baseline, restricted, permissive]"), "{message}");
    let out = kube_devops(&["audit", "examples/workloads", "--policy", "examples/install.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("examples/install.yaml: no DevOpsPolicy document found"), "{}", stderr(&out));
    // A misspelt check would silently turn it off: refused, like the API server would.
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: p}\nspec: {forbidLatestTags: true}\n").unwrap();
    let out = kube_devops(&["audit", "examples/workloads", "--policy", typo.to_str().unwrap(), "--fail-below", "100"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("typo.yaml#1: invalid DevOpsPolicy: .spec.forbidLatestTags: unknown field"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bundles_are_listed_and_shown_as_ready_policies() {
    let list = stdout(&kube_devops(&["policy", "bundle-list"]));
    let names: Vec<_> = list.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["baseline", "restricted", "permissive"]);

    let out = kube_devops(&["policy", "bundle-show", "Permissive", "--namespace", "shop", "--policy-name", "lenient"]);
    assert_eq!(out.status.code(), Some(0));
    let policy: kube_devops::api::DevOpsPolicy = serde_saphyr::from_str(&stdout(&out)).unwrap();
    assert_eq!(policy.metadata.name.as_deref(), Some("lenient"));
    assert_eq!(policy.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        policy.spec,
        kube_devops::api::bundles::Bundle::of(kube_devops::api::bundles::BundleName::Permissive).spec
    );

    let unknown = kube_devops(&["policy", "bundle-show", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn the_check_catalogue_is_listed_with_settings_and_bundles() {
    let table = stdout(&kube_devops(&["policy", "checks"]));
    let header = table.lines().next().unwrap();
    for column in ["ID", "CATEGORY", "SEVERITY", "WEIGHT", "SETTING", "BUNDLES", "DESCRIPTION"] {
        assert!(header.contains(column), "{header}");
    }
    let row = |id: &str| table.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_else(|| panic!("{id}"));
    assert!(row("privileged").contains("security.forbidPrivileged"), "{}", row("privileged"));
    assert!(row("latest_tag").contains("baseline,restricted,permissive"), "{}", row("latest_tag"));

    let catalogue = json_report(&["policy", "checks", "-o", "json"]);
    let checks = catalogue.as_array().unwrap();
    assert!(checks.len() >= 30, "{} checks", checks.len());
    assert_eq!(table.lines().count(), checks.len() + 1, "a row per check");
    for check in checks {
        for field in ["id", "category", "severity", "setting", "description", "fix"] {
            assert!(!check[field].as_str().unwrap().is_empty(), "{field} of {check}");
        }
        assert!(check["weight"].as_u64().unwrap() > 0, "{check}");
    }
    let bundles = |id: &str| checks.iter().find(|c| c["id"] == id).unwrap()["bundles"].clone();
    assert_eq!(bundles("privileged"), serde_json::json!(["baseline", "restricted"]), "Pod Security baseline");
    assert_eq!(bundles("run_as_root_allowed"), serde_json::json!(["restricted"]), "Pod Security restricted");
    assert_eq!(bundles("untrusted_registry"), serde_json::json!([]), "needs a registry list");
    // Every setting named exists in the DevOpsPolicy schema (`kubectl explain` shows it).
    let crd: Value = serde_json::to_value(<kube_devops::api::DevOpsPolicy as kube::CustomResourceExt>::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for check in checks {
        let mut node = spec;
        for part in check["setting"].as_str().unwrap().split('.') {
            node = &node["properties"][part];
            assert!(node.is_object(), "{} is not in the schema", check["setting"]);
        }
        assert!(node["description"].as_str().is_some_and(|d| !d.is_empty()), "{} has no description", check["setting"]);
    }
}

/// The README's catalogue table says what `policy checks` says, row by row.
#[test]
fn the_readme_documents_every_check_as_the_code_defines_it() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let catalogue = json_report(&["policy", "checks", "-o", "json"]);
    for c in catalogue.as_array().unwrap() {
        let s = |field: &str| c[field].as_str().unwrap().to_string();
        let row =
            format!("| `{}` | {} | `{}` | {} | {} |", s("id"), s("category"), s("setting"), c["weight"], s("severity"));
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}

#[test]
fn crd_generate_prints_all_three_crds() {
    let out = stdout(&kube_devops(&["crd", "generate"]));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out).unwrap();
    let names: Vec<_> =
        docs.iter().filter(|d| !d.is_null()).map(|d| d["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        names,
        [
            "devopspolicies.devops.stochastic.io",
            "policyauditresults.devops.stochastic.io",
            "kubedevopsinstalls.devops.stochastic.io"
        ]
    );
}

#[test]
fn version_prints_the_crate_version() {
    assert_eq!(stdout(&kube_devops(&["version"])), format!("kube-devops version {}\n", env!("CARGO_PKG_VERSION")));
}

/// Runs `kube-devops reconcile` against an API server that refuses connections for about two
/// seconds, with `RUST_LOG=filter`, and returns its stderr.
fn reconcile_log(format: &str, filter: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: c, cluster: {{server: \
             'http://127.0.0.1:{port}'}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, \
             context: {{cluster: c, user: u}}}}]\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(["reconcile", "--addr", "127.0.0.1:0", "--log-format", format])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", filter)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    child.kill().unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stderr).unwrap()
}

#[test]
fn server_logs_are_json_lines_with_fields_filtered_by_rust_log() {
    let log = reconcile_log("json", "info");
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect();
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    let serving = lines.iter().find(|l| l["message"] == "serving HTTP").unwrap_or_else(|| panic!("{log}"));
    assert_eq!((serving["level"].as_str(), serving["component"].as_str()), (Some("INFO"), Some("reconcile")));
    let lease = lines.iter().find(|l| l["level"] == "WARN").unwrap_or_else(|| panic!("a warning: {log}"));
    assert!(lease["message"].as_str().unwrap().contains("lease"), "{lease}");
    assert!(lease["error"].is_string(), "the error is a field: {lease}");

    let quiet = reconcile_log("json", "error");
    assert!(!quiet.contains("\"INFO\"") && !quiet.contains("\"WARN\""), "RUST_LOG=error: {quiet}");
    let text = reconcile_log("text", "info");
    assert!(text.lines().any(|l| l.contains(" INFO ") && l.contains("serving HTTP")), "{text}");
}
