//! The controllers and the kubelet: Deployments roll out through ReplicaSets to Ready pods,
//! real processes are run and probed, restarts are counted, deletion terminates them, and
//! evictions honour PodDisruptionBudgets, Endpoints follow ready pods with a propagation delay.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use testkit::harness::TestCluster;

async fn eventually<T, F: Fn() -> Fut, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    seconds: u64,
    f: F,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn deployment(name: &str, image: &str, replicas: i32, container: Value) -> Deployment {
    let mut c = json!({"name": "app", "image": image});
    for (k, v) in container.as_object().unwrap() {
        c[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}}}}))
    .unwrap()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn a_deployment_rolls_out_to_ready_pods_and_rolls_over_on_a_template_change() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), cluster.namespace());
    deploys.create(&PostParams::default(), &deployment("web", "nginx:1.27", 3, json!({}))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), cluster.namespace());
    eventually("3 ready replicas", 10, || async {
        let d = deploys.get("web").await.unwrap();
        (d.status.as_ref()?.ready_replicas? == 3).then_some(())
    })
    .await;
    let listed = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(listed.items.len(), 3);
    let ips: std::collections::BTreeSet<_> =
        listed.items.iter().map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap()).collect();
    assert_eq!(ips.len(), 3, "each pod has its own loopback address");
    // Loopback, and not the node's 127.0.0.1 (clusters side by side get blocks of their own).
    assert!(ips.iter().all(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback()) && ip != "127.0.0.1"));

    // A new template rolls over to a new ReplicaSet; the old one is scaled to zero.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}});
    deploys.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    eventually("the rollout to finish", 15, || async {
        let d = deploys.get("web").await.unwrap();
        let s = d.status.as_ref()?;
        let done = s.updated_replicas == Some(3)
            && s.ready_replicas == Some(3)
            && s.replicas == Some(3)
            && s.observed_generation == d.metadata.generation;
        done.then_some(())
    })
    .await;
    let sets =
        Api::<ReplicaSet>::namespaced(client.clone(), cluster.namespace()).list(&ListParams::default()).await.unwrap();
    let mut replicas: Vec<i32> = sets.items.iter().map(|r| r.spec.as_ref().unwrap().replicas.unwrap()).collect();
    replicas.sort();
    assert_eq!(replicas, [0, 3]);
    // The old pods are gone once the kubelet has stopped them (a terminating pod is not
    // counted in the status, as on a real cluster).
    eventually("only the new pods", 10, || async {
        let images: Vec<String> = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap())
            .collect();
        (images == ["nginx:1.28"; 3]).then_some(())
    })
    .await;
    // kubectl sees the rollout as complete.
    let out = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=10s"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Deleting the deployment collects its replica sets and pods.
    deploys.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("pods to be collected", 10, || async {
        pods.list(&ListParams::default()).await.unwrap().items.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn evictions_honour_the_disruption_budget() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), cluster.namespace());
    deploys.create(&PostParams::default(), &deployment("api", "example/api:1", 2, json!({}))).await.unwrap();
    let pdb: PodDisruptionBudget = serde_json::from_value(
        json!({"metadata": {"name": "api"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}}),
    )
    .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), cluster.namespace());
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    eventually("one disruption allowed", 10, || async {
        let s = pdbs.get("api").await.unwrap().status?;
        (s.current_healthy == 2 && s.disruptions_allowed == 1 && s.desired_healthy == 1).then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), cluster.namespace());
    let names: Vec<String> =
        pods.list(&ListParams::default()).await.unwrap().items.into_iter().map(|p| p.metadata.name.unwrap()).collect();
    pods.evict(&names[0], &EvictParams::default()).await.expect("the first eviction is allowed");
    // While the replacement is not ready the budget allows no more.
    match pods.evict(&names[1], &EvictParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 429, "{e:?}"),
        Ok(_) => {
            // The replacement may already be Ready: then the eviction was legitimately allowed.
            let s = pdbs.get("api").await.unwrap().status.unwrap();
            assert!(s.expected_pods >= 1);
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn pods_can_stay_pending_when_a_test_asks() {
    let cluster = TestCluster::stand_in();
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, cluster.namespace());
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "stuck", "annotations": {"testkit.stochastic.io/stay-pending": "true"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = pods.get("stuck").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    pods.delete("stuck", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("stuck").await.unwrap().is_none(), "an unscheduled pod is deleted at once");
}

fn python() -> &'static Path {
    Path::new("/usr/bin/python3")
}

