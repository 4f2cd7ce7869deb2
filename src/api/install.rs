//! `KubeDevopsInstall` (devops.stochastic.io/v1alpha1): the whole installation, as one
//! cluster-scoped singleton named `default`.

// kube's `printcolumn(...)` attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The only name a KubeDevopsInstall may have: one installation per cluster.
pub const INSTALL_NAME: &str = "default";

/// Describes a kube-devops installation; the bootstrap operator makes the cluster match it.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "devops.stochastic.io",
    version = "v1alpha1",
    kind = "KubeDevopsInstall",
    plural = "kubedevopsinstalls",
    singular = "kubedevopsinstall",
    status = "KubeDevopsInstallStatus",
    shortname = "kdi",
    category = "kube-devops",
    derive = "PartialEq",
    doc = "A kube-devops installation. Cluster-scoped singleton: the only accepted name is 'default'.",
    validation = Rule::new("self.metadata.name == 'default'").message("KubeDevopsInstall is a singleton: metadata.name must be 'default'").reason(kube::core::Reason::FieldValueForbidden),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version", description = "The kube-devops version every component runs"),
    printcolumn(name = "Available", type_ = "string", json_path = ".status.conditions[?(@.type==\"Available\")].status", description = "Every enabled component has its replicas ready"),
    printcolumn(name = "Progressing", type_ = "string", json_path = ".status.conditions[?(@.type==\"Progressing\")].status", description = "A rollout is under way"),
    printcolumn(name = "Degraded", type_ = "string", json_path = ".status.conditions[?(@.type==\"Degraded\")].status", description = "Something could not be reconciled"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct KubeDevopsInstallSpec {
    /// The container image every component runs.
    #[serde(default)]
    pub image: ImageSpec,
    /// Replicas of each component unless the component sets its own.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 10))]
    pub replicas: i32,
    /// Resources of each component's container unless the component sets its own.
    #[serde(default = "default_resources")]
    pub resources: ResourceRequirements,
    /// The watch controller (scores pods, exports metrics).
    #[serde(default)]
    pub watch: ComponentSpec,
    /// The reconcile operator (evaluates DevOpsPolicies, writes status and audit results).
    #[serde(default)]
    pub reconcile: ReconcileSpec,
    /// The validating admission webhook.
    #[serde(default)]
    pub webhook: WebhookSpec,
    /// PodDisruptionBudgets for the components.
    #[serde(default)]
    pub pdb: PdbSpec,
    /// Prometheus Operator ServiceMonitors for the components' metrics.
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
    /// The Grafana dashboard ConfigMap.
    #[serde(default)]
    pub grafana_dashboard: GrafanaDashboardSpec,
    /// wgpolicyk8s.io PolicyReports of the DevOpsPolicies' results, for Policy Reporter and
    /// the other tools of that ecosystem.
    #[serde(default)]
    pub policy_reports: PolicyReportsSpec,
    /// NetworkPolicies for the components.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// The web dashboard (off by default).
    #[serde(default)]
    pub dashboard: DashboardSpec,
    /// OpenTelemetry traces of the components.
    #[serde(default)]
    pub tracing: TracingSpec,
    /// Whether the pods run as UID and GID 1000 (`runAsUser`, `runAsGroup`, `fsGroup`), the
    /// image's user. Unset: pinned, except on clusters serving `security.openshift.io/v1`,
    /// where OpenShift assigns each namespace a UID range and refuses pods pinned outside it
    /// (the pods run as whatever the platform assigns, still non-root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_ids: Option<bool>,
    /// Node labels the components' pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the components' pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

impl Default for KubeDevopsInstallSpec {
    fn default() -> Self {
        KubeDevopsInstallSpec {
            image: ImageSpec::default(),
            replicas: default_replicas(),
            resources: default_resources(),
            watch: ComponentSpec::default(),
            reconcile: ReconcileSpec::default(),
            webhook: WebhookSpec::default(),
            pdb: PdbSpec::default(),
            service_monitor: ServiceMonitorSpec::default(),
            grafana_dashboard: GrafanaDashboardSpec::default(),
            policy_reports: PolicyReportsSpec::default(),
            network_policy: NetworkPolicySpec::default(),
            dashboard: DashboardSpec::default(),
            tracing: TracingSpec::default(),
            pin_ids: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
        }
    }
}

/// Which image to run and how to pull it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository, without tag.
    #[serde(default = "default_image_repository")]
    pub repository: String,
    /// Image tag; unset means the operator's own version, so upgrading the operator upgrades
    /// the components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// When to pull the image.
    #[serde(default)]
    pub pull_policy: PullPolicy,
    /// Secrets (in the kube-devops namespace) to pull the image with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<LocalObjectReference>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            repository: default_image_repository(),
            tag: None,
            pull_policy: PullPolicy::default(),
            pull_secrets: Vec::new(),
        }
    }
}

