//! The bootstrap operator's own objects (what `config/` and the OLM bundle install): its
//! ServiceAccount, RBAC, Deployment `kube-devops-operator` (`kube-devops operator`, HTTP
//! :8081 for `/healthz`, `/readyz` and `/metrics`), metrics Service and ServiceMonitor.
//!
//! Its RBAC is what it creates, and no more. Kubernetes only lets it create the components'
//! ClusterRole and Role if it holds every permission they grant (RBAC escalation
//! prevention), so its ClusterRole includes the components' rules rather than `escalate` or
//! `bind`. Everything namespaced it manages is granted by a Role in `kube-devops`, and every
//! write (create included: it writes with server-side apply) is limited to the names of the
//! objects it installs.

use super::deployments::{DeploymentParams, hardened_deployment};
use super::labels::{namespaced_meta, selector};
use super::monitoring::{Endpoint, MonitorSpec, NamespaceSelector, ServiceMonitor};
use super::rbac::{self, Identity, Rule};
use super::{APP, NAMESPACE, WEBHOOK_TLS_SECRET};
use crate::api::install::{ImageSpec, NetworkPolicySpec, default_resources};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Name of the operator's Deployment, ServiceAccount, ClusterRole, Role and bindings.
pub const OPERATOR: &str = "kube-devops-operator";
/// The operator's `app.kubernetes.io/component`.
pub const COMPONENT: &str = "operator";
/// The port of the operator's health and metrics endpoints.
pub const PORT: i32 = 8081;
/// The operator's metrics Service.
pub const METRICS_SERVICE: &str = "kube-devops-operator-metrics";

const GROUP: &str = "devops.stochastic.io";
const RBAC: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
/// Every write of the operator is a server-side apply (a `patch` that creates what is
/// missing) or a delete of a component that was switched off. An apply carries the object's
/// name in its URL, so the API server authorizes its `create` with that name: unlike a POST,
/// it can be limited by `resourceNames`, and is.
const WRITE: &[&str] = &["create", "patch", "delete"];
const READ_WRITE: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
const WEBHOOK_CONFIGURATION: &str = "kube-devops-webhook";
/// The Deployment, Service, PodDisruptionBudget and ServiceMonitor of each component
/// (`Component::object_name`, checked by a test).
const COMPONENT_OBJECTS: &[&str] =
    &["kube-devops-watch", "kube-devops-reconcile", "kube-devops-webhook", super::web::NAME];

/// Cluster-wide, besides the components' own rules: the KubeDevopsInstall it reconciles
/// (status, and finalizers for owner references that block deletion) and the cluster-scoped
/// objects it installs, each limited to its name (list and watch with a `metadata.name`
/// field selector count as requests for that name).
pub const MANAGEMENT_CLUSTER_RULES: &[Rule] = &[
    Rule::new(&[GROUP], &["kubedevopsinstalls"], &["get", "list", "watch", "patch", "update"]),
    Rule::new(&[GROUP], &["kubedevopsinstalls/status"], &["get", "patch", "update"]),
    Rule::new(&[GROUP], &["kubedevopsinstalls/finalizers"], &["update"]),
    Rule::new(&[""], &["namespaces"], &["get", "list", "watch", "create", "patch"]).named(&[NAMESPACE]),
    Rule::new(&[RBAC], &["clusterroles", "clusterrolebindings"], READ_WRITE).named(&[APP, super::web::NAME]),
    Rule::new(&["admissionregistration.k8s.io"], &["validatingwebhookconfigurations"], READ_WRITE)
        .named(&[WEBHOOK_CONFIGURATION]),
    // Whether the Prometheus Operator's ServiceMonitor CRD (automatic ServiceMonitors) and
    // the PolicyReport CRD are installed, and when they appear.
    Rule::new(&["apiextensions.k8s.io"], &["customresourcedefinitions"], READ)
        .named(&[SERVICE_MONITOR_CRD, crate::api::policy_report::CRD_NAME]),
];

/// The Prometheus Operator's ServiceMonitor CRD, which the operator watches.
pub const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";

