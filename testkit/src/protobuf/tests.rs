use super::*;

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: Some(name.into()),
        labels: [("app".to_string(), name.to_string())].into(),
        creation_timestamp: Some(meta::Time { seconds: Some(-62135596800), nanos: Some(0) }),
        ..Default::default()
    })
}

#[test]
fn a_deployment_as_kubectl_create_sends_it_decodes_to_its_json_form() {
    let container = core::Container {
        name: Some("nginx".into()),
        image: Some("nginx".into()),
        ports: vec![core::ContainerPort { container_port: Some(80), ..Default::default() }],
        resources: Some(Default::default()),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: meta("web"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".into(), "web".into())].into(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: meta("web"),
                spec: Some(core::PodSpec { containers: vec![container], ..Default::default() }),
            }),
            strategy: Some(Default::default()),
            ..Default::default()
        }),
        status: Some(Default::default()),
    };
    let decoded = decode(&envelope("apps/v1", "Deployment", deployment.encode_to_vec())).unwrap();
    assert_eq!(
        decoded,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"name": "web", "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}]}}}})
    );
}

#[test]
fn secrets_carry_base64_data_and_services_int_or_string_ports() {
    let secret = core::Secret {
        metadata: meta("creds"),
        data: [("password".to_string(), b"hunter2".to_vec())].into(),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let decoded = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
    assert_eq!(decoded["data"]["password"], "aHVudGVyMg==");
    let service = core::Service {
        metadata: meta("web"),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: Some("80-8080".into()),
                port: Some(80),
                target_port: Some(IntOrString { r#type: Some(0), int_val: Some(8080), str_val: None }),
                protocol: Some("TCP".into()),
                ..Default::default()
            }],
            r#type: Some("ClusterIP".into()),
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode(&envelope("v1", "Service", service.encode_to_vec())).unwrap();
    assert_eq!(decoded["spec"]["ports"][0]["targetPort"], 8080);
}

#[test]
fn a_field_this_decoder_would_lose_refuses_the_body() {
    let pod_with_volume = core::PodTemplateSpec {
        metadata: None,
        spec: Some(core::PodSpec { host_network: Some(true), ..Default::default() }),
    };
    let deployment = apps::Deployment {
        metadata: meta("web"),
        spec: Some(apps::DeploymentSpec { template: Some(pod_with_volume), ..Default::default() }),
        status: None,
    };
    let e = decode(&envelope("apps/v1", "Deployment", deployment.encode_to_vec())).unwrap_err();
    assert_eq!(e.code, 415);
    assert!(e.message.contains("PodSpec"), "{}", e.message);
    let e = decode(&envelope("v1", "Pod", vec![])).unwrap_err();
    assert_eq!(e.code, 415);
}
