//! Leader election for the components that must act once however many replicas run (the
//! watch controller, the reconcile operator, the bootstrap operator): a Lease, the pod name
//! as identity, a task that runs only while this replica leads (started again if it ends while
//! leading), and the lease handed back on shutdown.
//!
//! The decisions are client-go's ([`lease`], pure): renew every 2 s; a leader that could not
//! renew for 10 s stops its task (writes nothing more) before the 15 s lease can expire for
//! anyone else, then campaigns again; standbys poll every 2 s, so a released lease is taken
//! within about 2 s and an abandoned one 15 s after its last renewal.

pub mod lease;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use lease::{Attempt, Observation, TIMING, Timing, attempt, deadline};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How long to wait before starting the leader's task again after it ended.
const RESTART_DELAY: Duration = Duration::from_secs(5);

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
            namespace: crate::labels::own_namespace(),
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

/// What one read-and-write of the lease found.
enum Round {
    /// This replica holds the lease (created, renewed or taken over).
    Holding,
    /// Another replica holds it, or wrote it first (a conflict).
    Held(String),
}

/// The lease API of one election, with what this replica has seen of it.
struct Campaign {
    api: Api<Lease>,
    election: Election,
    seen: Observation,
    timing: Timing,
}

impl Campaign {
    /// Reads the lease and acquires, renews or leaves it, as [`attempt`] decides.
    async fn round(&mut self) -> Result<Round, kube::Error> {
        let Election { lease_name, identity, .. } = &self.election;
        let found = self.api.get_opt(lease_name).await?;
        let current = found.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        let now = Instant::now().into_std();
        let written = match attempt(identity, current.as_ref(), &mut self.seen, now, Timestamp::now(), &self.timing) {
            Attempt::HeldBy(holder) => return Ok(Round::Held(holder)),
            Attempt::Create(spec) => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(lease_name.clone()), ..Default::default() },
                    spec: Some(spec.clone()),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| spec)
            }
            Attempt::Update(spec) => {
                let mut lease = found.unwrap_or_default();
                lease.spec = Some(spec.clone());
                self.api.replace(lease_name, &PostParams::default(), &lease).await.map(|_| spec)
            }
        };
        match written {
            Ok(spec) => {
                self.seen.observe(&spec, Instant::now().into_std());
                Ok(Round::Holding)
            }
            // Another replica wrote first (409 Conflict, or 409 AlreadyExists on create).
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Held("another replica".into())),
            Err(e) => Err(e),
        }
    }

    /// Hands the lease back when this replica holds it, so a standby takes it at once.
    async fn release(&self) -> Result<(), kube::Error> {
        let Election { lease_name, identity, .. } = &self.election;
        let Some(mut lease) = self.api.get_opt(lease_name).await? else { return Ok(()) };
        let Some(released) = lease::release(identity, &lease.spec.clone().unwrap_or_default(), Timestamp::now()) else {
            return Ok(());
        };
        lease.spec = Some(released);
        self.api.replace(lease_name, &PostParams::default(), &lease).await.map(|_| ())
    }
}

/// The retry period, stretched by up to 20% so standbys do not all ask at once.
fn jittered(period: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    period + period.mul_f64(0.2 * f64::from(nanos % 1000) / 1000.0)
}

/// The leader's task, and when the lease was last renewed.
struct Leadership {
    task: tokio::task::JoinHandle<()>,
    renewed: Instant,
}

impl Leadership {
    fn deadline(&self, timing: &Timing) -> Instant {
        Instant::from_std(deadline(self.renewed.into_std(), timing))
    }
}

/// The span of a change of leader on this replica (a trace of its own: `acquired` or `lost`),
/// around the log line and the start or stop of the leader's work.
fn transition(component: &'static str, identity: &str, transition: &'static str) -> tracing::Span {
    // A root span: the leader's work is not part of the transition's trace.
    tracing::info_span!(parent: None, "leader transition", component, identity, transition)
}

