//! `audit` (manifests) and `analyze` (cluster): evaluate, report, gate.

use super::{AuditOptions, exit};
use crate::api::DevOpsPolicy;
use crate::api::bundles::{Bundle, BundleName};
use crate::audit::input::{Inputs, SourcedWorkload};
use crate::audit::render::render;
use crate::audit::report::{AuditReport, PolicySource};
use crate::governance::Rules;
use anyhow::{Context, anyhow, bail};
use k8s_openapi::jiff::Timestamp;
use std::path::{Path, PathBuf};

pub fn audit(paths: &[PathBuf], opts: &AuditOptions) -> anyhow::Result<u8> {
    let (source, rules) = select_policy(opts)?;
    let inputs = Inputs::read(paths, &mut std::io::stdin().lock());
    let mut report = AuditReport::build(source, &rules, &inputs.workloads, Timestamp::now());
    report.other_objects = inputs.others;
    report.errors = inputs.errors;
    let read: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok(finish(&report, opts, &read.join(", ")))
}

pub fn analyze(namespace: Option<&str>, opts: &AuditOptions) -> anyhow::Result<u8> {
    let (source, rules) = select_policy(opts)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let pods = runtime.block_on(async {
        let client = crate::cluster::client().await?;
        crate::cluster::list_pods(client, namespace)
            .await
            .map_err(|e| anyhow!("cannot list pods from the cluster: {e}"))
    })?;
    let workloads = SourcedWorkload::from_pods(pods);
    let report = AuditReport::build(source, &rules, &workloads, Timestamp::now());
    let scope = namespace.map(|n| format!("namespace {n} of the cluster")).unwrap_or_else(|| "the cluster".into());
    Ok(finish(&report, opts, &scope))
}

/// Prints the report and errors, and picks the exit code: input errors beat a low score, so a
/// CI gate never passes on input it could not read.
fn finish(report: &AuditReport, opts: &AuditOptions, source: &str) -> u8 {
    crate::yaml::print(&render(report, opts.output, source));
    for e in &report.errors {
        eprintln!("error: {}: {}", e.source, e.message);
    }
    if !report.errors.is_empty() {
        eprintln!("error: {} input problem(s); the audit is incomplete", report.errors.len());
        return exit::ERROR;
    }
    match opts.fail_below {
        Some(threshold) if report.summary.score < threshold => {
            eprintln!("score {} is below --fail-below {threshold}", report.summary.score);
            exit::BELOW_THRESHOLD
        }
        _ => exit::OK,
    }
}

/// The policy to apply: `--policy FILE`, `--bundle NAME`, or the baseline bundle.
fn select_policy(opts: &AuditOptions) -> anyhow::Result<(PolicySource, Rules)> {
    if let Some(path) = &opts.policy {
        let policy = read_policy(path)?;
        let name = policy.metadata.name.as_deref().unwrap_or("unnamed");
        let label = format!("DevOpsPolicy {name} from {}", path.display());
        return Ok((PolicySource { label, name: name.to_string() }, Rules::from_spec(&policy.spec)));
    }
    let bundle = Bundle::of(opts.bundle.unwrap_or(BundleName::Baseline));
    Ok((PolicySource::bundle(bundle.name), Rules::from_spec(&bundle.spec)))
}

/// The first DevOpsPolicy document of a YAML file.
fn read_policy(path: &Path) -> anyhow::Result<DevOpsPolicy> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read policy file {}", path.display()))?;
    let docs: Vec<serde_json::Value> =
        crate::yaml::from_documents(&text).with_context(|| format!("{}: not valid YAML", path.display()))?;
    for (i, doc) in docs.iter().enumerate() {
        if doc.get("kind").and_then(|k| k.as_str()) == Some("DevOpsPolicy") {
            let source = format!("{}#{}", path.display(), i + 1);
            // Checked against the CRD's schema as `policy import` checks it: a misspelt field
            // (`forbidLatestTags`), which the API server would prune, would otherwise silently
            // turn a check off and pass a CI gate. A status is the server's: not judged.
            let mut doc = doc.clone();
            if let Some(object) = doc.as_object_mut() {
                object.remove("status");
            }
            let problems = crate::api::schema::validate(&<DevOpsPolicy as kube::CustomResourceExt>::crd(), &doc);
            if !problems.is_empty() {
                bail!("{source}: invalid DevOpsPolicy: {}", problems.join("; "));
            }
            return serde_json::from_value(doc).with_context(|| format!("{source}: invalid DevOpsPolicy"));
        }
    }
    bail!("{}: no DevOpsPolicy document found", path.display())
}
