//! Request dispatch: authentication, path parsing, faults, the verbs, and the request log.

use super::State;
use super::{discovery, table, watch};
use crate::cluster::{DeleteOptions, PatchType, WriteOptions};
use crate::observe::{RequestRecord, apply_faults};
use crate::rbac::UserInfo;
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::validation::FieldValidation;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A parsed resource path.
#[derive(Clone, Debug, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` into a resource path.
pub fn parse_path(path: &str) -> Option<ResourcePath> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let mut p = ResourcePath { group: group.into(), version: version.into(), ..Default::default() };
    match rest {
        [] => return None,
        ["namespaces", ns, resource, tail @ ..] if !matches!(*resource, "status" | "finalize") || !tail.is_empty() => {
            p.namespace = (*ns).into();
            p.resource = (*resource).into();
            if let [name, sub @ ..] = tail {
                p.name = (*name).into();
                p.subresource = sub.join("/");
            }
        }
        [resource, tail @ ..] => {
            p.resource = (*resource).into();
            if let [name, sub @ ..] = tail {
                p.name = (*name).into();
                p.subresource = sub.join("/");
            }
        }
    }
    Some(p)
}

fn verb_of(method: &Method, p: &ResourcePath, query: &HashMap<String, String>) -> &'static str {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match *method {
        Method::GET if watch => "watch",
        Method::GET if p.name.is_empty() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if p.name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

pub fn error_response(e: &ApiError) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(e.body().to_string())
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> HttpResponse {
    let mut r = HttpResponse::build(StatusCode::from_u16(code).unwrap());
    r.content_type("application/json");
    for w in warnings {
        // A quoted-string, backslash-escaped as the real server's Warning headers are.
        r.append_header(("Warning", format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))));
    }
    r.body(body.to_string())
}

pub fn authenticate(state: &State, req: &HttpRequest) -> Option<UserInfo> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let token = header.strip_prefix("Bearer ")?.trim();
    state.tokens.lock().unwrap().get(token).cloned()
}

/// The one entry point of every request.
pub async fn dispatch(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let query: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let path = req.path().to_string();
    let resource_path = parse_path(&path);
    let verb = match &resource_path {
        Some(p) => verb_of(req.method(), p, &query),
        None => "get",
    };
    let user = authenticate(&state, &req);
    let mut record = RequestRecord {
        verb: verb.to_string(),
        method: req.method().to_string(),
        path: path.clone(),
        query: req.query_string().to_string(),
        user: user.as_ref().map(|u| u.name.clone()).unwrap_or_else(|| "system:anonymous".into()),
        user_agent: req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string(),
        field_manager: query.get("fieldManager").cloned(),
        resource: resource_path.as_ref().map(|p| p.resource.clone()).unwrap_or_default(),
        subresource: resource_path.as_ref().map(|p| p.subresource.clone()).unwrap_or_default(),
        namespace: resource_path.as_ref().map(|p| p.namespace.clone()).unwrap_or_default(),
        code: 0,
        received_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default(),
    };
    let response = match user {
        None => error_response(&ApiError::new(401, "Unauthorized", "Unauthorized")),
        Some(user) => {
            let outcome = apply_faults(&mut state.faults.lock().unwrap(), verb, &record.resource, &record.user_agent);
            if !outcome.delay.is_zero() {
                actix_web::rt::time::sleep(outcome.delay).await;
            }
            let uri = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(req.path()).to_string();
            let authorized =
                crate::authz::authorize(&state.cluster.lock().unwrap(), &user, req.method().as_str(), &uri);
            match (outcome.fail_with, authorized) {
                (Some(code), _) => {
                    error_response(&ApiError::new(code, "InternalError", format!("injected fault: {code}")))
                }
                (None, Err(denied)) => error_response(&denied),
                (None, Ok(())) => serve(&state, &req, &body, &query, resource_path, verb, &user).await,
            }
        }
    };
    record.code = response.status().as_u16();
    state.log.lock().unwrap().push(record);
    response
}

