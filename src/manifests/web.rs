//! The web dashboard in the cluster (`spec.dashboard.enabled`, off by default): one replica of
//! `kube-devops dashboard` from the same image, under a ServiceAccount of its own whose
//! ClusterRole only reads what the page shows (pods, DevOpsPolicies, PolicyAuditResults), a
//! ClusterIP Service, and a NetworkPolicy. It listens on every interface of its pod, so both
//! the Service and `kubectl port-forward` (which connects to localhost in the pod) reach it:
//! `kubectl port-forward -n kube-devops svc/kube-devops-dashboard 8090`.

use super::deployments::{DeploymentParams, hardened_deployment};
use super::labels::{namespaced_meta, selector_labels};
use super::rbac::{Identity, Rule};
use super::{Object, network};
use crate::api::KubeDevopsInstallSpec;
use crate::dashboard::server::PORT;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The name of every object of the dashboard.
pub const NAME: &str = "kube-devops-dashboard";
/// Its `app.kubernetes.io/component` label.
pub const COMPONENT: &str = "dashboard";

const GROUP: &str = "devops.stochastic.io";

/// Read-only: what one page load lists (and nothing the operator, which grants them, lacks).
pub const RULES: &[Rule] = &[
    Rule::new(&[""], &["pods"], &["list"]),
    Rule::new(&[GROUP], &["devopspolicies", "policyauditresults"], &["list"]),
];

const IDENTITY: Identity = Identity { name: NAME, component: COMPONENT };

/// The dashboard's objects when `spec.dashboard.enabled`, else none.
pub fn objects(spec: &KubeDevopsInstallSpec) -> Vec<Object> {
    if !spec.dashboard.enabled {
        return Vec::new();
    }
    let port = i32::from(PORT);
    let mut objects = vec![
        Object::from(IDENTITY.service_account()),
        IDENTITY.cluster_role(RULES).into(),
        IDENTITY.cluster_role_binding().into(),
        service().into(),
        hardened_deployment(&DeploymentParams {
            name: NAME.into(),
            component: COMPONENT,
            args: vec!["dashboard".into(), format!("--bundle={}", spec.dashboard.bundle.as_str())],
            port,
            port_name: "http",
            scheme: "HTTP",
            replicas: 1,
            resources: spec.resources.clone(),
            service_account: NAME,
            image: &spec.image,
            node_selector: &spec.node_selector,
            tolerations: &spec.tolerations,
            extra_volumes: Vec::new(),
            extra_env: super::deployments::tracing_env(spec),
            pin_ids: spec.pin_ids.unwrap_or(true),
        })
        .into(),
    ];
    if spec.network_policy.enabled {
        objects.push(
            network::network_policy(NAME, COMPONENT, port, &spec.network_policy, spec.tracing.otlp_port()).into(),
        );
    }
    objects
}

fn service() -> Service {
    Service {
        metadata: namespaced_meta(NAME, COMPONENT),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(PORT),
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::rbac::allows;

    #[test]
    fn the_dashboard_is_off_by_default_and_reads_only_when_on() {
        let mut spec = KubeDevopsInstallSpec::default();
        assert!(objects(&spec).is_empty());
        spec.dashboard.enabled = true;
        let kinds: Vec<String> = objects(&spec).iter().map(|o| o.kind()).collect();
        let expected =
            ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment", "NetworkPolicy"];
        assert_eq!(kinds, expected);
        for verb in ["get", "create", "update", "patch", "delete", "watch"] {
            for (group, resource) in [("", "pods"), (GROUP, "devopspolicies"), (GROUP, "policyauditresults")] {
                assert!(!allows(RULES, group, resource, verb, None), "{verb} {resource}");
            }
        }
        assert!(!allows(RULES, "", "secrets", "get", None));
        let Object::Deployment(deployment) = &objects(&spec)[4] else { panic!("a Deployment") };
        let container = &deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        assert_eq!(container.args.as_deref().unwrap()[0], "dashboard");
        assert_eq!(
            container.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(),
            Some("/readyz")
        );
    }
}