/// A real process: python's HTTP server, bound to the pod's own address.
fn http_server_container(liveness_path: &str) -> Value {
    json!({
        "args": ["-m", "http.server", "--bind", "$(POD_IP)", "8080"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        "livenessProbe": {"httpGet": {"path": liveness_path, "port": 8080}, "periodSeconds": 1, "failureThreshold": 2},
    })
}

#[tokio::test]
async fn real_processes_become_ready_through_their_probes_and_stop_on_deletion() {
    // Real processes need the stand-in's kubelet.
    let cluster = TestCluster::stand_in();
    cluster.run_image("example/python-http", python());
    let client = cluster.client().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), cluster.namespace());
    deploys
        .create(&PostParams::default(), &deployment("http", "example/python-http:1", 2, http_server_container("/")))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), cluster.namespace());
    let ready_pods = eventually("2 ready pods", 20, || async {
        let list = pods.list(&ListParams::default().labels("app=http")).await.unwrap().items;
        (list.len() == 2 && list.iter().all(ready)).then_some(list)
    })
    .await;
    // The process really serves on the pod's address.
    let ip = ready_pods[0].status.as_ref().unwrap().pod_ip.clone().unwrap();
    assert!(std::net::TcpStream::connect((ip.as_str(), 8080)).is_ok());
    // Deleting the pod sends SIGTERM: the server stops and the pod goes well before the grace period.
    let name = ready_pods[0].metadata.name.clone().unwrap();
    let started = std::time::Instant::now();
    pods.delete(&name, &DeleteParams::default()).await.unwrap();
    eventually("the pod to go", 10, || async { pods.get_opt(&name).await.unwrap().is_none().then_some(()) }).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(std::net::TcpStream::connect((ip.as_str(), 8080)).is_err(), "the process is gone");

    // Dropping the cluster stops every process it started.
    let other = pods.list(&ListParams::default().labels("app=http")).await.unwrap().items;
    let ip = other.iter().find_map(|p| p.status.as_ref()?.pod_ip.clone()).unwrap();
    eventually("the remaining pods to serve", 20, || async {
        std::net::TcpStream::connect((ip.as_str(), 8080)).ok().map(|_| ())
    })
    .await;
    drop(cluster);
    assert!(std::net::TcpStream::connect((ip.as_str(), 8080)).is_err(), "no process is left behind");
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container_and_counts_it() {
    // Real processes need the stand-in's kubelet.
    let cluster = TestCluster::stand_in();
    cluster.run_image("example/python-http", python());
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, cluster.namespace());
    let mut c = http_server_container("/no-such-page");
    c["name"] = json!("app");
    c["image"] = json!("example/python-http:1");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "flaky"}, "spec": {"containers": [c]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let restarts = eventually("a restart", 30, || async {
        let p = pods.get("flaky").await.unwrap();
        let n = p.status?.container_statuses?.first()?.restart_count;
        (n >= 1).then_some(n)
    })
    .await;
    assert!(restarts >= 1);
    let out = cluster.kubectl(&["get", "pod", "flaky"]);
    let row: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().split_whitespace().map(String::from).collect();
    assert!(row[3].parse::<i32>().unwrap() >= 1, "kubectl shows the restarts: {row:?}");
}

#[tokio::test]
async fn built_in_objects_come_back_with_the_api_server_defaults() {
    let cluster = TestCluster::start();
    let client = cluster.client().await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), cluster.namespace());
    let d = deploys.create(&PostParams::default(), &deployment("defaults", "nginx", 1, json!({}))).await.unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(spec.revision_history_limit, Some(10));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Always"), "untagged images are pulled every time");
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client, cluster.namespace());
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
    .unwrap();
    let svc = services.create(&PostParams::default(), &svc).await.unwrap().spec.unwrap();
    assert_eq!(svc.type_.as_deref(), Some("ClusterIP"));
    assert!(svc.cluster_ip.is_some());
    let port = &svc.ports.unwrap()[0];
    assert_eq!(
        (port.protocol.as_deref(), port.target_port.clone()),
        (Some("TCP"), Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80)))
    );
}

/// A deleted pod stays in its Service's Endpoints (and keeps receiving webhook calls) until the
/// change has propagated, as kube-proxy and the API server's informers lag on a real cluster.
#[tokio::test]
async fn endpoints_keep_a_leaving_pod_until_the_change_has_propagated() {
    let cluster = TestCluster::stand_in();
    cluster.set_endpoint_propagation(Duration::from_secs(3));
    let client = cluster.client().await;
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "default").create(&PostParams::default(), &service).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let endpoints: Api<Endpoints> = Api::namespaced(client, "default");
    let addresses = || async {
        let e = endpoints.get_opt("web").await.ok()??;
        let ips: Vec<String> =
            e.subsets?.into_iter().flat_map(|s| s.addresses.unwrap_or_default()).map(|a| a.ip).collect();
        Some(ips)
    };
    let ip = eventually("the pod's address", 10, || async { addresses().await?.first().cloned() }).await;
    pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    let deleted = std::time::Instant::now();
    eventually("the pod to be gone", 10, || async { pods.get_opt("web-1").await.ok()?.is_none().then_some(()) }).await;
    let still_listed = addresses().await.unwrap_or_default().contains(&ip);
    assert!(still_listed || deleted.elapsed() >= Duration::from_secs(3), "dropped at once");
    eventually("the address to go", 10, || async {
        (!addresses().await.unwrap_or_default().contains(&ip)).then_some(())
    })
    .await;
    assert!(deleted.elapsed() >= Duration::from_secs(3), "dropped after {:?}", deleted.elapsed());
}

