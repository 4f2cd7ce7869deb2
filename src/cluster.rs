//! Clients for the cluster (with the timeouts each use needs; one per kubeconfig context for
//! fleets) and the paged lists of `analyze`, the reconcile operator and `policy` commands.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, Config};
use std::time::Duration;

/// Pods are listed in pages of this size so a large cluster never needs one huge response.
const PAGE_SIZE: u32 = 500;

/// A client for the cluster in `KUBECONFIG` (or the in-cluster config), with bounded timeouts
/// so an unreachable cluster is an error within seconds rather than a hang.
pub async fn client() -> anyhow::Result<Client> {
    client_with(Some(Duration::from_secs(60))).await
}

/// A client for leader-election leases: a renewal that cannot finish well within the lease's
/// renewal period must fail (and be retried) rather than hang while the lease expires.
pub async fn lease_client() -> anyhow::Result<Client> {
    client_with(Some(Duration::from_secs(5))).await
}

/// A client for long-lived watches: no read timeout (an idle watch sends nothing for
/// minutes; the server ends it with `timeoutSeconds` and the watcher resumes).
pub async fn watch_client() -> anyhow::Result<Client> {
    client_with(None).await
}

async fn client_with(read_timeout: Option<Duration>) -> anyhow::Result<Client> {
    let mut config =
        Config::infer().await.map_err(|e| anyhow::anyhow!("no usable kubeconfig or in-cluster config: {e}"))?;
    configure(&mut config, read_timeout);
    Client::try_from(config).map_err(|e| anyhow::anyhow!("cannot build a Kubernetes client: {e}"))
}

/// The settings every client of the components has: timeouts, and who is asking.
pub fn configure(config: &mut Config, read_timeout: Option<Duration>) {
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = read_timeout;
    // The read timeout runs while a pooled connection idles too: a request sent on one that
    // sat idle longer than the timeout would fail at once without this.
    config.reset_reader_on_write = read_timeout.is_some();
    // Which replica sent a request, in the API server's audit log (as client-go's
    // `component/version (pod)` agents do).
    if let Ok(agent) = http::HeaderValue::from_str(&user_agent()) {
        config.headers.push((http::header::USER_AGENT, agent));
    }
}

/// `kube-devops/VERSION (POD_NAME)`: the pod name from the downward API, else the host name.
pub fn user_agent() -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let version = env!("CARGO_PKG_VERSION");
    match env("POD_NAME").or_else(|| env("HOSTNAME")) {
        Some(pod) => format!("kube-devops/{version} ({pod})"),
        None => format!("kube-devops/{version}"),
    }
}

/// Every pod of `namespace` (or of the whole cluster), page by page.
pub async fn list_pods(client: Client, namespace: Option<&str>) -> Result<Vec<Pod>, kube::Error> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    list_all(&api).await
}

/// Every object `api` lists, page by page.
pub async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut objects = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api.list(&params).await?;
        objects.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(objects),
        }
    }
}

/// A client for one context of a kubeconfig, every request bounded by `timeout`.
pub async fn context_client(
    kubeconfig: &kube::config::Kubeconfig,
    context: &str,
    timeout: Duration,
) -> anyhow::Result<Client> {
    let options = kube::config::KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let mut config = Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|e| anyhow::anyhow!("unusable kubeconfig entry: {e}"))?;
    configure(&mut config, Some(timeout));
    config.connect_timeout = Some(timeout.min(Duration::from_secs(10)));
    Client::try_from(config).map_err(|e| anyhow::anyhow!("cannot build a Kubernetes client: {e}"))
}