/// Takes part in the election until `shutdown`: runs `lead()` while this replica holds the
/// lease, aborts it and calls `stand_by()` when the lease is lost or could not be renewed
/// within the renew deadline; hands the lease back at the end. `ready` turns true once the
/// lease could be read (the API server answers and RBAC allows it).
pub async fn run<F, Fut>(
    client: kube::Client,
    election: Election,
    timing: Timing,
    ready: Arc<AtomicBool>,
    shutdown: Shutdown,
    mut lead: F,
    stand_by: impl Fn(),
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (component, identity) = (election.component, election.identity.clone());
    let api = Api::namespaced(client, &election.namespace);
    let mut campaign = Campaign { api, election, seen: Observation::default(), timing };
    let mut leader: Option<Leadership> = None;
    let mut failing = false;
    let stop = |leader: &mut Option<Leadership>, why: &str, stand_by: &dyn Fn()| {
        if let Some(l) = leader.take() {
            transition(component, &identity, "lost").in_scope(|| {
                tracing::info!(component, %identity, reason = why, "stops leading");
                l.task.abort();
                stand_by();
            });
        }
    };
    loop {
        // A leader's round must end by its deadline: a renewal that hangs costs the lead.
        let round = match &leader {
            Some(l) => tokio::time::timeout_at(l.deadline(&timing), campaign.round()).await.ok(),
            None => Some(campaign.round().await),
        };
        let now = Instant::now();
        match round {
            Some(Ok(Round::Holding)) => {
                ready.store(true, Ordering::Release);
                failing = false;
                match &mut leader {
                    Some(l) => l.renewed = now,
                    None => {
                        let task = transition(component, &identity, "acquired").in_scope(|| {
                            tracing::info!(component, %identity, "leads");
                            tokio::spawn(lead())
                        });
                        leader = Some(Leadership { task, renewed: now });
                    }
                }
            }
            Some(Ok(Round::Held(holder))) => {
                ready.store(true, Ordering::Release);
                failing = false;
                stop(&mut leader, &format!("the lease is held by {holder}"), &stand_by);
            }
            // Said once per outage, not every retry period.
            Some(Err(e)) if !failing => {
                let lease = &campaign.election.lease_name;
                tracing::warn!(component, %lease, error = %e, "cannot read or write the lease; retrying");
                failing = true;
            }
            Some(Err(_)) | None => {}
        }
        if leader.as_ref().is_some_and(|l| now >= l.deadline(&timing)) {
            stop(&mut leader, "the lease could not be renewed before the renew deadline", &stand_by);
        }
        let wake = match &leader {
            Some(l) => (now + timing.retry_period).min(l.deadline(&timing)),
            None => now + jittered(timing.retry_period),
        };
        let running = async {
            match leader.as_mut() {
                Some(l) => (&mut l.task).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = shutdown.triggered() => break,
            ended = running => {
                // The leader's work must not stop while it holds the lease: start it again.
                tracing::error!(component, result = ?ended, "the leader's task ended; restarting it in 5 s");
                tokio::time::sleep(RESTART_DELAY).await;
                if let Some(l) = leader.as_mut() {
                    l.task = tokio::spawn(lead());
                }
            }
        }
    }
    stop(&mut leader, "shutting down", &stand_by);
    campaign.release().await?;
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
    // The leader gauge: set as the lead starts, cleared as it stops.
    let leading = Arc::new(AtomicBool::new(false));
    let (started, stopped, observed) = (leading.clone(), leading.clone(), leading);
    let mut lead = lead;
    let lead = move || {
        started.store(true, Ordering::Release);
        lead()
    };
    let stand_by = move || {
        stopped.store(false, Ordering::Release);
        stand_by()
    };
    crate::metrics::gauge(&metrics.meter(), &crate::metrics::catalog::LEADER, move |o| {
        let value = u64::from(observed.load(Ordering::Acquire));
        o.observe(value, &[opentelemetry::KeyValue::new("component", component)]);
    });
    tracing::info!(component, %addr, identity = %election.identity, "serving HTTP");
    let client = crate::cluster::lease_client().await?;
    let elected = tokio::spawn(run(client, election, TIMING, ready.clone(), shutdown.clone(), lead, stand_by));
    crate::http::serve(addr, metrics, ready, "the leader-election lease could not be read yet").await?;
    shutdown.trigger();
    match tokio::time::timeout(Duration::from_secs(5), elected).await {
        Ok(Ok(Err(e))) => tracing::warn!(component, error = format!("{e:#}"), "leader election"),
        Err(_) => tracing::warn!(component, "the lease was not released within 5 s"),
        _ => {}
    }
    Ok(())
}
