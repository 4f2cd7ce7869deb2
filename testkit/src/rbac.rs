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

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

#[cfg(test)]
mod tests;

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
// Who asks, what is asked, the answer
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

/// What is asked, as the API server derives it from the request (see
/// [`RequestAttributes::from_http`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestAttributes {
    pub user: UserInfo,
    /// get list watch create update patch delete deletecollection, plus escalate/bind/impersonate/...;
    /// for non-resource requests the lower-cased HTTP method (get, post, put, ...).
    pub verb: String,
    /// `""` for the core group.
    pub api_group: String,
    pub resource: String,
    /// `""` when none, e.g. `"status"`, `"scale"`, `"eviction"`.
    pub subresource: String,
    /// `""` when none.
    pub name: String,
    /// `""` for cluster scope.
    pub namespace: String,
    /// `Some("/version")` etc. for a non-resource request (then the resource fields are ignored).
    pub non_resource_path: Option<String>,
}

impl RequestAttributes {
    /// A cluster-scoped resource request without a name; `resource` may be written
    /// `"<resource>/<subresource>"`. Refine with [`Self::in_namespace`] and [`Self::named`].
    pub fn resource(user: UserInfo, verb: &str, api_group: &str, resource: &str) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Self {
            user,
            verb: verb.to_owned(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            ..Self::default()
        }
    }

    /// A request for a path outside of the resource API (`/version`, `/healthz`, `/metrics`, ...).
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self { user, verb: verb.to_owned(), non_resource_path: Some(path.to_owned()), ..Self::default() }
    }

    pub fn in_namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }

    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    pub fn is_resource_request(&self) -> bool {
        self.non_resource_path.is_none()
    }

    /// `resource` or `resource/subresource`, as RBAC rules name it.
    pub fn combined_resource(&self) -> Cow<'_, str> {
        if self.subresource.is_empty() {
            Cow::Borrowed(&self.resource)
        } else {
            Cow::Owned(format!("{}/{}", self.resource, self.subresource))
        }
    }

    /// The attributes the API server derives from an HTTP request (its `RequestInfoFactory`).
    ///
    /// `uri` is the path with an optional `?query`. Rules:
    /// * only `/api/<version>/...` and `/apis/<group>/<version>/...` with at least a resource are
    ///   resource requests; everything else (`/api`, `/apis/apps/v1`, `/version`, `/healthz`, ...) is a
    ///   non-resource request whose verb is the lower-cased method;
    /// * verbs: POST create, GET/HEAD get, PUT update, PATCH patch, DELETE delete; `/watch/...` and
    ///   `/proxy/...` path prefixes give watch and proxy; a GET without a name is list, or watch
    ///   with `?watch=<anything but 0/false>`; a DELETE without a name is deletecollection;
    /// * `/namespaces/<ns>/<resource>/...` sets the namespace; `/namespaces/<ns>` itself (and its
    ///   `status`/`finalize` subresources) is the `namespaces` resource named `<ns>`, with namespace
    ///   `<ns>` too;
    /// * a list/watch with `fieldSelector=metadata.name=<name>` (or `==`) gets that name.
    pub fn from_http(user: UserInfo, method: &str, uri: &str) -> Self {
        let uri = uri.split_once('#').map_or(uri, |(before, _)| before);
        let (raw_path, raw_query) = uri.split_once('?').unwrap_or((uri, ""));
        let path = percent_decode(raw_path, false);
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };

        let non_resource = |user: UserInfo| Self::non_resource(user, &method.to_ascii_lowercase(), &path);
        if parts.len() < 3 || (parts[0] != "api" && parts[0] != "apis") {
            return non_resource(user);
        }
        let mut current = &parts[1..];
        let mut api_group = "";
        if parts[0] == "apis" {
            if current.len() < 3 {
                return non_resource(user);
            }
            api_group = current[0];
            current = &current[1..];
        }
        // The version.
        current = &current[1..];

        let verb: &str = if current[0] == "watch" || current[0] == "proxy" {
            if current.len() < 2 {
                // The API server fails such a request ("unable to determine kind and namespace").
                return Self::resource(user, current[0], api_group, "");
            }
            let verb = current[0];
            current = &current[1..];
            verb
        } else {
            match method.to_ascii_uppercase().as_str() {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
        };

        let mut namespace = "";
        if current[0] == "namespaces" && current.len() > 1 {
            namespace = current[1];
            if current.len() > 2 && current[2] != "status" && current[2] != "finalize" {
                current = &current[2..];
            }
        }

        let mut attrs = Self {
            user,
            verb: verb.to_owned(),
            api_group: api_group.to_owned(),
            resource: current[0].to_owned(),
            namespace: namespace.to_owned(),
            ..Self::default()
        };
        if current.len() >= 2 {
            current[1].clone_into(&mut attrs.name);
        }
        if current.len() >= 3 && verb != "proxy" {
            current[2].clone_into(&mut attrs.subresource);
        }

        if attrs.name.is_empty() && attrs.verb == "get" {
            let query = parse_query(raw_query);
            let first = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            let watch = first("watch").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
            attrs.verb = if watch { "watch" } else { "list" }.to_owned();
            if let Some(name) = first("fieldSelector").and_then(|s| field_selector_exact_match(s, "metadata.name"))
                && is_valid_path_segment_name(&name)
            {
                attrs.name = name;
            }
        }
        if attrs.name.is_empty() && attrs.verb == "delete" {
            attrs.verb = "deletecollection".to_owned();
        }
        attrs
    }

    /// The sentence a 403 gives, without the RBAC reason:
    /// `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`,
    /// `... at the cluster scope`, or `User "alice" cannot get path "/metrics"`.
    pub fn forbidden_message(&self) -> String {
        let user = go_quote(&self.user.name);
        if let Some(path) = &self.non_resource_path {
            return format!("User {user} cannot {} path {}", self.verb, go_quote(path));
        }
        let resource = go_quote(&self.combined_resource());
        let group = go_quote(&self.api_group);
        if self.namespace.is_empty() {
            format!("User {user} cannot {} resource {resource} in API group {group} at the cluster scope", self.verb)
        } else {
            format!(
                "User {user} cannot {} resource {resource} in API group {group} in the namespace {}",
                self.verb,
                go_quote(&self.namespace)
            )
        }
    }

    /// The `Status` object of the 403 response for this request; `reason` is the one of
    /// [`Decision::Deny`]. Its message reads like the real one:
    /// `pods "web-0" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"`.
    pub fn forbidden_status(&self, reason: &str) -> serde_json::Value {
        if self.is_resource_request() {
            forbidden_status(&self.api_group, &self.resource, &self.name, reason)
        } else {
            forbidden_status("", "", "", reason)
        }
    }
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