async fn serve(
    state: &web::Data<State>,
    req: &HttpRequest,
    body: &web::Bytes,
    query: &HashMap<String, String>,
    resource_path: Option<ResourcePath>,
    verb: &str,
    user: &UserInfo,
) -> HttpResponse {
    let Some(p) = resource_path else {
        return match discovery::serve(state, req.path()) {
            Some(body) => json_response(200, &body, &[]),
            None => error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource")),
        };
    };
    let rt = {
        let cluster = state.cluster.lock().unwrap();
        cluster.registry.find(&p.group, &p.version, &p.resource).cloned()
    };
    let Some(rt) = rt else {
        return error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    };
    if !p.subresource.is_empty() && !crate::registry::subresources(&rt).contains(&p.subresource.as_str()) {
        return error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    }
    let table = req.headers().get("accept").and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("as=Table"));
    if p.subresource == "log" && verb == "get" {
        return pod_log(state, &rt, &p, query);
    }
    if p.subresource == "scale" {
        let content_type = req.headers().get("content-type").and_then(|c| c.to_str().ok()).unwrap_or_default();
        let patch_type = PatchType::from_content_type(content_type).filter(|_| verb == "patch");
        let mut opts = write_options(query);
        opts.field_manager.get_or_insert_with(|| user_agent_manager(req));
        return match super::scale::serve(state, &rt, &p, verb, body, patch_type, &opts, user).await {
            Ok(scale) => json_response(200, &scale, &[]),
            Err(e) => error_response(&e),
        };
    }
    let result = match verb {
        "get" => get(state, &rt, &p, table),
        "list" => list(state, &rt, &p, query, table),
        "watch" => return watch::serve(state.clone(), rt, p, query, table),
        "create" if p.subresource == "eviction" => {
            crate::controllers::pdb::evict(state, &rt, &p.namespace, &p.name).map(|v| (201, v, vec![]))
        }
        "create" => write(state, &rt, &p, verb, body, req, query, user).await,
        "update" | "patch" => write(state, &rt, &p, verb, body, req, query, user).await,
        "delete" => delete(state, &rt, &p, body, query, user).await,
        "deletecollection" => delete_collection(state, &rt, &p, query, user).await,
        _ => Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    };
    match result {
        Ok((code, body, warnings)) => json_response(code, &body, &warnings),
        Err(e) => error_response(&e),
    }
}

type Served = Result<(u16, Value, Vec<String>), ApiError>;

/// `kubectl logs`: what a container of a pod the kubelet runs as a process has printed
/// (`container` chooses one; `tailLines` keeps the last lines).
fn pod_log(state: &State, rt: &ResourceType, p: &ResourcePath, query: &HashMap<String, String>) -> HttpResponse {
    let pod = match state.cluster.lock().unwrap().get(rt, &p.namespace, &p.name) {
        Ok(pod) => pod,
        Err(e) => return error_response(&e),
    };
    let containers: Vec<&str> =
        pod["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let container = match (query.get("container"), containers.as_slice()) {
        (Some(c), _) if containers.contains(&c.as_str()) => c.clone(),
        (None, [only]) => only.to_string(),
        (Some(c), _) => {
            return error_response(&ApiError::bad_request(format!("container {c} is not valid for pod {}", p.name)));
        }
        (None, _) => {
            return error_response(&ApiError::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                p.name,
                containers.join(" ")
            )));
        }
    };
    let text = state
        .pods_dir
        .get()
        .and_then(|root| std::fs::read_to_string(crate::kubelet::container_log(root, &pod, &container)).ok())
        .unwrap_or_default();
    let text = match query.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    };
    HttpResponse::Ok().content_type("text/plain").body(text)
}

fn get(state: &State, rt: &ResourceType, p: &ResourcePath, table: bool) -> Served {
    let cluster = state.cluster.lock().unwrap();
    let object = cluster.get(rt, &p.namespace, &p.name)?;
    if table {
        return Ok((200, table::table(rt, &[object], &cluster.store.resource_version().to_string()), vec![]));
    }
    Ok((200, object, vec![]))
}

