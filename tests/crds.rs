//! The CRDs as `kubectl` and the API server see them: names, printer columns, descriptions,
//! defaults, the singleton rule, and the examples they must accept.

mod common;

use common::{repo_path, structural, yaml_documents};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube_devops::api::{DevOpsPolicy, KubeDevopsInstall, KubeDevopsInstallSpec, PolicyAuditResult};
use serde_json::{Value, json};

fn schema(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap()
}

fn install_schema() -> Value {
    schema(&KubeDevopsInstall::crd())
}

#[test]
fn crds_are_findable_and_printable_with_kubectl() {
    let expected = [
        (
            DevOpsPolicy::crd(),
            "devopspolicies",
            "Namespaced",
            "v1",
            vec!["dop", "devpol"],
            vec!["Mode", "Score", "Class", "Violations", "Remediated", "Unremediated", "Evaluated", "Age"],
        ),
        (
            PolicyAuditResult::crd(),
            "policyauditresults",
            "Namespaced",
            "v1",
            vec!["par", "audits"],
            vec!["Policy", "Score", "Class", "Pods", "Violations", "Age"],
        ),
        (
            KubeDevopsInstall::crd(),
            "kubedevopsinstalls",
            "Cluster",
            "v1alpha1",
            vec!["kdi"],
            vec!["Version", "Available", "Progressing", "Degraded", "Age"],
        ),
    ];
    for (crd, plural, scope, version, short_names, columns) in expected {
        assert_eq!(crd.spec.group, "devops.stochastic.io");
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(crd.spec.scope, scope);
        assert_eq!(crd.spec.names.short_names.clone().unwrap_or_default(), short_names);
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["kube-devops".to_string()][..]));
        let v = &crd.spec.versions[0];
        assert_eq!((v.name.as_str(), v.served, v.storage), (version, true, true));
        let names: Vec<_> = v.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(names, columns, "{plural}");
    }
    // The shipped CRDs carry the labels of every kube-devops object.
    for (file, crd) in kube_devops::api::crds() {
        let labels = crd.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("app.kubernetes.io/name").map(String::as_str), Some("kube-devops"), "{file}");
        assert_eq!(labels.get("app.kubernetes.io/component").map(String::as_str), Some("crd"), "{file}");
        assert!(labels.contains_key("app.kubernetes.io/version"), "{file}");
    }
    assert!(DevOpsPolicy::crd().spec.versions[0].subresources.as_ref().unwrap().status.is_some());
    assert!(KubeDevopsInstall::crd().spec.versions[0].subresources.as_ref().unwrap().status.is_some());
}

/// `kubectl explain` shows descriptions: every field of every CRD must have one.
#[test]
fn every_field_has_a_description() {
    fn walk(schema: &Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                let child_path = format!("{path}.{name}");
                let top_level_meta = path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str());
                if !top_level_meta && child.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
                    missing.push(child_path.clone());
                }
                walk(child, &child_path, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{path}[]"), missing);
        }
        if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            walk(additional, &format!("{path}{{}}"), missing);
        }
    }
    for (file, crd) in kube_devops::api::crds() {
        let mut missing = Vec::new();
        walk(&schema(&crd), "", &mut missing);
        assert!(missing.is_empty(), "{file}: fields without description: {missing:?}");
    }
}

#[test]
fn the_install_schema_rejects_any_name_but_default() {
    let validator = kube_cel::Validator::new();
    let object = |name: &str| json!({"apiVersion": "devops.stochastic.io/v1alpha1", "kind": "KubeDevopsInstall", "metadata": {"name": name}, "spec": {}});
    assert!(validator.validate(&install_schema(), &object("default"), None).is_ok());
    let errors = validator.validate(&install_schema(), &object("prod"), None).unwrap_err();
    let messages: Vec<String> = errors.as_slice().iter().map(|e| e.to_string()).collect();
    assert!(messages.iter().any(|m| m.contains("metadata.name must be 'default'")), "{messages:?}");
}

