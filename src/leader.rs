//! Leader election for the components that must act once however many replicas run (the
//! watch controller, the bootstrap operator): a Lease held with kube-lease-manager (server-side
//! apply with conflict detection, the pod name as identity), a task that runs only while this
//! replica leads (started again if it ends while leading), and the lease released on
//! shutdown. A standby takes over when the lease it last read expires (at most 15 s).

use anyhow::Context;
use kube_lease_manager::LeaseManagerBuilder;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a leader holds the lease without renewing it (seconds).
const LEASE_DURATION: u64 = 15;
/// How long before expiry the leader renews (seconds).
const LEASE_GRACE: u64 = 5;
/// How long to wait before starting the leader's task again after it ended.
const RESTART_DELAY: Duration = Duration::from_secs(5);
/// How long to wait before trying again to read or create the lease.
const RETRY: Duration = Duration::from_secs(10);

/// Which lease, and who this replica is.
#[derive(Clone, Debug)]
pub struct Election {
    pub lease_name: String,
    pub namespace: String,
    pub identity: String,
    /// What the log lines start with (`watch`, `operator`).
    pub component: &'static str,
}

impl Election {
    /// The lease `lease_name` in `$POD_NAMESPACE` (default `kube-devops`), with `$POD_NAME`
    /// (else the host name) as identity.
    pub fn from_env(lease_name: &str, component: &'static str) -> Election {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Election {
            lease_name: lease_name.into(),
            namespace: env("POD_NAMESPACE").unwrap_or_else(|| crate::manifests::NAMESPACE.into()),
            identity: env("POD_NAME").or_else(|| env("HOSTNAME")).unwrap_or_else(|| format!("kube-devops-{component}")),
            component,
        }
    }
}

/// A one-shot signal to stop: release the lease and end.
#[derive(Clone)]
pub struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub async fn triggered(&self) {
        let _ = self.0.subscribe().wait_for(|stop| *stop).await;
    }
}

/// Takes part in the election until `shutdown`: runs `lead()` while this replica holds the
/// lease, aborts it and calls `stand_by()` when the lease is lost. `ready` turns true once the
/// lease could be read or created (the API server answers and RBAC allows it).
pub async fn run<F, Fut>(
    client: kube::Client,
    election: Election,
    ready: Arc<AtomicBool>,
    shutdown: Shutdown,
    mut lead: F,
    stand_by: impl Fn(),
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Election { lease_name, namespace, identity, component } = election;
    let manager = loop {
        let built = LeaseManagerBuilder::new(client.clone(), &lease_name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(LEASE_DURATION)
            .with_grace(LEASE_GRACE)
            .build()
            .await;
        match built {
            Ok(manager) => break manager,
            Err(e) => {
                eprintln!("{component}: cannot use the lease {namespace}/{lease_name}: {e}; retrying in 10 s");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.triggered() => return Ok(()),
                }
            }
        }
    };
    ready.store(true, Ordering::Release);
    let (mut leading, election) = manager.watch().await;
    let mut task: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let leader = *leading.borrow_and_update();
        match (leader, task.is_some()) {
            (true, false) => {
                eprintln!("{component}: {identity} leads");
                task = Some(tokio::spawn(lead()));
            }
            (false, true) => {
                eprintln!("{component}: {identity} lost the lease: standing by");
                task.take().unwrap().abort();
                stand_by();
            }
            _ => {}
        }
        let running = async {
            match task.as_mut() {
                Some(handle) => handle.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break },
            _ = shutdown.triggered() => break,
            ended = running => {
                // The leader's work must not stop while it holds the lease: start it again.
                eprintln!("{component}: the leader's task ended ({ended:?}); restarting it in 5 s");
                task = None;
                stand_by();
                tokio::time::sleep(RESTART_DELAY).await;
            }
        }
    }
    if let Some(task) = task {
        task.abort();
    }
    stand_by();
    // Dropping the receiver makes the manager release the lease and end.
    drop(leading);
    election.await.context("the election task panicked")?.context("releasing the lease")?;
    Ok(())
}

/// Runs an elected component until SIGTERM/SIGINT: serves `/healthz`, `/readyz` (ready once
/// the lease can be read) and `/metrics` on `addr` from the start, so every replica passes
/// its probes; takes part in the election of `lease_name`, running `lead()` while leading
/// (see [`run`]); on shutdown releases the lease (waiting at most 5 s).
pub async fn serve_elected<F, Fut>(
    component: &'static str,
    lease_name: &str,
    addr: &str,
    metrics: crate::metrics::Metrics,
    lead: F,
    stand_by: impl Fn() + Send + 'static,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown = Shutdown::default();
    let election = Election::from_env(lease_name, component);
    eprintln!("{component}: serving HTTP on {addr} as {}", election.identity);
    let client = crate::cluster::lease_client().await?;
    let elected = tokio::spawn(run(client, election, ready.clone(), shutdown.clone(), lead, stand_by));
    crate::http::serve(addr, metrics, ready, "the leader-election lease could not be read yet").await?;
    shutdown.trigger();
    match tokio::time::timeout(Duration::from_secs(5), elected).await {
        Ok(Ok(Err(e))) => eprintln!("{component}: leader election: {e:#}"),
        Err(_) => eprintln!("{component}: the lease was not released within 5 s"),
        _ => {}
    }
    Ok(())
}
