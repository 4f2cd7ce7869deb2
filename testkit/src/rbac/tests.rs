use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};

use super::*;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

fn named_rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule { resource_names: Some(strings(names)), ..rule(groups, resources, verbs) }
}

fn url_rule(urls: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule { non_resource_urls: Some(strings(urls)), verbs: strings(verbs), ..PolicyRule::default() }
}

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), namespace: namespace.map(str::to_owned), ..ObjectMeta::default() }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole { metadata: meta(None, name), rules: Some(rules), aggregation_rule: None }
}

fn labeled_cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
    let mut role = cluster_role(name, rules);
    role.metadata.labels = Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    role
}

fn aggregated_cluster_role(name: &str, selectors: Vec<LabelSelector>, stored: Option<Vec<PolicyRule>>) -> ClusterRole {
    ClusterRole {
        metadata: meta(None, name),
        rules: stored,
        aggregation_rule: Some(AggregationRule { cluster_role_selectors: Some(selectors) }),
    }
}

fn match_labels(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        match_expressions: None,
    }
}

fn match_expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: if values.is_empty() { None } else { Some(strings(values)) },
        }]),
    }
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role { metadata: meta(Some(namespace), name), rules: Some(rules) }
}

fn user_subject(name: &str) -> Subject {
    Subject {
        api_group: Some(RBAC_API_GROUP.to_owned()),
        kind: "User".to_owned(),
        name: name.to_owned(),
        namespace: None,
    }
}

fn group_subject(name: &str) -> Subject {
    Subject { kind: "Group".to_owned(), ..user_subject(name) }
}

fn sa_subject(namespace: Option<&str>, name: &str) -> Subject {
    Subject {
        api_group: None,
        kind: "ServiceAccount".to_owned(),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef { api_group: RBAC_API_GROUP.to_owned(), kind: kind.to_owned(), name: name.to_owned() }
}

fn crb(name: &str, cluster_role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(None, name),
        role_ref: role_ref("ClusterRole", cluster_role),
        subjects: Some(subjects),
    }
}

fn rb(namespace: &str, name: &str, kind: &str, role_name: &str, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding { metadata: meta(Some(namespace), name), role_ref: role_ref(kind, role_name), subjects: Some(subjects) }
}

fn alice() -> UserInfo {
    UserInfo::new("alice", [SYSTEM_AUTHENTICATED])
}

fn bob() -> UserInfo {
    UserInfo::new("bob", [SYSTEM_AUTHENTICATED])
}

