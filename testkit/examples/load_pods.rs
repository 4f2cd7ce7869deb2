//! Loads a cluster with realistic pods through the API, as many clients would:
//! `load_pods --kubeconfig PATH --pods N [--namespaces M] [--concurrency C] [--prefix P]`.
//! Pods have two containers, a dozen env vars, probes, resources, labels and annotations, and a
//! mix of what kube-devops flags (every 7th app image `:latest`, every 5th without probes, every
//! 11th without resources), so scoring has real work. Prints pods/s on stdout. Used by
//! `scripts/bench-scale.sh`; works against any cluster (it only creates namespaces and pods).

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Instant;

struct Options {
    kubeconfig: String,
    pods: usize,
    namespaces: usize,
    concurrency: usize,
    prefix: String,
}

fn parse() -> anyhow::Result<Options> {
    let mut o =
        Options { kubeconfig: String::new(), pods: 1000, namespaces: 10, concurrency: 32, prefix: "load".into() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))?;
        match arg.as_str() {
            "--kubeconfig" => o.kubeconfig = value,
            "--pods" => o.pods = value.parse()?,
            "--namespaces" => o.namespaces = value.parse()?,
            "--concurrency" => o.concurrency = value.parse()?,
            "--prefix" => o.prefix = value,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    anyhow::ensure!(!o.kubeconfig.is_empty(), "--kubeconfig PATH is required");
    anyhow::ensure!(o.namespaces > 0 && o.concurrency > 0, "--namespaces and --concurrency must be positive");
    Ok(o)
}

/// The pod numbered `i` of namespace `namespace`.
fn pod(namespace: &str, i: usize) -> Value {
    let app = format!("app-{}", i % 50);
    let image = if i.is_multiple_of(7) {
        format!("registry.example/{app}:latest")
    } else {
        format!("registry.example/{app}:1.{}.3", i % 9)
    };
    let env: Vec<Value> =
        (0..12).map(|e| json!({"name": format!("SETTING_{e}"), "value": format!("value-{e}-{i}")})).collect();
    let probe = json!({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10});
    let mut app_container = json!({
        "name": "app", "image": image, "env": env,
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": probe, "livenessProbe": probe,
    });
    if i.is_multiple_of(5) {
        let c = app_container.as_object_mut().unwrap();
        c.remove("readinessProbe");
        c.remove("livenessProbe");
    }
    if i.is_multiple_of(11) {
        app_container.as_object_mut().unwrap().remove("resources");
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{app}-{i:06}"), "namespace": namespace,
            "labels": {"app": app, "team": format!("team-{}", i % 8), "tier": "backend", "version": format!("1.{}", i % 9)},
            "annotations": {"owner": "platform@example.com", "runbook": "https://runbooks.example/app", "build": format!("{i}")},
        },
        "spec": {"containers": [app_container, {
            "name": "proxy", "image": "envoyproxy/envoy:v1.30.1",
            "args": ["--config-path", "/etc/envoy/envoy.yaml"],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
            "readinessProbe": {"tcpSocket": {"port": 9901}},
            "livenessProbe": {"tcpSocket": {"port": 9901}},
        }]},
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = parse()?;
    let text = std::fs::read_to_string(&o.kubeconfig)?;
    let kc = kube::config::Kubeconfig::from_yaml(&text)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let names: Vec<String> = (0..o.namespaces).map(|n| format!("{}-{n:04}", o.prefix)).collect();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    for name in &names {
        let ns = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        match namespaces.create(&Default::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let started = Instant::now();
    let creates = futures::stream::iter(0..o.pods)
        .map(|i| {
            let namespace = &names[i % names.len()];
            let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client.clone(), namespace);
            let body = pod(namespace, i);
            async move {
                let pod = serde_json::from_value(body)?;
                match api.create(&Default::default(), &pod).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(anyhow::Error::from(e)),
                }
            }
        })
        .buffer_unordered(o.concurrency);
    futures::pin_mut!(creates);
    let mut done = 0usize;
    while let Some(result) = creates.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(5000) {
            eprintln!("load_pods: {done} pods, {:.0} pods/s", done as f64 / started.elapsed().as_secs_f64());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "created {} pods in {} namespaces in {seconds:.1} s: {:.0} pods/s with {} clients",
        o.pods,
        o.namespaces,
        o.pods as f64 / seconds,
        o.concurrency
    );
    Ok(())
}