fn list(state: &State, rt: &ResourceType, p: &ResourcePath, query: &HashMap<String, String>, table: bool) -> Served {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let after = query.get("continue").filter(|c| !c.is_empty()).map(|c| decode_continue(c)).transpose()?;
    let cluster = state.cluster.lock().unwrap();
    let ns = (rt.namespaced && !p.namespace.is_empty()).then_some(p.namespace.as_str());
    let mut items = Vec::new();
    let mut more = false;
    for object in cluster.store.list(&rt.key(), ns) {
        let key = crate::store::key_of(object);
        if after.as_ref().is_some_and(|a| &key <= a) {
            continue;
        }
        // Selectors see the object as this API version serves it.
        let served = crate::conversion::served_view(rt, object);
        if !labels.matches(&served["metadata"]["labels"]) || !fields.matches(&served) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(crate::conversion::from_storage(rt, object));
    }
    let rv = cluster.store.resource_version().to_string();
    let mut metadata = json!({"resourceVersion": rv});
    if more && let Some(last) = items.last() {
        metadata["continue"] = Value::String(encode_continue(&crate::store::key_of(last)));
    }
    if table {
        // kubectl pages through tables too (`limit=500`): the token must be in the table.
        let mut table = table::table(rt, &items, &rv);
        table["metadata"] = metadata;
        return Ok((200, table, vec![]));
    }
    Ok((
        200,
        json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind), "metadata": metadata, "items": items}),
        vec![],
    ))
}

fn encode_continue(key: &(String, String)) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}/{}", key.0, key.1))
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ApiError::bad_request("invalid continue token"))?;
    let text = String::from_utf8(bytes).map_err(|_| ApiError::bad_request("invalid continue token"))?;
    let (ns, name) = text.split_once('/').ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
    Ok((ns.to_string(), name.to_string()))
}

