//! Server-side apply and field ownership (`metadata.managedFields`), after the real
//! implementation (structured-merge-diff as used by the API server's field manager).
//!
//! - [`apply`] merges an apply configuration into the live object for a field manager: fields in
//!   the configuration are set; fields the manager applied last time and no longer applies are
//!   removed unless another manager owns them too; changing a field that another manager owns is
//!   a conflict unless `force`, which moves the ownership.
//! - [`record_update`] records the fields a create/update/patch changed as owned by its manager
//!   (operation `Update`) and takes them away from every other manager, without conflicts.
//!
//! Field sets use the real `FieldsV1` encoding: `f:<field>`, `k:{"name":"web"}` for items of
//! lists with keys, `v:"value"` for items of set lists, `.` for a node that is owned itself and
//! also has owned children. List types come from a [`ListKeys`] (built-in tables or a CRD schema);
//! every map is granular (an object is never owned as a whole unless it is empty).
//!
//! Not tracked (like the real `stripMeta`): `apiVersion`, `kind`, `metadata` itself and
//! `metadata.{name, namespace, uid, resourceVersion, generation, creationTimestamp, selfLink,
//! managedFields, deletionTimestamp, deletionGracePeriodSeconds}`. Labels, annotations,
//! finalizers and owner references are tracked. `status` is tracked like any other field: the
//! caller passes only what the request may write (and a subresource name to keep the entries of
//! `/status` writes apart, see [`apply_subresource`] / [`record_update_subresource`]).
//!
//! A missing `protocol` in an item of a list keyed by `protocol` (container and Service ports)
//! takes the schema default `TCP`, as it does on the real server.

mod fields;
mod merge;
mod walk;

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::ListKeys;
use fields::{Entry, FieldSet, Path, managed_fields, path_string, position, read_entries, store_entries};
use merge::{merge_value, remove_path};
use walk::{Diff, SERVER_METADATA, Walker, members};

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

/// Why an apply request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers (HTTP 409). Each conflict is
    /// `(manager, field path)`, the path in the real notation
    /// (`.spec.template.spec.containers[name="web"].image`).
    #[error("{}", conflict_message(.conflicts))]
    Conflict { conflicts: Vec<(String, String)> },
    /// The configuration cannot be applied (HTTP 400/422).
    #[error("{0}")]
    Invalid(String),
}

/// Server-side apply of `config` by `manager` (a request to the main resource).
///
/// Returns the new object, with `metadata.managedFields` updated. `live` is `None` on create.
/// `now` is the RFC 3339 time stamped on the manager's entry, but only when its field set or
/// the object changed: applying the same configuration again returns an identical object.
/// `metadata.resourceVersion`, `uid`, `generation`, `creationTimestamp` and other fields only the
/// server sets are ignored in `config` (check a `resourceVersion` precondition before calling).
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    keys: &dyn ListKeys,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_subresource(live, config, manager, "", force, keys, now)
}

/// [`apply`] through a subresource (`"status"`; `""` for the main resource): the manager's entry
/// carries `subresource` and is distinct from its entry for the main resource.
pub fn apply_subresource(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    keys: &dyn ListKeys,
    now: &str,
) -> Result<Value, ApplyError> {
    if manager.is_empty() {
        return Err(ApplyError::Invalid("PATCH, application/apply-patch+yaml: fieldManager is required".into()));
    }
    let Value::Object(cfg) = config else {
        return Err(ApplyError::Invalid("apply configuration must be a JSON object".into()));
    };
    if cfg.get("metadata").and_then(|m| m.get("managedFields")).is_some_and(|f| !f.is_null()) {
        return Err(ApplyError::Invalid("metadata.managedFields must be nil".into()));
    }
    let live = match live {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApplyError::Invalid("the live object is not a JSON object".into())),
    };
    if let (Some(a), Some(b)) = (live.get("kind").and_then(Value::as_str), cfg.get("kind").and_then(Value::as_str))
        && a != b
    {
        return Err(ApplyError::Invalid(format!(
            "kind {b:?} of the configuration does not match the object's kind {a:?}"
        )));
    }
    let mut cfg = cfg.clone();
    if let Some(Value::Object(md)) = cfg.get_mut("metadata") {
        md.retain(|k, _| !SERVER_METADATA.contains(&k.as_str()));
    }
    let cfg = Value::Object(cfg);
    let api_version = str_field(&cfg, "apiVersion").or_else(|| str_field(&live, "apiVersion")).unwrap_or_default();

    let config_nodes = Walker { keys, strict: true }.nodes(&cfg).map_err(ApplyError::Invalid)?;
    let config_set = members(&config_nodes);

    let mut entries = read_entries(managed_fields(&live));
    let me = position(&entries, manager, APPLY, subresource);
    let last_set = me.map(|i| entries[i].set.clone()).unwrap_or_default();
    let mut owned: FieldSet = config_set.clone();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != me {
            owned.extend(e.set.iter().cloned());
        }
    }

    let mut merged = merge_value(&live, &cfg, &mut Vec::new(), keys);
    for path in last_set.difference(&owned) {
        remove_path(&mut merged, path, keys, &owned);
    }

    let lenient = Walker { keys, strict: false };
    let diff = Diff::new(&lenient.nodes_lenient(&live), &lenient.nodes_lenient(&merged));
    // A field set to null by the configuration is removed, and changed as far as others go.
    let changed: FieldSet =
        diff.added.iter().chain(&diff.modified).chain(diff.removed.intersection(&config_set)).cloned().collect();

    let mut conflicts: BTreeSet<(String, Path)> = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != me {
            conflicts.extend(e.set.intersection(&changed).map(|p| (e.manager.clone(), p.clone())));
        }
    }
    if !conflicts.is_empty() && !force {
        let conflicts = conflicts.into_iter().map(|(m, p)| (m, path_string(&p))).collect();
        return Err(ApplyError::Conflict { conflicts });
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.remove_all(&changed);
            e.remove_all(&diff.removed);
        }
    }
    match me {
        Some(i) => {
            let e = &mut entries[i];
            if e.set != config_set || !diff.is_empty() || e.api_version != api_version {
                e.set = config_set;
                e.api_version = api_version;
                e.time = Some(now.to_owned());
                e.dirty = true;
            }
        }
        None => entries.push(Entry::new(manager, APPLY, subresource, api_version, now, config_set)),
    }
    store_entries(&mut merged, entries);
    Ok(merged)
}

