//! The components' Deployments: hardened pods (non-root UID 1000, or unpinned where the
//! platform assigns IDs, see [`DeploymentParams::pin_ids`]; read-only root filesystem,
//! no privilege escalation, every capability dropped, seccomp RuntimeDefault), requests and
//! limits, health probes, the downward-API identity, replicas spread over nodes, and a
//! writable `emptyDir` at `/tmp` only. The bootstrap operator's Deployment is built by the
//! same [`hardened_deployment`] function.

use super::labels::{labels, namespaced_meta, selector, selector_labels};
use super::{APP, Component, TLS_MOUNT_PATH, WEBHOOK_TLS_SECRET, settings};
use crate::api::KubeDevopsInstallSpec;
use crate::api::install::{ImageSpec, PullPolicy};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction,
    LocalObjectReference, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Toleration, TopologySpreadConstraint,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// How long the webhook keeps serving after SIGTERM, with `/readyz` failing, while its endpoint
/// is withdrawn (kube-proxy and the API server learn of it within a few seconds).
pub const WEBHOOK_DRAIN_DELAY: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the webhook's in-flight requests may take to finish once it stops listening.
pub const WEBHOOK_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Seconds between SIGTERM and SIGKILL: longer than the webhook's drain and shutdown.
const TERMINATION_GRACE_SECONDS: i64 = 30;

/// The UID and GID the containers run as (user `kube-devops` in the image).
pub const RUN_AS_ID: i64 = 1000;

/// Everything that differs between the Deployments of the same image.
#[derive(Clone, Debug)]
pub struct DeploymentParams<'a> {
    /// Deployment name.
    pub name: String,
    /// `app.kubernetes.io/component`; also the container name.
    pub component: &'a str,
    pub args: Vec<String>,
    pub port: i32,
    pub port_name: &'a str,
    /// `HTTP` or `HTTPS`, for the probes.
    pub scheme: &'a str,
    pub replicas: i32,
    pub resources: ResourceRequirements,
    pub service_account: &'a str,
    pub image: &'a ImageSpec,
    pub node_selector: &'a BTreeMap<String, String>,
    pub tolerations: &'a [Toleration],
    /// Volumes besides `/tmp`, with where each is mounted (read-only).
    pub extra_volumes: Vec<(Volume, String)>,
    /// Environment variables besides the pod's identity (`POD_NAME`, ...).
    pub extra_env: Vec<EnvVar>,
    /// Run as [`RUN_AS_ID`] (user, group, fsGroup); else as the platform assigns (OpenShift).
    pub pin_ids: bool,
}

