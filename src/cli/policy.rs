//! `policy bundle-list` and `policy bundle-show` (export, import and diff are `gitops.rs`).

use super::{PolicyCommand, exit};
use crate::api::bundles::Bundle;

pub fn run(command: PolicyCommand) -> anyhow::Result<u8> {
    match command {
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