/// Record a non-apply write (create, update, patch) by `manager` (a request to the main
/// resource): the fields that `new` adds or changes compared with `old` (`None` on create) become
/// owned by `manager` with operation `Update` and are taken away from every other manager;
/// removed fields are no longer owned by anyone. Sets `new`'s `metadata.managedFields`.
///
/// Like the real server: `managedFields` sent in `new` replace the live ones (absent or `[]` keeps
/// the live ones, `[{}]` strips them all), and a write that changes nothing leaves
/// `managedFields` untouched.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, keys: &dyn ListKeys, now: &str) {
    record_update_subresource(old, new, manager, "", keys, now);
}

/// [`record_update`] through a subresource (`"status"`; `""` for the main resource). Managed
/// fields sent with a subresource write are ignored.
pub fn record_update_subresource(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    keys: &dyn ListKeys,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    let empty = Value::Object(Map::new());
    let old = match old {
        Some(v @ Value::Object(_)) => v,
        _ => &empty,
    };
    let sent = match managed_fields(new) {
        Some(Value::Array(list)) if !list.is_empty() && subresource.is_empty() => Some(list.clone()),
        _ => None,
    };
    let mut entries = match sent {
        Some(list) => {
            let entries = read_entries(Some(&Value::Array(list)));
            if entries.is_empty() {
                // `[{}]`: the client strips managedFields.
                store_entries(new, entries);
                return;
            }
            entries
        }
        None => read_entries(managed_fields(old)),
    };

    let walker = Walker { keys, strict: false };
    let diff = Diff::new(&walker.nodes_lenient(old), &walker.nodes_lenient(new));
    let touched: FieldSet = diff.added.union(&diff.modified).cloned().collect();
    let api_version = str_field(new, "apiVersion").unwrap_or_default();
    let me = position(&entries, manager, UPDATE, subresource);
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.remove_all(&touched);
            e.remove_all(&diff.removed);
        }
    }
    if !diff.is_empty() {
        match me {
            Some(i) => {
                let e = &mut entries[i];
                e.set = e.set.difference(&diff.removed).cloned().collect();
                e.set.extend(touched);
                e.api_version = api_version;
                e.time = Some(now.to_owned());
                e.dirty = true;
            }
            None => entries.push(Entry::new(manager, UPDATE, subresource, api_version, now, touched)),
        }
    }
    store_entries(new, entries);
}

/// The fields `manager` owns in `object` (over all its entries), in the notation of conflicts
/// (`.spec.replicas`, `.spec.template.spec.containers[name="web"]`), sorted.
pub fn owned_fields(object: &Value, manager: &str) -> Vec<String> {
    let set: FieldSet =
        read_entries(managed_fields(object)).into_iter().filter(|e| e.manager == manager).flat_map(|e| e.set).collect();
    set.iter().map(|p| path_string(p)).collect()
}

/// Remove `key` keeping the order of the other keys (with serde_json's `preserve_order`, `remove`
/// swaps the last key into its place).
fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.retain(|k, _| k != key);
}

fn str_field(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn conflict_message(conflicts: &[(String, String)]) -> String {
    if let [(manager, path)] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with \"{manager}\": {path}");
    }
    let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
    for (manager, path) in conflicts {
        match by_manager.iter_mut().find(|(m, _)| m == manager) {
            Some((_, paths)) => paths.push(path),
            None => by_manager.push((manager, vec![path])),
        }
    }
    let groups: Vec<String> = by_manager
        .into_iter()
        .map(|(manager, paths)| {
            let paths: Vec<String> = paths.iter().map(|p| format!("- {p}")).collect();
            format!("conflicts with \"{manager}\":\n{}", paths.join("\n"))
        })
        .collect();
    format!("Apply failed with {} conflicts: {}", conflicts.len(), groups.join("\n"))
}

#[cfg(test)]
mod tests;
