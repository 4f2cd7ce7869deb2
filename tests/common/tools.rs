//! Helpers of the installation tests: the `kube-devops` binary, the third-party tools from
//! `.venv` (scripts/requirements-test.txt), and comparing rendered objects.
//!
//! A tool that is missing makes its test say so and pass, unless KUBE_DEVOPS_REQUIRE_VALIDATORS
//! is set (scripts/test.sh and CI set it): then the test fails.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use super::{repo_path, repo_root};

/// Runs the `kube-devops` binary in the repository root.
pub fn kube_devops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-devops")).args(args).current_dir(repo_root()).output().unwrap()
}

/// Runs the `kube-devops` binary against the cluster of `kubeconfig` (never the in-cluster
/// configuration of a CI runner that happens to be a pod).
pub fn kube_devops_on(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stdout of a `kube-devops` command that must succeed.
pub fn render(args: &[&str]) -> String {
    let out = kube_devops(args);
    assert!(out.status.success(), "kube-devops {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn missing(what: &str) -> Option<PathBuf> {
    assert!(
        std::env::var_os("KUBE_DEVOPS_REQUIRE_VALIDATORS").is_none(),
        "{what} is required but not installed (pip install -r scripts/requirements-test.txt into .venv)"
    );
    eprintln!("{what} not installed: skipping (scripts/test.sh installs it)");
    None
}

/// A command-line tool: `.venv/bin/NAME` first, else NAME on PATH.
pub fn tool(name: &str) -> Option<PathBuf> {
    let venv = repo_path(&format!(".venv/bin/{name}"));
    if venv.exists() {
        return Some(venv);
    }
    let on_path = Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if on_path { Some(PathBuf::from(name)) } else { missing(name) }
}

/// A Python interpreter that can import `module`.
pub fn python_with(module: &str) -> Option<PathBuf> {
    for python in [repo_path(".venv/bin/python"), PathBuf::from("python3")] {
        let ok =
            Command::new(&python).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    missing(&format!("the Python module {module}"))
}

/// Runs a tool and returns (success, stdout + stderr).
pub fn run(tool: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Every non-empty document of a YAML stream.
pub fn documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `Kind/namespace/name` of an object.
pub fn id(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("?")
    )
}

/// Kinds kubernetes-validate has no schema for: checked against their CRDs instead.
pub const CUSTOM_KINDS: [&str; 4] = ["ServiceMonitor", "KubeDevopsInstall", "DevOpsPolicy", "PolicyAuditResult"];

/// `kubernetes-validate --strict` for Kubernetes 1.30 and 1.37 on every built-in object of
/// `objects`; "Couldn't find schema" is a failure. Returns false when the tool is missing.
pub fn validate_builtin(objects: &[Value]) -> bool {
    let Some(validator) = tool("kubernetes-validate") else { return false };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        if CUSTOM_KINDS.contains(&object["kind"].as_str().unwrap_or("")) {
            continue;
        }
        let path = dir.path().join(format!("{i:03}.json"));
        std::fs::write(&path, serde_json::to_string(object).unwrap()).unwrap();
        files.push(path.to_string_lossy().into_owned());
    }
    if files.is_empty() {
        return true;
    }
    for version in ["1.30.0", "1.37.0"] {
        let mut args = vec!["--strict", "-k", version];
        args.extend(files.iter().map(String::as_str));
        let (ok, text) = run(&validator, &args);
        assert!(ok, "kubernetes-validate {version} failed:\n{text}");
        assert!(!text.contains("Couldn't find schema"), "kubernetes-validate {version} has no schema:\n{text}");
        assert!(!text.contains("ERROR"), "{text}");
        assert_eq!(text.matches("passed for resource").count(), files.len(), "{text}");
    }
    true
}

/// Errors of a ServiceMonitor against the upstream CRD's schema (the fields kube-devops uses).
pub fn service_monitor_errors(object: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(include_str!("../schemas/servicemonitor.schema.json")).unwrap();
    let mut errors = super::structural::check(&schema, object);
    let scheme_ok = object["spec"]["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["scheme"] != "https" || e["tlsConfig"]["ca"].is_object());
    if !scheme_ok {
        errors.push("an https endpoint without a CA to verify it".into());
    }
    errors
}

/// Errors of a custom resource of kube-devops against its CRD's structural schema.
pub fn custom_resource_errors(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap();
    let crd = kube_devops::api::crds().into_iter().map(|(_, crd)| crd).find(|crd| crd.spec.names.kind == kind);
    let crd = crd.unwrap_or_else(|| panic!("no CRD for {kind}"));
    let version = object["apiVersion"].as_str().unwrap().rsplit('/').next().unwrap();
    let version = crd.spec.versions.iter().find(|v| v.name == version).expect("a served version");
    let schema = serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
    super::structural::check(&schema, object)
}

/// Checks every object of a rendering: built-in kinds with kubernetes-validate, custom kinds
/// against their schemas.
pub fn validate_all(objects: &[Value]) {
    validate_builtin(objects);
    for object in objects {
        let errors = match object["kind"].as_str().unwrap() {
            "ServiceMonitor" => service_monitor_errors(object),
            kind if CUSTOM_KINDS.contains(&kind) => custom_resource_errors(object),
            _ => continue,
        };
        assert!(errors.is_empty(), "{}: {errors:?}", id(object));
    }
}

/// The label values Helm sets differently, and the key material that differs on every
/// rendering, replaced by placeholders; objects sorted by kind, namespace and name.
pub fn normalise(objects: Vec<Value>) -> Vec<Value> {
    let mut objects: Vec<Value> = objects.into_iter().map(normalise_object).collect();
    objects.sort_by_key(id);
    objects
}

fn normalise_labels(labels: &mut Value) {
    if let Some(map) = labels.as_object_mut() {
        map.remove("helm.sh/chart");
        if map.get("app.kubernetes.io/managed-by").and_then(Value::as_str) == Some("Helm") {
            map.insert("app.kubernetes.io/managed-by".into(), "kube-devops".into());
        }
    }
}

fn normalise_object(mut object: Value) -> Value {
    normalise_labels(&mut object["metadata"]["labels"]);
    if object["kind"] == "Deployment" {
        normalise_labels(&mut object["spec"]["template"]["metadata"]["labels"]);
    }
    if object["kind"] == "Secret"
        && let Some(data) = object["data"].as_object_mut()
    {
        for value in data.values_mut() {
            *value = "<key material>".into();
        }
        object["metadata"]["annotations"]["devops.stochastic.io/tls-not-after"] = "<time>".into();
    }
    if object["kind"] == "ValidatingWebhookConfiguration" {
        for hook in object["webhooks"].as_array_mut().unwrap() {
            hook["clientConfig"]["caBundle"] = "<key material>".into();
        }
    }
    object
}

/// A readable difference between two normalised renderings ("" when equal).
pub fn difference(left: &[Value], right: &[Value]) -> String {
    let ids = |objects: &[Value]| objects.iter().map(id).collect::<Vec<_>>();
    if ids(left) != ids(right) {
        return format!("objects differ:\n  left:  {:?}\n  right: {:?}", ids(left), ids(right));
    }
    let mut out = String::new();
    for (l, r) in left.iter().zip(right) {
        if l != r {
            diff_values(&id(l), l, r, &mut out);
        }
    }
    out
}

fn diff_values(path: &str, l: &Value, r: &Value, out: &mut String) {
    match (l, r) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let (x, y) = (a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null));
                if x != y {
                    diff_values(&format!("{path}.{key}"), x, y, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    diff_values(&format!("{path}[{i}]"), x, y, out);
                }
            }
        }
        _ => out.push_str(&format!("{path}:\n  left:  {l}\n  right: {r}\n")),
    }
}

/// Copies a folder tree (a chart or a kustomize tree to modify in a test).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `promtool check metrics` of a `/metrics` body from `what` (skipped where promtool is not
/// installed; scripts/test.sh installs it).
pub fn promtool_check(what: &str, metrics: &str) {
    let Some(promtool) = tool("promtool") else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), metrics.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics of {what}'s /metrics:\n{report}");
}
