//! RBAC authorization with the real semantics of the Kubernetes RBAC authorizer.
//!
//! Pure: no I/O, no async, no clock. The server hands in an [`RbacSnapshot`] of the RBAC objects it
//! currently stores and asks:
//!
//! * [`RbacSnapshot::authorize`]: may this request proceed? (the RBAC authorizer, plus the
//!   `system:masters` short-circuit that a real kube-apiserver puts in front of it);
//! * [`RbacSnapshot::check_role_escalation`] / [`RbacSnapshot::check_binding`] /
//!   [`RbacSnapshot::check_cluster_role_aggregation`]: the privilege-escalation checks the RBAC
//!   registry applies when Roles, ClusterRoles and bindings are created or updated.
//!
//! What follows the real implementation (`plugin/pkg/auth/authorizer/rbac` and
//! `pkg/registry/rbac` in kubernetes/kubernetes):
//!
//! * Rules are only additive; there are no deny rules. A request is allowed as soon as one rule of one
//!   binding that applies to the user matches it.
//! * ClusterRoleBindings apply everywhere; RoleBindings only to requests in their own namespace, so
//!   a cluster-scoped request (namespace `""`) only ever sees ClusterRoleBinding rules, and so do
//!   non-resource requests (`/version`, `/healthz`, ...).
//! * A rule matches a resource request when its verbs, apiGroups, resources and resourceNames all
//!   match. `*` is a wildcard in verbs, apiGroups and resources (where it also covers every
//!   subresource); `*/<sub>` covers `<sub>` of every resource; nothing else is a pattern (`pods/*` is
//!   the literal resource "pods/*", `*` in resourceNames is the literal name "*"). A subresource is
//!   matched as `<resource>/<subresource>`, so a rule for `pods` does not grant `pods/status`.
//! * resourceNames is compared with the request's name. Requests without a name (list, watch,
//!   create, deletecollection) are therefore never granted by a rule that has resourceNames, except
//!   list/watch with `fieldSelector=metadata.name=<name>` (the API server takes that name as the
//!   request's name) and creates of subresources such as `pods/<name>/eviction`.
//! * nonResourceURLs match exactly, or by prefix when the rule's URL ends in `*`.
//! * Subjects: `User` by name, `Group` by membership, `ServiceAccount` by the user name
//!   `system:serviceaccount:<namespace>:<name>`; a ServiceAccount subject without a namespace takes the
//!   namespace of the RoleBinding (and matches nothing in a ClusterRoleBinding).
//! * A binding whose roleRef points to a missing role grants nothing; the "not found" errors end up
//!   in the deny reason (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), as in a
//!   real 403.
//! * A ClusterRole with an `aggregationRule` has the rules of the other ClusterRoles its
//!   `clusterRoleSelectors` select (what the aggregation controller would write into its `rules`);
//!   its own stored `rules` are ignored, since the controller overwrites them. Chained aggregation
//!   (admin <- edit <- view style) is resolved.
//!
//! Deliberately not modelled: the Node and Webhook authorizers, ABAC, the deny-by-default
//! `system:anonymous` handling of an API server (that is authentication), the "only GC fields
//! changed" exemption from the escalation check on updates, and impersonation (the `impersonate`
//! verb is authorized like any other verb; acting as the impersonated user is up to the server).

mod attributes;
mod bootstrap;
mod escalation;
mod matching;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef};

pub use attributes::{RequestAttributes, forbidden_status, forbidden_status_message};
pub use escalation::{compact_string, covers};
pub use matching::rule_allows;
use resolve::{Resolver, aggregate_cluster_roles, name_of};

/// The group whose members are allowed everything, before RBAC is even asked.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The group of every authenticated user.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const SYSTEM_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group of every service account (`system:serviceaccounts:<namespace>` for one namespace).
pub const SYSTEM_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The API group of Role, ClusterRole, RoleBinding and ClusterRoleBinding.
pub const RBAC_API_GROUP: &str = "rbac.authorization.k8s.io";

const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

// ---------------------------------------------------------------------------------------------
// Who asks, and the answer
// ---------------------------------------------------------------------------------------------