/// The Deployment of one component.
pub fn deployment(spec: &KubeDevopsInstallSpec, component: Component) -> Deployment {
    let settings = settings(spec, component);
    // Unset only in a spec that was not resolved (`super::resolve`): pinned, as by default.
    let pin_ids = spec.pin_ids.unwrap_or(true);
    let mut extra_volumes = Vec::new();
    if component == Component::Webhook {
        let tls = Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(WEBHOOK_TLS_SECRET.into()),
                // Pinned: group-readable, the pod's fsGroup being the container's GID. Else the
                // user is unknown until the platform assigns it: readable by any user of the
                // pod (its only container).
                default_mode: Some(if pin_ids { 0o440 } else { 0o444 }),
                ..Default::default()
            }),
            ..Default::default()
        };
        extra_volumes.push((tls, TLS_MOUNT_PATH.to_string()));
    }
    let mut args = component.args();
    match component {
        Component::Webhook => {
            for user in &spec.webhook.trusted_controllers {
                args.extend(["--trusted-controller".to_string(), user.clone()]);
            }
        }
        Component::Reconcile => {
            args.push(format!("--evaluation-interval={}", spec.reconcile.evaluation_interval_seconds));
            if spec.policy_reports.enabled {
                args.push("--policy-reports".to_string());
            }
        }
        Component::Watch => {}
    }
    let extra_env = tracing_env(spec);
    hardened_deployment(&DeploymentParams {
        name: component.object_name(),
        component: component.name(),
        args,
        port: component.container_port(),
        port_name: component.port_name(),
        scheme: component.scheme(),
        replicas: settings.replicas,
        resources: settings.resources,
        service_account: APP,
        image: &spec.image,
        node_selector: &spec.node_selector,
        tolerations: &spec.tolerations,
        extra_volumes,
        extra_env,
        pin_ids,
    })
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` when the install sets `spec.tracing.otlpEndpoint`.
pub fn tracing_env(spec: &KubeDevopsInstallSpec) -> Vec<EnvVar> {
    let endpoint = spec.tracing.otlp_endpoint.iter();
    endpoint
        .map(|endpoint| EnvVar {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            value: Some(endpoint.clone()),
            ..Default::default()
        })
        .collect()
}

/// A hardened Deployment of the kube-devops image.
pub fn hardened_deployment(w: &DeploymentParams) -> Deployment {
    let (mut volumes, mut mounts) = (vec![tmp_volume()], vec![mount("tmp", "/tmp", false)]);
    for (volume, path) in &w.extra_volumes {
        mounts.push(mount(&volume.name, path, true));
        volumes.push(volume.clone());
    }
    let container = Container {
        name: w.component.into(),
        image: Some(w.image.reference()),
        image_pull_policy: Some(pull_policy(w.image.pull_policy).into()),
        args: Some(w.args.clone()),
        ports: Some(vec![ContainerPort {
            name: Some(w.port_name.into()),
            container_port: w.port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some([downward_api_env(), w.extra_env.clone()].concat()),
        resources: Some(w.resources.clone()),
        liveness_probe: Some(probe("/healthz", w.port_name, w.scheme, 5, 10)),
        readiness_probe: Some(probe("/readyz", w.port_name, w.scheme, 3, 5)),
        security_context: Some(container_security_context(w.pin_ids)),
        volume_mounts: Some(mounts),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let pod = PodSpec {
        service_account_name: Some(w.service_account.into()),
        automount_service_account_token: Some(true),
        security_context: Some(pod_security_context(w.pin_ids)),
        containers: vec![container],
        volumes: Some(volumes),
        topology_spread_constraints: Some(vec![spread_over_nodes(w.component)]),
        node_selector: (!w.node_selector.is_empty()).then(|| w.node_selector.clone()),
        tolerations: (!w.tolerations.is_empty()).then(|| w.tolerations.to_vec()),
        image_pull_secrets: (!w.image.pull_secrets.is_empty())
            .then(|| w.image.pull_secrets.iter().map(|s| LocalObjectReference { name: s.name.clone() }).collect()),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        ..Default::default()
    };
    Deployment {
        metadata: namespaced_meta(&w.name, w.component),
        spec: Some(DeploymentSpec {
            replicas: Some(w.replicas),
            selector: selector(w.component),
            // One new replica at a time, an old one stopped only once a new one is ready: an
            // upgrade never has fewer ready replicas than asked for (the webhook keeps
            // answering, a standby is always there to take a lease).
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(w.component)),
                    annotations: Some(BTreeMap::from([(
                        "kubectl.kubernetes.io/default-container".to_string(),
                        w.component.to_string(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pull_policy(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
}

/// `POD_NAME`, `POD_NAMESPACE` and `POD_IP` (lease identity, lease namespace, logs).
fn downward_api_env() -> Vec<EnvVar> {
    [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"), ("POD_IP", "status.podIP")]
        .into_iter()
        .map(|(name, path)| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn probe(path: &str, port_name: &str, scheme: &str, initial_delay: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port_name.into()),
            scheme: Some(scheme.into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }
}

fn pod_security_context(pin_ids: bool) -> PodSecurityContext {
    let id = pin_ids.then_some(RUN_AS_ID);
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: id,
        run_as_group: id,
        fs_group: id,
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

fn container_security_context(pin_ids: bool) -> SecurityContext {
    let id = pin_ids.then_some(RUN_AS_ID);
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: id,
        run_as_group: id,
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// At most one replica more on any node than on another; scheduling still succeeds on a
/// single-node cluster. Spreads each rollout's pods (pod-template-hash), not old and new
/// together.
fn spread_over_nodes(component: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname".into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(selector(component)),
        match_label_keys: Some(vec!["pod-template-hash".into()]),
        ..Default::default()
    }
}

fn tmp_volume() -> Volume {
    Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource { size_limit: Some(Quantity("64Mi".into())), ..Default::default() }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), read_only: Some(read_only), ..Default::default() }
}

/// The selector labels of a component's pods (for Services and PDBs).
pub fn pod_selector(component: Component) -> BTreeMap<String, String> {
    selector_labels(component.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component_pod(component: Component) -> (Deployment, PodSpec) {
        let d = deployment(&KubeDevopsInstallSpec::default(), component);
        let pod = d.spec.clone().unwrap().template.spec.unwrap();
        (d, pod)
    }

    #[test]
    fn each_component_runs_its_subcommand_on_its_port() {
        for (component, args, port) in [
            (Component::Watch, vec!["watch"], 8080),
            (Component::Reconcile, vec!["reconcile", "--evaluation-interval=60"], 9090),
            (
                Component::Webhook,
                vec!["webhook", "serve", "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key"],
                8443,
            ),
        ] {
            let (d, pod) = component_pod(component);
            assert_eq!(d.metadata.name.unwrap(), format!("kube-devops-{}", component.name()));
            assert_eq!(d.spec.unwrap().replicas, Some(2));
            let c = &pod.containers[0];
            assert_eq!(c.args.as_ref().unwrap(), &args);
            assert_eq!(c.ports.as_ref().unwrap()[0].container_port, port);
            assert_eq!(
                c.image.as_deref(),
                Some(format!("ghcr.io/stochastic/kube-devops:v{}", env!("CARGO_PKG_VERSION")).as_str())
            );
            assert_eq!(pod.service_account_name.as_deref(), Some("kube-devops"));
        }
    }

    #[test]
    fn probes_use_https_only_for_the_webhook() {
        for component in Component::ALL {
            let (_, pod) = component_pod(component);
            let c = &pod.containers[0];
            let live = c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
            let ready = c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(live.path.as_deref(), Some("/healthz"));
            assert_eq!(ready.path.as_deref(), Some("/readyz"));
            let expected = if component == Component::Webhook { "HTTPS" } else { "HTTP" };
            assert_eq!(live.scheme.as_deref(), Some(expected));
            assert_eq!(ready.scheme.as_deref(), Some(expected));
            assert_eq!(live.port, IntOrString::String(c.ports.as_ref().unwrap()[0].name.clone().unwrap()));
        }
    }

    #[test]
    fn containers_are_locked_down() {
        for component in Component::ALL {
            let (_, pod) = component_pod(component);
            let sc = pod.containers[0].security_context.clone().unwrap();
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(sc.run_as_user, Some(1000));
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
            assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
            let resources = pod.containers[0].resources.clone().unwrap();
            assert_eq!(resources.requests.unwrap()["memory"].0, "64Mi");
            assert_eq!(resources.limits.unwrap()["cpu"].0, "250m");
        }
    }

    #[test]
    fn the_webhook_has_time_to_drain_before_it_is_killed() {
        let d = deployment(&KubeDevopsInstallSpec::default(), Component::Webhook);
        let grace = d.spec.unwrap().template.spec.unwrap().termination_grace_period_seconds.unwrap();
        assert!(grace as u64 > (WEBHOOK_DRAIN_DELAY + WEBHOOK_SHUTDOWN_TIMEOUT).as_secs(), "{grace} s");
    }

    #[test]
    fn only_tmp_is_writable_and_the_webhook_mounts_its_certificate() {
        let (_, watch) = component_pod(Component::Watch);
        let mounts = watch.containers[0].volume_mounts.clone().unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!((mounts[0].mount_path.as_str(), mounts[0].read_only), ("/tmp", Some(false)));
        let (_, webhook) = component_pod(Component::Webhook);
        let mounts = webhook.containers[0].volume_mounts.clone().unwrap();
        let tls = mounts.iter().find(|m| m.mount_path == "/tls").unwrap();
        assert_eq!(tls.read_only, Some(true));
        let volume = webhook.volumes.unwrap().into_iter().find(|v| v.name == tls.name).unwrap();
        assert_eq!(volume.secret.unwrap().secret_name.as_deref(), Some("kube-devops-webhook-tls"));
    }

    #[test]
    fn pods_know_who_and_where_they_are_and_spread_over_nodes() {
        let (d, pod) = component_pod(Component::Reconcile);
        let env: Vec<_> = pod.containers[0].env.clone().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(env, ["POD_NAME", "POD_NAMESPACE", "POD_IP"]);
        let spread = &pod.topology_spread_constraints.unwrap()[0];
        assert_eq!(spread.topology_key, "kubernetes.io/hostname");
        let selector = d.spec.unwrap().selector.match_labels.unwrap();
        assert_eq!(spread.label_selector.clone().unwrap().match_labels.unwrap(), selector);
        assert_eq!(selector["app.kubernetes.io/component"], "reconcile");
    }

    #[test]
    fn the_spec_sets_replicas_resources_image_and_scheduling() {
        let mut spec = KubeDevopsInstallSpec { replicas: 3, ..Default::default() };
        spec.image.tag = Some("v9.9.9".into());
        spec.image.pull_policy = PullPolicy::Always;
        spec.node_selector.insert("kubernetes.io/os".into(), "linux".into());
        let mut own = crate::api::install::default_resources();
        own.limits.as_mut().unwrap().insert("memory".into(), Quantity("512Mi".into()));
        spec.reconcile.resources = Some(own);
        let d = deployment(&spec, Component::Reconcile);
        let s = d.spec.unwrap();
        assert_eq!(s.replicas, Some(3));
        let pod = s.template.spec.unwrap();
        assert_eq!(pod.containers[0].image.as_deref(), Some("ghcr.io/stochastic/kube-devops:v9.9.9"));
        assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(pod.containers[0].resources.clone().unwrap().limits.unwrap()["memory"].0, "512Mi");
        assert_eq!(pod.node_selector.unwrap()["kubernetes.io/os"], "linux");
    }
}
