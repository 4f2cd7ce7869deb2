//! Patches: JSON patch, merge patch, strategic merge patch and server-side apply, each turned
//! into a replacement of the stored object (or a create, for an apply).

use super::{Cluster, PatchType, PendingWrite, WriteOptions, now_rfc3339, qualified};
use crate::registry::ResourceType;
use crate::status::ApiError;
use crate::validation;
use serde_json::Value;

impl Cluster {
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: &Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<PendingWrite, ApiError> {
        let existing = self.get(rt, namespace, name);
        if patch_type == PatchType::Apply {
            let manager = opts.field_manager.clone().ok_or_else(|| {
                ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            })?;
            let live = existing.as_ref().ok();
            let mut config = body.clone();
            if rt.namespaced && config["metadata"]["namespace"].is_null() {
                config["metadata"]["namespace"] = Value::String(namespace.to_string());
            }
            let applied =
                crate::patch::server_side_apply(live, &config, &manager, opts.force, rt, subresource, &now_rfc3339())?;
            validation::check_applied_fields(rt, &config, &applied)?;
            return match existing {
                Ok(old) => {
                    let mut opts = opts.clone();
                    opts.field_manager = None;
                    self.prepare_replacement(rt, old, applied, subresource, &opts)
                }
                Err(_) => {
                    let mut opts = opts.clone();
                    opts.field_manager = None;
                    self.prepare_create(rt, namespace, applied, &opts)
                }
            };
        }
        let old = existing?;
        let mut doc = old.clone();
        match patch_type {
            PatchType::Json => {
                // As the API server's JSON patch library does, a `test` for null passes on a
                // missing path (kube-runtime's finalizer helper relies on it).
                let ops: Vec<Value> = body
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|op| {
                        let missing = op["path"].as_str().is_some_and(|p| doc.pointer(p).is_none());
                        !(op["op"] == "test" && op["value"].is_null() && missing)
                    })
                    .cloned()
                    .collect();
                let body = if body.is_array() { Value::Array(ops) } else { body.clone() };
                let patch: json_patch::Patch = serde_json::from_value(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut doc, &patch)
                    .map_err(|e| ApiError::new(422, "Invalid", format!("the JSON patch could not be applied: {e}")))?;
            }
            PatchType::Merge => json_patch::merge(&mut doc, body),
            PatchType::Strategic => {
                if rt.is_crd() {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    ));
                }
                doc = crate::patch::strategic(&old, body, rt)?;
            }
            PatchType::Apply => unreachable!(),
        }
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(
                &qualified(rt),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        self.prepare_replacement(rt, old, doc, subresource, opts)
    }
}