#[test]
fn an_empty_install_spec_is_defaulted_as_documented() {
    let defaulted = kube_cel::apply_defaults(&install_schema(), &json!({"metadata": {"name": "default"}, "spec": {}}));
    let spec = &defaulted["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(
        spec["resources"],
        json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}})
    );
    assert_eq!(spec["pdb"], json!({"enabled": true, "minAvailable": 1}));
    assert_eq!(spec["serviceMonitor"], json!({"interval": "15s"}), "enabled unset: automatic");
    assert_eq!(spec["grafanaDashboard"], json!({"enabled": true}));
    assert_eq!(spec["webhook"]["failurePolicy"], "Ignore");
    assert_eq!(spec["webhook"]["timeoutSeconds"], 3);
    assert_eq!(spec["watch"]["enabled"], true);
    assert_eq!(spec["image"]["pullPolicy"], "IfNotPresent");
    // What the API server stores is what the Rust defaults say.
    let stored: KubeDevopsInstallSpec = serde_json::from_value(spec.clone()).unwrap();
    assert_eq!(stored, KubeDevopsInstallSpec::default());
    let from_empty: KubeDevopsInstallSpec = serde_json::from_value(json!({})).unwrap();
    assert_eq!(from_empty, KubeDevopsInstallSpec::default());
}

#[test]
fn the_install_schema_rejects_invalid_specs() {
    let schema = install_schema();
    let errors = |spec: Value| structural::check(&schema, &json!({"metadata": {"name": "default"}, "spec": spec}));
    assert!(errors(json!({})).is_empty());
    assert!(!errors(json!({"replicas": -1})).is_empty());
    assert!(!errors(json!({"replicas": "two"})).is_empty());
    assert!(!errors(json!({"webhook": {"failurePolicy": "Sometimes"}})).is_empty());
    assert!(!errors(json!({"webhook": {"timeoutSeconds": 60}})).is_empty());
    assert!(!errors(json!({"replica": 3})).is_empty(), "a misspelt field must not pass silently");
}

#[test]
fn examples_are_accepted_by_their_crds() {
    let cases = [
        ("examples/install.yaml", install_schema()),
        ("examples/policies/baseline.yaml", schema(&DevOpsPolicy::crd())),
        ("examples/policies/restricted.yaml", schema(&DevOpsPolicy::crd())),
        ("examples/policies/permissive.yaml", schema(&DevOpsPolicy::crd())),
    ];
    let validator = kube_cel::Validator::new();
    for (file, schema) in cases {
        for doc in yaml_documents(&repo_path(file)) {
            assert_eq!(structural::check(&schema, &doc), Vec::<String>::new(), "{file}");
            assert!(validator.validate(&schema, &doc, None).is_ok(), "{file}");
        }
    }
    let install: KubeDevopsInstall =
        serde_json::from_value(yaml_documents(&repo_path("examples/install.yaml")).remove(0)).unwrap();
    assert_eq!(install.spec.webhook.replicas, Some(3));
}

#[test]
fn audit_results_bound_their_violation_list_in_the_schema() {
    let schema = schema(&PolicyAuditResult::crd());
    let violation = json!({"podName": "p", "containerName": "c", "violationType": "latest_tag", "severity": "high", "message": "m"});
    let result = |n: usize| {
        json!({"metadata": {"name": "r"}, "spec": {"policyName": "p", "timestamp": "2026-11-26T12:00:00Z", "healthScore": 90,
            "classification": "Healthy", "totalPods": 1, "totalViolations": n, "violations": vec![violation.clone(); n]}})
    };
    assert!(structural::check(&schema, &result(kube_devops::api::MAX_AUDIT_VIOLATIONS)).is_empty());
    assert!(!structural::check(&schema, &result(kube_devops::api::MAX_AUDIT_VIOLATIONS + 1)).is_empty());
}

#[test]
fn the_default_memory_limit_is_the_one_the_readmes_scale_table_names() {
    let limit = kube_devops::api::install::default_resources().limits.unwrap()["memory"].0.clone();
    let readme = include_str!("../README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| 10,000") || l.starts_with("| 50,000")).collect();
    assert_eq!(rows.len(), 2, "the table of memory by cluster size");
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[cells.len() - 2], limit, "install default in {row}");
        let needed = kube_devops::quantity::value(cells[cells.len() - 3]).unwrap();
        assert!(needed <= kube_devops::quantity::value(&limit).unwrap(), "the default holds {row}");
    }
}
