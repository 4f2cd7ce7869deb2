//! Discovery (`/version`, `/api`, `/apis`, resource lists) and the OpenAPI v3 index kubectl
//! reads to learn that the server validates fields itself (`fieldValidation`).

use super::State;
use crate::registry::{ResourceType, subresources};
use serde_json::{Value, json};

pub fn serve(state: &State, path: &str) -> Option<Value> {
    let cluster = state.cluster.lock().unwrap();
    let registry = &cluster.registry;
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let host = state.address.trim_start_matches("https://").to_string();
    match segments.as_slice() {
        ["version"] => Some(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-testkit", "gitCommit": "testkit", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
        })),
        ["healthz"] | ["readyz"] | ["livez"] => Some(json!("ok")),
        ["api"] => Some(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        })),
        ["apis"] => {
            let groups: Vec<Value> = registry
                .groups()
                .into_iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(group, versions)| {
                    let vs: Vec<Value> = versions
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                        .collect();
                    json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["api", version] => Some(resource_list("", version, registry.all())),
        ["apis", group] => {
            let versions = registry.groups().remove(*group)?;
            let vs: Vec<Value> =
                versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
            Some(
                json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs[0]}),
            )
        }
        ["apis", group, version] => registry
            .all()
            .iter()
            .any(|t| t.group == *group && t.version == *version)
            .then(|| resource_list(group, version, registry.all())),
        ["openapi", "v3"] => {
            let mut paths = serde_json::Map::new();
            for (group, versions) in registry.groups() {
                for v in versions {
                    let key = if group.is_empty() { format!("api/{v}") } else { format!("apis/{group}/{v}") };
                    paths.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", cluster.store.resource_version())}));
                }
            }
            Some(json!({"paths": paths}))
        }
        ["openapi", "v3", rest @ ..] => {
            let (group, version) = match rest {
                ["api", v] => ("", *v),
                ["apis", g, v] => (*g, *v),
                _ => return None,
            };
            Some(openapi_v3(group, version, registry.all()))
        }
        _ => None,
    }
}

fn resource_list(group: &str, version: &str, types: &[ResourceType]) -> Value {
    let mut resources = Vec::new();
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        resources.push(json!({
            "name": t.resource, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": t.short_names, "categories": t.categories,
        }));
        for sub in subresources(t) {
            let (kind, verbs) = match sub {
                "eviction" => ("Eviction", json!(["create"])),
                "scale" => ("Scale", json!(["get", "patch", "update"])),
                "log" => ("Pod", json!(["get"])),
                _ => (t.kind.as_str(), json!(["get", "patch", "update"])),
            };
            let mut resource = json!({
                "name": format!("{}/{sub}", t.resource), "singularName": "", "namespaced": t.namespaced, "kind": kind, "verbs": verbs,
            });
            if sub == "scale" {
                resource["group"] = json!("autoscaling");
                resource["version"] = json!("v1");
            }
            resources.push(resource);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// A minimal OpenAPI v3 document per group-version: PATCH operations tagged with their kind and
/// the `fieldValidation` query parameter, which is what kubectl checks before leaving field
/// validation to the server. No schemas: kubectl then computes client-side apply patches from
/// its compiled-in types (built-ins) or as JSON merge patches (custom resources).
fn openapi_v3(group: &str, version: &str, types: &[ResourceType]) -> Value {
    let mut paths = serde_json::Map::new();
    let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.resource)
        } else {
            format!("{prefix}/{}/{{name}}", t.resource)
        };
        let op = json!({
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": t.kind},
            "x-kubernetes-action": "patch",
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "force", "in": "query", "schema": {"type": "boolean"}},
            ],
            "requestBody": {"content": {
                "application/json-patch+json": {"schema": {"type": "object"}},
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}},
            }},
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": op}));
    }
    // Custom resources publish their CRD schema, so `kubectl explain` shows its descriptions.
    let mut schemas = serde_json::Map::new();
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        if let crate::registry::Schema::Crd(schema) = &t.schema {
            let mut schema = schema.clone();
            schema["x-kubernetes-group-version-kind"] = json!([{"group": group, "version": version, "kind": t.kind}]);
            let reversed: Vec<&str> = group.split('.').rev().collect();
            schemas.insert(format!("{}.{version}.{}", reversed.join("."), t.kind), schema);
        }
    }
    json!({"openapi": "3.0.0", "info": {"title": "testkit", "version": version}, "paths": paths, "components": {"schemas": schemas}})
}
