//! `multi-cluster list-contexts` and `multi-cluster analyze`: the shell that reaches every
//! context of KUBECONFIG, a few at a time, each within its timeout. Scores, the aggregate and
//! the exit code are decided in `crate::fleet`.

use super::{MultiClusterCommand, exit};
use crate::api::DevOpsPolicy;
use crate::api::bundles::{Bundle, BundleName};
use crate::audit::render::{OutputFormat, write_columns};
use crate::fleet::{ClusterTally, Failure, Judge, Reachability, assess_cluster};
use crate::governance::Rules;
use crate::workload::Workload;
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::config::Kubeconfig;
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// How many clusters are read at once.
pub const CONCURRENCY: usize = 4;

pub fn run(command: MultiClusterCommand) -> anyhow::Result<u8> {
    let kubeconfig = Kubeconfig::read().map_err(|e| anyhow::anyhow!("cannot read the kubeconfig: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match command {
        MultiClusterCommand::ListContexts { timeout, output } => {
            runtime.block_on(list_contexts(&kubeconfig, timeout, output))
        }
        MultiClusterCommand::Analyze {
            contexts,
            bundle,
            use_cluster_policies,
            per_cluster,
            output,
            timeout,
            fail_below,
            require_all,
        } => {
            let contexts = select_contexts(&kubeconfig, contexts)?;
            let judge = if use_cluster_policies {
                Policies::Cluster
            } else {
                Policies::Bundle(Box::new(Bundle::of(bundle.unwrap_or(BundleName::Baseline))))
            };
            let label = match &judge {
                Policies::Cluster => "each cluster's own DevOpsPolicies".to_string(),
                Policies::Bundle(bundle) => format!("bundle {}", bundle.name),
            };
            let outcomes =
                runtime.block_on(each_cluster(&kubeconfig, contexts, timeout, |client| read(client, &judge)));
            let report = crate::fleet::report(label, outcomes, per_cluster);
            crate::yaml::print(&crate::fleet::render::render(&report, output));
            for failed in &report.failed {
                eprintln!("error: context {}: {}: {}", failed.context, failed.failure.status, failed.failure.reason);
            }
            let code = crate::fleet::exit_code(&report, fail_below, require_all);
            if report.clusters.is_empty() {
                eprintln!("error: no cluster could be read");
            } else if code == exit::ERROR {
                eprintln!("error: {} of the clusters could not be read (--require-all)", report.failed.len());
            } else if code == exit::BELOW_THRESHOLD {
                let threshold = fail_below.unwrap_or_default();
                eprintln!("aggregate score {} is below --fail-below {threshold}", report.aggregate.score);
            }
            Ok(code)
        }
    }
}

/// `--contexts`, each of which must exist; every context when none is named.
fn select_contexts(kubeconfig: &Kubeconfig, wanted: Vec<String>) -> anyhow::Result<Vec<String>> {
    let known: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    if wanted.is_empty() {
        anyhow::ensure!(!known.is_empty(), "the kubeconfig has no contexts");
        return Ok(known);
    }
    for name in &wanted {
        anyhow::ensure!(known.contains(name), "no context {name:?} in the kubeconfig (it has: {})", known.join(", "));
    }
    Ok(wanted)
}

/// Runs `work` against every context, at most [`CONCURRENCY`] at once, each bounded by
/// `timeout` (building its client included); outcomes in context order.
async fn each_cluster<T, F, Fut>(
    kubeconfig: &Kubeconfig,
    contexts: Vec<String>,
    timeout: Duration,
    work: F,
) -> Vec<(String, Result<T, Failure>)>
where
    F: Fn(kube::Client) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let work = &work;
    let mut outcomes: Vec<(String, Result<T, Failure>)> = futures::stream::iter(contexts)
        .map(|context| async move {
            let attempt = async {
                let client = crate::cluster::context_client(kubeconfig, &context, timeout)
                    .await
                    .map_err(|e| Failure { status: Reachability::Error, reason: format!("{e:#}") })?;
                work(client).await
            };
            let outcome =
                tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| Err(Failure::timed_out(timeout)));
            (context, outcome)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    outcomes
}

enum Policies {
    Bundle(Box<Bundle>),
    Cluster,
}

/// Reads one cluster's pods (pages of 500, as `analyze`) and, with `--use-cluster-policies`,
/// its DevOpsPolicies, and scores them.
async fn read(client: kube::Client, policies: &Policies) -> Result<ClusterTally, Failure> {
    let cluster_policies: Vec<DevOpsPolicy> = match policies {
        Policies::Cluster => crate::cluster::list_all(&Api::all(client.clone())).await.map_err(|e| Failure::of(&e))?,
        Policies::Bundle(_) => Vec::new(),
    };
    let pods = crate::cluster::list_pods(client, None).await.map_err(|e| Failure::of(&e))?;
    let workloads: Vec<Workload> = pods.into_iter().filter_map(Workload::from_pod).collect();
    let now = Timestamp::now();
    Ok(match policies {
        Policies::Bundle(bundle) => assess_cluster(&workloads, &Judge::Rules(&Rules::from_spec(&bundle.spec)), now),
        Policies::Cluster => assess_cluster(&workloads, &Judge::ClusterPolicies(&cluster_policies), now),
    })
}

/// One line of `list-contexts`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextStatus {
    context: String,
    cluster: String,
    current: bool,
    status: Reachability,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

async fn list_contexts(kubeconfig: &Kubeconfig, timeout: Duration, output: OutputFormat) -> anyhow::Result<u8> {
    let contexts = select_contexts(kubeconfig, Vec::new())?;
    let outcomes = each_cluster(kubeconfig, contexts, timeout, |client| async move {
        client.apiserver_version().await.map(|info| info.git_version).map_err(|e| Failure::of(&e))
    })
    .await;
    let statuses: Vec<ContextStatus> = outcomes
        .into_iter()
        .map(|(context, outcome)| {
            let entry = kubeconfig.contexts.iter().find(|c| c.name == context);
            let cluster = entry.and_then(|c| c.context.as_ref()).map(|c| c.cluster.clone()).unwrap_or_default();
            let current = kubeconfig.current_context.as_deref() == Some(context.as_str());
            match outcome {
                Ok(version) => ContextStatus {
                    context,
                    cluster,
                    current,
                    status: Reachability::Reachable,
                    version: Some(version),
                    reason: None,
                },
                Err(failure) => ContextStatus {
                    context,
                    cluster,
                    current,
                    status: failure.status,
                    version: None,
                    reason: Some(failure.reason),
                },
            }
        })
        .collect();
    let text = match output {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(&statuses)?),
        OutputFormat::Yaml => crate::yaml::to_yaml(&statuses)?,
        OutputFormat::Table => {
            let mut rows = vec![["CURRENT", "CONTEXT", "CLUSTER", "STATUS", "DETAIL"].map(String::from).to_vec()];
            for s in &statuses {
                let detail = s.version.clone().or_else(|| s.reason.clone()).unwrap_or_default();
                let current = if s.current { "*" } else { "" };
                rows.push(vec![current.into(), s.context.clone(), s.cluster.clone(), s.status.to_string(), detail]);
            }
            let mut out = String::new();
            write_columns(&mut out, &rows);
            out
        }
    };
    crate::yaml::print(&text);
    Ok(exit::OK)
}
