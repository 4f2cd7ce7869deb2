//! The privilege-escalation checks of the RBAC registry (`escalate`, `bind`, rule coverage).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};

use super::matching::{has, list, non_resource_url_covers};
use super::{RBAC_API_GROUP, RbacSnapshot, RequestAttributes, UserInfo, aggregate_errors, go_quote, go_quote_list};

impl RbacSnapshot {
    /// The escalation check for creating or updating a Role (`namespace` = its namespace) or a
    /// ClusterRole (`namespace` = `""`) whose rules are `granted`. Allowed for `system:masters`, for
    /// holders of the `escalate` verb on `roles`/`clusterroles` in that namespace, and when every
    /// granted rule is covered by the user's own rules in that namespace (cluster-wide rules count
    /// everywhere). The `escalate` check uses no name, as for a create; see
    /// [`Self::check_role_escalation_named`] for updates.
    ///
    /// The error reads like the real one (the server wraps it into
    /// `roles.rbac.authorization.k8s.io "<name>" is forbidden: <error>`):
    /// `user "X" (groups=["a" "b"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub fn check_role_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        granted: &[PolicyRule],
    ) -> Result<(), String> {
        self.check_role_escalation_named(user, namespace, "", granted)
    }

    /// [`Self::check_role_escalation`] where the `escalate` verb is checked for the role `name` as
    /// the request names it (`""` for a create, the role's name for an update or patch), so that
    /// `escalate` restricted by resourceNames counts.
    pub fn check_role_escalation_named(
        &self,
        user: &UserInfo,
        namespace: &str,
        name: &str,
        granted: &[PolicyRule],
    ) -> Result<(), String> {
        if user.is_privileged() || self.may_escalate(user, namespace, name) {
            return Ok(());
        }
        self.confirm_no_escalation(user, namespace, granted)
    }

    /// The extra check for a ClusterRole that has (or had, for an update) an `aggregationRule` with
    /// selectors: since it can gather anything, it takes `*` on everything (or `escalate` on
    /// clusterroles, or `system:masters`). `name` as in [`Self::check_role_escalation_named`].
    pub fn check_cluster_role_aggregation(&self, user: &UserInfo, name: &str) -> Result<(), String> {
        if user.is_privileged() || self.may_escalate(user, "", name) {
            return Ok(());
        }
        let full_authority = [
            PolicyRule {
                api_groups: Some(vec!["*".to_owned()]),
                resources: Some(vec!["*".to_owned()]),
                verbs: vec!["*".to_owned()],
                ..PolicyRule::default()
            },
            PolicyRule {
                non_resource_urls: Some(vec!["*".to_owned()]),
                verbs: vec!["*".to_owned()],
                ..PolicyRule::default()
            },
        ];
        self.confirm_no_escalation(user, "", &full_authority)
            .map_err(|_| "must have cluster-admin privileges to use the aggregationRule".to_owned())
    }

    /// The check for creating or updating a RoleBinding in `namespace` (or a ClusterRoleBinding:
    /// `namespace` = `""`) that references `role_ref`. Allowed for `system:masters`, for holders of
    /// the `bind` verb on the referenced role (`roles`/`clusterroles` in the role ref's API group,
    /// named like the role, in the binding's namespace, so resourceNames restrict it), and otherwise
    /// when the user already holds every rule of the referenced role in that namespace. Errors:
    /// `clusterrole.rbac.authorization.k8s.io "x" not found` when the role does not exist, otherwise
    /// the escalation message of [`Self::check_role_escalation`].
    pub fn check_binding(&self, user: &UserInfo, namespace: &str, role_ref: &RoleRef) -> Result<(), String> {
        if user.is_privileged() {
            return Ok(());
        }
        let resource = match role_ref.kind.as_str() {
            "ClusterRole" => Some("clusterroles"),
            "Role" => Some("roles"),
            _ => None,
        };
        if let Some(resource) = resource {
            let attrs = RequestAttributes {
                user: user.clone(),
                verb: "bind".to_owned(),
                api_group: role_ref.api_group.clone(),
                resource: resource.to_owned(),
                name: role_ref.name.clone(),
                namespace: namespace.to_owned(),
                ..RequestAttributes::default()
            };
            if self.authorize(&attrs).is_allowed() {
                return Ok(());
            }
        }
        let rules = self.role_ref_rules(role_ref, namespace)?;
        self.confirm_no_escalation(user, namespace, &rules)
    }

    /// The bare coverage check (`ConfirmNoEscalation`): `Ok` when the user's rules in `namespace`
    /// cover every one of `granted`, without the `system:masters`/`escalate`/`bind` exemptions.
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        granted: &[PolicyRule],
    ) -> Result<(), String> {
        let (owned, errors) = self.rules_for_with_errors(user, namespace);
        let (covered, missing) = covers(&owned, granted);
        if covered {
            return Ok(());
        }
        let descriptions: BTreeSet<String> = compact_rules(missing).iter().map(compact_string).collect();
        let mut message = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            go_quote(&user.name),
            go_quote_list(&user.groups),
            descriptions.into_iter().collect::<Vec<_>>().join("\n")
        );
        if !errors.is_empty() {
            message.push_str(&format!("; resolution errors: [{}]", aggregate_errors(&errors)));
        }
        Err(message)
    }

    fn may_escalate(&self, user: &UserInfo, namespace: &str, name: &str) -> bool {
        let attrs = RequestAttributes {
            user: user.clone(),
            verb: "escalate".to_owned(),
            api_group: RBAC_API_GROUP.to_owned(),
            resource: if namespace.is_empty() { "clusterroles" } else { "roles" }.to_owned(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            ..RequestAttributes::default()
        };
        self.authorize(&attrs).is_allowed()
    }
}