/// Decodes a request body: JSON, protobuf (kubectl's generators), or YAML for apply patches.
fn decode_body(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    if body.starts_with(crate::protobuf::MAGIC) {
        return crate::protobuf::decode(body);
    }
    if yaml {
        let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
        return serde_saphyr::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

fn write_options(query: &HashMap<String, String>) -> WriteOptions {
    WriteOptions {
        field_manager: query.get("fieldManager").cloned(),
        field_validation: FieldValidation::parse(query.get("fieldValidation").map(String::as_str)),
        dry_run: query.get("dryRun").is_some_and(|d| d == "All"),
        force: query.get("force").is_some_and(|f| f == "true"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn write(
    state: &web::Data<State>,
    rt: &ResourceType,
    p: &ResourcePath,
    verb: &str,
    body: &web::Bytes,
    req: &HttpRequest,
    query: &HashMap<String, String>,
    user: &UserInfo,
) -> Served {
    let content_type = req.headers().get("content-type").and_then(|c| c.to_str().ok()).unwrap_or("application/json");
    let patch_type = if verb == "patch" {
        Some(PatchType::from_content_type(content_type).ok_or_else(|| {
            ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"))
        })?)
    } else {
        None
    };
    let object = decode_body(body, patch_type == Some(PatchType::Apply))?;
    let mut opts = write_options(query);
    if opts.field_manager.is_none() && patch_type != Some(PatchType::Apply) {
        opts.field_manager = Some(user_agent_manager(req));
    }
    let sub = (!p.subresource.is_empty()).then_some(p.subresource.as_str());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let pending = {
            let mut cluster = state.cluster.lock().unwrap();
            match (verb, patch_type) {
                ("create", _) => cluster.prepare_create(rt, &p.namespace, object.clone(), &opts),
                ("update", _) => cluster.prepare_update(rt, &p.namespace, &p.name, object.clone(), sub, &opts),
                (_, Some(pt)) => cluster.prepare_patch(rt, &p.namespace, &p.name, pt, &object, sub, &opts),
                _ => Err(ApiError::bad_request("unsupported write")),
            }
        }?;
        if patch_type == Some(PatchType::Apply) {
            crate::authz::authorize_create_by_apply(&state.cluster.lock().unwrap(), user, &pending)?;
        }
        crate::authz::check_escalation(&state.cluster.lock().unwrap(), user, &pending)?;
        let warnings = crate::admission::review(state, &pending, user).await?;
        let created = pending.old.is_none();
        let mut all_warnings = pending.warnings.clone();
        all_warnings.extend(warnings);
        let committed = {
            let mut cluster = state.cluster.lock().unwrap();
            cluster.commit(pending)
        };
        match committed {
            Ok(object) => return Ok((if created { 201 } else { 200 }, object, all_warnings)),
            // A patch is re-applied to the newest object when it changed during admission.
            Err(e) if e.code == 409 && verb == "patch" && attempts < 5 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The real server names unnamed writers after their user agent.
fn user_agent_manager(req: &HttpRequest) -> String {
    let agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    agent.split('/').next().unwrap_or(agent).to_string()
}

fn delete_options(body: &[u8], query: &HashMap<String, String>) -> DeleteOptions {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    DeleteOptions {
        propagation: body["propagationPolicy"]
            .as_str()
            .map(String::from)
            .or_else(|| query.get("propagationPolicy").cloned()),
        grace_period_seconds: body["gracePeriodSeconds"]
            .as_i64()
            .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        precondition_uid: body["preconditions"]["uid"].as_str().map(String::from),
        precondition_rv: body["preconditions"]["resourceVersion"].as_str().map(String::from),
        dry_run: query.get("dryRun").is_some_and(|d| d == "All")
            || body["dryRun"].as_array().is_some_and(|d| !d.is_empty()),
    }
}

async fn delete(
    state: &web::Data<State>,
    rt: &ResourceType,
    p: &ResourcePath,
    body: &web::Bytes,
    query: &HashMap<String, String>,
    user: &UserInfo,
) -> Served {
    let opts = delete_options(body, query);
    let old = state.cluster.lock().unwrap().get(rt, &p.namespace, &p.name)?;
    let pending = crate::cluster::PendingWrite {
        rt: rt.clone(),
        operation: crate::cluster::Operation::Delete,
        subresource: None,
        old: Some(old.clone()),
        new: old,
        warnings: vec![],
        dry_run: opts.dry_run,
    };
    let warnings = crate::admission::review(state, &pending, user).await?;
    let object = state.cluster.lock().unwrap().delete(rt, &p.namespace, &p.name, &opts)?;
    let gone = object["metadata"]["deletionTimestamp"].is_null();
    // Like the real registries: most kinds answer an immediate deletion with a Status, a few
    // with the deleted object; a deletion that waits (finalizers, grace) returns the object.
    let returns_object = matches!(
        rt.resource.as_str(),
        "pods" | "namespaces" | "serviceaccounts" | "services" | "customresourcedefinitions"
    );
    if gone && !returns_object {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": p.name, "group": rt.group, "kind": rt.resource, "uid": object["metadata"]["uid"]}});
        return Ok((200, status, warnings));
    }
    Ok((200, object, warnings))
}

async fn delete_collection(
    state: &web::Data<State>,
    rt: &ResourceType,
    p: &ResourcePath,
    query: &HashMap<String, String>,
    _user: &UserInfo,
) -> Served {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let opts = delete_options(&[], query);
    let mut cluster = state.cluster.lock().unwrap();
    let ns = (rt.namespaced && !p.namespace.is_empty()).then_some(p.namespace.as_str());
    let keys: Vec<(String, String)> = cluster
        .store
        .list(&rt.key(), ns)
        .filter(|o| {
            let served = crate::conversion::served_view(rt, o);
            labels.matches(&served["metadata"]["labels"]) && fields.matches(&served)
        })
        .map(crate::store::key_of)
        .collect();
    let mut items = Vec::new();
    for (ns, name) in keys {
        items.push(cluster.delete(rt, &ns, &name, &opts)?);
    }
    Ok((
        200,
        json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind), "metadata": {}, "items": items}),
        vec![],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_the_api_server() {
        let p = parse_path("/api/v1/namespaces/kube-devops/pods/web-1/status").unwrap();
        assert_eq!(
            (
                p.group.as_str(),
                p.version.as_str(),
                p.namespace.as_str(),
                p.resource.as_str(),
                p.name.as_str(),
                p.subresource.as_str()
            ),
            ("", "v1", "kube-devops", "pods", "web-1", "status")
        );
        let p = parse_path("/api/v1/namespaces/kube-devops").unwrap();
        assert_eq!((p.resource.as_str(), p.name.as_str(), p.namespace.as_str()), ("namespaces", "kube-devops", ""));
        let p = parse_path("/api/v1/namespaces/x/status").unwrap();
        assert_eq!((p.resource.as_str(), p.name.as_str(), p.subresource.as_str()), ("namespaces", "x", "status"));
        let p = parse_path("/apis/apps/v1/deployments").unwrap();
        assert_eq!((p.group.as_str(), p.resource.as_str(), p.namespace.as_str()), ("apps", "deployments", ""));
        let p = parse_path("/apis/devops.stochastic.io/v1/namespaces/shop/devopspolicies").unwrap();
        assert_eq!((p.namespace.as_str(), p.resource.as_str(), p.name.as_str()), ("shop", "devopspolicies", ""));
        assert!(parse_path("/version").is_none());
        assert!(parse_path("/apis/apps/v1").is_none());
    }
}
