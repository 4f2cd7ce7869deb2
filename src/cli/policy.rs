//! `policy bundle-list` and `policy bundle-show`.

use super::{PolicyCommand, exit};
use crate::api::DevOpsPolicy;
use crate::governance::bundles;
use anyhow::anyhow;
use std::collections::BTreeMap;

pub fn run(command: PolicyCommand) -> anyhow::Result<u8> {
    match command {
        PolicyCommand::BundleList => {
            let mut out = format!("{:<15}DESCRIPTION\n", "NAME");
            for bundle in bundles::all() {
                out.push_str(&format!("{:<15}{}\n", bundle.name, bundle.description));
            }
            crate::yaml::print(&out);
        }
        PolicyCommand::BundleShow { name, namespace, policy_name } => {
            let bundle = bundles::find(&name).ok_or_else(|| anyhow!(bundles::unknown_bundle_message(&name)))?;
            let policy = crate::yaml::to_yaml(&bundle_policy(&bundle, &namespace, policy_name))?;
            crate::yaml::print(&format!("# {}: {}\n{policy}", bundle.name, bundle.description));
        }
    }
    Ok(exit::OK)
}

/// A bundle as a DevOpsPolicy manifest, labelled with the bundle it came from.
pub fn bundle_policy(bundle: &bundles::Bundle, namespace: &str, name: Option<String>) -> DevOpsPolicy {
    let mut policy = DevOpsPolicy::new(&name.unwrap_or_else(|| bundle.name.to_string()), bundle.spec.clone());
    policy.metadata.namespace = Some(namespace.to_string());
    policy.metadata.labels = Some(BTreeMap::from([
        ("devops.stochastic.io/bundle".to_string(), bundle.name.to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "kube-devops".to_string()),
    ]));
    policy
}
