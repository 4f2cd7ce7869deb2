//! kube-devops: a Kubernetes governance platform. The library holds everything; the binary
//! only calls [`cli::main`].

pub mod admission;
pub mod api;
pub mod artefacts;
pub mod audit;
pub mod bootstrap;
pub mod cli;
pub mod cluster;
pub mod dashboard;
pub mod events;
#[cfg(test)]
pub mod fixtures;
pub mod fleet;
pub mod gitops;
pub mod governance;
pub mod http;
pub mod labels;
pub mod leader;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod podcache;
pub mod quantity;
pub mod reconcile;
pub mod traces;
pub mod watch;
pub mod workload;
pub mod yaml;