/// The message of a Forbidden `Status`: `<resource>[.<group>] ["<name>" ]is forbidden: <err>`, or
/// `forbidden: <err>` when there is no resource (non-resource requests).
pub fn forbidden_status_message(api_group: &str, resource: &str, name: &str, err: &str) -> String {
    if resource.is_empty() && api_group.is_empty() {
        return format!("forbidden: {err}");
    }
    let qualified = if api_group.is_empty() { resource.to_owned() } else { format!("{resource}.{api_group}") };
    if name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", go_quote(name))
    }
}

/// A Forbidden (403) `Status` object, as `apierrors.NewForbidden` builds it. Also fits the errors of
/// the escalation checks, e.g. `forbidden_status("rbac.authorization.k8s.io", "roles", "my-role", &err)`.
pub fn forbidden_status(api_group: &str, resource: &str, name: &str, err: &str) -> serde_json::Value {
    let mut details = serde_json::Map::new();
    for (key, value) in [("name", name), ("group", api_group), ("kind", resource)] {
        if !value.is_empty() {
            details.insert(key.to_owned(), serde_json::Value::String(value.to_owned()));
        }
    }
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_status_message(api_group, resource, name, err),
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    })
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

// ---------------------------------------------------------------------------------------------
// Rule resolution
// ---------------------------------------------------------------------------------------------

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

fn not_found(kind: &str, name: &str) -> String {
    format!("{kind}.{RBAC_API_GROUP} {} not found", go_quote(name))
}

