//! Merging an apply configuration into the live object, and pruning fields no longer applied.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::ListKeys;
use super::fields::{FieldSet, Path, Pe, canonical};
use super::remove_key;
use super::walk::{ListKind, item_key, list_kind};

/// Merge an apply configuration value into a live value (`Null` when absent).
pub(super) fn merge_value(live: &Value, cfg: &Value, names: &mut Vec<String>, keys: &dyn ListKeys) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => Value::Object(merge_fields(l.clone(), c, names, keys)),
        (_, Value::Object(c)) => Value::Object(merge_fields(Map::new(), c, names, keys)),
        (Value::Array(l), Value::Array(c)) => Value::Array(merge_lists(l, c, names, keys)),
        (_, Value::Array(c)) => Value::Array(merge_lists(&[], c, names, keys)),
        (_, scalar) => scalar.clone(),
    }
}

fn merge_fields(
    mut out: Map<String, Value>,
    cfg: &Map<String, Value>,
    names: &mut Vec<String>,
    keys: &dyn ListKeys,
) -> Map<String, Value> {
    for (k, c) in cfg {
        if c.is_null() {
            remove_key(&mut out, k);
            continue;
        }
        names.push(k.clone());
        match out.get_mut(k) {
            Some(slot) => *slot = merge_value(slot, c, names, keys),
            None => {
                let v = merge_value(&Value::Null, c, names, keys);
                out.insert(k.clone(), v);
            }
        }
        names.pop();
    }
    out
}

fn merge_lists(live: &[Value], cfg: &[Value], names: &mut Vec<String>, keys: &dyn ListKeys) -> Vec<Value> {
    match list_kind(keys, names) {
        ListKind::Keyed(k) => {
            let lkeys: Vec<Option<Pe>> = live.iter().map(|i| item_key(i, &k).ok()).collect();
            let ckeys: Vec<Option<Pe>> = cfg.iter().map(|i| item_key(i, &k).ok()).collect();
            let picks = merge_order(&lkeys, &ckeys);
            picks
                .into_iter()
                .map(|pick| match pick {
                    Pick::Live(l) => live[l].clone(),
                    Pick::Config(l, c) => merge_value(l.map_or(&Value::Null, |l| &live[l]), &cfg[c], names, keys),
                })
                .collect()
        }
        ListKind::Set => {
            let lkeys: Vec<Option<Pe>> = live.iter().map(|i| Some(Pe::Value(canonical(i)))).collect();
            let ckeys: Vec<Option<Pe>> = cfg.iter().map(|i| Some(Pe::Value(canonical(i)))).collect();
            let picks = merge_order(&lkeys, &ckeys);
            picks
                .into_iter()
                .map(|pick| match pick {
                    Pick::Live(l) => live[l].clone(),
                    Pick::Config(_, c) => cfg[c].clone(),
                })
                .collect()
        }
        ListKind::Atomic => cfg.to_vec(),
    }
}

/// One item of a merged list.
enum Pick {
    /// A live item the configuration does not have.
    Live(usize),
    /// A configuration item, merged into this live item if there is one.
    Config(Option<usize>, usize),
}

