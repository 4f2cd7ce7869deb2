//! The bootstrap policy of a fresh cluster ([`RbacSnapshot::bootstrap`]).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{RBAC_API_GROUP, RbacSnapshot, SYSTEM_AUTHENTICATED, SYSTEM_MASTERS, SYSTEM_UNAUTHENTICATED};

impl RbacSnapshot {
    /// The part of a fresh cluster's bootstrap policy that every client relies on:
    /// * `cluster-admin` (everything) bound to the group `system:masters`;
    /// * `system:discovery` (GET `/api`, `/apis`, `/openapi`, `/version`, health endpoints) and
    ///   `system:basic-user` (create SelfSubjectAccessReviews, SelfSubjectRulesReviews and
    ///   SelfSubjectReviews) bound to `system:authenticated`;
    /// * `system:public-info-viewer` (GET `/healthz`, `/livez`, `/readyz`, `/version`) bound to
    ///   `system:authenticated` and `system:unauthenticated`.
    ///
    /// The big aggregated roles (`admin`, `edit`, `view`) and the controllers' roles are not included.
    pub fn bootstrap() -> Self {
        let get = || vec!["get".to_owned()];
        let urls = |urls: &[&str]| PolicyRule {
            non_resource_urls: Some(urls.iter().map(|u| (*u).to_owned()).collect()),
            verbs: get(),
            ..PolicyRule::default()
        };
        let resources = |group: &str, resources: &[&str], verbs: &[&str]| PolicyRule {
            api_groups: Some(vec![group.to_owned()]),
            resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        };
        let cluster_roles = vec![
            bootstrap_cluster_role(
                "cluster-admin",
                vec![
                    resources("*", &["*"], &["*"]),
                    PolicyRule {
                        non_resource_urls: Some(vec!["*".to_owned()]),
                        verbs: vec!["*".to_owned()],
                        ..PolicyRule::default()
                    },
                ],
            ),
            bootstrap_cluster_role(
                "system:discovery",
                vec![urls(&[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ])],
            ),
            bootstrap_cluster_role(
                "system:basic-user",
                vec![
                    resources(
                        "authorization.k8s.io",
                        &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                        &["create"],
                    ),
                    resources("authentication.k8s.io", &["selfsubjectreviews"], &["create"]),
                ],
            ),
            bootstrap_cluster_role(
                "system:public-info-viewer",
                vec![urls(&["/healthz", "/livez", "/readyz", "/version", "/version/"])],
            ),
        ];
        let group = |name: &str| Subject {
            api_group: Some(RBAC_API_GROUP.to_owned()),
            kind: "Group".to_owned(),
            name: name.to_owned(),
            namespace: None,
        };
        let cluster_role_bindings = vec![
            bootstrap_cluster_role_binding("cluster-admin", vec![group(SYSTEM_MASTERS)]),
            bootstrap_cluster_role_binding("system:discovery", vec![group(SYSTEM_AUTHENTICATED)]),
            bootstrap_cluster_role_binding("system:basic-user", vec![group(SYSTEM_AUTHENTICATED)]),
            bootstrap_cluster_role_binding(
                "system:public-info-viewer",
                vec![group(SYSTEM_AUTHENTICATED), group(SYSTEM_UNAUTHENTICATED)],
            ),
        ];
        Self { cluster_roles, cluster_role_bindings, roles: Vec::new(), role_bindings: Vec::new() }
    }
}

fn bootstrap_metadata(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(BTreeMap::from([("kubernetes.io/bootstrapping".to_owned(), "rbac-defaults".to_owned())])),
        annotations: Some(BTreeMap::from([(
            "rbac.authorization.kubernetes.io/autoupdate".to_owned(),
            "true".to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

fn bootstrap_cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole { metadata: bootstrap_metadata(name), rules: Some(rules), aggregation_rule: None }
}

fn bootstrap_cluster_role_binding(name: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: bootstrap_metadata(name),
        role_ref: RoleRef {
            api_group: RBAC_API_GROUP.to_owned(),
            kind: "ClusterRole".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(subjects),
    }
}