/// Kubernetes image pull policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

/// Settings of one component (watch or reconcile).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Whether the component is installed.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Replicas of this component; default spec.replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub replicas: Option<i32>,
    /// Resources of this component's container; default spec.resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for ComponentSpec {
    fn default() -> Self {
        ComponentSpec { enabled: true, replicas: None, resources: None }
    }
}

/// Settings of the reconcile operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileSpec {
    /// Whether the component is installed.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Replicas of this component; default spec.replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub replicas: Option<i32>,
    /// Resources of this component's container; default spec.resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Seconds between evaluations of each policy (pods change without touching the policy); a
    /// policy's own change is evaluated at once. Statuses are written only when they change.
    #[serde(default = "default_evaluation_interval")]
    #[schemars(range(min = 1, max = 86400))]
    pub evaluation_interval_seconds: u32,
}

impl Default for ReconcileSpec {
    fn default() -> Self {
        ReconcileSpec {
            enabled: true,
            replicas: None,
            resources: None,
            evaluation_interval_seconds: default_evaluation_interval(),
        }
    }
}

/// Settings of the admission webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// Whether the webhook (Deployment and ValidatingWebhookConfiguration) is installed.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Replicas of the webhook; default spec.replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub replicas: Option<i32>,
    /// Resources of the webhook's container; default spec.resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// What the API server does when the webhook cannot answer: Ignore (fail open) or Fail.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Seconds the API server waits for the webhook.
    #[serde(default = "default_webhook_timeout")]
    #[schemars(range(min = 1, max = 30))]
    pub timeout_seconds: i32,
    /// Users (besides the built-in controllers of kube-controller-manager) whose requests to
    /// create a pod, Job or ReplicaSet for the workload that controls it are allowed without
    /// judging it again, e.g. `system:serviceaccount:argo-rollouts:argo-rollouts`. Anyone
    /// else's pod is judged as a bare pod, whatever owner references it carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_controllers: Vec<String>,
}

impl Default for WebhookSpec {
    fn default() -> Self {
        WebhookSpec {
            enabled: true,
            replicas: None,
            resources: None,
            failure_policy: FailurePolicy::default(),
            timeout_seconds: default_webhook_timeout(),
            trusted_controllers: Vec::new(),
        }
    }
}

/// Admission webhook failure policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    #[default]
    Ignore,
    Fail,
}

/// PodDisruptionBudget settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    /// Whether each component gets a PodDisruptionBudget.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Pods of each component that must stay available during voluntary disruptions.
    #[serde(default = "default_min_available")]
    #[schemars(range(min = 0))]
    pub min_available: i32,
}

impl Default for PdbSpec {
    fn default() -> Self {
        PdbSpec { enabled: true, min_available: default_min_available() }
    }
}

/// ServiceMonitor settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Whether ServiceMonitors are created. Unset (the default): automatic, created when the
    /// cluster serves the Prometheus Operator's ServiceMonitor API (monitoring.coreos.com/v1)
    /// and as soon as it appears, skipped while it does not (the status says so). true: always
    /// (without the Prometheus Operator's CRDs the install is Degraded). false: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Scrape interval, a Prometheus duration.
    #[serde(default = "default_scrape_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: String,
    /// Extra labels of the ServiceMonitors, for a Prometheus that selects monitors by label
    /// (kube-prometheus-stack: `release: <its release name>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for ServiceMonitorSpec {
    fn default() -> Self {
        ServiceMonitorSpec { enabled: None, interval: default_scrape_interval(), labels: BTreeMap::new() }
    }
}

impl ServiceMonitorSpec {
    /// Whether ServiceMonitors belong to the installation on a cluster that does (`served`)
    /// or does not serve their API: the explicit setting, else whether it is served.
    pub fn wanted(&self, served: bool) -> bool {
        self.enabled.unwrap_or(served)
    }
}

/// Grafana dashboard settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaDashboardSpec {
    /// Whether the dashboard ConfigMap (label grafana_dashboard=1) is created.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

impl Default for GrafanaDashboardSpec {
    fn default() -> Self {
        GrafanaDashboardSpec { enabled: true }
    }
}

/// PolicyReport settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReportsSpec {
    /// Whether the reconcile operator keeps one wgpolicyk8s.io/v1alpha2 PolicyReport
    /// (`kube-devops`) in each namespace with DevOpsPolicies, holding every policy's failed
    /// checks and a summary. The PolicyReport CRD comes with Kyverno or Policy Reporter;
    /// without it the install is Degraded and nothing else changes.
    #[serde(default)]
    pub enabled: bool,
}

/// The web dashboard: `kube-devops dashboard` in the cluster, read-only, reached with
/// `kubectl port-forward -n kube-devops svc/kube-devops-dashboard 8090`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardSpec {
    /// Whether to run it (one replica, its own read-only RBAC, a Service).
    #[serde(default)]
    pub enabled: bool,
    /// The built-in bundle it scores pods against.
    #[serde(default)]
    pub bundle: crate::api::bundles::BundleName,
}

