//! Liveness and readiness probes: HTTP and HTTPS GET, or a TCP connect.

use serde_json::Value;
use std::time::Duration;

/// One HTTP(S) GET probe (or a TCP connect); success is a 2xx/3xx answer within the timeout.
pub(super) async fn probe(probe: &Value, ip: &str, container: &Value) -> bool {
    let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    let resolve_port = |port: &Value| -> Option<u16> {
        match port {
            Value::Number(n) => n.as_u64().map(|p| p as u16),
            Value::String(name) => {
                container["ports"].as_array()?.iter().find(|p| p["name"] == name.as_str())?["containerPort"]
                    .as_u64()
                    .map(|p| p as u16)
            }
            _ => None,
        }
    };
    if let Some(tcp) = probe["tcpSocket"].as_object() {
        let Some(port) = resolve_port(&tcp["port"]) else { return false };
        return tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port)))
            .await
            .is_ok_and(|r| r.is_ok());
    }
    let http = &probe["httpGet"];
    let Some(port) = resolve_port(&http["port"]) else { return false };
    let path = http["path"].as_str().unwrap_or("/").to_string();
    let https = http["scheme"] == "HTTPS";
    tokio::time::timeout(timeout, http_get(ip, port, &path, https))
        .await
        .is_ok_and(|r| r.is_ok_and(|code| (200..400).contains(&code)))
}

async fn http_get(ip: &str, port: u16, path: &str, https: bool) -> Result<u16, String> {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| e.to_string())?;
    let request = hyper::Request::get(path)
        .header("host", format!("{ip}:{port}"))
        .header("user-agent", "kube-probe/1.33")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = if https {
        // The kubelet does not verify probe certificates.
        let mut connector =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).map_err(|e| e.to_string())?;
        connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let ssl = connector
            .build()
            .configure()
            .and_then(|mut c| {
                c.set_verify_hostname(false);
                c.into_ssl(ip)
            })
            .map_err(|e| e.to_string())?;
        let mut tls =
            hyper_openssl::SslStream::new(ssl, hyper_util::rt::TokioIo::new(tcp)).map_err(|e| e.to_string())?;
        std::pin::Pin::new(&mut tls).connect().await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(tls).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| e.to_string())?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| e.to_string())?
    };
    let code = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(code)
}
