//! Least-privilege RBAC of the runtime components: one ServiceAccount, a ClusterRole with
//! exactly what the components do cluster-wide, and a namespaced Role for the leader-election
//! leases. No wildcards, and no write access to ValidatingWebhookConfigurations: the installer
//! (deploy CLI, Helm, or the bootstrap operator) manages the webhook's configuration, so a
//! compromised component cannot switch off or redirect admission control.

use super::labels::{RBAC_COMPONENT, cluster_meta, namespaced_meta};
use super::{APP, NAMESPACE};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};

/// One RBAC rule as data, so rule sets can be compared, merged and documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub api_groups: &'static [&'static str],
    pub resources: &'static [&'static str],
    /// Empty: every object of the resources.
    pub resource_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

impl Rule {
    pub const fn new(
        api_groups: &'static [&'static str],
        resources: &'static [&'static str],
        verbs: &'static [&'static str],
    ) -> Rule {
        Rule { api_groups, resources, resource_names: &[], verbs }
    }

    pub const fn named(self, resource_names: &'static [&'static str]) -> Rule {
        Rule { resource_names, ..self }
    }

    /// The rule as a k8s-openapi PolicyRule.
    pub fn policy_rule(&self) -> PolicyRule {
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(strings(self.api_groups)),
            resources: Some(strings(self.resources)),
            resource_names: (!self.resource_names.is_empty()).then(|| strings(self.resource_names)),
            verbs: strings(self.verbs),
            ..Default::default()
        }
    }
}

const GROUP: &str = "devops.stochastic.io";

/// What the three components do cluster-wide (the ClusterRole `kube-devops`):
/// - DevOpsPolicies: watched by the reconcile operator and the webhook; `patch` adds and
///   removes the operator's finalizer (JSON patches); status is written by the operator
///   (server-side apply: `patch`).
/// - PolicyAuditResults: listed by policy, created by the operator, old ones deleted.
/// - Pods: watched by the watch controller and the operator.
/// - Enforcement resolves a pod's workload one object at a time by name (`get`, never a list
///   or watch of workloads): ReplicaSets and Jobs to find their Deployment or CronJob, the
///   namespace for its opt-out annotation; it patches (server-side apply) the pod templates of
///   Deployments, StatefulSets, DaemonSets and CronJobs.
/// - Events (core and events.k8s.io): what the components report on objects.
/// - PolicyReports: the operator's own one in each namespace (`kube-devops`, server-side
///   applied, so limited to that name), when the install turns them on.
pub const CLUSTER_RULES: &[Rule] = &[
    Rule::new(&[GROUP], &["devopspolicies"], &["get", "list", "watch", "patch"]),
    Rule::new(&[GROUP], &["devopspolicies/status"], &["patch"]),
    Rule::new(&[GROUP], &["policyauditresults"], &["list", "create", "delete"]),
    Rule::new(&[""], &["pods"], &["get", "list", "watch"]),
    Rule::new(&[""], &["namespaces"], &["get"]),
    Rule::new(&["apps"], &["replicasets"], &["get"]),
    Rule::new(&["apps"], &["deployments", "statefulsets", "daemonsets"], &["get", "patch"]),
    Rule::new(&["batch"], &["jobs"], &["get"]),
    Rule::new(&["batch"], &["cronjobs"], &["get", "patch"]),
    Rule::new(&[""], &["events"], &["create", "patch"]),
    Rule::new(&["events.k8s.io"], &["events"], &["create", "patch"]),
    Rule::new(&["wgpolicyk8s.io"], &["policyreports"], &["get", "create", "patch"])
        .named(&[crate::api::policy_report::REPORT_NAME]),
];

/// Leader election of the watch controller and the reconcile operator: Leases in the
/// `kube-devops` namespace only (the Role `kube-devops`).
pub const NAMESPACE_RULES: &[Rule] =
    &[Rule::new(&["coordination.k8s.io"], &["leases"], &["get", "list", "watch", "create", "update", "patch"])];

/// One identity's RBAC objects: a ServiceAccount in `kube-devops`, a ClusterRole and a Role
/// with its rules, each bound to it, all named `name` (the components' `kube-devops`, the
/// bootstrap operator's `kube-devops-operator`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity {
    pub name: &'static str,
    pub component: &'static str,
}

impl Identity {
    pub fn service_account(self) -> ServiceAccount {
        ServiceAccount { metadata: namespaced_meta(self.name, self.component), ..Default::default() }
    }

    pub fn cluster_role(self, rules: &[Rule]) -> ClusterRole {
        ClusterRole {
            metadata: cluster_meta(self.name, self.component),
            rules: Some(rules.iter().map(Rule::policy_rule).collect()),
            ..Default::default()
        }
    }

    pub fn cluster_role_binding(self) -> ClusterRoleBinding {
        ClusterRoleBinding {
            metadata: cluster_meta(self.name, self.component),
            role_ref: role_ref("ClusterRole", self.name),
            subjects: Some(vec![service_account_subject(self.name)]),
        }
    }

    pub fn role(self, rules: &[Rule]) -> Role {
        Role {
            metadata: namespaced_meta(self.name, self.component),
            rules: Some(rules.iter().map(Rule::policy_rule).collect()),
        }
    }

    pub fn role_binding(self) -> RoleBinding {
        RoleBinding {
            metadata: namespaced_meta(self.name, self.component),
            role_ref: role_ref("Role", self.name),
            subjects: Some(vec![service_account_subject(self.name)]),
        }
    }
}

const COMPONENTS: Identity = Identity { name: APP, component: RBAC_COMPONENT };

/// The ServiceAccount all three components run as.
pub fn service_account() -> ServiceAccount {
    COMPONENTS.service_account()
}

