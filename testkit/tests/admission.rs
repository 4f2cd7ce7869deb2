//! Validating admission webhooks, called over HTTPS like the real API server calls them.

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use testkit::harness::TestCluster;

/// A webhook that denies objects labelled `deny: "true"`, warns about `warn` labels, and
/// sleeps when labelled `slow`. Records every review it receives.
struct Webhook {
    port: u16,
    ca_bundle: String,
    reviews: Arc<Mutex<Vec<Value>>>,
}

fn start_webhook() -> Webhook {
    let (ca, ca_cert, ca_key) = testkit::tls::ca("webhook-ca").unwrap();
    let serving = testkit::tls::serving(&ca_cert, &ca_key, &["hook.default.svc", "localhost"], &["127.0.0.1"]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reviews = Arc::new(Mutex::new(Vec::new()));
    let seen = reviews.clone();
    std::thread::spawn(move || {
        let mut acceptor = openssl::ssl::SslAcceptor::mozilla_intermediate_v5(openssl::ssl::SslMethod::tls()).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(serving.key_pem.as_bytes()).unwrap();
        let cert = openssl::x509::X509::from_pem(serving.cert_pem.as_bytes()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&cert).unwrap();
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let seen = seen.clone();
                App::new().route(
                    "/validate",
                    web::post().to(move |body: web::Json<Value>| {
                        let seen = seen.clone();
                        async move {
                            let request = &body["request"];
                            seen.lock().unwrap().push(body.0.clone());
                            let labels = &request["object"]["metadata"]["labels"];
                            if labels["slow"].is_string() {
                                actix_web::rt::time::sleep(std::time::Duration::from_secs(3)).await;
                            }
                            let mut response = json!({"uid": request["uid"], "allowed": labels["deny"] != "true"});
                            if labels["deny"] == "true" {
                                response["status"] = json!({"code": 403, "message": "label deny=true is not allowed"});
                            }
                            if labels["warn"].is_string() {
                                response["warnings"] = json!(["this object carries a warn label"]);
                            }
                            HttpResponse::Ok().json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
                        }
                    }),
                )
            })
            .workers(1)
            .disable_signals()
            .listen_openssl(listener, acceptor)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    Webhook { port, ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca.cert_pem), reviews }
}

fn vwc(client_config: Value, failure_policy: &str, timeout: u32) -> String {
    serde_json::to_string(&json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "test-hook"},
        "webhooks": [{
            "name": "validate.example.com", "clientConfig": client_config,
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]},
            "failurePolicy": failure_policy, "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": timeout,
        }]
    }))
    .unwrap()
}

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

#[tokio::test]
async fn kubectl_shows_a_webhook_denial_and_its_warnings() {
    let cluster = TestCluster::stand_in();
    let hook = start_webhook();
    let config = json!({"url": format!("https://127.0.0.1:{}/validate", hook.port), "caBundle": hook.ca_bundle});
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&vwc(config, "Fail", 5)));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let plain = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(plain));
    assert!(out.status.success(), "unlabelled objects pass: {}", String::from_utf8_lossy(&out.stderr));
    let denied = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: denied, labels: {deny: 'true'}}\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(denied));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admission webhook \"validate.example.com\" denied the request: label deny=true is not allowed"),
        "{err}"
    );
    let warned = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: warned, labels: {warn: 'yes'}}\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(warned));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Warning: this object carries a warn label"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let reviews = hook.reviews.lock().unwrap().clone();
    let first = &reviews[0]["request"];
    assert_eq!(first["operation"], "CREATE");
    assert_eq!(first["kind"], json!({"group": "", "version": "v1", "kind": "ConfigMap"}));
    assert_eq!(first["userInfo"]["username"], "admin");
    assert_eq!(first["namespace"], "default");
    // Objects of excluded namespaces are never sent.
    let system: Api<ConfigMap> = Api::namespaced(cluster.client().await, "kube-system");
    system.create(&PostParams::default(), &cm("sys", json!({"deny": "true"}))).await.unwrap();
}