/// Who is asking (from the bearer token).
///
/// `name` is a user name such as `"admin"` or `"system:serviceaccount:kube-devops:kube-devops"`;
/// `groups` such as `"system:serviceaccounts"`, `"system:serviceaccounts:kube-devops"`,
/// `"system:authenticated"`, `"system:masters"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new<G: Into<String>>(name: impl Into<String>, groups: impl IntoIterator<Item = G>) -> Self {
        Self { name: name.into(), groups: groups.into_iter().map(Into::into).collect() }
    }

    /// The user a service account token authenticates as, with the groups the API server gives it:
    /// `system:serviceaccounts`, `system:serviceaccounts:<namespace>` and `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: service_account_username(namespace, name),
            groups: vec![
                SYSTEM_SERVICE_ACCOUNTS.to_owned(),
                format!("{SYSTEM_SERVICE_ACCOUNTS}:{namespace}"),
                SYSTEM_AUTHENTICATED.to_owned(),
            ],
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Members of `system:masters` are allowed everything and may grant anything.
    pub fn is_privileged(&self) -> bool {
        self.in_group(SYSTEM_MASTERS)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `reason` is [`RequestAttributes::forbidden_message`], followed by `: RBAC: <errors>` when
    /// bindings point to missing roles, like the message of a real 403.
    Deny {
        reason: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

// ---------------------------------------------------------------------------------------------
// The snapshot and its questions
// ---------------------------------------------------------------------------------------------

/// The RBAC objects currently stored. Roles and RoleBindings of every namespace go in the same
/// lists; their `metadata.namespace` says where they live.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RbacSnapshot {
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
}

impl RbacSnapshot {
    /// The authorization decision for a request: allowed for members of `system:masters`, otherwise
    /// allowed when a rule of a binding that applies to the user (ClusterRoleBindings, plus the
    /// RoleBindings of the request's namespace) matches the request.
    pub fn authorize(&self, attrs: &RequestAttributes) -> Decision {
        if attrs.user.is_privileged() {
            return Decision::Allow;
        }
        let resolver = Resolver::new(self);
        let mut allowed = false;
        let errors = resolver.visit_rules(&attrs.user, &attrs.namespace, |rule| {
            allowed = rule_allows(attrs, rule);
            allowed
        });
        if allowed {
            return Decision::Allow;
        }
        let mut reason = attrs.forbidden_message();
        if !errors.is_empty() {
            reason.push_str(": RBAC: ");
            reason.push_str(&aggregate_errors(&errors));
        }
        Decision::Deny { reason }
    }

    /// Rules that apply to `user` in `namespace` (`""` = cluster-wide only): those of the
    /// ClusterRoleBindings, then those of the RoleBindings in `namespace`. RBAC rules only: the
    /// `system:masters` short-circuit is not a rule.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        self.rules_for_with_errors(user, namespace).0
    }

    /// [`Self::rules_for`] with the resolution errors (bindings whose role is missing), as
    /// `clusterrole.rbac.authorization.k8s.io "x" not found`.
    pub fn rules_for_with_errors(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let errors = Resolver::new(self).visit_rules(user, namespace, |rule| {
            rules.push(rule.clone());
            false
        });
        (rules, errors)
    }

    /// The rules a roleRef of a binding in `namespace` (`""` for a ClusterRoleBinding) grants, or the
    /// error the API server reports when the role does not exist.
    pub fn role_ref_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<Vec<PolicyRule>, String> {
        Resolver::new(self).role_ref_rules(role_ref, namespace).map(<[PolicyRule]>::to_vec)
    }

    /// The rules the ClusterRole `name` grants (aggregated ones resolved), `None` when it does not exist.
    pub fn effective_cluster_role_rules(&self, name: &str) -> Option<Vec<PolicyRule>> {
        Resolver::new(self).cluster_role_rules(name).ok().map(<[PolicyRule]>::to_vec)
    }

    /// For each ClusterRole with an `aggregationRule`, the rules the aggregation controller would
    /// store in its `rules`: the rules of the other ClusterRoles matching any of its
    /// `clusterRoleSelectors` (selector by selector, roles by name), without duplicates.
    pub fn aggregated_cluster_role_rules(&self) -> BTreeMap<String, Vec<PolicyRule>> {
        aggregate_cluster_roles(&self.cluster_roles)
            .into_iter()
            .map(|(index, rules)| (name_of(&self.cluster_roles[index].metadata).to_owned(), rules))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------------

/// A string as Go's `%q` prints it (for the characters that occur in names and paths).
fn go_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A list of strings as Go's `%q` prints it: `["a" "b"]`.
fn go_quote_list(values: &[String]) -> String {
    format!("[{}]", values.iter().map(|v| go_quote(v)).collect::<Vec<_>>().join(" "))
}

/// `utilerrors.NewAggregate(errs).Error()`: the message alone, or `[a, b]` for several distinct ones.
fn aggregate_errors(errors: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for error in errors {
        if !distinct.contains(&error.as_str()) {
            distinct.push(error);
        }
    }
    if distinct.len() == 1 { distinct[0].to_owned() } else { format!("[{}]", distinct.join(", ")) }
}