/// Looks roles up, with the aggregated ClusterRoles computed once.
struct Resolver<'a> {
    snapshot: &'a RbacSnapshot,
    /// Index into `snapshot.cluster_roles` -> aggregated rules, for roles with an aggregationRule.
    aggregated: HashMap<usize, Vec<PolicyRule>>,
}

impl<'a> Resolver<'a> {
    fn new(snapshot: &'a RbacSnapshot) -> Self {
        Self { snapshot, aggregated: aggregate_cluster_roles(&snapshot.cluster_roles) }
    }

    fn cluster_role_rules(&self, name: &str) -> Result<&[PolicyRule], String> {
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

    fn role_ref_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_role_rules(&role_ref.name),
            "Role" => self.role_rules(namespace, &role_ref.name),
            other => Err(format!("unsupported role reference kind: {}", go_quote(other))),
        }
    }

    /// Calls `visit` with each rule that applies to `user` in `namespace` until it returns true;
    /// returns the resolution errors met on the way.
    fn visit_rules(&self, user: &UserInfo, namespace: &str, mut visit: impl FnMut(&PolicyRule) -> bool) -> Vec<String> {
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
fn aggregate_cluster_roles(roles: &[ClusterRole]) -> HashMap<usize, Vec<PolicyRule>> {
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

// ---------------------------------------------------------------------------------------------
// Rule matching
// ---------------------------------------------------------------------------------------------

fn list(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

fn has(set: &[String], value: &str) -> bool {
    set.iter().any(|s| s == value)
}

/// Whether `rule` grants the request (`RuleAllows`).
pub fn rule_allows(attrs: &RequestAttributes, rule: &PolicyRule) -> bool {
    let verb_matches = has(&rule.verbs, "*") || has(&rule.verbs, &attrs.verb);
    if !verb_matches {
        return false;
    }
    if let Some(path) = &attrs.non_resource_path {
        return list(&rule.non_resource_urls).iter().any(|url| non_resource_url_covers(url, path));
    }
    let groups = list(&rule.api_groups);
    let group_matches = has(groups, "*") || has(groups, &attrs.api_group);
    let combined = attrs.combined_resource();
    let resource_matches = list(&rule.resources).iter().any(|resource| {
        resource == "*"
            || *resource == *combined
            || (!attrs.subresource.is_empty()
                && resource.strip_prefix("*/").is_some_and(|sub| sub == attrs.subresource))
    });
    let names = list(&rule.resource_names);
    let name_matches = names.is_empty() || has(names, &attrs.name);
    group_matches && resource_matches && name_matches
}

/// `rule_url` covers `path` when equal, or when it ends in `*` and `path` starts with the rest.
fn non_resource_url_covers(rule_url: &str, path: &str) -> bool {
    rule_url == path || rule_url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

// ---------------------------------------------------------------------------------------------
// Coverage (escalation checks)
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

// ---------------------------------------------------------------------------------------------
// Formatting and parsing helpers
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

fn percent_decode(value: &str, plus_is_space: bool) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true), percent_decode(value, true))
        })
        .collect()
}

/// The value `field` must equal under a field selector (`a=b,c==d`, `\`-escaped values), if any.
fn field_selector_exact_match(selector: &str, field: &str) -> Option<String> {
    let mut terms = Vec::new();
    let mut term = String::new();
    let mut escaped = false;
    for c in selector.chars() {
        if escaped {
            term.push(c);
            escaped = false;
        } else if c == '\\' {
            term.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut term));
        } else {
            term.push(c);
        }
    }
    terms.push(term);

    let mut exact = None;
    for term in terms.iter().filter(|t| !t.is_empty()) {
        let (lhs, op, rhs) = split_selector_term(term)?;
        let value = unescape_selector_value(rhs)?;
        if exact.is_none() && lhs == field && op != "!=" {
            exact = Some(value);
        }
    }
    exact
}

fn split_selector_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_selector_value(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',' | '=')) => out.push(escaped),
                _ => return None,
            },
            ',' | '=' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A name the API server accepts as one path segment.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}
