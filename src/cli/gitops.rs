//! `policy export`, `policy import` and `policy diff`: the shell around `gitops` that reads
//! files and talks to the API server. Decisions (what is exported, valid, different) are in
//! `crate::gitops`.

use super::{DryRun, ExportFormat, exit};
use crate::api::DevOpsPolicy;
use crate::gitops::diff::{Drift, compare, removal_patch};
use crate::gitops::documents::{Documents, Namespacing, PolicyDocument};
use crate::gitops::{FIELD_MANAGER, key, portable};
use anyhow::{Context, anyhow};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Config};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The kubeconfig's current context, for `exported-from` (`in-cluster` in a pod).
fn context_name() -> String {
    let kubeconfig = kube::config::Kubeconfig::read().ok();
    kubeconfig.and_then(|k| k.current_context).unwrap_or_else(|| "in-cluster".to_string())
}

pub fn export(namespace: Option<&str>, all_namespaces: bool, output: ExportFormat) -> anyhow::Result<u8> {
    let runtime = runtime()?;
    let (policies, scope) = runtime.block_on(async {
        let client = crate::cluster::client().await?;
        let (api, scope): (Api<DevOpsPolicy>, String) = match (all_namespaces, namespace) {
            (true, _) => (Api::all(client), "every namespace".into()),
            (false, Some(ns)) => (Api::namespaced(client, ns), format!("namespace {ns}")),
            (false, None) => {
                let ns = client.default_namespace().to_string();
                (Api::namespaced(client, &ns), format!("namespace {ns}"))
            }
        };
        let policies = crate::cluster::list_all(&api).await.map_err(|e| anyhow!("cannot list DevOpsPolicies: {e}"))?;
        anyhow::Ok((policies, scope))
    })?;
    let from = context_name();
    let now = Timestamp::from_second(Timestamp::now().as_second())?;
    let exported = crate::gitops::export(&policies, &from, now);
    let text = match output {
        ExportFormat::Yaml => crate::yaml::to_yaml_stream(&exported)?,
        ExportFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": exported});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
    };
    crate::yaml::print(&text);
    eprintln!("exported {} DevOpsPolicies from {scope} of {from}", exported.len());
    Ok(exit::OK)
}

/// The namespace documents without one land in: `-n`, else the kubeconfig's, else `default`.
fn namespacing(namespace: Option<&str>, runtime: &tokio::runtime::Runtime) -> Namespacing {
    match namespace {
        Some(ns) => Namespacing { default: ns.to_string(), required: true },
        None => {
            let config = runtime.block_on(Config::infer()).ok();
            let default = config.map_or_else(|| "default".to_string(), |c| c.default_namespace);
            Namespacing { default, required: false }
        }
    }
}

/// Reads every file (`-` is stdin) and prints the documents that failed.
fn read(files: &[PathBuf], namespacing: Namespacing) -> Documents {
    let mut documents = Documents::new(namespacing);
    for file in files {
        if file.as_os_str() == crate::audit::input::STDIN {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => documents.add_text("<stdin>", &text),
                Err(e) => documents.add_unreadable("<stdin>", &e.to_string()),
            }
            continue;
        }
        let name = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => documents.add_text(&name, &text),
            Err(e) => documents.add_unreadable(&name, &e.to_string()),
        }
    }
    for error in &documents.errors {
        eprintln!("error: {error}");
    }
    documents
}

/// The live policies of each namespace.
async fn live_policies(client: &Client, namespaces: &[String]) -> anyhow::Result<Vec<DevOpsPolicy>> {
    let mut live = Vec::new();
    for namespace in namespaces {
        let api: Api<DevOpsPolicy> = Api::namespaced(client.clone(), namespace);
        let policies = crate::cluster::list_all(&api)
            .await
            .map_err(|e| anyhow!("cannot list the DevOpsPolicies of namespace {namespace}: {e}"))?;
        live.extend(policies);
    }
    Ok(live)
}