/// In `kube-devops`: the namespaced objects it installs (read freely, so it can watch what
/// it owns; written by name only), the webhook's TLS Secret (by name only, so no other
/// Secret can be read), and its own leader-election lease (the same lease rule the
/// components get, which it must hold to grant it).
pub const NAMESPACE_RULES: &[Rule] = &[
    Rule::new(&[""], &["serviceaccounts", "services", "configmaps"], READ),
    Rule::new(&[""], &["serviceaccounts"], WRITE).named(&[APP, super::web::NAME]),
    Rule::new(&[""], &["services"], WRITE).named(COMPONENT_OBJECTS),
    Rule::new(&[""], &["configmaps"], WRITE).named(&[super::dashboard::CONFIG_MAP]),
    Rule::new(&[""], &["secrets"], READ_WRITE).named(&[WEBHOOK_TLS_SECRET]),
    Rule::new(&["apps"], &["deployments"], READ),
    Rule::new(&["apps"], &["deployments"], WRITE).named(COMPONENT_OBJECTS),
    Rule::new(&["policy"], &["poddisruptionbudgets"], READ),
    Rule::new(&["policy"], &["poddisruptionbudgets"], WRITE).named(COMPONENT_OBJECTS),
    Rule::new(&["networking.k8s.io"], &["networkpolicies"], READ),
    Rule::new(&["networking.k8s.io"], &["networkpolicies"], WRITE).named(COMPONENT_OBJECTS),
    Rule::new(&["monitoring.coreos.com"], &["servicemonitors"], READ),
    Rule::new(&["monitoring.coreos.com"], &["servicemonitors"], WRITE).named(COMPONENT_OBJECTS),
    Rule::new(&[RBAC], &["roles", "rolebindings"], READ_WRITE).named(&[APP]),
    Rule::new(&["coordination.k8s.io"], &["leases"], &["get", "list", "watch", "create", "update", "patch"]),
];

/// Every cluster-wide rule of the operator: the components' rules, then its own.
pub fn cluster_rules() -> Vec<Rule> {
    rbac::CLUSTER_RULES.iter().chain(MANAGEMENT_CLUSTER_RULES).copied().collect()
}

const IDENTITY: Identity = Identity { name: OPERATOR, component: COMPONENT };

pub fn service_account() -> ServiceAccount {
    IDENTITY.service_account()
}

pub fn cluster_role() -> ClusterRole {
    IDENTITY.cluster_role(&cluster_rules())
}

pub fn cluster_role_binding() -> ClusterRoleBinding {
    IDENTITY.cluster_role_binding()
}

pub fn role() -> Role {
    IDENTITY.role(NAMESPACE_RULES)
}

pub fn role_binding() -> RoleBinding {
    IDENTITY.role_binding()
}

/// The operator's Deployment: one replica (it is not in any request path; a replacement
/// starts within seconds, and leader election makes more replicas safe).
pub fn deployment(image: &ImageSpec) -> Deployment {
    hardened_deployment(&DeploymentParams {
        name: OPERATOR.into(),
        component: COMPONENT,
        args: vec!["operator".into()],
        port: PORT,
        port_name: "http",
        scheme: "HTTP",
        replicas: 1,
        resources: default_resources(),
        service_account: OPERATOR,
        image,
        node_selector: &BTreeMap::new(),
        tolerations: &[],
        extra_volumes: Vec::new(),
        extra_env: Vec::new(),
        // The same manifest serves every cluster (config/, the OLM bundle): the image's
        // numeric user where IDs are free, the assigned one on OpenShift. It mounts no Secret.
        pin_ids: false,
    })
}

