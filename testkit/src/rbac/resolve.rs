//! Rule resolution: the rules the bindings grant a user, with ClusterRole aggregation.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::{RBAC_API_GROUP, RbacSnapshot, UserInfo, go_quote, service_account_username};

pub(super) fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

fn not_found(kind: &str, name: &str) -> String {
    format!("{kind}.{RBAC_API_GROUP} {} not found", go_quote(name))
}

/// Looks roles up, with the aggregated ClusterRoles computed once.
pub(super) struct Resolver<'a> {
    snapshot: &'a RbacSnapshot,
    /// Index into `snapshot.cluster_roles` -> aggregated rules, for roles with an aggregationRule.
    aggregated: HashMap<usize, Vec<PolicyRule>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(snapshot: &'a RbacSnapshot) -> Self {
        Self { snapshot, aggregated: aggregate_cluster_roles(&snapshot.cluster_roles) }
    }

    pub(super) fn cluster_role_rules(&self, name: &str) -> Result<&[PolicyRule], String> {
        let index = self
            .snapshot
            .cluster_roles
            .iter()
            .position(|role| name_of(&role.metadata) == name)
            .ok_or_else(|| not_found("clusterrole", name))?;
        Ok(match self.aggregated.get(&index) {
            Some(rules) => rules,
            None => self.snapshot.cluster_roles[index].rules.as_deref().unwrap_or_default(),
        })
    }

    fn role_rules(&self, namespace: &str, name: &str) -> Result<&'a [PolicyRule], String> {
        self.snapshot
            .roles
            .iter()
            .find(|role| namespace_of(&role.metadata) == namespace && name_of(&role.metadata) == name)
            .map(|role| role.rules.as_deref().unwrap_or_default())
            .ok_or_else(|| not_found("role", name))
    }

    pub(super) fn role_ref_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_role_rules(&role_ref.name),
            "Role" => self.role_rules(namespace, &role_ref.name),
            other => Err(format!("unsupported role reference kind: {}", go_quote(other))),
        }
    }

    /// Calls `visit` with each rule that applies to `user` in `namespace` until it returns true;
    /// returns the resolution errors met on the way.
    pub(super) fn visit_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&PolicyRule) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for binding in &self.snapshot.cluster_role_bindings {
            if !applies_to(user, binding.subjects.as_deref().unwrap_or_default(), "") {
                continue;
            }
            match self.role_ref_rules(&binding.role_ref, "") {
                Ok(rules) => {
                    if rules.iter().any(&mut visit) {
                        return errors;
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        if namespace.is_empty() {
            return errors;
        }
        for binding in self.snapshot.role_bindings.iter().filter(|b| namespace_of(&b.metadata) == namespace) {
            if !applies_to(user, binding.subjects.as_deref().unwrap_or_default(), namespace) {
                continue;
            }
            match self.role_ref_rules(&binding.role_ref, namespace) {
                Ok(rules) => {
                    if rules.iter().any(&mut visit) {
                        return errors;
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        errors
    }
}

/// Whether one of `subjects` (of a binding in `namespace`, `""` for a ClusterRoleBinding) is `user`.
fn applies_to(user: &UserInfo, subjects: &[Subject], namespace: &str) -> bool {
    subjects.iter().any(|subject| match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let sa_namespace = subject.namespace.as_deref().filter(|ns| !ns.is_empty()).unwrap_or(namespace);
            !sa_namespace.is_empty() && user.name == service_account_username(sa_namespace, &subject.name)
        }
        _ => false,
    })
}

/// The aggregation controller, run to a fixed point so that chains resolve: index of each
/// ClusterRole with an aggregationRule -> its rules.
pub(super) fn aggregate_cluster_roles(roles: &[ClusterRole]) -> HashMap<usize, Vec<PolicyRule>> {
    let aggregating: Vec<(usize, &AggregationRule)> =
        roles.iter().enumerate().filter_map(|(i, role)| role.aggregation_rule.as_ref().map(|rule| (i, rule))).collect();
    let mut current: HashMap<usize, Vec<PolicyRule>> = aggregating.iter().map(|(i, _)| (*i, Vec::new())).collect();
    if aggregating.is_empty() {
        return current;
    }
    let mut by_name: Vec<usize> = (0..roles.len()).collect();
    by_name.sort_by(|a, b| name_of(&roles[*a].metadata).cmp(name_of(&roles[*b].metadata)));

    // Each round propagates one more link of a chain; cycles stop growing after as many rounds.
    for _ in 0..=aggregating.len() {
        let mut changed = false;
        for (index, rule) in &aggregating {
            let own_name = name_of(&roles[*index].metadata);
            let mut rules: Vec<PolicyRule> = Vec::new();
            for selector in rule.cluster_role_selectors.iter().flatten() {
                for &other in &by_name {
                    let candidate = &roles[other];
                    if name_of(&candidate.metadata) == own_name
                        || !selector_matches(selector, candidate.metadata.labels.as_ref())
                    {
                        continue;
                    }
                    let source = match current.get(&other) {
                        Some(rules) => rules.as_slice(),
                        None => candidate.rules.as_deref().unwrap_or_default(),
                    };
                    for policy_rule in source {
                        if !rules.contains(policy_rule) {
                            rules.push(policy_rule.clone());
                        }
                    }
                }
            }
            if current.get(index) != Some(&rules) {
                current.insert(*index, rules);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    current
}

/// Label selector semantics: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist), all
/// ANDed; an empty selector selects everything; an invalid one selects nothing.
fn selector_matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let label = |key: &str| labels.and_then(|labels| labels.get(key));
    let labels_match =
        selector.match_labels.iter().flatten().all(|(key, value)| label(key).is_some_and(|found| found == value));
    let expressions_match = selector.match_expressions.iter().flatten().all(|requirement| {
        let values = requirement.values.as_deref().unwrap_or_default();
        let found = label(&requirement.key);
        match requirement.operator.as_str() {
            "In" => !values.is_empty() && found.is_some_and(|found| values.contains(found)),
            "NotIn" => !values.is_empty() && found.is_none_or(|found| !values.contains(found)),
            "Exists" => values.is_empty() && found.is_some(),
            "DoesNotExist" => values.is_empty() && found.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}
