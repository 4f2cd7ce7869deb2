//! The OLM bundle (`bundle/`, `bundle.Dockerfile`) against the rules of OLM's registry+v1
//! format and operator-sdk's validators (`operator-sdk bundle validate`): layout,
//! one object per file, allowed kinds, annotations equal to the image labels, the
//! ClusterServiceVersion's required fields, naming, install modes, owned CRDs both ways,
//! examples that are provided APIs and valid, the operator's Deployment and RBAC exactly as
//! `config/` installs them, and the CSV valid against OLM's own CSV schema.

mod common;

use common::tools::{custom_resource_errors, documents, repo_path};
use serde_json::Value;
use std::collections::BTreeSet;

const ALLOWED_KINDS: &[&str] = &[
    "ClusterServiceVersion",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "PrometheusRule",
    "ServiceMonitor",
    "Secret",
    "ConfigMap",
    "PodDisruptionBudget",
    "PriorityClass",
    "VerticalPodAutoscaler",
    "NetworkPolicy",
    "PodMonitor",
];

/// Every file of `bundle/manifests`, as (file name, its one object).
fn manifests() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(repo_path("bundle/manifests")).unwrap() {
        let path = entry.unwrap().path();
        let docs = documents(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(docs.len(), 1, "{}: OLM reads one object per file", path.display());
        files.push((path.file_name().unwrap().to_string_lossy().into_owned(), docs[0].clone()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn csv() -> Value {
    let csvs: Vec<Value> =
        manifests().into_iter().map(|(_, o)| o).filter(|o| o["kind"] == "ClusterServiceVersion").collect();
    assert_eq!(csvs.len(), 1, "exactly one ClusterServiceVersion");
    csvs[0].clone()
}

#[test]
fn the_layout_annotations_and_image_labels_follow_registry_v1() {
    for (file, object) in manifests() {
        let kind = object["kind"].as_str().unwrap();
        assert!(ALLOWED_KINDS.contains(&kind), "{file}: {kind} is not allowed in a registry+v1 bundle");
        assert!(object["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{file}: no name");
    }
    let annotations: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(repo_path("bundle/metadata/annotations.yaml")).unwrap())
            .unwrap();
    let annotations = annotations["annotations"].as_object().unwrap();
    for key in ["mediatype", "manifests", "metadata", "package", "channels"] {
        let key = format!("operators.operatorframework.io.bundle.{key}.v1");
        assert!(annotations.get(&key).and_then(Value::as_str).is_some_and(|v| !v.is_empty()), "missing {key}");
    }
    assert_eq!(annotations["operators.operatorframework.io.bundle.mediatype.v1"], "registry+v1");
    assert_eq!(annotations["operators.operatorframework.io.bundle.manifests.v1"], "manifests/");
    assert_eq!(annotations["operators.operatorframework.io.bundle.metadata.v1"], "metadata/");
    let dockerfile = std::fs::read_to_string(repo_path("bundle.Dockerfile")).unwrap();
    let labels: BTreeSet<(String, String)> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("LABEL "))
        .map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap())
        .collect();
    let expected: BTreeSet<(String, String)> =
        annotations.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    assert_eq!(labels, expected, "the image labels are the annotations");
    assert!(dockerfile.contains("FROM scratch") && dockerfile.contains("COPY bundle/manifests /manifests/"));
    // Bundles larger than 1 MiB (gzip) are refused; ours is far below.
    let size: u64 =
        manifests().iter().map(|(f, _)| std::fs::metadata(repo_path("bundle/manifests").join(f)).unwrap().len()).sum();
    assert!(size < 1024 * 1024, "{size} bytes before compression");
    let Some(hadolint) = common::tools::tool("hadolint") else { return };
    let (ok, text) = common::tools::run(&hadolint, &["--no-color", repo_path("bundle.Dockerfile").to_str().unwrap()]);
    assert!(ok && text.trim().is_empty(), "hadolint:\n{text}");
}

#[test]
fn the_csv_has_what_olm_and_operator_sdk_require() {
    let csv = csv();
    let version = env!("CARGO_PKG_VERSION");
    let name = csv["metadata"]["name"].as_str().unwrap();
    assert_eq!(name, format!("kube-devops.v{version}"));
    assert!(name.len() <= 63);
    assert_eq!(csv["spec"]["version"], version);
    assert!(csv["spec"]["displayName"].as_str().is_some_and(|d| !d.is_empty()));
    let min = csv["spec"]["minKubeVersion"].as_str().unwrap();
    assert_eq!(min.split('.').filter(|p| p.parse::<u32>().is_ok()).count(), 3, "a full X.Y.Z: {min}");
    let modes = csv["spec"]["installModes"].as_array().unwrap();
    let types: BTreeSet<&str> = modes.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(types.len(), modes.len(), "each install mode once");
    assert!(modes.iter().any(|m| m["supported"] == true));
    assert_eq!(csv["spec"]["install"]["strategy"], "deployment");
    for image in csv["spec"]["relatedImages"].as_array().unwrap() {
        assert!(image["image"].as_str().is_some_and(|i| i.contains(':')), "{image}");
    }
    let capabilities = csv["metadata"]["annotations"]["capabilities"].as_str().unwrap();
    assert!(
        ["Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"].contains(&capabilities)
    );
    let known = ["Security", "Monitoring", "Developer Tools", "Integration & Delivery"];
    for category in csv["metadata"]["annotations"]["categories"].as_str().unwrap().split(',') {
        assert!(known.contains(&category.trim()), "{category}");
    }
}

#[test]
fn owned_crds_are_the_bundle_crds_and_every_example_is_a_valid_provided_api() {
    let csv = csv();
    let owned: BTreeSet<(String, String, String)> = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().into(),
                o["version"].as_str().unwrap().into(),
                o["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    let in_bundle: BTreeSet<(String, String, String)> = manifests()
        .into_iter()
        .filter(|(_, o)| o["kind"] == "CustomResourceDefinition")
        .map(|(_, crd)| {
            let storage =
                crd["spec"]["versions"].as_array().unwrap().iter().find(|v| v["storage"] == true).unwrap().clone();
            (
                crd["metadata"]["name"].as_str().unwrap().into(),
                storage["name"].as_str().unwrap().into(),
                crd["spec"]["names"]["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(owned, in_bundle);
    assert_eq!(owned.len(), 3);
    let examples: Vec<Value> =
        serde_json::from_str(csv["metadata"]["annotations"]["alm-examples"].as_str().unwrap()).unwrap();
    assert!(!examples.is_empty());
    for example in &examples {
        assert!(owned.iter().any(|(_, _, kind)| example["kind"] == kind.as_str()), "{example}: not a provided API");
        assert!(custom_resource_errors(example).is_empty(), "{example}: {:?}", custom_resource_errors(example));
    }
}

#[test]
fn the_operator_is_installed_as_config_installs_it() {
    let csv = csv();
    let install = &csv["spec"]["install"]["spec"];
    let deployments = install["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    let operator = kube_devops::manifests::bootstrap::deployment(&Default::default());
    assert_eq!(deployments[0]["name"], "kube-devops-operator");
    assert_eq!(deployments[0]["spec"], serde_json::to_value(operator.spec).unwrap());
    let sa = deployments[0]["spec"]["template"]["spec"]["serviceAccountName"].as_str().unwrap();
    let rules = |rules: Vec<kube_devops::manifests::rbac::Rule>| -> Value {
        serde_json::to_value(rules.iter().map(|r| r.policy_rule()).collect::<Vec<_>>()).unwrap()
    };
    let cluster = &install["clusterPermissions"][0];
    assert_eq!(
        (cluster["serviceAccountName"].as_str(), &cluster["rules"]),
        (Some(sa), &rules(kube_devops::manifests::bootstrap::cluster_rules()))
    );
    let namespaced = &install["permissions"][0];
    assert_eq!(namespaced["rules"], rules(kube_devops::manifests::bootstrap::NAMESPACE_RULES.to_vec()));
    // OLM creates the deployment's ServiceAccount; the bundle must not ship one of that name.
    for (file, object) in manifests() {
        assert!(!(object["kind"] == "ServiceAccount" && object["metadata"]["name"] == sa), "{file}");
    }
}

/// The CSV against OLM's own ClusterServiceVersion CRD schema (a copy in tests/schemas/olm, see
/// its README), the way the API server would check it.
#[test]
fn the_csv_is_valid_for_olms_csv_schema() {
    let path = repo_path("tests/schemas/olm/operators.coreos.com_clusterserviceversions.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let crd: Value = documents(&text).remove(0);
    let version = crd["spec"]["versions"].as_array().unwrap().iter().find(|v| v["name"] == "v1alpha1").unwrap().clone();
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    // The API server checks metadata itself (and always has it): the structural check leaves
    // it out, so it must not be required here.
    schema["required"] = serde_json::json!(["spec"]);
    let schema = &schema;
    let errors = common::structural::check(schema, &csv());
    assert!(errors.is_empty(), "{errors:#?}");
    let mut broken = csv();
    broken["spec"]["installModes"][0]["supported"] = "yes".into();
    assert!(!common::structural::check(schema, &broken).is_empty(), "the schema check can fail");
}