/// The Service in front of the operator's metrics.
pub fn metrics_service() -> Service {
    Service {
        metadata: namespaced_meta(METRICS_SERVICE, COMPONENT),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(super::labels::selector_labels(COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("metrics".into()),
                port: PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The operator's NetworkPolicy: in only on its health and metrics port, out only to the API
/// server and DNS (the components' defaults).
pub fn network_policy() -> NetworkPolicy {
    super::network::network_policy(OPERATOR, COMPONENT, PORT, &NetworkPolicySpec::default(), None)
}

/// The ServiceMonitor of the operator's metrics.
pub fn service_monitor(interval: &str) -> ServiceMonitor {
    ServiceMonitor {
        metadata: namespaced_meta(OPERATOR, COMPONENT),
        spec: MonitorSpec {
            selector: selector(COMPONENT),
            namespace_selector: Some(NamespaceSelector { match_names: vec![NAMESPACE.into()] }),
            endpoints: vec![Endpoint {
                port: "metrics".into(),
                path: "/metrics".into(),
                scheme: "http".into(),
                interval: interval.into(),
                honor_labels: true,
                tls_config: None,
            }],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KubeDevopsInstallSpec;
    use crate::manifests::labels::labels;
    use crate::manifests::rbac::allows;
    use crate::manifests::webhook::webhook_service_name;
    use crate::manifests::{Object, WebhookTls, all};

    #[test]
    fn the_operator_may_write_every_object_it_installs_and_nothing_else_of_its_kinds() {
        let tls = WebhookTls { ca_crt: "CA".into(), tls_crt: "C".into(), tls_key: "K".into(), not_after: "T".into() };
        let mut spec = KubeDevopsInstallSpec::default();
        spec.dashboard.enabled = true;
        let objects: Vec<Object> = all(&spec, &tls);
        assert!(objects.iter().any(|o| o.name() == crate::manifests::web::NAME));
        let cluster = cluster_rules();
        for object in &objects {
            let (group, resource) = crate::manifests::objects::group_resource(&object.kind());
            let rules: &[Rule] = if object.namespace().is_some() { NAMESPACE_RULES } else { &cluster };
            assert_eq!(object.namespace().unwrap_or(NAMESPACE), NAMESPACE);
            assert!(allows(rules, group, resource, "get", Some(object.name())), "get {}", object.id());
            for verb in ["create", "patch"] {
                assert!(allows(rules, group, resource, verb, Some(object.name())), "{verb} {}", object.id());
                assert!(!allows(rules, group, resource, verb, Some("not-ours")), "{verb} other than {}", object.id());
            }
            if object.kind() != "Namespace" {
                assert!(allows(rules, group, resource, "delete", Some(object.name())), "delete {}", object.id());
            }
        }
    }

    #[test]
    fn the_operator_holds_every_permission_it_grants_without_escalate_or_bind() {
        let cluster = cluster_rules();
        for rule in rbac::CLUSTER_RULES {
            assert!(cluster.contains(rule), "{rule:?}");
        }
        for rule in rbac::NAMESPACE_RULES {
            assert!(NAMESPACE_RULES.contains(rule), "{rule:?}");
        }
        // The dashboard's read-only rules: held cluster-wide, so the operator may grant them.
        for rule in crate::manifests::web::RULES {
            for (group, resource, verb) in rule
                .api_groups
                .iter()
                .flat_map(|g| rule.resources.iter().flat_map(move |r| rule.verbs.iter().map(move |v| (*g, *r, *v))))
            {
                assert!(allows(&cluster, group, resource, verb, None), "{verb} {resource}");
            }
        }
        for rule in cluster.iter().chain(NAMESPACE_RULES) {
            assert!(!rule.verbs.iter().any(|v| ["escalate", "bind", "impersonate", "*"].contains(v)), "{rule:?}");
        }
        assert!(!allows(&cluster, RBAC, "clusterroles", "update", Some("cluster-admin")));
        assert!(!allows(
            &cluster,
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "delete",
            Some("other")
        ));
        assert!(!allows(NAMESPACE_RULES, "", "secrets", "update", Some("other")));
        assert!(!allows(&cluster, "", "secrets", "get", None), "no secrets outside kube-devops");
        assert!(!allows(NAMESPACE_RULES, "", "secrets", "list", None), "no other secret in kube-devops");
        assert!(!allows(&cluster, "admissionregistration.k8s.io", "validatingwebhookconfigurations", "create", None));
    }

    #[test]
    fn the_operator_runs_one_hardened_replica_of_the_operator_subcommand() {
        let d = deployment(&ImageSpec::default());
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some(OPERATOR));
        assert_eq!(pod.containers[0].args, Some(vec!["operator".to_string()]));
        assert_eq!(pod.containers[0].ports.as_ref().unwrap()[0].container_port, 8081);
        assert_eq!(pod.containers[0].security_context.as_ref().unwrap().read_only_root_filesystem, Some(true));
        assert_eq!(spec.template.metadata.unwrap().labels.unwrap(), labels(COMPONENT));
        assert_eq!(WEBHOOK_CONFIGURATION, webhook_service_name());
        let mut names: Vec<String> = crate::manifests::Component::ALL.iter().map(|c| c.object_name()).collect();
        names.push(crate::manifests::web::NAME.into());
        assert_eq!(COMPONENT_OBJECTS, names);
    }
}