#[tokio::test]
async fn failure_policy_decides_what_an_unreachable_or_slow_webhook_means() {
    let cluster = TestCluster::stand_in();
    let hook = start_webhook();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let apply_vwc = |config: Value, policy: &str, timeout: u32| {
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&vwc(config, policy, timeout)));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = json!({"url": format!("https://127.0.0.1:{closed_port}/validate"), "caBundle": hook.ca_bundle});
    apply_vwc(unreachable.clone(), "Ignore", 2);
    cms.create(&PostParams::default(), &cm("fail-open", json!({}))).await.expect("Ignore fails open");
    apply_vwc(unreachable, "Fail", 2);
    match cms.create(&PostParams::default(), &cm("fail-closed", json!({}))).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 500);
            assert!(e.message.contains("failed calling webhook \"validate.example.com\""), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    // A webhook slower than timeoutSeconds counts as a failure.
    let slow = json!({"url": format!("https://127.0.0.1:{}/validate", hook.port), "caBundle": hook.ca_bundle});
    apply_vwc(slow, "Fail", 1);
    let started = std::time::Instant::now();
    let err = cms.create(&PostParams::default(), &cm("slow", json!({"slow": "1"}))).await.unwrap_err();
    assert!(err.to_string().contains("deadline"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_millis(2500), "the call was cut at the timeout");
    // A certificate from another CA is refused.
    let (other_ca, _, _) = testkit::tls::ca("other").unwrap();
    let wrong_ca = json!({"url": format!("https://127.0.0.1:{}/validate", hook.port),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(other_ca.cert_pem)});
    apply_vwc(wrong_ca, "Fail", 2);
    assert!(cms.create(&PostParams::default(), &cm("untrusted", json!({}))).await.is_err());
}

#[tokio::test]
async fn a_service_reference_reaches_a_ready_pod_of_the_service() {
    let cluster = TestCluster::stand_in();
    let hook = start_webhook();
    let client = cluster.client().await;
    // A pod that is Ready at 127.0.0.1 and a Service selecting it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // The test plays kubelet for this pod: it runs in the test process, at 127.0.0.1.
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "hook-0", "labels": {"app": "hook"},
            "annotations": {"testkit.stochastic.io/unmanaged": "true"}},
        "spec": {"containers": [{"name": "hook", "image": "example/hook:1", "ports": [{"name": "https", "containerPort": hook.port}]}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status("hook-0", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "hook"},
        "spec": {"selector": {"app": "hook"}, "ports": [{"port": 443, "targetPort": "https"}]}}))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "default").create(&PostParams::default(), &svc).await.unwrap();

    let config = json!({"service": {"namespace": "default", "name": "hook", "path": "/validate", "port": 443}, "caBundle": hook.ca_bundle});
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&vwc(config, "Fail", 5)));
    assert!(out.status.success());
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let err = cms.create(&PostParams::default(), &cm("denied", json!({"deny": "true"}))).await.unwrap_err();
    assert!(err.to_string().contains("label deny=true is not allowed"), "{err}");
    assert_eq!(hook.reviews.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn pods_created_by_a_replica_set_go_through_admission_too() {
    let cluster = TestCluster::stand_in();
    let hook = start_webhook();
    let config = json!({"url": format!("https://127.0.0.1:{}/validate", hook.port), "caBundle": hook.ca_bundle});
    let pods_hook = vwc(config, "Fail", 5).replace("\"configmaps\"", "\"pods\"");
    assert!(cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&pods_hook)).status.success());
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({"metadata": {"name": "blocked"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "blocked"}},
            "template": {"metadata": {"labels": {"app": "blocked", "deny": "true"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}))
    .unwrap();
    let client = cluster.client().await;
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while hook.reviews.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the ReplicaSet's pod never reached the webhook");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let review = hook.reviews.lock().unwrap()[0].clone();
    assert_eq!(review["request"]["userInfo"]["username"], "system:serviceaccount:kube-system:replicaset-controller");
    let pods = Api::<Pod>::namespaced(client, "default").list(&Default::default()).await.unwrap();
    assert!(pods.items.is_empty(), "the denied pod was not created");
}

#[tokio::test]
async fn match_conditions_decide_whether_the_webhook_is_called() {
    let cluster = TestCluster::stand_in();
    let hook = start_webhook();
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let with_conditions = |conditions: Value, policy: &str| {
        let mut config: Value = serde_json::from_str(&vwc(
            json!({"url": format!("https://127.0.0.1:{}/validate", hook.port), "caBundle": hook.ca_bundle}),
            policy,
            5,
        ))
        .unwrap();
        config["webhooks"][0]["matchConditions"] = conditions;
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&config.to_string()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // Only objects named `checked-*`, and never kubectl's dry runs, go to the webhook.
    with_conditions(
        json!([{"name": "checked", "expression": "object.metadata.name.startsWith('checked-')"},
               {"name": "not-dry-run", "expression": "!request.dryRun"}]),
        "Fail",
    );
    cms.create(&PostParams::default(), &cm("skipped", json!({"deny": "true"}))).await.expect("not matched: not called");
    let denied = cms.create(&PostParams::default(), &cm("checked-1", json!({"deny": "true"}))).await.unwrap_err();
    assert!(denied.to_string().contains("label deny=true is not allowed"), "{denied}");
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    cms.create(&dry_run, &cm("checked-2", json!({"deny": "true"}))).await.expect("a dry run is not matched");
    let names: Vec<Value> =
        hook.reviews.lock().unwrap().iter().map(|r| r["request"]["object"]["metadata"]["name"].clone()).collect();
    assert_eq!(names, [json!("checked-1")], "only the matching request reached the webhook");

    // An expression that cannot be evaluated (a missing field) refuses the request under Fail,
    // and skips the webhook under Ignore.
    let missing = json!([{"name": "owner", "expression": "object.metadata.labels.owner == 'me'"}]);
    with_conditions(missing.clone(), "Fail");
    let refused = cms.create(&PostParams::default(), &cm("unlabelled", json!({}))).await.unwrap_err();
    match refused {
        kube::Error::Api(e) => assert_eq!(
            (e.code, e.message.contains("configmaps \"unlabelled\" is forbidden")),
            (403, true),
            "{}",
            e.message
        ),
        other => panic!("{other:?}"),
    }
    with_conditions(missing, "Ignore");
    cms.create(&PostParams::default(), &cm("unlabelled", json!({"deny": "true"}))).await.expect("skipped under Ignore");
}
