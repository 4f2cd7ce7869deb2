//! Strategic merge patch (`application/strategic-merge-patch+json`), the patch type of
//! `kubectl patch` and client-side `kubectl apply` for built-in kinds.
//!
//! Semantics (those of `k8s.io/apimachinery/pkg/util/strategicpatch`):
//! - maps merge recursively; `null` deletes a field;
//! - lists with merge keys ([`ListKeys::keys`], the first key is the `patchMergeKey`) merge item
//!   by item; set lists ([`ListKeys::is_set`]) are unioned; every other list is replaced;
//! - directives: `$patch: replace` / `$patch: delete` in a map, `{"$patch": "replace"}` and
//!   `{"<key>": ..., "$patch": "delete"}` list items, `$retainKeys`,
//!   `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//!
//! Order of a merged list: `$setElementOrder` > order in the patch > order in the live list.
//! Items only in the live list keep their relative order and are interleaved with the patch items
//! by their live position; items that are new go where the patch (or `$setElementOrder`) puts them,
//! i.e. before the live-only items unless the patch also names live items before them (without
//! `$setElementOrder`, a patch that only adds `c` to `[a, b]` yields `[c, a, b]`, as the real API
//! server does).

use serde_json::{Map, Value};

use super::ListKeys;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// A malformed strategic merge patch (the API server answers 400/422 with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch (or the object it is applied to) is not a JSON object.
    #[error("{what} must be a JSON object, got {got}")]
    NotAnObject { what: &'static str, got: &'static str },
    /// `$patch` with a value other than `replace` / `delete`.
    #[error("{path}: invalid $patch directive {directive}")]
    InvalidDirective { path: String, directive: String },
    /// A list item (or `$setElementOrder` item) without the list's merge key.
    #[error("{path}: map {item} does not contain declared merge key: {key}")]
    MissingMergeKey { path: String, key: String, item: String },
    /// Any other malformed patch.
    #[error("{path}: {message}")]
    Malformed { path: String, message: String },
}

/// Apply the strategic merge `patch` to `original`; `keys` gives the list semantics of the kind.
/// Neither input is modified.
pub fn strategic_merge(original: &Value, patch: &Value, keys: &dyn ListKeys) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject { what: "patch", got: type_name(patch) });
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => return Err(PatchError::NotAnObject { what: "original object", got: type_name(other) }),
    };
    let mut path = Vec::new();
    Ok(Value::Object(Merger { keys }.merge_map(original, patch, &mut path)?))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn display_path(path: &[String]) -> String {
    if path.is_empty() { "<root>".to_owned() } else { path.join(".") }
}

fn malformed(path: &[String], message: impl Into<String>) -> PatchError {
    PatchError::Malformed { path: display_path(path), message: message.into() }
}

fn missing_key(path: &[String], key: &str, item: &Value) -> PatchError {
    PatchError::MissingMergeKey { path: display_path(path), key: key.to_owned(), item: item.to_string() }
}

/// How a list field merges.
enum Strategy {
    /// By this merge key.
    Keyed(String),
    /// Union of scalars.
    Set,
    /// Replaced.
    Atomic,
}

struct Merger<'a> {
    keys: &'a dyn ListKeys,
}

