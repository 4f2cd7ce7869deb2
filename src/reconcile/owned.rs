//! The fields a field manager owns in an object, read back from `metadata.managedFields` as an
//! apply configuration (what client-go's `Extract…` functions do).
//!
//! Server-side apply removes the fields a manager applied last time and leaves out this time.
//! Enforcement remediates a workload in several steps (a container added later, a second
//! policy): each apply must carry what it set before, or it would take it away again (and put
//! it back on the next evaluation: a rollout loop). So the next configuration starts from
//! [`extract`] and adds the new changes with [`merge`].

use serde_json::{Map, Value};

/// What `manager` applied to `object` (its `Apply` entry for the main resource), with the
/// object's current values; `None` when it applied nothing. Items of keyed lists carry their
/// keys; fields or items no longer in the object are left out.
pub fn extract(object: &Value, manager: &str) -> Option<Value> {
    let entry = object["metadata"]["managedFields"].as_array()?.iter().find(|e| {
        e["manager"] == manager && e["operation"] == "Apply" && e.get("subresource").is_none_or(|s| s == "")
    })?;
    let fields = entry["fieldsV1"].as_object()?;
    let mut owned = pick(object, fields)?;
    // Identity, for a configuration that can be sent as is.
    for key in ["apiVersion", "kind"] {
        owned[key] = object[key].clone();
    }
    owned["metadata"]["name"] = object["metadata"]["name"].clone();
    Some(owned)
}

/// The part of `value` that the field set `set` (FieldsV1: `f:<field>`, `k:<keys>`, `v:<value>`,
/// `i:<index>`, `.`) names.
fn pick(value: &Value, set: &Map<String, Value>) -> Option<Value> {
    match value {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, children) in set {
                let Some(field) = key.strip_prefix("f:") else { continue };
                let Some(child) = object.get(field) else { continue };
                let picked = match children.as_object() {
                    Some(grand) if !grand.keys().all(|k| k == ".") => pick(child, grand),
                    // A leaf (or a node owned as a whole): its value.
                    _ => Some(child.clone()),
                };
                if let Some(picked) = picked {
                    out.insert(field.to_string(), picked);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for (key, children) in set {
                let item = if let Some(keys) = key.strip_prefix("k:") {
                    let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
                    items
                        .iter()
                        .find(|item| keys.iter().all(|(k, v)| item.get(k) == Some(v)))
                        .and_then(|item| pick_item(item, children, &keys))
                } else if let Some(member) = key.strip_prefix("v:") {
                    serde_json::from_str::<Value>(member).ok().filter(|m| items.contains(m))
                } else if let Some(index) = key.strip_prefix("i:") {
                    index.parse::<usize>().ok().and_then(|i| items.get(i)).cloned()
                } else {
                    None
                };
                out.extend(item);
            }
            Some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// A keyed list item: what is owned of it, always with its keys.
fn pick_item(item: &Value, children: &Value, keys: &Map<String, Value>) -> Option<Value> {
    let mut picked = match children.as_object() {
        Some(set) => pick(item, set)?,
        None => item.clone(),
    };
    let object = picked.as_object_mut()?;
    for (k, v) in keys {
        object.insert(k.clone(), v.clone());
    }
    Some(picked)
}

/// `base` with `overlay` laid over it: objects field by field, lists of named items (containers)
/// item by item, anything else replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(overlay)) if overlay.iter().all(|i| i.get("name").is_some()) => {
            for item in overlay {
                match base.iter_mut().find(|b| b.get("name") == item.get("name")) {
                    Some(existing) => merge(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Deployment as the API server returns it after an apply by `enforcer` that set the
    /// resources of `app` and the template annotation, and `helm` that owns the rest.
    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "managedFields": [
                {"manager": "helm", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "enforcer", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {
                    "f:metadata": {"f:annotations": {"f:devops.stochastic.io/patched-by": {}}},
                    "f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:resources": {"f:limits": {"f:cpu": {}}}},
                        "k:{\"name\":\"gone\"}": {".": {}, "f:name": {}, "f:resources": {"f:limits": {"f:cpu": {}}}}
                    }}}}}},
                {"manager": "enforcer", "operation": "Apply", "subresource": "status", "fieldsV1": {"f:status": {}}}
            ]},
            "spec": {"replicas": 3, "template": {
                "metadata": {"annotations": {"devops.stochastic.io/patched-by": "strict", "other": "x"}},
                "spec": {"containers": [
                    {"name": "app", "image": "app:1", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "sidecar", "image": "proxy:2"}
                ]}}},
            "status": {"replicas": 3}
        })
    }

    #[test]
    fn what_a_manager_applied_is_read_back_with_todays_values() {
        let owned = extract(&deployment(), "enforcer").unwrap();
        assert_eq!(
            owned,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {
                    "metadata": {"annotations": {"devops.stochastic.io/patched-by": "strict"}},
                    "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "500m"}}}]}}}}),
            "only its fields (not memory, image, replicas or status), and not a container that is gone"
        );
        assert_eq!(extract(&deployment(), "helm"), None, "helm never applied");
        assert_eq!(extract(&json!({"metadata": {}}), "enforcer"), None);
    }

    #[test]
    fn new_changes_are_laid_over_what_was_applied_before() {
        let mut owned = extract(&deployment(), "enforcer").unwrap();
        let changes = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "resources": {"limits": {"cpu": "100m"}}},
            {"name": "app", "readinessProbe": {"tcpSocket": {"port": 80}}}
        ]}}}});
        merge(&mut owned, &changes);
        let containers = &owned["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers,
            &json!([
                {"name": "app", "resources": {"limits": {"cpu": "500m"}}, "readinessProbe": {"tcpSocket": {"port": 80}}},
                {"name": "sidecar", "resources": {"limits": {"cpu": "100m"}}}
            ])
        );
    }

    #[test]
    fn set_and_index_members_are_read_too() {
        let object = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Apply",
            "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"gone\"": {}}}, "f:args": {"i:1": {}}}}],
            "finalizers": ["a", "b"]}, "args": ["x", "y"]});
        let owned = extract(&object, "m").unwrap();
        assert_eq!(owned["metadata"]["finalizers"], json!(["a"]));
        assert_eq!(owned["args"], json!(["y"]));
    }
}