/// The cluster-wide permissions of the components.
pub fn cluster_role() -> ClusterRole {
    COMPONENTS.cluster_role(CLUSTER_RULES)
}

/// Binds [`cluster_role`] to [`service_account`].
pub fn cluster_role_binding() -> ClusterRoleBinding {
    COMPONENTS.cluster_role_binding()
}

/// The namespaced permissions of the components (leader-election leases).
pub fn role() -> Role {
    COMPONENTS.role(NAMESPACE_RULES)
}

/// Binds [`role`] to [`service_account`].
pub fn role_binding() -> RoleBinding {
    COMPONENTS.role_binding()
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: kind.into(), name: name.into() }
}

fn service_account_subject(name: &str) -> Subject {
    Subject { kind: "ServiceAccount".into(), name: name.into(), namespace: Some(NAMESPACE.into()), api_group: None }
}

/// Whether `rules` allow `verb` on `group`/`resource` (for any object name when
/// `resource_names` is empty, else for the named object).
pub fn allows(rules: &[Rule], group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    rules.iter().any(|r| {
        r.api_groups.contains(&group)
            && r.resources.contains(&resource)
            && r.verbs.contains(&verb)
            && (r.resource_names.is_empty() || name.is_some_and(|n| r.resource_names.contains(&n)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_uses_a_wildcard() {
        for rule in CLUSTER_RULES.iter().chain(NAMESPACE_RULES) {
            for s in rule.api_groups.iter().chain(rule.resources).chain(rule.verbs) {
                assert!(!s.contains('*'), "{rule:?}");
            }
        }
    }

    #[test]
    fn the_components_can_do_what_they_need_and_no_more() {
        let c = CLUSTER_RULES;
        assert!(allows(c, GROUP, "devopspolicies", "patch", None), "finalizers");
        assert!(allows(c, GROUP, "devopspolicies/status", "patch", None));
        assert!(allows(c, GROUP, "policyauditresults", "delete", None));
        assert!(allows(c, "apps", "replicasets", "get", None), "owner resolution");
        assert!(allows(c, "apps", "daemonsets", "patch", None), "enforcement");
        assert!(allows(c, "batch", "cronjobs", "patch", None), "enforcement");
        assert!(
            allows(c, "batch", "jobs", "get", None) && !allows(c, "batch", "jobs", "patch", None),
            "a Job cannot change"
        );
        assert!(allows(c, "", "namespaces", "get", None), "the namespace's opt-out");
        assert!(!allows(c, "", "namespaces", "list", None));
        assert!(!allows(c, "apps", "deployments", "list", None), "workloads are read one by one");
        assert!(allows(c, "events.k8s.io", "events", "create", None));
        assert!(!allows(c, "apps", "deployments", "delete", None));
        assert!(!allows(c, "", "secrets", "get", None));
        assert!(!allows(c, "", "pods", "delete", None));
        let report = Some(crate::api::policy_report::REPORT_NAME);
        assert!(allows(c, "wgpolicyk8s.io", "policyreports", "patch", report), "its own PolicyReports");
        assert!(!allows(c, "wgpolicyk8s.io", "policyreports", "patch", Some("kyverno-polr")), "no one else's");
        assert!(!allows(c, "wgpolicyk8s.io", "policyreports", "list", None));
        assert!(!allows(c, "admissionregistration.k8s.io", "validatingwebhookconfigurations", "update", None));
        assert!(!allows(c, "coordination.k8s.io", "leases", "create", None), "leases are namespaced");
        assert!(allows(NAMESPACE_RULES, "coordination.k8s.io", "leases", "update", None));
        assert!(!allows(NAMESPACE_RULES, "coordination.k8s.io", "leases", "delete", None));
    }

    /// The original design's ClusterRole table (the seed), row by row: every permission is
    /// still granted, except the deliberate changes the README explains (leases moved to the
    /// namespaced Role; no access to webhook configurations; workloads are read by name, never
    /// listed).
    #[test]
    fn the_seed_table_holds_but_for_the_documented_changes() {
        let seed: &[(&str, &[&str], &[&str])] = &[
            (GROUP, &["devopspolicies"], &["get", "list", "watch"]),
            (GROUP, &["devopspolicies/status"], &["patch"]),
            ("", &["pods"], &["get", "list", "watch"]),
            ("apps", &["deployments", "statefulsets", "daemonsets"], &["get", "patch"]),
        ];
        for (group, resources, verbs) in seed {
            for resource in *resources {
                for verb in *verbs {
                    assert!(allows(CLUSTER_RULES, group, resource, verb, None), "{group}/{resource} {verb}");
                }
            }
        }
        for verb in ["get", "create", "update", "patch"] {
            assert!(allows(NAMESPACE_RULES, "coordination.k8s.io", "leases", verb, None), "leases {verb}");
        }
        for verb in ["get", "list", "create", "update"] {
            let rules = CLUSTER_RULES.iter().chain(NAMESPACE_RULES).copied().collect::<Vec<_>>();
            assert!(!allows(&rules, "admissionregistration.k8s.io", "validatingwebhookconfigurations", verb, None));
        }
    }

    #[test]
    fn the_bindings_bind_the_service_account_in_kube_devops() {
        let crb = cluster_role_binding();
        assert_eq!(crb.role_ref.kind, "ClusterRole");
        assert_eq!(crb.role_ref.name, "kube-devops");
        let subject = &crb.subjects.unwrap()[0];
        assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), ("kube-devops", Some("kube-devops")));
        let rb = role_binding();
        assert_eq!(rb.metadata.namespace.as_deref(), Some("kube-devops"));
        assert_eq!(rb.role_ref.kind, "Role");
        let rule = &cluster_role().rules.unwrap()[0];
        assert_eq!(rule.resource_names, None);
    }
}
