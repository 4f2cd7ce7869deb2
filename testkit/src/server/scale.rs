//! The `scale` subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets, StatefulSets and
//! custom resources that declare one: what `kubectl scale` and autoscalers read and write.

use super::State;
use super::handlers::ResourcePath;
use crate::cluster::{PatchType, WriteOptions};
use crate::rbac::UserInfo;
use crate::registry::{ResourceType, ScalePaths};
use crate::selectors::LabelSelector;
use crate::status::ApiError;
use serde_json::{Value, json};

/// The value at a simple JSON path (`.spec.replicas`).
fn at<'a>(object: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.').split('.').fold(object, |v, k| &v[k])
}

fn set(object: &mut Value, path: &str, value: Value) {
    let mut target = object;
    for key in path.trim_start_matches('.').split('.') {
        target = &mut target[key];
    }
    *target = value;
}

/// `spec.selector` as the string form Scale carries (`app=web,tier in (a,b)`).
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    debug_assert!(LabelSelector::parse(&parts.join(",")).is_ok());
    parts.join(",")
}

/// The Scale of an object.
pub fn scale_of(object: &Value, paths: &ScalePaths) -> Value {
    let meta = &object["metadata"];
    let selector = match &paths.label_selector {
        Some(path) => at(object, path).clone(),
        None => json!(selector_string(&object["spec"]["selector"])),
    };
    let mut status = json!({"replicas": at(object, &paths.status_replicas).as_i64().unwrap_or(0)});
    if selector.as_str().is_some_and(|s| !s.is_empty()) {
        status["selector"] = selector;
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": at(object, &paths.spec_replicas).as_i64().unwrap_or(0)},
        "status": status})
}

/// GET, PUT and PATCH of `.../scale`.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    state: &State,
    rt: &ResourceType,
    p: &ResourcePath,
    verb: &str,
    body: &[u8],
    patch_type: Option<PatchType>,
    opts: &WriteOptions,
    user: &UserInfo,
) -> Result<Value, ApiError> {
    let paths = rt.scale.clone().expect("served only for types with a scale subresource");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let pending = {
            let mut cluster = state.cluster.lock().unwrap();
            let object = cluster.get(rt, &p.namespace, &p.name)?;
            let current = scale_of(&object, &paths);
            if verb == "get" {
                return Ok(current);
            }
            let wanted = desired_scale(&current, body, patch_type)?;
            if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
                && !rv.is_empty()
                && Some(rv) != current["metadata"]["resourceVersion"].as_str()
            {
                return Err(ApiError::conflict(
                    &crate::cluster::qualified(rt),
                    &p.name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            let replicas = wanted["spec"]["replicas"].as_i64().ok_or_else(|| {
                ApiError::invalid("Scale", &p.name, vec![("spec.replicas".into(), "Required value".into())])
            })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "Scale",
                    &p.name,
                    vec![(
                        "spec.replicas".into(),
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    )],
                ));
            }
            let mut new = object.clone();
            set(&mut new, &paths.spec_replicas, json!(replicas));
            cluster.prepare_scale(rt, object, new, opts)?
        };
        crate::authz::check_escalation(&state.cluster.lock().unwrap(), user, &pending)?;
        crate::admission::review(state, &pending, user).await?;
        let committed = state.cluster.lock().unwrap().commit(pending);
        match committed {
            Ok(object) => return Ok(scale_of(&object, &paths)),
            Err(e) if e.code == 409 && verb == "patch" && attempts < 5 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The Scale a PUT sends, or the current one with a PATCH applied.
fn desired_scale(current: &Value, body: &[u8], patch_type: Option<PatchType>) -> Result<Value, ApiError> {
    let parse = |bytes: &[u8]| -> Result<Value, ApiError> {
        if let Ok(v) = serde_json::from_slice(bytes) {
            return Ok(v);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
        serde_saphyr::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
    };
    let mut scale = current.clone();
    match patch_type {
        None => return parse(body),
        Some(PatchType::Json) => {
            let patch: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut scale, &patch)
                .map_err(|e| ApiError::new(422, "Invalid", format!("the JSON patch could not be applied: {e}")))?;
        }
        // A Scale has no lists: strategic merge and apply come down to a merge.
        Some(PatchType::Merge | PatchType::Strategic | PatchType::Apply) => {
            json_patch::merge(&mut scale, &parse(body)?)
        }
    }
    Ok(scale)
}
