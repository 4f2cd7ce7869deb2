//! Every checked-in file that is generated from the code, with its path in the repository:
//! `crds/`, `examples/policies/`, `config/`, the OLM `bundle/` (and `bundle.Dockerfile`) and
//! the generated files of `helm/kube-devops/`.
//! `tests/generated.rs` fails when a file drifts; `KUBE_DEVOPS_REGENERATE=1 cargo test --test
//! generated` rewrites them.

use crate::api::bundles::Bundle;
use crate::yaml::to_yaml_stream;

/// Folders that hold generated files only: a file in them that the code does not generate is
/// stale (regeneration deletes it).
pub const GENERATED_DIRS: &[&str] =
    &["crds", "config", "bundle", "examples/policies", "helm/kube-devops/crds", "helm/kube-devops/dashboards"];

/// `(path relative to the repository root, contents)` of every generated artefact.
pub fn all() -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for (file, crd) in crate::api::crds() {
        files.push((format!("crds/{file}"), crate::api::crd_file(&crd)?));
    }
    for bundle in Bundle::all() {
        let policy = bundle.policy("default", None);
        let header = format!("# Generated from the built-in '{}' bundle: {}\n", bundle.name, bundle.description);
        files.push((format!("examples/policies/{}.yaml", bundle.name), header + &to_yaml_stream(&[policy])?));
    }
    files.extend(crate::manifests::kustomize::files()?);
    files.extend(crate::manifests::chart::files()?);
    files.extend(crate::manifests::bundle::files()?);
    Ok(files)
}
