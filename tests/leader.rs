//! Leader election against the testkit API server, in process, with short timings: two
//! replicas (each its own client and User-Agent, as two pods are), a leader's work that writes
//! a ConfigMap every 100 ms, and faults on one replica's lease updates. The request log shows
//! exactly one writer at any time: a leader that cannot renew stops writing at its renew
//! deadline, before the standby may take over; a released lease is taken at once.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube_devops::leader::lease::Timing;
use kube_devops::leader::{Election, Shutdown, run};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;
use testkit::observe::{Fault, RequestRecord};

const TIMING: Timing = Timing {
    lease_duration: Duration::from_millis(3000),
    renew_deadline: Duration::from_millis(2000),
    retry_period: Duration::from_millis(400),
};

/// A client whose requests carry `agent` as User-Agent.
async fn client_as(cluster: &TestCluster, agent: &str) -> kube::Client {
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_str(agent).unwrap()));
    kube::Client::try_from(config).unwrap()
}

/// One replica taking part in the election; while it leads it writes the ConfigMap `work`.
struct Replica {
    shutdown: Shutdown,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn replica(cluster: &TestCluster, name: &'static str) -> Replica {
    let client = client_as(cluster, &format!("kube-devops/test ({name})")).await;
    let election = Election {
        lease_name: "test-leader".into(),
        namespace: "default".into(),
        identity: name.into(),
        component: "test",
    };
    let shutdown = Shutdown::default();
    let work = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let lead = move || {
        let work = work.clone();
        async move {
            loop {
                let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "work"}, "data": {"writer": name}});
                let _ = work.patch("work", &PatchParams::apply(name).force(), &Patch::Apply(body)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let ready = Arc::new(AtomicBool::new(false));
    let done = tokio::spawn(run(client, election, TIMING, ready, shutdown.clone(), lead, || {}));
    Replica { shutdown, done }
}

fn from(record: &RequestRecord, name: &str) -> bool {
    record.user_agent.ends_with(&format!("({name})"))
}

fn work_writes(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    requests.iter().filter(|r| r.resource == "configmaps" && r.is_write()).collect()
}

/// Whoever leads now (the ConfigMap's last writer), once someone does.
async fn writer(cluster: &TestCluster) -> String {
    let api = Api::<ConfigMap>::namespaced(cluster.client().await, "default");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(writer) = api.get_opt("work").await.unwrap().and_then(|c| c.data?.get("writer").cloned()) {
            return writer;
        }
        assert!(Instant::now() < deadline, "nobody leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Milliseconds since the Unix epoch (the clock of the request log).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Never two replicas writing within the same 100 ms.
fn assert_one_writer_at_a_time(requests: &[RequestRecord]) {
    let writes = work_writes(requests);
    for pair in writes.windows(2) {
        if pair[0].user_agent != pair[1].user_agent {
            assert!(
                pair[1].received_ms >= pair[0].received_ms + 100,
                "two writers within 100 ms: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_cannot_renew_stops_writing_at_its_deadline_before_the_standby_leads() {
    let cluster = TestCluster::stand_in();
    let a = replica(&cluster, "replica-a").await;
    assert_eq!(writer(&cluster).await, "replica-a");
    let b = replica(&cluster, "replica-b").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Replica A can no longer renew (its lease updates fail); its writes must stop at its
    // renew deadline, and B leads only after the lease expired.
    cluster.inject(Fault::error(Some("update"), Some("leases"), 500).from_user_agent("(replica-a)"));
    let faulted = now_ms();
    let started = Instant::now();
    while writer(&cluster).await != "replica-b" {
        assert!(started.elapsed() < Duration::from_secs(15), "replica-b never took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = cluster.requests();
    let last_renewal = requests
        .iter()
        .filter(|r| from(r, "replica-a") && r.resource == "leases" && r.verb == "update" && r.code == 200)
        .map(|r| r.received_ms)
        .max()
        .unwrap();
    assert!(last_renewal <= faulted, "A renewed after the fault");
    let deadline = last_renewal + TIMING.renew_deadline.as_millis() as u64;
    let a_writes: Vec<u64> =
        work_writes(&requests).iter().filter(|r| from(r, "replica-a")).map(|r| r.received_ms).collect();
    let last_a_write = *a_writes.iter().max().unwrap();
    // A request already on its way when the task was stopped may land a moment later.
    assert!(last_a_write <= deadline + 50, "A wrote {} ms after its deadline", last_a_write - deadline);
    let first_b_write = work_writes(&requests).iter().find(|r| from(r, "replica-b")).unwrap().received_ms;
    assert!(first_b_write >= last_renewal + TIMING.lease_duration.as_millis() as u64, "B led before A's lease expired");
    assert_one_writer_at_a_time(&requests);
    eprintln!("lease updates failing: A stopped at its deadline, B took over after {takeover:?}");

    // A recovers and campaigns again, as a standby: B keeps the lease.
    cluster.clear_faults();
    tokio::time::sleep(TIMING.lease_duration).await;
    assert_eq!(writer(&cluster).await, "replica-b");
    a.shutdown.trigger();
    b.shutdown.trigger();
    a.done.await.unwrap().unwrap();
    b.done.await.unwrap().unwrap();
    assert_one_writer_at_a_time(&cluster.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_lease_is_taken_at_once() {
    let cluster = TestCluster::stand_in();
    let a = replica(&cluster, "replica-a").await;
    assert_eq!(writer(&cluster).await, "replica-a");
    let b = replica(&cluster, "replica-b").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    a.shutdown.trigger();
    a.done.await.unwrap().unwrap();
    let released = Instant::now();
    while writer(&cluster).await != "replica-b" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handover = released.elapsed();
    eprintln!("graceful hand-over after {handover:?}");
    // Without the release, B would have waited for the lease to expire.
    assert!(handover < TIMING.lease_duration, "took {handover:?}");
    let lease = cluster.kubectl(&["get", "lease", "test-leader", "-o", "jsonpath={.spec.leaseTransitions}"]);
    assert_eq!(String::from_utf8_lossy(&lease.stdout), "1");
    b.shutdown.trigger();
    b.done.await.unwrap().unwrap();
    assert_one_writer_at_a_time(&cluster.requests());
}
