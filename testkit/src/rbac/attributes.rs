//! What is asked: [`RequestAttributes`], as derived from an HTTP request, and the Forbidden answers.

use std::borrow::Cow;

use super::{UserInfo, go_quote};

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
    /// [`Decision::Deny`](super::Decision::Deny). Its message reads like the real one:
    /// `pods "web-0" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"`.
    pub fn forbidden_status(&self, reason: &str) -> serde_json::Value {
        if self.is_resource_request() {
            forbidden_status(&self.api_group, &self.resource, &self.name, reason)
        } else {
            forbidden_status("", "", "", reason)
        }
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
// Parsing helpers (of request URIs)
// ---------------------------------------------------------------------------------------------

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
