//! `policy checks`, `policy bundle-list` and `policy bundle-show` (export, import and diff
//! are `gitops.rs`).

use super::{PolicyCommand, exit};
use crate::api::CheckId;
use crate::api::bundles::Bundle;
use crate::audit::render::write_columns;
use crate::governance::Rules;
use serde::Serialize;

pub fn run(command: PolicyCommand) -> anyhow::Result<u8> {
    match command {
        PolicyCommand::Checks { output } => crate::yaml::print(&output.render(&catalogue(), checks_table)),
        PolicyCommand::BundleList => {
            let mut out = format!("{:<15}DESCRIPTION\n", "NAME");
            for bundle in Bundle::all() {
                out.push_str(&format!("{:<15}{}\n", bundle.name.as_str(), bundle.description));
            }
            crate::yaml::print(&out);
        }
        PolicyCommand::BundleShow { name, namespace, policy_name } => {
            let bundle = Bundle::of(name);
            let policy = crate::yaml::to_yaml(&bundle.policy(&namespace, policy_name))?;
            crate::yaml::print(&format!("# {}: {}\n{policy}", bundle.name, bundle.description));
        }
        PolicyCommand::Export { namespace, all_namespaces, output } => {
            return super::gitops::export(namespace.as_deref(), all_namespaces, output);
        }
        PolicyCommand::Import { files, namespace, dry_run, prune } => {
            return super::gitops::import(&files, namespace.as_deref(), dry_run, prune);
        }
        PolicyCommand::Diff { files, namespace } => return super::gitops::diff(&files, namespace.as_deref()),
    }
    Ok(exit::OK)
}

/// One check as `policy checks` lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogueEntry {
    id: CheckId,
    category: &'static str,
    severity: crate::api::Severity,
    weight: u64,
    /// Path under `spec` of the DevOpsPolicy setting that turns it on.
    setting: &'static str,
    /// The built-in bundles that turn it on.
    bundles: Vec<&'static str>,
    description: &'static str,
    fix: &'static str,
}

fn catalogue() -> Vec<CatalogueEntry> {
    let bundles: Vec<(&'static str, Rules)> =
        Bundle::all().iter().map(|b| (b.name.as_str(), Rules::from_spec(&b.spec))).collect();
    CheckId::ALL
        .iter()
        .map(|&check| CatalogueEntry {
            id: check,
            category: check.category().as_str(),
            severity: check.default_severity(),
            weight: check.weight(),
            setting: check.setting(),
            bundles: bundles.iter().filter(|(_, rules)| rules.enabled(check)).map(|(name, _)| *name).collect(),
            description: check.description(),
            fix: check.fix(),
        })
        .collect()
}

fn checks_table(entries: &Vec<CatalogueEntry>) -> String {
    let mut rows =
        vec![["ID", "CATEGORY", "SEVERITY", "WEIGHT", "SETTING", "BUNDLES", "DESCRIPTION"].map(String::from).to_vec()];
    for e in entries {
        let bundles = if e.bundles.is_empty() { "-".to_string() } else { e.bundles.join(",") };
        rows.push(vec![
            e.id.to_string(),
            e.category.to_string(),
            e.severity.to_string(),
            e.weight.to_string(),
            e.setting.to_string(),
            bundles,
            e.description.to_string(),
        ]);
    }
    let mut out = String::new();
    write_columns(&mut out, &rows);
    out
}