/// The order of a merged list (structured-merge-diff's): live-only items stay where they are,
/// items of the configuration come in its order, shared items where the configuration puts them.
fn merge_order(live: &[Option<Pe>], cfg: &[Option<Pe>]) -> Vec<Pick> {
    let in_cfg: HashSet<&Pe> = cfg.iter().flatten().collect();
    let mut live_first: HashMap<&Pe, usize> = HashMap::new();
    for (i, k) in live.iter().enumerate() {
        if let Some(k) = k {
            live_first.entry(k).or_insert(i);
        }
    }
    let mut shared: VecDeque<&Pe> = cfg.iter().flatten().filter(|k| live_first.contains_key(k)).collect();
    let mut next_shared = shared.pop_front();
    let mut done: HashSet<&Pe> = HashSet::new();
    let mut out = Vec::with_capacity(live.len().max(cfg.len()));
    let (mut li, mut ci) = (0, 0);
    while li < live.len() || ci < cfg.len() {
        if li < live.len() && ci < cfg.len() {
            if let (Some(l), Some(c)) = (&live[li], &cfg[ci])
                && l == c
            {
                out.push(Pick::Config(Some(li), ci));
                done.insert(c);
                li += 1;
                ci += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if let Some(l) = &live[li]
                && in_cfg.contains(l)
                && next_shared.is_some_and(|n| n != l)
            {
                // A shared item the configuration wants later: take it when the configuration does.
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            match &live[li] {
                Some(l) if in_cfg.contains(l) => {
                    if done.contains(l) {
                        li += 1;
                        continue;
                    }
                }
                _ => {
                    out.push(Pick::Live(li));
                    li += 1;
                    continue;
                }
            }
        }
        if ci < cfg.len() {
            let c = cfg[ci].as_ref();
            out.push(Pick::Config(c.and_then(|c| live_first.get(c).copied()), ci));
            if let Some(c) = c {
                done.insert(c);
                if next_shared == Some(c) {
                    next_shared = shared.pop_front();
                }
            }
            ci += 1;
        } else {
            // Unreachable: a live item in the configuration that is not merged yet means the
            // configuration still has items. Skip it rather than loop.
            li += 1;
        }
    }
    out
}

/// Remove `path` from `root`, then the objects and lists this leaves empty unless someone owns
/// them (`owned`).
/// Whether a field below `path` is owned.
fn has_owned_descendant(owned: &FieldSet, path: &[Pe]) -> bool {
    owned.range(path.to_vec()..).take_while(|p| p.starts_with(path)).any(|p| p.len() > path.len())
}

pub(super) fn remove_path(root: &mut Value, path: &[Pe], keys: &dyn ListKeys, owned: &FieldSet) {
    fn remove(
        v: &mut Value,
        path: &[Pe],
        prefix: &mut Path,
        names: &mut Vec<String>,
        keys: &dyn ListKeys,
        owned: &FieldSet,
    ) -> bool {
        let Some((first, rest)) = path.split_first() else { return false };
        match (v, first) {
            (Value::Object(m), Pe::Field(f)) => {
                if rest.is_empty() {
                    // A node that was owned itself (`.`) and now has owned children stays: as
                    // in structured-merge-diff's prune, which adds back what anyone owns (what
                    // kubectl's client-side-apply migration relies on).
                    prefix.push(first.clone());
                    let keep = has_owned_descendant(owned, prefix);
                    prefix.pop();
                    let found = m.contains_key(f) && !keep;
                    if found {
                        remove_key(m, f);
                    }
                    return found;
                }
                let Some(child) = m.get_mut(f) else { return false };
                prefix.push(first.clone());
                names.push(f.clone());
                let removed = remove(child, rest, prefix, names, keys, owned);
                let empty = match child {
                    Value::Object(c) => c.is_empty(),
                    Value::Array(c) => c.is_empty(),
                    _ => false,
                };
                let keep = owned.contains(prefix.as_slice());
                names.pop();
                prefix.pop();
                if removed && empty && !keep {
                    remove_key(m, f);
                }
                removed
            }
            (Value::Array(items), pe) => {
                let kind = list_kind(keys, names);
                let found = items.iter().enumerate().position(|(i, item)| match (pe, &kind) {
                    (Pe::Key(_), ListKind::Keyed(k)) => item_key(item, k).ok().as_ref() == Some(pe),
                    (Pe::Value(c), _) => canonical(item) == *c,
                    (Pe::Index(n), _) => i == *n,
                    _ => false,
                });
                let Some(i) = found else { return false };
                if rest.is_empty() {
                    prefix.push(first.clone());
                    let keep = has_owned_descendant(owned, prefix);
                    prefix.pop();
                    if !keep {
                        items.remove(i);
                    }
                    return !keep;
                }
                prefix.push(first.clone());
                let removed = remove(&mut items[i], rest, prefix, names, keys, owned);
                prefix.pop();
                removed
            }
            _ => false,
        }
    }
    remove(root, path, &mut Vec::new(), &mut Vec::new(), keys, owned);
}