impl Merger<'_> {
    fn strategy(&self, path: &[String]) -> Strategy {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        if let Some(key) = self.keys.keys(&names).and_then(|k| k.into_iter().next()) {
            Strategy::Keyed(key)
        } else if self.keys.is_set(&names) {
            Strategy::Set
        } else {
            Strategy::Atomic
        }
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                // The patch replaces the map: apply it to nothing, which drops nulls and directives.
                Some("replace") => {
                    let mut replacement = patch.clone();
                    remove_key(&mut replacement, DIRECTIVE);
                    self.merge_map(Map::new(), &replacement, path)
                }
                Some("delete") => Ok(Map::new()),
                _ => Err(PatchError::InvalidDirective { path: display_path(path), directive: directive.to_string() }),
            };
        }

        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let names = retain
                .as_array()
                .and_then(|l| l.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
                .ok_or_else(|| malformed(path, "$retainKeys must be a list of field names"))?;
            for (k, v) in patch {
                if v.is_null() || is_directive_key(k) {
                    continue;
                }
                if !names.contains(&k.as_str()) {
                    return Err(malformed(path, format!("field {k:?} is in the patch but not in $retainKeys")));
                }
            }
            original.retain(|k, _| names.contains(&k.as_str()));
        }

        for (k, v) in patch {
            let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else { continue };
            let to_delete =
                v.as_array().ok_or_else(|| malformed(path, format!("{k} must be a list of the values to delete")))?;
            if field.is_empty() {
                return Err(malformed(path, format!("{k}: missing field name")));
            }
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !to_delete.contains(item));
            }
        }

        // The list each `$setElementOrder` applies to, as it was before merging.
        let mut orders: Vec<(&str, &Vec<Value>, Option<Value>)> = Vec::new();
        for (k, v) in patch {
            let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) else { continue };
            let order = v.as_array().ok_or_else(|| malformed(path, format!("{k} must be a list")))?;
            if field.is_empty() {
                return Err(malformed(path, format!("{k}: missing field name")));
            }
            orders.push((field, order, original.get(field).cloned()));
        }

        for (k, patch_value) in patch {
            if is_directive_key(k) {
                continue;
            }
            if patch_value.is_null() {
                remove_key(&mut original, k);
                continue;
            }
            path.push(k.clone());
            let merged = match original.get_mut(k) {
                Some(slot) => {
                    let old = std::mem::take(slot);
                    *slot = self.merge_value(old, patch_value, path)?;
                    Ok(())
                }
                None => self.merge_value(Value::Null, patch_value, path).map(|v| {
                    original.insert(k.clone(), v);
                }),
            };
            path.pop();
            merged?;
        }

        for (field, order, before) in orders {
            path.push(field.to_owned());
            let result = self.apply_element_order(&mut original, field, order, before, patch.get(field), path);
            path.pop();
            result?;
        }
        Ok(original)
    }

    /// Merge one field value; `original` is `Null` when the field is absent.
    fn merge_value(&self, original: Value, patch: &Value, path: &mut Vec<String>) -> Result<Value, PatchError> {
        Ok(match (original, patch) {
            (Value::Object(o), Value::Object(p)) => Value::Object(self.merge_map(o, p, path)?),
            (_, Value::Object(p)) => Value::Object(self.merge_map(Map::new(), p, path)?),
            (Value::Array(o), Value::Array(p)) => Value::Array(self.merge_list(o, p, path)?),
            (_, Value::Array(p)) => Value::Array(self.merge_list(Vec::new(), p, path)?),
            (_, scalar) => scalar.clone(),
        })
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        match self.strategy(path) {
            Strategy::Keyed(key) => self.merge_keyed_list(original, patch, &key, path),
            Strategy::Set => merge_set_list(original, patch, path),
            Strategy::Atomic => Ok(patch.to_vec()),
        }
    }

    fn merge_keyed_list(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        key: &str,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        let mut replace = false;
        let mut items: Vec<&Map<String, Value>> = Vec::new();
        for item in patch {
            let Value::Object(m) = item else {
                return Err(malformed(path, format!("list items must be objects with merge key {key:?}, got {item}")));
            };
            match m.get(DIRECTIVE) {
                None => items.push(m),
                Some(directive) => match directive.as_str() {
                    Some("delete") => {
                        let value = m.get(key).ok_or_else(|| missing_key(path, key, item))?;
                        original.retain(|o| o.get(key) != Some(value));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => return Err(malformed(path, "merging lists cannot yet be specified in the patch")),
                    _ => {
                        return Err(PatchError::InvalidDirective {
                            path: display_path(path),
                            directive: directive.to_string(),
                        });
                    }
                },
            }
        }
        if replace {
            // The items of the patch (without the directive items) are the new list.
            return items.into_iter().map(|m| self.merge_map(Map::new(), m, path).map(Value::Object)).collect();
        }

        let server_order: Vec<Value> = original.iter().map(|o| o.get(key).cloned().unwrap_or(Value::Null)).collect();
        let mut patch_order = Vec::with_capacity(items.len());
        let mut merged = original;
        for m in items {
            let value = m.get(key).ok_or_else(|| missing_key(path, key, &Value::Object(m.clone())))?;
            patch_order.push(value.clone());
            match merged.iter().position(|o| o.get(key) == Some(value)) {
                Some(i) => {
                    let old = match std::mem::take(&mut merged[i]) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    merged[i] = Value::Object(self.merge_map(old, m, path)?);
                }
                None => merged.push(Value::Object(self.merge_map(Map::new(), m, path)?)),
            }
        }
        Ok(normalize_order(merged, |v| v.get(key), &patch_order, &server_order))
    }

    /// Reorder `original[field]` (already merged) by a `$setElementOrder/<field>` list.
    fn apply_element_order(
        &self,
        original: &mut Map<String, Value>,
        field: &str,
        order: &[Value],
        before: Option<Value>,
        patch_list: Option<&Value>,
        path: &[String],
    ) -> Result<(), PatchError> {
        let Some(Value::Array(merged)) = original.get_mut(field) else { return Ok(()) };
        let server: Vec<Value> = match before {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let patch_items: &[Value] = patch_list.and_then(Value::as_array).map_or(&[], Vec::as_slice);
        match self.strategy(path) {
            Strategy::Keyed(key) => {
                let mut order_keys = Vec::with_capacity(order.len());
                for o in order {
                    order_keys.push(o.get(&key).cloned().ok_or_else(|| missing_key(path, &key, o))?);
                }
                let patch_keys: Vec<&Value> =
                    patch_items.iter().filter(|i| i.get(DIRECTIVE).is_none()).filter_map(|i| i.get(&key)).collect();
                check_relative_order(&patch_keys, &order_keys, path)?;
                let server_keys: Vec<Value> =
                    server.iter().map(|o| o.get(&key).cloned().unwrap_or(Value::Null)).collect();
                let items = std::mem::take(merged);
                *merged = normalize_order(items, |v| v.get(&key), &order_keys, &server_keys);
            }
            Strategy::Set => {
                let patch_values: Vec<&Value> = patch_items.iter().collect();
                check_relative_order(&patch_values, order, path)?;
                let items = std::mem::take(merged);
                *merged = normalize_order(items, itself, order, &server);
            }
            // Lists that are replaced keep the order of the patch.
            Strategy::Atomic => {}
        }
        Ok(())
    }
}

/// Remove `key` keeping the order of the other keys (with serde_json's `preserve_order`, `remove`
/// swaps the last key into its place).
fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.retain(|k, _| k != key);
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE || k == RETAIN_KEYS || k.starts_with(SET_ELEMENT_ORDER) || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// The patch list must name its items in the order of `$setElementOrder`, and only items it names.
fn check_relative_order(patch: &[&Value], order: &[Value], path: &[String]) -> Result<(), PatchError> {
    let mut at = 0;
    for p in patch {
        match order[at..].iter().position(|o| o == *p) {
            Some(i) => at += i + 1,
            None => {
                return Err(malformed(
                    path,
                    format!(
                        "the order of the patch list doesn't match $setElementOrder (item {p} out of order or missing)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn merge_set_list(original: Vec<Value>, patch: &[Value], path: &[String]) -> Result<Vec<Value>, PatchError> {
    let mut replace = false;
    let mut values: Vec<&Value> = Vec::new();
    for item in patch {
        match item {
            Value::Object(m) if m.get(DIRECTIVE).and_then(Value::as_str) == Some("replace") && m.len() == 1 => {
                replace = true;
            }
            Value::Object(_) | Value::Array(_) => {
                return Err(malformed(path, format!("items of a set list must be scalars, got {item}")));
            }
            scalar => values.push(scalar),
        }
    }
    let mut merged: Vec<Value> = Vec::new();
    let base = if replace { Vec::new() } else { original.clone() };
    for v in base.into_iter().chain(values.iter().map(|v| (*v).clone())) {
        if !merged.contains(&v) {
            merged.push(v);
        }
    }
    let order: Vec<Value> = values.into_iter().cloned().collect();
    Ok(normalize_order(merged, itself, &order, &original))
}

/// The key of a scalar list item: the item.
fn itself(v: &Value) -> Option<&Value> {
    Some(v)
}

/// Order `items`: those named by `order` in that order, the others ("server-only") in the order of
/// `server`, the two interleaved so that a server-only item goes before a named item when the
/// server list has it earlier (`mergeSortedSlice` of the real implementation).
fn normalize_order(
    items: Vec<Value>,
    key_of: impl Fn(&Value) -> Option<&Value>,
    order: &[Value],
    server: &[Value],
) -> Vec<Value> {
    let index = |list: &[Value], item: &Value| key_of(item).and_then(|k| list.iter().position(|o| o == k));
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) =
        items.into_iter().partition(|item| index(order, item).is_some());
    named.sort_by_key(|item| index(order, item));
    server_only.sort_by_key(|item| index(server, item).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!((index(server, l), index(server, r)), (Some(a), Some(b)) if a < b),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests;
