//! The generated files of the Helm chart `helm/kube-devops/`: `Chart.yaml` (its version is
//! the crate's), the CRDs under `crds/` (Helm installs them before the templates) and the
//! dashboard JSON the ConfigMap template embeds. The templates themselves are hand-written;
//! a test renders them and compares with [`super::all`].

use super::dashboard;
use crate::yaml::{to_yaml, to_yaml_stream};
use serde::Serialize;

/// Where the chart lives in the repository.
pub const DIR: &str = "helm/kube-devops";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChartYaml {
    api_version: &'static str,
    name: &'static str,
    description: &'static str,
    #[serde(rename = "type")]
    type_: &'static str,
    version: &'static str,
    app_version: &'static str,
    kube_version: &'static str,
    keywords: [&'static str; 4],
}

/// `(path, contents)` of the chart's generated files.
pub fn files() -> anyhow::Result<Vec<(String, String)>> {
    let chart = ChartYaml {
        api_version: "v2",
        name: "kube-devops",
        description: "Kubernetes governance: scores workloads against DevOps best practices, reconciles \
                      DevOpsPolicies and validates pods at admission",
        type_: "application",
        version: super::VERSION,
        app_version: super::VERSION,
        kube_version: ">=1.30.0-0",
        keywords: ["kubernetes", "governance", "policy", "admission-webhook"],
    };
    let header = "# Generated from src/manifests/chart.rs (the version is the crate's); do not edit.\n";
    let mut files = vec![(format!("{DIR}/Chart.yaml"), format!("{header}{}", to_yaml(&chart)?))];
    for (file, crd) in crate::api::crds() {
        files.push((format!("{DIR}/crds/{file}"), to_yaml_stream(&[crd])?));
    }
    files.push((format!("{DIR}/dashboards/{}", dashboard::FILE), dashboard::dashboard_json()));
    Ok(files)
}