// ---------------------------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------------------------

/// Whether `owned` rules cover every one of `granted`, and the uncovered atoms (one verb, one
/// group, one resource, at most one name or one URL each) when not. A granted `*` is only covered
/// by an owned `*`; an owned `*/<sub>` covers `<resource>/<sub>`; an owned rule with resourceNames
/// only covers granted rules restricted to some of those names.
pub fn covers(owned: &[PolicyRule], granted: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = granted
        .iter()
        .flat_map(breakdown_rule)
        .filter(|atom| !owned.iter().any(|owner| rule_covers(owner, atom)))
        .collect();
    (missing.is_empty(), missing)
}

fn one(value: &str) -> Option<Vec<String>> {
    Some(vec![value.to_owned()])
}

/// Splits a rule into atoms with at most one verb, group, resource and name (or one URL and verb).
fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut atoms = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let atom = |resource_names| PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: vec![verb.clone()],
                    resource_names,
                    non_resource_urls: None,
                };
                let names = list(&rule.resource_names);
                if names.is_empty() {
                    atoms.push(atom(None));
                } else {
                    atoms.extend(names.iter().map(|name| atom(one(name))));
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            atoms.push(PolicyRule { non_resource_urls: one(url), verbs: vec![verb.clone()], ..PolicyRule::default() });
        }
    }
    atoms
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resources_cover(owned: &[String], wanted: &[String]) -> bool {
    if has(owned, "*") {
        return true;
    }
    wanted.iter().all(|resource| {
        has(owned, resource) || resource.split_once('/').is_some_and(|(_, sub)| has(owned, &format!("*/{sub}")))
    })
}

/// Whether `owner` covers the atom `sub` (`ruleCovers`).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let owner_groups = list(&owner.api_groups);
    let groups = has(owner_groups, "*") || has_all(owner_groups, list(&sub.api_groups));
    let resources = resources_cover(list(&owner.resources), list(&sub.resources));
    let owner_urls = list(&owner.non_resource_urls);
    let urls =
        list(&sub.non_resource_urls).iter().all(|path| owner_urls.iter().any(|url| non_resource_url_covers(url, path)));
    let owner_names = list(&owner.resource_names);
    let sub_names = list(&sub.resource_names);
    let names = owner_names.is_empty() || (!sub_names.is_empty() && has_all(owner_names, sub_names));
    verbs && groups && resources && urls && names
}

/// Merges atoms that differ only by verb (`CompactRules`), keeping verbs in order of appearance.
fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut compacted: Vec<PolicyRule> = Vec::new();
    let mut simple: BTreeMap<(String, String, Option<String>), usize> = BTreeMap::new();
    for rule in rules {
        let groups = list(&rule.api_groups);
        let resources = list(&rule.resources);
        let names = list(&rule.resource_names);
        let is_simple =
            groups.len() == 1 && resources.len() == 1 && names.len() <= 1 && list(&rule.non_resource_urls).is_empty();
        if !is_simple {
            compacted.push(rule);
            continue;
        }
        let key = (groups[0].clone(), resources[0].clone(), names.first().cloned());
        match simple.get(&key) {
            Some(&index) => {
                let existing = &mut compacted[index];
                for verb in rule.verbs {
                    if !existing.verbs.contains(&verb) {
                        existing.verbs.push(verb);
                    }
                }
            }
            None => {
                simple.insert(key, compacted.len());
                compacted.push(rule);
            }
        }
    }
    compacted
}

/// A rule as the escalation message shows it:
/// `{APIGroups:[""], Resources:["pods"], ResourceNames:["x"], Verbs:["get" "list"]}`.
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, values) in [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ] {
        if !values.is_empty() {
            parts.push(format!("{label}:{}", go_quote_list(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}