fn namespaces(documents: &Documents, namespace: Option<&str>) -> Vec<String> {
    let mut namespaces = documents.namespaces();
    namespaces.extend(namespace.map(str::to_string));
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

pub fn import(files: &[PathBuf], namespace: Option<&str>, dry_run: Option<DryRun>, prune: bool) -> anyhow::Result<u8> {
    if prune && dry_run == Some(DryRun::Client) {
        eprintln!("error: --prune needs the cluster to know what it would delete: use --dry-run=server");
        return Ok(exit::ERROR);
    }
    let runtime = runtime()?;
    let documents = read(files, namespacing(namespace, &runtime));
    if !documents.errors.is_empty() {
        eprintln!("error: {} document(s) invalid; nothing was applied", documents.errors.len());
        return Ok(exit::ERROR);
    }
    if documents.policies.is_empty() {
        eprintln!("error: no DevOpsPolicy in the files; nothing was applied");
        return Ok(exit::ERROR);
    }
    if dry_run == Some(DryRun::Client) {
        for document in &documents.policies {
            println!("devopspolicy {} valid ({}) (dry run)", key(&document.policy), document.source);
        }
        return Ok(exit::OK);
    }
    let server_dry_run = dry_run == Some(DryRun::Server);
    let suffix = if server_dry_run { " (server dry run)" } else { "" };
    runtime.block_on(async {
        let client = crate::cluster::client().await?;
        let scope = namespaces(&documents, namespace);
        let before: BTreeMap<String, DevOpsPolicy> =
            live_policies(&client, &scope).await?.into_iter().map(|p| (key(&p), p)).collect();
        let mut failed = 0;
        for document in &documents.policies {
            match apply(&client, document, server_dry_run).await {
                Ok(after) => {
                    let verb = match before.get(&key(&after)) {
                        None => "created",
                        Some(old) if portable(old) == portable(&after) => "unchanged",
                        Some(_) => "configured",
                    };
                    println!("devopspolicy {} {verb}{suffix}", key(&after));
                }
                Err(e) => {
                    eprintln!("error: {}: {e:#}", document.source);
                    failed += 1;
                }
            }
        }
        if failed > 0 {
            let pruning = if prune { "; nothing was pruned" } else { "" };
            eprintln!("error: {failed} of {} policies failed{pruning}", documents.policies.len());
            return Ok(exit::ERROR);
        }
        if let (true, Some(namespace)) = (prune, namespace) {
            let wanted: Vec<String> = documents.policies.iter().map(|d| key(&d.policy)).collect();
            let api: Api<DevOpsPolicy> = Api::namespaced(client.clone(), namespace);
            let params = DeleteParams { dry_run: server_dry_run, ..DeleteParams::default() };
            for (name, policy) in before.iter().filter(|(k, _)| !wanted.contains(k)) {
                if policy.metadata.namespace.as_deref() != Some(namespace) {
                    continue;
                }
                let policy_name = policy.metadata.name.as_deref().unwrap_or_default();
                match api.delete(policy_name, &params).await {
                    Ok(_) => println!("devopspolicy {name} pruned{suffix}"),
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => {
                        eprintln!("error: cannot prune devopspolicy {name}: {e}");
                        return Ok(exit::ERROR);
                    }
                }
            }
        }
        anyhow::Ok(exit::OK)
    })
}

/// Server-side apply of one policy (forced), then the removal of spec fields another manager
/// set that the file does not have. Returns the object as stored (or as it would be).
async fn apply(client: &Client, document: &PolicyDocument, dry_run: bool) -> anyhow::Result<DevOpsPolicy> {
    let policy = &document.policy;
    let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
    let name = policy.metadata.name.as_deref().unwrap_or_default();
    let api: Api<DevOpsPolicy> = Api::namespaced(client.clone(), namespace);
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let applied = api.patch(name, &params, &Patch::Apply(policy)).await.context("server-side apply failed")?;
    let Some(removals) = removal_patch(&applied, policy) else { return Ok(applied) };
    let params = PatchParams { dry_run, field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    api.patch(name, &params, &Patch::Merge(removals)).await.context("removing fields the file does not set failed")
}

pub fn diff(files: &[PathBuf], namespace: Option<&str>) -> anyhow::Result<u8> {
    let runtime = runtime()?;
    let documents = read(files, namespacing(namespace, &runtime));
    let scope = namespaces(&documents, namespace);
    let live = runtime.block_on(async {
        let client = crate::cluster::client().await?;
        live_policies(&client, &scope).await
    })?;
    let diffs = compare(&live, &documents.policies, &scope);
    let mut out = String::new();
    for diff in &diffs {
        out.push_str(&diff.text);
    }
    crate::yaml::print(&out);
    let count = |drift| diffs.iter().filter(|d| d.drift == drift).count();
    if !documents.errors.is_empty() {
        eprintln!("error: {} document(s) could not be compared", documents.errors.len());
        return Ok(exit::ERROR);
    }
    if diffs.is_empty() {
        eprintln!("no changes ({} policies)", documents.policies.len());
        return Ok(exit::OK);
    }
    eprintln!(
        "{} changed, {} new, {} only in the cluster",
        count(Drift::Changed),
        count(Drift::New),
        count(Drift::Missing)
    );
    Ok(exit::CHANGES)
}