/// Where the components send their traces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracingSpec {
    /// OTLP/HTTP (protobuf) endpoint the components export their spans to, e.g. an
    /// OpenTelemetry Collector's `http://otel-collector.observability:4318` (set as
    /// OTEL_EXPORTER_OTLP_ENDPOINT; `/v1/traces` is appended). Unset: no traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/]+"))]
    pub otlp_endpoint: Option<String>,
}

impl TracingSpec {
    /// The TCP port of the OTLP endpoint (the URL's, else 80 or 443 by scheme), for the
    /// NetworkPolicies' egress; `None` without an endpoint or with one that is not a URL.
    pub fn otlp_port(&self) -> Option<u16> {
        let uri: http::Uri = self.otlp_endpoint.as_deref()?.parse().ok()?;
        uri.port_u16().or(match uri.scheme_str()? {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })
    }
}

/// NetworkPolicy settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Whether each component gets a NetworkPolicy: connections in only on the port it serves,
    /// out only to the API server and DNS.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Where the API server is, as CIDRs (the components' only destination besides DNS);
    /// default any address. Narrow it to the control plane's addresses where they are known.
    #[serde(default = "default_api_server_cidrs", rename = "apiServerCIDRs")]
    #[schemars(length(min = 1))]
    pub api_server_cidrs: Vec<String>,
    /// The API server's ports: 443 (the `kubernetes` Service) and 6443 (what it often listens
    /// on behind it).
    #[serde(default = "default_api_server_ports")]
    #[schemars(length(min = 1))]
    pub api_server_ports: Vec<i32>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        NetworkPolicySpec {
            enabled: true,
            api_server_cidrs: default_api_server_cidrs(),
            api_server_ports: default_api_server_ports(),
        }
    }
}

fn default_api_server_cidrs() -> Vec<String> {
    vec!["0.0.0.0/0".into(), "::/0".into()]
}

fn default_api_server_ports() -> Vec<i32> {
    vec![443, 6443]
}

/// Observed state of the installation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeDevopsInstallStatus {
    /// Available, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The metadata.generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The kube-devops version installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Replicas of each component.
    #[serde(default)]
    pub components: ComponentsStatus,
    /// The optional integrations (ServiceMonitors, PolicyReports) and whether the installation
    /// has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub integrations: Vec<IntegrationStatus>,
}

/// How one optional integration of the installation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationStatus {
    /// The integration: `serviceMonitors` or `policyReports`.
    pub name: String,
    /// Active: installed. Skipped: automatic, and the cluster does not serve its API (yet).
    /// Disabled: switched off in the spec. Missing: switched on, but the cluster does not serve
    /// its API (the install is Degraded).
    pub state: IntegrationState,
    /// Why, and what to do about it.
    pub message: String,
}

/// The state of an optional integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IntegrationState {
    Active,
    Skipped,
    Disabled,
    Missing,
}

/// Replicas of each component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ComponentsStatus {
    /// The watch controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<ComponentStatus>,
    /// The reconcile operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ComponentStatus>,
    /// The admission webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<ComponentStatus>,
}

/// Desired and ready replicas of one component.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Replicas the component should have.
    pub desired_replicas: i32,
    /// Replicas that are ready.
    pub ready_replicas: i32,
}

fn enabled() -> bool {
    true
}

fn default_replicas() -> i32 {
    2
}

fn default_evaluation_interval() -> u32 {
    60
}

fn default_webhook_timeout() -> i32 {
    3
}

fn default_min_available() -> i32 {
    1
}

fn default_scrape_interval() -> String {
    "15s".to_string()
}

/// The image repository when the install resource names none.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/stochastic/kube-devops";

fn default_image_repository() -> String {
    DEFAULT_IMAGE_REPOSITORY.to_string()
}

impl ImageSpec {
    /// `repository:tag`, with this release's version when no tag is set.
    pub fn reference(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}", self.repository),
            None => format!("{}:v{}", self.repository, env!("CARGO_PKG_VERSION")),
        }
    }

    /// The kube-devops version this image is: its tag without the leading `v` (`v0.4.0` is
    /// 0.4.0; another tag is itself), or the operator's own version without a tag.
    pub fn version(&self) -> String {
        match &self.tag {
            Some(tag) => {
                tag.strip_prefix('v').filter(|v| v.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(tag).into()
            }
            None => env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Requests 64Mi/100m, limits 128Mi/250m.
pub fn default_resources() -> ResourceRequirements {
    let quantities = |memory: &str, cpu: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
        ])
    };
    ResourceRequirements {
        requests: Some(quantities("64Mi", "100m")),
        limits: Some(quantities("128Mi", "250m")),
        ..Default::default()
    }
}