/// `rules` granted to alice cluster-wide through one ClusterRole.
fn alice_has(rules: Vec<PolicyRule>) -> RbacSnapshot {
    RbacSnapshot {
        cluster_roles: vec![cluster_role("granted", rules)],
        cluster_role_bindings: vec![crb("granted", "granted", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    }
}

/// Whether `user` may `verb` the `resource` (`"res"` or `"res/sub"`) of `group` in `namespace`,
/// named `name`.
fn can(
    snapshot: &RbacSnapshot,
    user: &UserInfo,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    let attrs = RequestAttributes::resource(user.clone(), verb, group, resource).in_namespace(namespace).named(name);
    snapshot.authorize(&attrs).is_allowed()
}

fn can_path(snapshot: &RbacSnapshot, user: &UserInfo, verb: &str, path: &str) -> bool {
    snapshot.authorize(&RequestAttributes::non_resource(user.clone(), verb, path)).is_allowed()
}

fn deny_reason(decision: Decision) -> String {
    match decision {
        Decision::Deny { reason } => reason,
        Decision::Allow => panic!("expected a denial"),
    }
}

// ---------------------------------------------------------------------------------------------
// Verbs, groups, resources
// ---------------------------------------------------------------------------------------------

#[test]
fn verbs_match_exactly_or_by_star() {
    let snapshot = alice_has(vec![rule(&[""], &["pods"], &["get", "list"])]);
    assert!(can(&snapshot, &alice(), "get", "", "pods", "default", "web"));
    assert!(can(&snapshot, &alice(), "list", "", "pods", "default", ""));
    for verb in ["watch", "create", "update", "patch", "delete", "deletecollection", "GET", "escalate"] {
        assert!(!can(&snapshot, &alice(), verb, "", "pods", "default", "web"), "{verb}");
    }

    let snapshot = alice_has(vec![rule(&[""], &["pods"], &["*"])]);
    for verb in
        ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "bind", "impersonate"]
    {
        assert!(can(&snapshot, &alice(), verb, "", "pods", "default", "web"), "{verb}");
    }
}

#[test]
fn api_groups_match_exactly_or_by_star_and_empty_is_core() {
    let snapshot = alice_has(vec![rule(&["apps"], &["deployments"], &["get"])]);
    assert!(can(&snapshot, &alice(), "get", "apps", "deployments", "default", "web"));
    assert!(!can(&snapshot, &alice(), "get", "", "deployments", "default", "web"));
    assert!(!can(&snapshot, &alice(), "get", "extensions", "deployments", "default", "web"));

    let core = alice_has(vec![rule(&[""], &["configmaps"], &["get"])]);
    assert!(can(&core, &alice(), "get", "", "configmaps", "default", "c"));
    assert!(!can(&core, &alice(), "get", "apps", "configmaps", "default", "c"));

    let any = alice_has(vec![rule(&["*"], &["configmaps"], &["get"])]);
    assert!(can(&any, &alice(), "get", "", "configmaps", "default", "c"));
    assert!(can(&any, &alice(), "get", "example.com", "configmaps", "default", "c"));

    // A rule without apiGroups never matches a resource request.
    let none = alice_has(vec![PolicyRule {
        resources: Some(strings(&["pods"])),
        verbs: strings(&["get"]),
        ..PolicyRule::default()
    }]);
    assert!(!can(&none, &alice(), "get", "", "pods", "default", "p"));
}

#[test]
fn resources_match_exactly_and_star_covers_subresources() {
    let snapshot = alice_has(vec![rule(&[""], &["pods", "services"], &["get"])]);
    assert!(can(&snapshot, &alice(), "get", "", "pods", "default", "p"));
    assert!(can(&snapshot, &alice(), "get", "", "services", "default", "s"));
    assert!(!can(&snapshot, &alice(), "get", "", "secrets", "default", "s"));

    let star = alice_has(vec![rule(&[""], &["*"], &["get"])]);
    assert!(can(&star, &alice(), "get", "", "secrets", "default", "s"));
    assert!(can(&star, &alice(), "get", "", "pods/log", "default", "p"));
    assert!(can(&star, &alice(), "get", "", "pods/status", "default", "p"));
}

#[test]
fn a_rule_for_a_resource_does_not_grant_its_subresources() {
    let snapshot = alice_has(vec![rule(&["devops.stochastic.io"], &["devopspolicies"], &["get", "patch"])]);
    assert!(can(&snapshot, &alice(), "patch", "devops.stochastic.io", "devopspolicies", "prod", "p"));
    assert!(!can(&snapshot, &alice(), "patch", "devops.stochastic.io", "devopspolicies/status", "prod", "p"));
    assert!(!can(&snapshot, &alice(), "get", "devops.stochastic.io", "devopspolicies/status", "prod", "p"));

    let status_only = alice_has(vec![rule(&["devops.stochastic.io"], &["devopspolicies/status"], &["patch"])]);
    assert!(can(&status_only, &alice(), "patch", "devops.stochastic.io", "devopspolicies/status", "prod", "p"));
    // ...and the other way round: the subresource does not grant the resource.
    assert!(!can(&status_only, &alice(), "patch", "devops.stochastic.io", "devopspolicies", "prod", "p"));
    assert!(!can(&status_only, &alice(), "patch", "devops.stochastic.io", "devopspolicies/scale", "prod", "p"));

    let pods = alice_has(vec![rule(&[""], &["pods"], &["get", "create"])]);
    assert!(!can(&pods, &alice(), "get", "", "pods/log", "default", "p"));
    assert!(!can(&pods, &alice(), "create", "", "pods/exec", "default", "p"));
    assert!(!can(&pods, &alice(), "create", "", "pods/eviction", "default", "p"));
}

#[test]
fn star_slash_subresource_matches_that_subresource_of_any_resource() {
    let snapshot = alice_has(vec![rule(&["*"], &["*/scale"], &["get", "update"])]);
    assert!(can(&snapshot, &alice(), "update", "apps", "deployments/scale", "default", "web"));
    assert!(can(&snapshot, &alice(), "get", "apps", "statefulsets/scale", "default", "db"));
    assert!(!can(&snapshot, &alice(), "get", "apps", "deployments", "default", "web"));
    assert!(!can(&snapshot, &alice(), "get", "apps", "deployments/status", "default", "web"));
    // A top-level resource called "scale" is not a subresource.
    assert!(!can(&snapshot, &alice(), "get", "", "scale", "default", "x"));
}

#[test]
fn only_whole_star_is_a_wildcard() {
    let snapshot =
        alice_has(vec![rule(&[""], &["pods/*"], &["get"]), named_rule(&[""], &["secrets"], &["*"], &["get"])]);
    assert!(!can(&snapshot, &alice(), "get", "", "pods/status", "default", "p"));
    assert!(!can(&snapshot, &alice(), "get", "", "pods", "default", "p"));
    assert!(!can(&snapshot, &alice(), "get", "", "secrets", "default", "token"));
    assert!(can(&snapshot, &alice(), "get", "", "secrets", "default", "*"));
    // Prefix wildcards are not a thing either.
    let prefix = alice_has(vec![rule(&["*.k8s.io"], &["dev*"], &["get"])]);
    assert!(!can(&prefix, &alice(), "get", "rbac.authorization.k8s.io", "devices", "", "x"));
}

// ---------------------------------------------------------------------------------------------
// resourceNames
// ---------------------------------------------------------------------------------------------

#[test]
fn resource_names_restrict_requests_on_named_objects() {
    let snapshot = alice_has(vec![named_rule(
        &[""],
        &["configmaps"],
        &["app-config", "feature-flags"],
        &["get", "update", "patch", "delete", "list", "watch", "create", "deletecollection"],
    )]);
    for verb in ["get", "update", "patch", "delete"] {
        assert!(can(&snapshot, &alice(), verb, "", "configmaps", "default", "app-config"), "{verb}");
        assert!(can(&snapshot, &alice(), verb, "", "configmaps", "default", "feature-flags"), "{verb}");
        assert!(!can(&snapshot, &alice(), verb, "", "configmaps", "default", "other"), "{verb}");
    }
}

#[test]
fn resource_names_never_grant_requests_without_a_name() {
    let snapshot = alice_has(vec![named_rule(
        &[""],
        &["configmaps"],
        &["app-config"],
        &["list", "watch", "create", "deletecollection"],
    )]);
    // list, watch, create and deletecollection carry no name.
    for verb in ["list", "watch", "create", "deletecollection"] {
        assert!(!can(&snapshot, &alice(), verb, "", "configmaps", "default", ""), "{verb}");
    }
    // As in a real API server, a list/watch narrowed to one object by
    // fieldSelector=metadata.name=<name> carries that name, and is allowed.
    let list_one = RequestAttributes::from_http(
        alice(),
        "GET",
        "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dapp-config&watch=1",
    );
    assert_eq!((list_one.verb.as_str(), list_one.name.as_str()), ("watch", "app-config"));
    assert!(snapshot.authorize(&list_one).is_allowed());
    let list_other = RequestAttributes::from_http(
        alice(),
        "GET",
        "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name=x",
    );
    assert!(!snapshot.authorize(&list_other).is_allowed());
}

#[test]
fn resource_names_apply_to_subresource_creates_which_carry_the_name() {
    let snapshot = alice_has(vec![named_rule(&[""], &["pods/eviction"], &["web-0"], &["create"])]);
    assert!(can(&snapshot, &alice(), "create", "", "pods/eviction", "default", "web-0"));
    assert!(!can(&snapshot, &alice(), "create", "", "pods/eviction", "default", "web-1"));
}

// ---------------------------------------------------------------------------------------------
// nonResourceURLs
// ---------------------------------------------------------------------------------------------

#[test]
fn non_resource_urls_match_exactly_or_by_trailing_star() {
    let snapshot = alice_has(vec![url_rule(&["/version", "/healthz/*", "/apis*"], &["get"])]);
    assert!(can_path(&snapshot, &alice(), "get", "/version"));
    assert!(!can_path(&snapshot, &alice(), "get", "/version/"));
    assert!(!can_path(&snapshot, &alice(), "post", "/version"));
    assert!(can_path(&snapshot, &alice(), "get", "/healthz/etcd"));
    assert!(can_path(&snapshot, &alice(), "get", "/healthz/"));
    assert!(!can_path(&snapshot, &alice(), "get", "/healthz"));
    assert!(can_path(&snapshot, &alice(), "get", "/apis"));
    assert!(can_path(&snapshot, &alice(), "get", "/apis/apps/v1"));
    assert!(can_path(&snapshot, &alice(), "get", "/apisx"));
    assert!(!can_path(&snapshot, &alice(), "get", "/metrics"));

    let everything = alice_has(vec![url_rule(&["*"], &["*"])]);
    assert!(can_path(&everything, &alice(), "get", "/metrics"));
    assert!(can_path(&everything, &alice(), "post", "/anything/at/all"));
}

#[test]
fn resource_rules_and_non_resource_rules_do_not_mix() {
    let snapshot = alice_has(vec![rule(&["*"], &["*"], &["*"])]);
    assert!(!can_path(&snapshot, &alice(), "get", "/version"));
    let snapshot = alice_has(vec![url_rule(&["*"], &["*"])]);
    assert!(!can(&snapshot, &alice(), "get", "", "pods", "default", "p"));
}

#[test]
fn non_resource_urls_only_apply_through_cluster_role_bindings() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![cluster_role("metrics", vec![url_rule(&["/metrics"], &["get"])])],
        role_bindings: vec![rb("default", "metrics", "ClusterRole", "metrics", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    assert!(!can_path(&snapshot, &alice(), "get", "/metrics"));

    let snapshot = RbacSnapshot {
        cluster_role_bindings: vec![crb("metrics", "metrics", vec![user_subject("alice")])],
        ..snapshot
    };
    assert!(can_path(&snapshot, &alice(), "get", "/metrics"));
}

// ---------------------------------------------------------------------------------------------
// Subjects and bindings
// ---------------------------------------------------------------------------------------------

fn reader_bound_to(subjects: Vec<Subject>) -> RbacSnapshot {
    RbacSnapshot {
        cluster_roles: vec![cluster_role("pod-reader", vec![rule(&[""], &["pods"], &["get", "list"])])],
        cluster_role_bindings: vec![crb("pod-reader", "pod-reader", subjects)],
        ..RbacSnapshot::default()
    }
}

#[test]
fn cluster_role_binding_user_subject_matches_the_user_name() {
    let snapshot = reader_bound_to(vec![user_subject("alice")]);
    assert!(can(&snapshot, &alice(), "list", "", "pods", "", ""));
    assert!(can(&snapshot, &alice(), "get", "", "pods", "any-namespace", "p"));
    assert!(!can(&snapshot, &bob(), "list", "", "pods", "", ""));
    // A group named like the user is not the user.
    assert!(!can(&snapshot, &UserInfo::new("carol", ["alice"]), "list", "", "pods", "", ""));
}

#[test]
fn cluster_role_binding_group_subject_matches_membership() {
    let snapshot = reader_bound_to(vec![group_subject("dev-team")]);
    assert!(can(&snapshot, &UserInfo::new("carol", [SYSTEM_AUTHENTICATED, "dev-team"]), "list", "", "pods", "", ""));
    assert!(!can(&snapshot, &alice(), "list", "", "pods", "", ""));
    assert!(!can(&snapshot, &UserInfo::new("dev-team", [SYSTEM_AUTHENTICATED]), "list", "", "pods", "", ""));

    // The groups a service account token carries work as Group subjects.
    let snapshot = reader_bound_to(vec![group_subject("system:serviceaccounts:kube-devops")]);
    assert!(can(&snapshot, &UserInfo::service_account("kube-devops", "anything"), "list", "", "pods", "", ""));
    assert!(!can(&snapshot, &UserInfo::service_account("default", "anything"), "list", "", "pods", "", ""));
}

#[test]
fn cluster_role_binding_service_account_subject_matches_the_service_account_user() {
    let snapshot = reader_bound_to(vec![sa_subject(Some("kube-devops"), "kube-devops")]);
    let sa = UserInfo::service_account("kube-devops", "kube-devops");
    assert_eq!(sa.name, "system:serviceaccount:kube-devops:kube-devops");
    assert_eq!(sa.groups, ["system:serviceaccounts", "system:serviceaccounts:kube-devops", "system:authenticated"]);
    assert!(can(&snapshot, &sa, "list", "", "pods", "", ""));
    // Only the user name counts, not the groups.
    assert!(can(
        &snapshot,
        &UserInfo::new("system:serviceaccount:kube-devops:kube-devops", Vec::<String>::new()),
        "list",
        "",
        "pods",
        "",
        ""
    ));
    assert!(!can(&snapshot, &UserInfo::service_account("default", "kube-devops"), "list", "", "pods", "", ""));
    assert!(!can(&snapshot, &UserInfo::service_account("kube-devops", "default"), "list", "", "pods", "", ""));
    assert!(!can(&snapshot, &UserInfo::new("kube-devops", [SYSTEM_AUTHENTICATED]), "list", "", "pods", "", ""));
}

#[test]
fn service_account_subject_without_namespace_matches_nothing_in_a_cluster_role_binding() {
    let snapshot = reader_bound_to(vec![sa_subject(None, "kube-devops")]);
    assert!(!can(&snapshot, &UserInfo::service_account("kube-devops", "kube-devops"), "list", "", "pods", "", ""));
    assert!(!can(
        &snapshot,
        &UserInfo::new("system:serviceaccount::kube-devops", [SYSTEM_AUTHENTICATED]),
        "list",
        "",
        "pods",
        "",
        ""
    ));
}

#[test]
fn unknown_subject_kinds_match_nothing_and_any_subject_of_a_list_is_enough() {
    let snapshot = reader_bound_to(vec![Subject { kind: "user".to_owned(), ..user_subject("alice") }]);
    assert!(!can(&snapshot, &alice(), "list", "", "pods", "", ""));
    let snapshot = reader_bound_to(vec![user_subject("bob"), group_subject("ops"), user_subject("alice")]);
    assert!(can(&snapshot, &alice(), "list", "", "pods", "", ""));
    assert!(can(&snapshot, &bob(), "list", "", "pods", "", ""));
    let snapshot = RbacSnapshot {
        cluster_role_bindings: vec![ClusterRoleBinding { subjects: None, ..crb("x", "pod-reader", vec![]) }],
        ..snapshot
    };
    assert!(!can(&snapshot, &alice(), "list", "", "pods", "", ""));
}

#[test]
fn role_binding_to_a_role_applies_only_in_its_namespace() {
    let snapshot = RbacSnapshot {
        roles: vec![role("team-a", "pod-editor", vec![rule(&[""], &["pods"], &["get", "list", "delete"])])],
        role_bindings: vec![rb("team-a", "alice-edits", "Role", "pod-editor", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    assert!(can(&snapshot, &alice(), "delete", "", "pods", "team-a", "p"));
    assert!(can(&snapshot, &alice(), "list", "", "pods", "team-a", ""));
    assert!(!can(&snapshot, &alice(), "list", "", "pods", "team-b", ""));
    // Listing across all namespaces is a cluster-scoped request: RoleBindings never grant it.
    assert!(!can(&snapshot, &alice(), "list", "", "pods", "", ""));
    assert!(!can(&snapshot, &bob(), "list", "", "pods", "team-a", ""));
}

#[test]
fn role_binding_uses_the_role_of_its_own_namespace() {
    // The Role of the same name in another namespace is not used.
    let snapshot = RbacSnapshot {
        roles: vec![role("team-b", "pod-editor", vec![rule(&[""], &["pods"], &["*"])])],
        role_bindings: vec![rb("team-a", "alice-edits", "Role", "pod-editor", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    assert!(!can(&snapshot, &alice(), "get", "", "pods", "team-a", "p"));
    assert!(!can(&snapshot, &alice(), "get", "", "pods", "team-b", "p"));
    let reason = deny_reason(
        snapshot.authorize(&RequestAttributes::resource(alice(), "get", "", "pods").in_namespace("team-a")),
    );
    assert!(reason.ends_with(r#": RBAC: role.rbac.authorization.k8s.io "pod-editor" not found"#), "{reason}");
}

#[test]
fn role_binding_to_a_cluster_role_applies_only_in_the_binding_namespace() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![cluster_role("secret-reader", vec![rule(&[""], &["secrets"], &["get", "list"])])],
        role_bindings: vec![rb("team-a", "read-secrets", "ClusterRole", "secret-reader", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    assert!(can(&snapshot, &alice(), "get", "", "secrets", "team-a", "s"));
    assert!(!can(&snapshot, &alice(), "get", "", "secrets", "team-b", "s"));
    assert!(!can(&snapshot, &alice(), "list", "", "secrets", "", ""));
}

#[test]
fn role_binding_service_account_subject_defaults_to_the_binding_namespace() {
    let snapshot = RbacSnapshot {
        roles: vec![role("team-a", "reader", vec![rule(&[""], &["pods"], &["get"])])],
        role_bindings: vec![rb("team-a", "reader", "Role", "reader", vec![sa_subject(None, "builder")])],
        ..RbacSnapshot::default()
    };
    assert!(can(&snapshot, &UserInfo::service_account("team-a", "builder"), "get", "", "pods", "team-a", "p"));
    assert!(!can(&snapshot, &UserInfo::service_account("team-b", "builder"), "get", "", "pods", "team-a", "p"));

    // An explicit namespace may name a service account of another namespace.
    let snapshot = RbacSnapshot {
        role_bindings: vec![rb("team-a", "reader", "Role", "reader", vec![sa_subject(Some("ci"), "builder")])],
        ..snapshot
    };
    assert!(can(&snapshot, &UserInfo::service_account("ci", "builder"), "get", "", "pods", "team-a", "p"));
    assert!(!can(&snapshot, &UserInfo::service_account("ci", "builder"), "get", "", "pods", "ci", "p"));
    assert!(!can(&snapshot, &UserInfo::service_account("team-a", "builder"), "get", "", "pods", "team-a", "p"));
}

#[test]
fn bindings_to_missing_roles_grant_nothing_and_are_reported() {
    let snapshot = RbacSnapshot {
        cluster_role_bindings: vec![crb("ghost", "ghost-role", vec![user_subject("alice")])],
        role_bindings: vec![
            rb("team-a", "ghost", "Role", "ghost-role", vec![user_subject("alice")]),
            rb("team-a", "ghost-again", "ClusterRole", "ghost-role", vec![user_subject("alice")]),
        ],
        ..RbacSnapshot::default()
    };
    let attrs = RequestAttributes::resource(alice(), "get", "", "pods").in_namespace("team-a").named("p");
    assert_eq!(
        deny_reason(snapshot.authorize(&attrs)),
        "User \"alice\" cannot get resource \"pods\" in API group \"\" in the namespace \"team-a\": RBAC: \
         [clusterrole.rbac.authorization.k8s.io \"ghost-role\" not found, role.rbac.authorization.k8s.io \"ghost-role\" not found]"
    );
    // Only the cluster-wide binding is looked at for a cluster-scoped request; one error, no brackets.
    let attrs = RequestAttributes::resource(alice(), "list", "", "pods");
    assert_eq!(
        deny_reason(snapshot.authorize(&attrs)),
        "User \"alice\" cannot list resource \"pods\" in API group \"\" at the cluster scope: \
         RBAC: clusterrole.rbac.authorization.k8s.io \"ghost-role\" not found"
    );
    // Bindings that do not apply to the user are not resolved at all.
    assert_eq!(
        deny_reason(snapshot.authorize(&RequestAttributes::resource(bob(), "list", "", "pods"))),
        "User \"bob\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );
    assert_eq!(snapshot.rules_for_with_errors(&alice(), "team-a").1.len(), 3);
}

#[test]
fn a_missing_role_does_not_block_what_other_bindings_grant() {
    let mut snapshot = reader_bound_to(vec![user_subject("alice")]);
    snapshot.cluster_role_bindings.insert(0, crb("ghost", "ghost-role", vec![user_subject("alice")]));
    assert!(can(&snapshot, &alice(), "list", "", "pods", "", ""));
}

#[test]
fn unsupported_role_ref_kinds_grant_nothing() {
    let mut binding = crb("odd", "pod-reader", vec![user_subject("alice")]);
    binding.role_ref.kind = "Thing".to_owned();
    let snapshot = RbacSnapshot { cluster_role_bindings: vec![binding], ..reader_bound_to(vec![]) };
    let reason = deny_reason(snapshot.authorize(&RequestAttributes::resource(alice(), "list", "", "pods")));
    assert!(reason.ends_with(": RBAC: unsupported role reference kind: \"Thing\""), "{reason}");
    // A ClusterRoleBinding to a Role looks for a Role in no namespace: there is none.
    let mut binding = crb("odd", "pod-reader", vec![user_subject("alice")]);
    binding.role_ref.kind = "Role".to_owned();
    let snapshot = RbacSnapshot {
        cluster_role_bindings: vec![binding],
        roles: vec![role("default", "pod-reader", vec![rule(&[""], &["pods"], &["list"])])],
        ..reader_bound_to(vec![])
    };
    assert!(!can(&snapshot, &alice(), "list", "", "pods", "default", ""));
}

// ---------------------------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------------------------

fn aggregation_snapshot(aggregate: ClusterRole, mut others: Vec<ClusterRole>) -> RbacSnapshot {
    let name = aggregate.metadata.name.clone().unwrap();
    others.push(aggregate);
    RbacSnapshot {
        cluster_roles: others,
        cluster_role_bindings: vec![crb("alice", &name, vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    }
}

#[test]
fn aggregated_cluster_role_gets_the_rules_of_the_roles_its_selectors_match() {
    let snapshot = aggregation_snapshot(
        aggregated_cluster_role(
            "monitoring",
            vec![match_labels(&[("rbac.example.com/aggregate-to-monitoring", "true")])],
            None,
        ),
        vec![
            labeled_cluster_role(
                "monitoring-pods",
                &[("rbac.example.com/aggregate-to-monitoring", "true")],
                vec![rule(&[""], &["pods"], &["get", "list"])],
            ),
            labeled_cluster_role(
                "monitoring-events",
                &[("rbac.example.com/aggregate-to-monitoring", "true"), ("other", "x")],
                vec![rule(&["events.k8s.io"], &["events"], &["list"])],
            ),
            labeled_cluster_role(
                "not-selected",
                &[("rbac.example.com/aggregate-to-monitoring", "false")],
                vec![rule(&[""], &["secrets"], &["get"])],
            ),
            cluster_role("unlabeled", vec![rule(&[""], &["configmaps"], &["get"])]),
        ],
    );
    assert!(can(&snapshot, &alice(), "list", "", "pods", "", ""));
    assert!(can(&snapshot, &alice(), "list", "events.k8s.io", "events", "default", ""));
    assert!(!can(&snapshot, &alice(), "get", "", "secrets", "default", "s"));
    assert!(!can(&snapshot, &alice(), "get", "", "configmaps", "default", "c"));
    assert_eq!(
        snapshot.aggregated_cluster_role_rules(),
        BTreeMap::from([(
            "monitoring".to_owned(),
            // Roles in name order: monitoring-events before monitoring-pods.
            vec![rule(&["events.k8s.io"], &["events"], &["list"]), rule(&[""], &["pods"], &["get", "list"])]
        )])
    );
}

#[test]
fn aggregated_cluster_role_follows_later_changes_and_ignores_stale_stored_rules() {
    // The stored rules are what the controller wrote last time; they are recomputed.
    let stale = vec![rule(&[""], &["secrets"], &["*"])];
    let mut snapshot = aggregation_snapshot(
        aggregated_cluster_role("agg", vec![match_labels(&[("agg", "true")])], Some(stale)),
        vec![labeled_cluster_role("part", &[("agg", "true")], vec![rule(&[""], &["pods"], &["get"])])],
    );
    assert!(can(&snapshot, &alice(), "get", "", "pods", "default", "p"));
    assert!(!can(&snapshot, &alice(), "get", "", "secrets", "default", "s"));

    // A new labelled role widens the aggregate; removing the label narrows it.
    snapshot.cluster_roles.push(labeled_cluster_role(
        "part-2",
        &[("agg", "true")],
        vec![rule(&[""], &["services"], &["get"])],
    ));
    assert!(can(&snapshot, &alice(), "get", "", "services", "default", "s"));
    snapshot.cluster_roles[0].metadata.labels = None;
    assert!(!can(&snapshot, &alice(), "get", "", "pods", "default", "p"));
    assert!(can(&snapshot, &alice(), "get", "", "services", "default", "s"));
}

#[test]
fn aggregation_selectors_support_match_expressions() {
    let parts = || {
        vec![
            labeled_cluster_role("a", &[("tier", "frontend")], vec![rule(&[""], &["pods"], &["get"])]),
            labeled_cluster_role("b", &[("tier", "backend")], vec![rule(&[""], &["services"], &["get"])]),
            labeled_cluster_role("c", &[("team", "x")], vec![rule(&[""], &["secrets"], &["get"])]),
        ]
    };
    let granted = |selector: LabelSelector| {
        let snapshot = aggregation_snapshot(aggregated_cluster_role("agg", vec![selector], None), parts());
        ["pods", "services", "secrets"]
            .into_iter()
            .filter(|resource| can(&snapshot, &alice(), "get", "", resource, "default", "x"))
            .collect::<Vec<_>>()
    };
    assert_eq!(granted(match_expression("tier", "In", &["frontend", "backend"])), ["pods", "services"]);
    // NotIn also selects roles without the label (other than the aggregating role itself).
    assert_eq!(granted(match_expression("tier", "NotIn", &["frontend"])), ["services", "secrets"]);
    assert_eq!(granted(match_expression("tier", "Exists", &[])), ["pods", "services"]);
    assert_eq!(granted(match_expression("tier", "DoesNotExist", &[])), ["secrets"]);
    // Invalid requirements select nothing.
    assert!(granted(match_expression("tier", "In", &[])).is_empty());
    assert!(granted(match_expression("tier", "Exists", &["frontend"])).is_empty());
    assert!(granted(match_expression("tier", "Equals", &["frontend"])).is_empty());
    // matchLabels and matchExpressions are ANDed; several selectors are ORed.
    let both = LabelSelector {
        match_labels: match_labels(&[("tier", "backend")]).match_labels,
        ..match_expression("tier", "Exists", &[])
    };
    assert_eq!(granted(both), ["services"]);
    let snapshot = aggregation_snapshot(
        aggregated_cluster_role(
            "agg",
            vec![match_labels(&[("tier", "frontend")]), match_labels(&[("team", "x")])],
            None,
        ),
        parts(),
    );
    assert!(can(&snapshot, &alice(), "get", "", "pods", "default", "x"));
    assert!(can(&snapshot, &alice(), "get", "", "secrets", "default", "x"));
    assert!(!can(&snapshot, &alice(), "get", "", "services", "default", "x"));
    // An empty selector selects every other ClusterRole.
    assert_eq!(granted(LabelSelector::default()), ["pods", "services", "secrets"]);
}

#[test]
fn aggregation_chains_resolve_and_cycles_terminate() {
    // admin <- edit <- view, as in the default roles: admin aggregates roles labelled
    // aggregate-to-admin, edit is one of them and aggregates aggregate-to-edit, and so on.
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            ClusterRole {
                metadata: ObjectMeta {
                    labels: Some(BTreeMap::from([("aggregate-to-admin".to_owned(), "true".to_owned())])),
                    ..meta(None, "edit")
                },
                ..aggregated_cluster_role("edit", vec![match_labels(&[("aggregate-to-edit", "true")])], None)
            },
            aggregated_cluster_role("admin", vec![match_labels(&[("aggregate-to-admin", "true")])], None),
            ClusterRole {
                metadata: ObjectMeta {
                    labels: Some(BTreeMap::from([("aggregate-to-edit".to_owned(), "true".to_owned())])),
                    ..meta(None, "view")
                },
                ..aggregated_cluster_role("view", vec![match_labels(&[("aggregate-to-view", "true")])], None)
            },
            labeled_cluster_role(
                "aggregate-to-view",
                &[("aggregate-to-view", "true")],
                vec![rule(&[""], &["pods"], &["get"])],
            ),
            labeled_cluster_role(
                "aggregate-to-edit",
                &[("aggregate-to-edit", "true")],
                vec![rule(&[""], &["pods"], &["delete"])],
            ),
            labeled_cluster_role(
                "aggregate-to-admin",
                &[("aggregate-to-admin", "true")],
                vec![rule(&[RBAC_API_GROUP], &["rolebindings"], &["create"])],
            ),
        ],
        role_bindings: vec![rb("team-a", "alice-admin", "ClusterRole", "admin", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    assert!(can(&snapshot, &alice(), "get", "", "pods", "team-a", "p"));
    assert!(can(&snapshot, &alice(), "delete", "", "pods", "team-a", "p"));
    assert!(can(&snapshot, &alice(), "create", RBAC_API_GROUP, "rolebindings", "team-a", ""));
    assert_eq!(snapshot.effective_cluster_role_rules("view").unwrap(), vec![rule(&[""], &["pods"], &["get"])]);
    assert_eq!(snapshot.effective_cluster_role_rules("edit").unwrap().len(), 2);
    assert_eq!(snapshot.effective_cluster_role_rules("admin").unwrap().len(), 3);
    assert_eq!(snapshot.effective_cluster_role_rules("nope"), None);

    // Two roles aggregating each other: both end up with both rules, and resolution terminates.
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            ClusterRole {
                metadata: ObjectMeta {
                    labels: Some(BTreeMap::from([("to-b".to_owned(), "true".to_owned())])),
                    ..meta(None, "a")
                },
                ..aggregated_cluster_role("a", vec![match_labels(&[("to-a", "true")])], None)
            },
            ClusterRole {
                metadata: ObjectMeta {
                    labels: Some(BTreeMap::from([("to-a".to_owned(), "true".to_owned())])),
                    ..meta(None, "b")
                },
                ..aggregated_cluster_role("b", vec![match_labels(&[("to-b", "true")])], None)
            },
            labeled_cluster_role("leaf-a", &[("to-a", "true")], vec![rule(&[""], &["pods"], &["get"])]),
            labeled_cluster_role("leaf-b", &[("to-b", "true")], vec![rule(&[""], &["services"], &["get"])]),
        ],
        ..RbacSnapshot::default()
    };
    let aggregated = snapshot.aggregated_cluster_role_rules();
    assert_eq!(aggregated["a"].len(), 2);
    assert_eq!(aggregated["b"].len(), 2);
}

#[test]
fn an_aggregating_role_does_not_select_itself_and_duplicates_are_dropped() {
    let mut aggregate = aggregated_cluster_role("agg", vec![match_labels(&[("agg", "true")])], None);
    aggregate.metadata.labels = Some(BTreeMap::from([("agg".to_owned(), "true".to_owned())]));
    let snapshot = aggregation_snapshot(
        aggregate,
        vec![
            labeled_cluster_role("one", &[("agg", "true")], vec![rule(&[""], &["pods"], &["get"])]),
            labeled_cluster_role(
                "two",
                &[("agg", "true")],
                vec![rule(&[""], &["pods"], &["get"]), rule(&[""], &["services"], &["get"])],
            ),
        ],
    );
    assert_eq!(
        snapshot.aggregated_cluster_role_rules()["agg"],
        vec![rule(&[""], &["pods"], &["get"]), rule(&[""], &["services"], &["get"])]
    );
}

// ---------------------------------------------------------------------------------------------
// system:masters, deny messages, rules_for
// ---------------------------------------------------------------------------------------------

#[test]
fn system_masters_is_allowed_everything_without_any_binding() {
    let admin = UserInfo::new("admin", [SYSTEM_MASTERS, SYSTEM_AUTHENTICATED]);
    let empty = RbacSnapshot::default();
    assert!(can(&empty, &admin, "delete", "", "nodes", "", "n1"));
    assert!(can(&empty, &admin, "deletecollection", "apps", "deployments", "prod", ""));
    assert!(can(&empty, &admin, "escalate", RBAC_API_GROUP, "clusterroles", "", ""));
    assert!(can_path(&empty, &admin, "get", "/metrics"));
    // The group, not the name, makes an admin.
    assert!(!can(&empty, &UserInfo::new("admin", [SYSTEM_AUTHENTICATED]), "get", "", "pods", "default", "p"));
    assert!(!can(&empty, &UserInfo::new("system:masters", [SYSTEM_AUTHENTICATED]), "get", "", "pods", "default", "p"));
}

#[test]
fn deny_reasons_read_like_a_real_403() {
    let empty = RbacSnapshot::default();
    let sa = UserInfo::service_account("kube-devops", "kube-devops");
    let cases = [
        (
            RequestAttributes::resource(sa.clone(), "list", "", "pods").in_namespace("default"),
            r#"User "system:serviceaccount:kube-devops:kube-devops" cannot list resource "pods" in API group "" in the namespace "default""#,
        ),
        (
            RequestAttributes::resource(sa.clone(), "list", "devops.stochastic.io", "devopspolicies"),
            r#"User "system:serviceaccount:kube-devops:kube-devops" cannot list resource "devopspolicies" in API group "devops.stochastic.io" at the cluster scope"#,
        ),
        (
            RequestAttributes::resource(sa.clone(), "update", "devops.stochastic.io", "devopspolicies/status")
                .in_namespace("prod")
                .named("p"),
            r#"User "system:serviceaccount:kube-devops:kube-devops" cannot update resource "devopspolicies/status" in API group "devops.stochastic.io" in the namespace "prod""#,
        ),
        (
            RequestAttributes::non_resource(sa.clone(), "get", "/metrics"),
            r#"User "system:serviceaccount:kube-devops:kube-devops" cannot get path "/metrics""#,
        ),
    ];
    for (attrs, expected) in cases {
        assert_eq!(deny_reason(empty.authorize(&attrs)), expected);
    }
}

#[test]
fn forbidden_status_objects_look_like_the_api_server_ones() {
    let attrs = RequestAttributes::resource(alice(), "get", "", "pods/log").in_namespace("default").named("web-0");
    let reason = deny_reason(RbacSnapshot::default().authorize(&attrs));
    assert_eq!(
        attrs.forbidden_status(&reason),
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "pods \"web-0\" is forbidden: User \"alice\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"default\"",
            "reason": "Forbidden",
            "details": {"name": "web-0", "kind": "pods"},
            "code": 403,
        })
    );
    let attrs = RequestAttributes::resource(alice(), "list", "apps", "deployments");
    let reason = deny_reason(RbacSnapshot::default().authorize(&attrs));
    assert_eq!(
        attrs.forbidden_status(&reason)["message"],
        "deployments.apps is forbidden: User \"alice\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
    );
    assert_eq!(attrs.forbidden_status(&reason)["details"], serde_json::json!({"group": "apps", "kind": "deployments"}));
    let attrs = RequestAttributes::non_resource(alice(), "get", "/metrics");
    let reason = deny_reason(RbacSnapshot::default().authorize(&attrs));
    assert_eq!(attrs.forbidden_status(&reason)["message"], "forbidden: User \"alice\" cannot get path \"/metrics\"");
}

#[test]
fn rules_for_lists_cluster_wide_rules_and_those_of_the_namespace() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            cluster_role("cluster-reader", vec![rule(&[""], &["nodes"], &["get"])]),
            cluster_role("ns-editor", vec![rule(&[""], &["configmaps"], &["update"])]),
        ],
        cluster_role_bindings: vec![crb("reader", "cluster-reader", vec![user_subject("alice")])],
        roles: vec![role("team-a", "leases", vec![rule(&["coordination.k8s.io"], &["leases"], &["get"])])],
        role_bindings: vec![
            rb("team-a", "leases", "Role", "leases", vec![user_subject("alice")]),
            rb("team-a", "edit", "ClusterRole", "ns-editor", vec![user_subject("alice")]),
            rb("team-b", "edit", "ClusterRole", "ns-editor", vec![user_subject("alice")]),
            rb("team-a", "bob", "ClusterRole", "ns-editor", vec![user_subject("bob")]),
        ],
    };
    assert_eq!(snapshot.rules_for(&alice(), ""), vec![rule(&[""], &["nodes"], &["get"])]);
    assert_eq!(
        snapshot.rules_for(&alice(), "team-a"),
        vec![
            rule(&[""], &["nodes"], &["get"]),
            rule(&["coordination.k8s.io"], &["leases"], &["get"]),
            rule(&[""], &["configmaps"], &["update"]),
        ]
    );
    assert_eq!(snapshot.rules_for(&alice(), "team-c"), vec![rule(&[""], &["nodes"], &["get"])]);
    assert!(snapshot.rules_for(&UserInfo::new("carol", [SYSTEM_AUTHENTICATED]), "team-a").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Escalation checks
// ---------------------------------------------------------------------------------------------

#[test]
fn granting_rules_one_holds_is_allowed() {
    let snapshot = alice_has(vec![
        rule(&["", "apps"], &["pods", "deployments"], &["get", "list", "watch"]),
        rule(&[""], &["configmaps"], &["*"]),
    ]);
    let granted = [
        rule(&[""], &["pods"], &["get", "watch"]),
        rule(&["apps"], &["deployments"], &["list"]),
        rule(&[""], &["configmaps"], &["get", "delete"]),
        named_rule(&[""], &["configmaps"], &["app"], &["update"]),
        // A rule with groups but no resources grants nothing and needs nothing.
        rule(&["batch"], &[], &["get"]),
    ];
    assert_eq!(snapshot.check_role_escalation(&alice(), "team-a", &granted), Ok(()));
    assert_eq!(snapshot.check_role_escalation(&alice(), "", &granted), Ok(()));
}

#[test]
fn granting_rules_one_does_not_hold_fails_with_the_real_message() {
    let snapshot = alice_has(vec![rule(&[""], &["pods"], &["get"])]);
    let granted = [
        rule(&[""], &["pods"], &["get", "list", "watch"]),
        rule(&["devops.stochastic.io"], &["devopspolicies", "devopspolicies/status"], &["patch"]),
        named_rule(&[""], &["secrets"], &["a", "b"], &["get"]),
        url_rule(&["/metrics"], &["get"]),
    ];
    let error = snapshot.check_role_escalation(&alice(), "team-a", &granted).unwrap_err();
    assert_eq!(
        error,
        "user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\" \"watch\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], ResourceNames:[\"a\"], Verbs:[\"get\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], ResourceNames:[\"b\"], Verbs:[\"get\"]}\n\
         {APIGroups:[\"devops.stochastic.io\"], Resources:[\"devopspolicies\"], Verbs:[\"patch\"]}\n\
         {APIGroups:[\"devops.stochastic.io\"], Resources:[\"devopspolicies/status\"], Verbs:[\"patch\"]}\n\
         {NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"
    );
    let status = forbidden_status(RBAC_API_GROUP, "roles", "operator", &error);
    assert!(status["message"].as_str().unwrap().starts_with(
        "roles.rbac.authorization.k8s.io \"operator\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting"
    ));
}

#[test]
fn wildcards_are_only_covered_by_wildcards() {
    let specific = alice_has(vec![rule(
        &[""],
        &["pods", "services"],
        &["get", "list", "watch", "create", "update", "patch", "delete"],
    )]);
    let error = specific.check_role_escalation(&alice(), "team-a", &[rule(&[""], &["pods"], &["*"])]).unwrap_err();
    assert!(error.ends_with("\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"*\"]}"), "{error}");
    assert!(specific.check_role_escalation(&alice(), "team-a", &[rule(&[""], &["*"], &["get"])]).is_err());
    assert!(specific.check_role_escalation(&alice(), "team-a", &[rule(&["*"], &["pods"], &["get"])]).is_err());

    let all = alice_has(vec![rule(&["*"], &["*"], &["*"])]);
    assert_eq!(
        all.check_role_escalation(&alice(), "team-a", &[rule(&["*"], &["*"], &["*"]), rule(&["x"], &["y/z"], &["w"])]),
        Ok(())
    );
    // Holding all resources does not cover the non-resource URLs...
    assert!(all.confirm_no_escalation(&alice(), "", &[url_rule(&["/healthz"], &["get"])]).is_err());
    // ...but `*` on `*` includes the escalate verb, which exempts from the check.
    assert_eq!(all.check_role_escalation(&alice(), "", &[url_rule(&["/healthz"], &["get"])]), Ok(()));

    let scale = alice_has(vec![rule(&["apps"], &["*/scale"], &["update"]), url_rule(&["/healthz/*"], &["get"])]);
    assert_eq!(
        scale.check_role_escalation(&alice(), "", &[rule(&["apps"], &["deployments/scale"], &["update"])]),
        Ok(())
    );
    assert!(scale.check_role_escalation(&alice(), "", &[rule(&["apps"], &["deployments"], &["update"])]).is_err());
    assert_eq!(
        scale.check_role_escalation(&alice(), "", &[url_rule(&["/healthz/etcd", "/healthz/*"], &["get"])]),
        Ok(())
    );
    assert!(scale.check_role_escalation(&alice(), "", &[url_rule(&["/healthz"], &["get"])]).is_err());
}

#[test]
fn resource_names_in_escalation_checks() {
    let named = alice_has(vec![named_rule(&[""], &["configmaps"], &["a", "b"], &["get"])]);
    assert_eq!(
        named.check_role_escalation(&alice(), "x", &[named_rule(&[""], &["configmaps"], &["a"], &["get"])]),
        Ok(())
    );
    assert_eq!(
        named.check_role_escalation(&alice(), "x", &[named_rule(&[""], &["configmaps"], &["b", "a"], &["get"])]),
        Ok(())
    );
    // Holding some names does not hold all of them.
    assert!(named.check_role_escalation(&alice(), "x", &[rule(&[""], &["configmaps"], &["get"])]).is_err());
    assert!(
        named.check_role_escalation(&alice(), "x", &[named_rule(&[""], &["configmaps"], &["c"], &["get"])]).is_err()
    );
    let unnamed = alice_has(vec![rule(&[""], &["configmaps"], &["get"])]);
    assert_eq!(
        unnamed.check_role_escalation(&alice(), "x", &[named_rule(&[""], &["configmaps"], &["c"], &["get"])]),
        Ok(())
    );
}

#[test]
fn namespaced_rules_count_only_in_their_namespace_and_cluster_rules_everywhere() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            cluster_role("node-reader", vec![rule(&[""], &["nodes"], &["get"])]),
            cluster_role("pod-admin", vec![rule(&[""], &["pods"], &["*"])]),
        ],
        cluster_role_bindings: vec![crb("nodes", "node-reader", vec![user_subject("alice")])],
        role_bindings: vec![rb("team-a", "pods", "ClusterRole", "pod-admin", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    let pods = [rule(&[""], &["pods"], &["delete"])];
    let nodes = [rule(&[""], &["nodes"], &["get"])];
    assert_eq!(snapshot.check_role_escalation(&alice(), "team-a", &pods), Ok(()));
    assert!(snapshot.check_role_escalation(&alice(), "team-b", &pods).is_err());
    // A ClusterRole is checked against cluster-wide rules only.
    assert!(snapshot.check_role_escalation(&alice(), "", &pods).is_err());
    assert_eq!(snapshot.check_role_escalation(&alice(), "team-b", &nodes), Ok(()));
    assert_eq!(snapshot.check_role_escalation(&alice(), "", &nodes), Ok(()));
}

#[test]
fn the_escalate_verb_and_system_masters_bypass_the_escalation_check() {
    let granted = [rule(&["*"], &["*"], &["*"])];
    let admin = UserInfo::new("admin", [SYSTEM_MASTERS]);
    assert_eq!(RbacSnapshot::default().check_role_escalation(&admin, "", &granted), Ok(()));

    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            cluster_role("role-escalator", vec![rule(&[RBAC_API_GROUP], &["roles"], &["escalate"])]),
            cluster_role(
                "cluster-role-escalator",
                vec![named_rule(&[RBAC_API_GROUP], &["clusterroles"], &["operator"], &["escalate"])],
            ),
        ],
        role_bindings: vec![rb("team-a", "esc", "ClusterRole", "role-escalator", vec![user_subject("alice")])],
        cluster_role_bindings: vec![crb("esc", "cluster-role-escalator", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    assert_eq!(snapshot.check_role_escalation(&alice(), "team-a", &granted), Ok(()));
    assert!(snapshot.check_role_escalation(&alice(), "team-b", &granted).is_err());
    // escalate restricted to one ClusterRole name: a create has no name, an update of it does.
    assert!(snapshot.check_role_escalation(&alice(), "", &granted).is_err());
    assert_eq!(snapshot.check_role_escalation_named(&alice(), "", "operator", &granted), Ok(()));
    assert!(snapshot.check_role_escalation_named(&alice(), "", "other", &granted).is_err());
    // escalate on roles in a namespace does not cover clusterroles, nor the other way round.
    let wrong_resource = alice_has(vec![rule(&[RBAC_API_GROUP], &["clusterroles"], &["escalate"])]);
    assert_eq!(wrong_resource.check_role_escalation(&alice(), "", &granted), Ok(()));
    let roles_only = RbacSnapshot {
        cluster_roles: vec![cluster_role("granted", vec![rule(&[RBAC_API_GROUP], &["roles"], &["escalate"])])],
        ..wrong_resource
    };
    assert!(roles_only.check_role_escalation(&alice(), "", &granted).is_err());
    assert_eq!(roles_only.check_role_escalation(&alice(), "any", &granted), Ok(()));
}

#[test]
fn escalation_errors_mention_resolution_errors() {
    let mut snapshot = alice_has(vec![]);
    snapshot.cluster_role_bindings.push(crb("ghost", "ghost-role", vec![user_subject("alice")]));
    let error = snapshot.check_role_escalation(&alice(), "", &[rule(&[""], &["pods"], &["get"])]).unwrap_err();
    assert!(
        error.ends_with(
            "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}; resolution errors: [clusterrole.rbac.authorization.k8s.io \"ghost-role\" not found]"
        ),
        "{error}"
    );
}

#[test]
fn aggregation_rules_take_full_authority_or_escalate() {
    let admin = UserInfo::new("admin", [SYSTEM_MASTERS]);
    assert_eq!(RbacSnapshot::default().check_cluster_role_aggregation(&admin, ""), Ok(()));
    let read_everything = alice_has(vec![rule(&["*"], &["*"], &["get", "list", "watch"]), url_rule(&["*"], &["*"])]);
    assert_eq!(
        read_everything.check_cluster_role_aggregation(&alice(), ""),
        Err("must have cluster-admin privileges to use the aggregationRule".to_owned())
    );
    let full = alice_has(vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])]);
    assert_eq!(full.check_cluster_role_aggregation(&alice(), ""), Ok(()));
    // `*` on all resources implies escalate on clusterroles, which is enough by itself.
    let resources_only = alice_has(vec![rule(&["*"], &["*"], &["*"])]);
    assert_eq!(resources_only.check_cluster_role_aggregation(&alice(), ""), Ok(()));
    let escalate = alice_has(vec![rule(&[RBAC_API_GROUP], &["clusterroles"], &["escalate"])]);
    assert_eq!(escalate.check_cluster_role_aggregation(&alice(), "monitoring"), Ok(()));
    // Bound to the bootstrap cluster-admin role is full authority; the bootstrap policy alone is not.
    let mut bootstrap = RbacSnapshot::bootstrap();
    assert!(bootstrap.check_cluster_role_aggregation(&alice(), "").is_err());
    bootstrap.cluster_role_bindings.push(crb("alice-admin", "cluster-admin", vec![user_subject("alice")]));
    assert_eq!(bootstrap.check_cluster_role_aggregation(&alice(), ""), Ok(()));
}

#[test]
fn binding_a_role_with_the_bind_verb() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            cluster_role("powerful", vec![rule(&["*"], &["*"], &["*"])]),
            cluster_role("binder", vec![named_rule(&[RBAC_API_GROUP], &["clusterroles"], &["powerful"], &["bind"])]),
        ],
        roles: vec![role("team-a", "local", vec![rule(&[""], &["secrets"], &["get"])])],
        role_bindings: vec![rb("team-a", "binder", "ClusterRole", "binder", vec![user_subject("alice")])],
        ..RbacSnapshot::default()
    };
    let powerful = role_ref("ClusterRole", "powerful");
    // bind is checked in the binding's namespace, on the referenced role's name.
    assert_eq!(snapshot.check_binding(&alice(), "team-a", &powerful), Ok(()));
    assert!(snapshot.check_binding(&alice(), "team-b", &powerful).is_err());
    assert!(snapshot.check_binding(&alice(), "", &powerful).is_err());
    // bind on clusterroles/powerful is not bind on roles/local.
    let error = snapshot.check_binding(&alice(), "team-a", &role_ref("Role", "local")).unwrap_err();
    assert!(
        error.ends_with("not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"),
        "{error}"
    );
    // The role ref's API group is the one checked.
    let other_group = RoleRef { api_group: "example.com".to_owned(), ..powerful.clone() };
    assert!(snapshot.check_binding(&alice(), "team-a", &other_group).is_err());
}

#[test]
fn binding_a_role_whose_rules_one_holds() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            cluster_role("view-pods", vec![rule(&[""], &["pods"], &["get", "list"])]),
            cluster_role("pod-admin", vec![rule(&[""], &["pods"], &["*"])]),
            cluster_role("view-pods-and-secrets", vec![rule(&[""], &["pods", "secrets"], &["get"])]),
        ],
        role_bindings: vec![rb("team-a", "pods", "ClusterRole", "pod-admin", vec![user_subject("alice")])],
        roles: vec![role("team-a", "local", vec![rule(&[""], &["pods"], &["delete"])])],
        ..RbacSnapshot::default()
    };
    assert_eq!(snapshot.check_binding(&alice(), "team-a", &role_ref("ClusterRole", "view-pods")), Ok(()));
    assert_eq!(snapshot.check_binding(&alice(), "team-a", &role_ref("Role", "local")), Ok(()));
    // Not in another namespace, nor cluster-wide (a ClusterRoleBinding).
    assert!(snapshot.check_binding(&alice(), "team-b", &role_ref("ClusterRole", "view-pods")).is_err());
    assert!(snapshot.check_binding(&alice(), "", &role_ref("ClusterRole", "view-pods")).is_err());
    let error =
        snapshot.check_binding(&alice(), "team-a", &role_ref("ClusterRole", "view-pods-and-secrets")).unwrap_err();
    assert!(error.ends_with(":\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"), "{error}");
    // Missing roles.
    assert_eq!(
        snapshot.check_binding(&alice(), "team-a", &role_ref("ClusterRole", "nope")),
        Err("clusterrole.rbac.authorization.k8s.io \"nope\" not found".to_owned())
    );
    assert_eq!(
        snapshot.check_binding(&alice(), "team-b", &role_ref("Role", "local")),
        Err("role.rbac.authorization.k8s.io \"local\" not found".to_owned())
    );
    // system:masters binds anything, even roles that do not exist yet.
    let admin = UserInfo::new("admin", [SYSTEM_MASTERS]);
    assert_eq!(snapshot.check_binding(&admin, "", &role_ref("ClusterRole", "nope")), Ok(()));
}

#[test]
fn binding_an_aggregated_cluster_role_checks_its_aggregated_rules() {
    let snapshot = RbacSnapshot {
        cluster_roles: vec![
            aggregated_cluster_role("agg", vec![match_labels(&[("agg", "true")])], Some(vec![])),
            labeled_cluster_role("part", &[("agg", "true")], vec![rule(&[""], &["secrets"], &["get"])]),
        ],
        ..alice_has(vec![rule(&[""], &["pods"], &["get"])])
    };
    assert_eq!(
        snapshot.role_ref_rules(&role_ref("ClusterRole", "agg"), "").unwrap(),
        vec![rule(&[""], &["secrets"], &["get"])]
    );
    assert!(snapshot.check_binding(&alice(), "", &role_ref("ClusterRole", "agg")).is_err());
}

// ---------------------------------------------------------------------------------------------
// Request attributes from HTTP requests
// ---------------------------------------------------------------------------------------------

fn parse(method: &str, uri: &str) -> RequestAttributes {
    RequestAttributes::from_http(alice(), method, uri)
}

#[track_caller]
fn assert_resource(
    attrs: &RequestAttributes,
    verb: &str,
    group: &str,
    resource: &str,
    sub: &str,
    ns: &str,
    name: &str,
) {
    assert_eq!(attrs.non_resource_path, None, "{attrs:?}");
    assert_eq!(
        (
            attrs.verb.as_str(),
            attrs.api_group.as_str(),
            attrs.resource.as_str(),
            attrs.subresource.as_str(),
            attrs.namespace.as_str(),
            attrs.name.as_str()
        ),
        (verb, group, resource, sub, ns, name)
    );
}

#[test]
fn http_requests_map_to_verbs() {
    assert_resource(&parse("GET", "/api/v1/namespaces/default/pods/web-0"), "get", "", "pods", "", "default", "web-0");
    assert_resource(&parse("HEAD", "/api/v1/namespaces/default/pods/web-0"), "get", "", "pods", "", "default", "web-0");
    assert_resource(&parse("GET", "/api/v1/namespaces/default/pods"), "list", "", "pods", "", "default", "");
    assert_resource(&parse("GET", "/api/v1/pods"), "list", "", "pods", "", "", "");
    assert_resource(&parse("GET", "/api/v1/pods?watch=true&resourceVersion=10"), "watch", "", "pods", "", "", "");
    assert_resource(&parse("GET", "/api/v1/pods?watch=1"), "watch", "", "pods", "", "", "");
    assert_resource(&parse("GET", "/api/v1/pods?watch="), "watch", "", "pods", "", "", "");
    assert_resource(&parse("GET", "/api/v1/pods?watch=false"), "list", "", "pods", "", "", "");
    assert_resource(&parse("GET", "/api/v1/pods?watch=0"), "list", "", "pods", "", "", "");
    assert_resource(&parse("GET", "/api/v1/watch/namespaces/default/pods"), "watch", "", "pods", "", "default", "");
    assert_resource(
        &parse("GET", "/api/v1/watch/namespaces/default/pods/web-0"),
        "watch",
        "",
        "pods",
        "",
        "default",
        "web-0",
    );
    assert_resource(&parse("POST", "/api/v1/namespaces/default/pods"), "create", "", "pods", "", "default", "");
    assert_resource(
        &parse("PUT", "/api/v1/namespaces/default/pods/web-0"),
        "update",
        "",
        "pods",
        "",
        "default",
        "web-0",
    );
    assert_resource(
        &parse("PATCH", "/api/v1/namespaces/default/pods/web-0"),
        "patch",
        "",
        "pods",
        "",
        "default",
        "web-0",
    );
    assert_resource(
        &parse("DELETE", "/api/v1/namespaces/default/pods/web-0"),
        "delete",
        "",
        "pods",
        "",
        "default",
        "web-0",
    );
    assert_resource(
        &parse("DELETE", "/api/v1/namespaces/default/pods"),
        "deletecollection",
        "",
        "pods",
        "",
        "default",
        "",
    );
    assert_resource(&parse("OPTIONS", "/api/v1/namespaces/default/pods"), "", "", "pods", "", "default", "");
}

#[test]
fn http_requests_map_to_groups_subresources_and_namespaces() {
    assert_resource(
        &parse("PATCH", "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline/status"),
        "patch",
        "devops.stochastic.io",
        "devopspolicies",
        "status",
        "prod",
        "baseline",
    );
    assert_resource(
        &parse("POST", "/api/v1/namespaces/default/pods/web-0/eviction"),
        "create",
        "",
        "pods",
        "eviction",
        "default",
        "web-0",
    );
    assert_resource(
        &parse("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale"),
        "get",
        "apps",
        "deployments",
        "scale",
        "default",
        "web",
    );
    assert_resource(&parse("GET", "/api/v1/nodes/n1"), "get", "", "nodes", "", "", "n1");
    assert_resource(
        &parse("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Adiscovery"),
        "get",
        RBAC_API_GROUP,
        "clusterroles",
        "",
        "",
        "system:discovery",
    );
    // Namespaces are named by themselves and live in themselves.
    assert_resource(&parse("GET", "/api/v1/namespaces"), "list", "", "namespaces", "", "", "");
    assert_resource(&parse("GET", "/api/v1/namespaces/prod"), "get", "", "namespaces", "", "prod", "prod");
    assert_resource(
        &parse("PUT", "/api/v1/namespaces/prod/finalize"),
        "update",
        "",
        "namespaces",
        "finalize",
        "prod",
        "prod",
    );
    assert_resource(
        &parse("PUT", "/api/v1/namespaces/prod/status"),
        "update",
        "",
        "namespaces",
        "status",
        "prod",
        "prod",
    );
    // proxy takes no subresource.
    assert_resource(
        &parse("GET", "/api/v1/proxy/namespaces/default/pods/web-0/metrics"),
        "proxy",
        "",
        "pods",
        "",
        "default",
        "web-0",
    );
    assert_resource(
        &parse("GET", "/api/v1/namespaces/default/pods/web-0/proxy/metrics"),
        "get",
        "",
        "pods",
        "proxy",
        "default",
        "web-0",
    );
}

#[test]
fn http_list_with_a_metadata_name_field_selector_carries_the_name() {
    assert_resource(
        &parse("GET", "/api/v1/namespaces/d/pods?fieldSelector=metadata.name%3D%3Dweb-0"),
        "list",
        "",
        "pods",
        "",
        "d",
        "web-0",
    );
    assert_resource(
        &parse("GET", "/api/v1/namespaces/d/pods?fieldSelector=status.phase%3DRunning,metadata.name%3Dweb-0"),
        "list",
        "",
        "pods",
        "",
        "d",
        "web-0",
    );
    assert_resource(
        &parse("GET", "/api/v1/namespaces/d/pods?fieldSelector=metadata.name!%3Dweb-0"),
        "list",
        "",
        "pods",
        "",
        "d",
        "",
    );
    assert_resource(
        &parse("GET", "/api/v1/namespaces/d/pods?fieldSelector=metadata.namespace%3Dd"),
        "list",
        "",
        "pods",
        "",
        "d",
        "",
    );
    assert_resource(
        &parse("GET", "/api/v1/namespaces/d/pods?fieldSelector=metadata.name%3D.."),
        "list",
        "",
        "pods",
        "",
        "d",
        "",
    );
    assert_resource(&parse("GET", "/api/v1/namespaces/d/pods?fieldSelector=garbage"), "list", "", "pods", "", "d", "");
    // Only a list/watch is narrowed this way.
    assert_resource(
        &parse("DELETE", "/api/v1/namespaces/d/pods?fieldSelector=metadata.name%3Dweb-0"),
        "deletecollection",
        "",
        "pods",
        "",
        "d",
        "",
    );
}

#[test]
fn http_requests_outside_the_resource_api_are_non_resource_requests() {
    for (method, uri, verb, path) in [
        ("GET", "/version", "get", "/version"),
        ("GET", "/healthz/etcd?verbose", "get", "/healthz/etcd"),
        ("GET", "/api", "get", "/api"),
        ("GET", "/api/v1", "get", "/api/v1"),
        ("GET", "/apis", "get", "/apis"),
        ("GET", "/apis/apps", "get", "/apis/apps"),
        ("GET", "/apis/apps/v1", "get", "/apis/apps/v1"),
        ("GET", "/openapi/v3/apis/apps/v1", "get", "/openapi/v3/apis/apps/v1"),
        ("POST", "/logs/", "post", "/logs/"),
        ("GET", "/", "get", "/"),
    ] {
        let attrs = parse(method, uri);
        assert_eq!((attrs.verb.as_str(), attrs.non_resource_path.as_deref()), (verb, Some(path)), "{uri}");
    }
}

#[test]
fn bootstrap_policy_lets_every_authenticated_user_discover_and_check_itself() {
    let snapshot = RbacSnapshot::bootstrap();
    let sa = UserInfo::service_account("kube-devops", "kube-devops");
    for path in
        ["/version", "/api", "/api/v1", "/apis", "/apis/apps/v1", "/healthz", "/readyz", "/livez", "/openapi/v3"]
    {
        assert!(can_path(&snapshot, &sa, "get", path), "{path}");
    }
    assert!(!can_path(&snapshot, &sa, "get", "/metrics"));
    assert!(!can_path(&snapshot, &sa, "get", "/healthz/etcd"));
    assert!(!can_path(&snapshot, &sa, "post", "/version"));
    assert!(can(&snapshot, &sa, "create", "authorization.k8s.io", "selfsubjectaccessreviews", "", ""));
    assert!(can(&snapshot, &sa, "create", "authorization.k8s.io", "selfsubjectrulesreviews", "", ""));
    assert!(can(&snapshot, &sa, "create", "authentication.k8s.io", "selfsubjectreviews", "", ""));
    assert!(!can(&snapshot, &sa, "create", "authorization.k8s.io", "subjectaccessreviews", "", ""));
    assert!(!can(&snapshot, &sa, "list", "", "pods", "", ""));

    let anonymous = UserInfo::new("system:anonymous", [SYSTEM_UNAUTHENTICATED]);
    assert!(can_path(&snapshot, &anonymous, "get", "/version"));
    assert!(can_path(&snapshot, &anonymous, "get", "/healthz"));
    assert!(!can_path(&snapshot, &anonymous, "get", "/apis"));

    // The cluster-admin binding gives system:masters the rules a real cluster shows it.
    let admin = UserInfo::new("admin", [SYSTEM_MASTERS, SYSTEM_AUTHENTICATED]);
    let rules = snapshot.rules_for(&admin, "");
    assert!(rules.contains(&rule(&["*"], &["*"], &["*"])));
    assert!(rules.contains(&url_rule(&["*"], &["*"])));
}

// ---------------------------------------------------------------------------------------------
// A realistic operator
// ---------------------------------------------------------------------------------------------

const DEVOPS: &str = "devops.stochastic.io";

/// kube-devops as it would be installed: a ClusterRole for its custom resources and pods bound
/// cluster-wide to its ServiceAccount, a Role for leader-election leases in its own namespace, on
/// top of the bootstrap policy.
fn operator_snapshot() -> RbacSnapshot {
    let mut snapshot = RbacSnapshot::bootstrap();
    snapshot.cluster_roles.push(cluster_role(
        "kube-devops",
        vec![
            rule(&[DEVOPS], &["devopspolicies"], &["get", "list", "watch", "patch"]),
            rule(&[DEVOPS], &["devopspolicies/status"], &["patch"]),
            rule(&[""], &["pods"], &["get", "list", "watch"]),
        ],
    ));
    snapshot.cluster_role_bindings.push(crb(
        "kube-devops",
        "kube-devops",
        vec![sa_subject(Some("kube-devops"), "kube-devops")],
    ));
    snapshot.roles.push(role(
        "kube-devops",
        "kube-devops-leader-election",
        vec![rule(&["coordination.k8s.io"], &["leases"], &["get", "list", "watch", "create", "update", "patch"])],
    ));
    snapshot.role_bindings.push(rb(
        "kube-devops",
        "kube-devops-leader-election",
        "Role",
        "kube-devops-leader-election",
        vec![sa_subject(None, "kube-devops")],
    ));
    snapshot
}

fn operator() -> UserInfo {
    UserInfo::service_account("kube-devops", "kube-devops")
}

fn operator_may(method: &str, uri: &str) -> Decision {
    operator_snapshot().authorize(&RequestAttributes::from_http(operator(), method, uri))
}

#[test]
fn operator_reads_and_patches_its_policies_everywhere() {
    for (method, uri) in [
        ("GET", "/apis/devops.stochastic.io/v1/devopspolicies"),
        ("GET", "/apis/devops.stochastic.io/v1/devopspolicies?watch=true&allowWatchBookmarks=true"),
        ("GET", "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline"),
        ("PATCH", "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline"),
        ("PATCH", "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline/status"),
        ("GET", "/api/v1/pods"),
        ("GET", "/api/v1/namespaces/prod/pods/web-0"),
        ("GET", "/api/v1/watch/namespaces/prod/pods"),
        ("GET", "/version"),
        ("GET", "/apis/devops.stochastic.io/v1"),
    ] {
        assert_eq!(operator_may(method, uri), Decision::Allow, "{method} {uri}");
    }
}

#[test]
fn operator_is_denied_what_its_roles_do_not_list() {
    let user = "User \"system:serviceaccount:kube-devops:kube-devops\"";
    for (method, uri, expected) in [
        // The status subresource only takes patch; a PUT (what `replace_status` does) is refused.
        (
            "PUT",
            "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline/status",
            "cannot update resource \"devopspolicies/status\" in API group \"devops.stochastic.io\" in the namespace \"prod\"",
        ),
        (
            "GET",
            "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline/status",
            "cannot get resource \"devopspolicies/status\" in API group \"devops.stochastic.io\" in the namespace \"prod\"",
        ),
        (
            "PUT",
            "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies/baseline",
            "cannot update resource \"devopspolicies\" in API group \"devops.stochastic.io\" in the namespace \"prod\"",
        ),
        (
            "POST",
            "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies",
            "cannot create resource \"devopspolicies\" in API group \"devops.stochastic.io\" in the namespace \"prod\"",
        ),
        (
            "DELETE",
            "/apis/devops.stochastic.io/v1/namespaces/prod/devopspolicies",
            "cannot deletecollection resource \"devopspolicies\" in API group \"devops.stochastic.io\" in the namespace \"prod\"",
        ),
        (
            "GET",
            "/apis/devops.stochastic.io/v1/policyauditresults",
            "cannot list resource \"policyauditresults\" in API group \"devops.stochastic.io\" at the cluster scope",
        ),
        (
            "GET",
            "/api/v1/namespaces/prod/pods/web-0/log",
            "cannot get resource \"pods/log\" in API group \"\" in the namespace \"prod\"",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/prod/pods/web-0",
            "cannot delete resource \"pods\" in API group \"\" in the namespace \"prod\"",
        ),
        (
            "POST",
            "/api/v1/namespaces/prod/pods/web-0/eviction",
            "cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"prod\"",
        ),
        (
            "POST",
            "/api/v1/namespaces/kube-devops/events",
            "cannot create resource \"events\" in API group \"\" in the namespace \"kube-devops\"",
        ),
        (
            "GET",
            "/api/v1/namespaces/prod/secrets",
            "cannot list resource \"secrets\" in API group \"\" in the namespace \"prod\"",
        ),
        ("GET", "/metrics", "cannot get path \"/metrics\""),
    ] {
        assert_eq!(
            operator_may(method, uri),
            Decision::Deny { reason: format!("{user} {expected}") },
            "{method} {uri}"
        );
    }
}

#[test]
fn operator_leases_work_only_in_its_own_namespace() {
    let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-devops/leases";
    assert!(operator_may("GET", &format!("{leases}/kube-devops-leader")).is_allowed());
    assert!(operator_may("POST", leases).is_allowed());
    assert!(operator_may("PUT", &format!("{leases}/kube-devops-leader")).is_allowed());
    assert!(!operator_may("DELETE", &format!("{leases}/kube-devops-leader")).is_allowed());
    assert!(
        !operator_may("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/kube-devops-leader").is_allowed()
    );
    assert!(!operator_may("GET", "/apis/coordination.k8s.io/v1/leases").is_allowed());
}

#[test]
fn other_service_accounts_get_nothing_from_the_operator_roles() {
    let snapshot = operator_snapshot();
    for user in [
        UserInfo::service_account("kube-devops", "default"),
        UserInfo::service_account("default", "kube-devops"),
        UserInfo::new("kube-devops", [SYSTEM_AUTHENTICATED]),
    ] {
        assert!(!can(&snapshot, &user, "list", DEVOPS, "devopspolicies", "", ""), "{user:?}");
        assert!(
            !can(&snapshot, &user, "get", "coordination.k8s.io", "leases", "kube-devops", "kube-devops-leader"),
            "{user:?}"
        );
    }
}

#[test]
fn operator_loses_its_rights_when_its_cluster_role_is_deleted() {
    let mut snapshot = operator_snapshot();
    snapshot.cluster_roles.retain(|role| role.metadata.name.as_deref() != Some("kube-devops"));
    let attrs = RequestAttributes::from_http(operator(), "GET", "/apis/devops.stochastic.io/v1/devopspolicies");
    assert_eq!(
        snapshot.authorize(&attrs),
        Decision::Deny {
            reason: "User \"system:serviceaccount:kube-devops:kube-devops\" cannot list resource \"devopspolicies\" \
                     in API group \"devops.stochastic.io\" at the cluster scope: RBAC: \
                     clusterrole.rbac.authorization.k8s.io \"kube-devops\" not found"
                .to_owned()
        }
    );
    // Leases come from the namespaced Role and still work.
    assert!(can(
        &snapshot,
        &operator(),
        "update",
        "coordination.k8s.io",
        "leases",
        "kube-devops",
        "kube-devops-leader"
    ));
}

#[test]
fn operator_cannot_grant_more_than_it_holds() {
    let snapshot = operator_snapshot();
    // A Role in prod that only repeats what it holds cluster-wide is fine...
    let reader = [rule(&[DEVOPS], &["devopspolicies"], &["get", "list"]), rule(&[""], &["pods"], &["watch"])];
    assert_eq!(snapshot.check_role_escalation(&operator(), "prod", &reader), Ok(()));
    // ...its leases rights only count in its own namespace...
    let leases = [rule(&["coordination.k8s.io"], &["leases"], &["get", "update"])];
    assert_eq!(snapshot.check_role_escalation(&operator(), "kube-devops", &leases), Ok(()));
    assert_eq!(
        snapshot.check_role_escalation(&operator(), "prod", &leases),
        Err("user \"system:serviceaccount:kube-devops:kube-devops\" (groups=[\"system:serviceaccounts\" \
             \"system:serviceaccounts:kube-devops\" \"system:authenticated\"]) is attempting to grant RBAC permissions \
             not currently held:\n{APIGroups:[\"coordination.k8s.io\"], Resources:[\"leases\"], Verbs:[\"get\" \"update\"]}"
            .to_owned())
    );
    // ...and it may not hand out update on its policies, nor bind cluster-admin.
    assert!(
        snapshot.check_role_escalation(&operator(), "", &[rule(&[DEVOPS], &["devopspolicies"], &["update"])]).is_err()
    );
    let error = snapshot.check_binding(&operator(), "prod", &role_ref("ClusterRole", "cluster-admin")).unwrap_err();
    assert!(error.contains("{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}"), "{error}");
    assert!(error.contains("{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"), "{error}");
    // Binding its own ClusterRole to someone else in a namespace is allowed: it holds all of it.
    assert_eq!(snapshot.check_binding(&operator(), "prod", &role_ref("ClusterRole", "kube-devops")), Ok(()));
}