/// The body of `GET http://ip:8080/path`, when it answers 200.
fn http_get(ip: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect((ip, 8080)).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.0 200").then(|| response.split_once("\r\n\r\n").unwrap().1.to_string())
}

#[tokio::test]
async fn a_changed_secret_reaches_the_pods_files_after_the_refresh_delay() {
    let cluster = TestCluster::stand_in();
    cluster.run_image("example/python-http", python());
    cluster.set_volume_refresh_delay(Duration::from_secs(4));
    let client = cluster.client().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), cluster.namespace());
    let secret = |value: &str| -> k8s_openapi::api::core::v1::Secret {
        serde_json::from_value(json!({"metadata": {"name": "conf"}, "stringData": {"value": value}})).unwrap()
    };
    secrets.create(&PostParams::default(), &secret("first")).await.unwrap();
    // python serves the mounted Secret's folder (the mount path in its args is the volume's files).
    let container = json!({
        "args": ["-m", "http.server", "--bind", "$(POD_IP)", "--directory", "/etc/conf", "8080"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf"}],
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    });
    let mut d = deployment("conf", "example/python-http:1", 1, container);
    d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().volumes =
        Some(vec![serde_json::from_value(json!({"name": "conf", "secret": {"secretName": "conf"}})).unwrap()]);
    Api::<Deployment>::namespaced(client.clone(), cluster.namespace())
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, cluster.namespace());
    let ip = eventually("the pod to serve the Secret", 30, || async {
        let list = pods.list(&ListParams::default().labels("app=conf")).await.unwrap().items;
        let ip = list.first().filter(|p| ready(p))?.status.as_ref()?.pod_ip.clone()?;
        (http_get(&ip, "/value")? == "first").then_some(ip)
    })
    .await;
    let changed = std::time::Instant::now();
    secrets.replace("conf", &PostParams::default(), &secret("second")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(http_get(&ip, "/value").as_deref(), Some("first"), "half-way through the delay, the old content");
    eventually("the new content", 10, || async { (http_get(&ip, "/value")? == "second").then_some(()) }).await;
    assert!(changed.elapsed() >= Duration::from_secs(4), "not before the delay");
    // `kubectl logs` shows what the process printed (python logs each request).
    let logs = cluster.kubectl(&["logs", "deployment/conf"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("\"GET /value HTTP/1.0\" 200"), "{logs:?}");
}

#[tokio::test]
async fn hundreds_of_pods_each_get_an_address_and_run() {
    let cluster = TestCluster::start();
    if !cluster.is_stand_in() {
        return; // A real cluster's scheduler and CNI are not under test.
    }
    use futures::StreamExt;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), cluster.namespace());
    // More pods than 127.0.0.0/24 has addresses, created by parallel clients.
    let count = 300;
    futures::stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(
                    json!({"metadata": {"name": format!("p-{i:03}"), "labels": {"bulk": "yes"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}),
                )
                .unwrap();
                pods.create(&PostParams::default(), &pod).await.unwrap();
            }
        })
        .await;
    let listed = eventually("every pod ready", 30, || async {
        let listed = pods.list(&ListParams::default().labels("bulk=yes")).await.unwrap();
        (listed.items.len() == count && listed.items.iter().all(ready)).then_some(listed)
    })
    .await;
    let ips: std::collections::BTreeSet<String> =
        listed.items.iter().map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap()).collect();
    assert_eq!(ips.len(), count, "each pod has an address of its own");
    assert!(
        ips.iter()
            .all(|ip| ip.starts_with("127.") && !ip.ends_with(".0") && !ip.ends_with(".255") && ip != "127.0.0.1")
    );

    // Deleted pods go (the kubelet sees the deletion among the changes, not by a rescan).
    pods.delete_collection(&DeleteParams::default(), &ListParams::default().labels("bulk=yes")).await.unwrap();
    eventually("every pod gone", 30, || async {
        pods.list(&ListParams::default().labels("bulk=yes")).await.unwrap().items.is_empty().then_some(())
    })
    .await;
}
