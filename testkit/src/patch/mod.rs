//! Patch semantics of the API server: strategic merge patch and server-side apply.
//! (JSON patch and JSON merge patch come from the json-patch crate.)

pub mod apply;
pub mod builtin_keys;
pub mod strategic;

/// Where list-map keys come from: for built-in kinds the Go struct tags (`patchMergeKey`,
/// `listType=map` + `listMapKey`), for custom resources the CRD schema
/// (`x-kubernetes-list-type: map` + `x-kubernetes-list-map-keys`).
pub trait ListKeys {
    /// The merge keys of the list at `path` (field names from the object root, e.g.
    /// `["spec", "template", "spec", "containers"]`), or `None` when the list is atomic
    /// (replaced as a whole) or a set of scalars (see [`ListKeys::is_set`]).
    fn keys(&self, path: &[&str]) -> Option<Vec<String>>;
    /// Whether the list at `path` is a set of scalars merged by value (`finalizers`,
    /// `x-kubernetes-list-type: set`).
    fn is_set(&self, path: &[&str]) -> bool;
}

use crate::registry::{ResourceType, Schema};
use crate::status::ApiError;
use serde_json::{Value, json};

/// List keys of a custom resource, from its CRD schema.
pub struct SchemaListKeys<'a>(pub &'a Value);

impl SchemaListKeys<'_> {
    fn node(&self, path: &[&str]) -> Option<&Value> {
        let mut node = self.0;
        for part in path {
            // Lists are walked through their items.
            while node["type"] == "array" {
                node = &node["items"];
            }
            node =
                node["properties"].get(*part).or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        }
        Some(node)
    }
}

impl ListKeys for SchemaListKeys<'_> {
    fn keys(&self, path: &[&str]) -> Option<Vec<String>> {
        let node = self.node(path)?;
        if node["x-kubernetes-list-type"] != "map" {
            return None;
        }
        Some(
            node["x-kubernetes-list-map-keys"]
                .as_array()?
                .iter()
                .filter_map(|k| k.as_str().map(String::from))
                .collect(),
        )
    }

    fn is_set(&self, path: &[&str]) -> bool {
        self.node(path).is_some_and(|n| n["x-kubernetes-list-type"] == "set")
    }
}

fn with_keys<T>(rt: &ResourceType, f: impl FnOnce(&dyn ListKeys) -> T) -> T {
    match &rt.schema {
        Schema::Crd(schema) => f(&SchemaListKeys(schema)),
        Schema::Builtin => f(&builtin_keys::BuiltinListKeys::new(&rt.kind)),
    }
}

/// Records `manager` as the owner of what a non-apply write changed.
pub fn record_manager(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    rt: &ResourceType,
    subresource: Option<&str>,
    now: &str,
) {
    with_keys(rt, |keys| match subresource {
        Some(sub) => apply::record_update_subresource(old, new, manager, sub, keys, now),
        None => apply::record_update(old, new, manager, keys, now),
    })
}

/// Server-side apply of `config` by `manager` onto `live` (None: create).
pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    rt: &ResourceType,
    subresource: Option<&str>,
    now: &str,
) -> Result<Value, ApiError> {
    let result = with_keys(rt, |keys| match subresource {
        Some(sub) => apply::apply_subresource(live, config, manager, sub, force, keys, now),
        None => apply::apply(live, config, manager, force, keys, now),
    });
    result.map_err(|e| match e {
        apply::ApplyError::Conflict { conflicts } => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|(m, field)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": field}))
                .collect();
            ApiError::new(409, "Conflict", e_message(&conflicts)).with_details(json!({"causes": causes}))
        }
        apply::ApplyError::Invalid(message) => ApiError::new(422, "Invalid", message),
    })
}

fn e_message(conflicts: &[(String, String)]) -> String {
    apply::ApplyError::Conflict { conflicts: conflicts.to_vec() }.to_string()
}

/// Strategic merge patch of a built-in kind.
pub fn strategic(old: &Value, patch: &Value, rt: &ResourceType) -> Result<Value, ApiError> {
    strategic::strategic_merge(old, patch, &builtin_keys::BuiltinListKeys::new(&rt.kind))
        .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))
}
