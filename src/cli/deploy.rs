//! `deploy generate-*`: an installation's objects as multi-document YAML for `kubectl apply
//! -f -`, rendered from a KubeDevopsInstall (`-f`, defaults otherwise). The webhook's CA and
//! serving certificate are generated with OpenSSL at render time, so two renderings differ
//! only in that key material.

use super::exit;
use crate::api::{KubeDevopsInstall, KubeDevopsInstallSpec};
use crate::manifests::{self, ClusterApis, Object, webhook};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Every object: namespace, RBAC, TLS Secret, dashboard, Services, Deployments, PDBs,
    /// ServiceMonitors and the ValidatingWebhookConfiguration (apply the CRDs first).
    GenerateAll(AllOptions),
    /// ServiceAccount, ClusterRole and ClusterRoleBinding, and the Role and RoleBinding for
    /// leader-election leases.
    GenerateRbac(DeployOptions),
    /// The Deployments of the enabled components.
    GenerateDeployments(DeployOptions),
    /// Services, ServiceMonitors and the Grafana dashboard ConfigMap.
    GenerateObservability(DeployOptions),
    /// A new TLS Secret and the ValidatingWebhookConfiguration trusting it (rotates the
    /// webhook's certificate when applied; pass the current Secret with --previous-ca so
    /// admission has no gap while the pods pick the new certificate up).
    GenerateWebhook(WebhookOptions),
}

/// What every `deploy generate-*` command takes.
#[derive(Debug, Args)]
pub struct DeployOptions {
    /// A KubeDevopsInstall manifest to render (- for stdin); default: every default.
    #[arg(short = 'f', long = "file", value_name = "INSTALL.yaml")]
    pub file: Option<PathBuf>,
    /// The image every component runs, REPOSITORY[:TAG] (no tag: this release's version).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Replicas of each component that does not set its own (spec.replicas).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=10))]
    pub replicas: Option<i32>,
    /// OTLP/HTTP endpoint the components export traces to (spec.tracing.otlpEndpoint), e.g.
    /// http://otel-collector.observability:4318.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// APIs the target cluster serves, as `helm template --api-versions` takes them
    /// (GROUP/VERSION or GROUP/VERSION/KIND; repeatable or comma-separated). They decide the
    /// automatic settings: with monitoring.coreos.com/v1 an unset spec.serviceMonitor.enabled
    /// renders ServiceMonitors. These commands do not read the cluster.
    #[arg(long = "api-versions", short = 'a', value_name = "API", value_delimiter = ',')]
    pub api_versions: Vec<String>,
}

/// `generate-all`'s options.
#[derive(Debug, Args)]
pub struct AllOptions {
    #[command(flatten)]
    pub common: DeployOptions,
    /// Leave out the TLS Secret and the ValidatingWebhookConfiguration, so applying the output
    /// changes an installation without rotating the webhook's certificate.
    #[arg(long, conflicts_with = "previous_ca")]
    pub keep_tls: bool,
    #[command(flatten)]
    pub renewal: Renewal,
}

/// `generate-webhook`'s options.
#[derive(Debug, Args)]
pub struct WebhookOptions {
    #[command(flatten)]
    pub common: DeployOptions,
    #[command(flatten)]
    pub renewal: Renewal,
}

/// What the commands that mint a new certificate take.
#[derive(Debug, Args)]
pub struct Renewal {
    /// The webhook's current TLS Secret (`kubectl get secret -n kube-devops
    /// kube-devops-webhook-tls -o yaml`), or its CA as PEM (- for stdin): its CA stays trusted
    /// beside the new one until it expires, so admission has no gap while the kubelet updates
    /// the pods' certificate files (up to a minute or two).
    #[arg(long, value_name = "SECRET.yaml|CA.pem")]
    pub previous_ca: Option<PathBuf>,
}

impl Renewal {
    /// A new CA and serving certificate, trusting the previous CA too when there is one.
    fn mint(&self) -> anyhow::Result<manifests::WebhookTls> {
        let previous = self.previous_ca.as_deref().map(read_previous_ca).transpose()?;
        Ok(webhook::generate_tls()?.with_previous_ca(previous.as_deref(), jiff::Timestamp::now()))
    }
}

pub fn run(command: DeployCommand) -> anyhow::Result<u8> {
    let renders_monitors = matches!(command, DeployCommand::GenerateAll(_) | DeployCommand::GenerateObservability(_));
    let options = match &command {
        DeployCommand::GenerateAll(AllOptions { common, .. })
        | DeployCommand::GenerateWebhook(WebhookOptions { common, .. })
        | DeployCommand::GenerateRbac(common)
        | DeployCommand::GenerateDeployments(common)
        | DeployCommand::GenerateObservability(common) => common,
    };
    let previous_ca = match &command {
        DeployCommand::GenerateAll(AllOptions { renewal, .. })
        | DeployCommand::GenerateWebhook(WebhookOptions { renewal, .. }) => renewal.previous_ca.as_deref(),
        _ => None,
    };
    if options.file.as_deref() == Some(Path::new("-")) && previous_ca == Some(Path::new("-")) {
        bail!("-f - and --previous-ca - cannot both read stdin");
    }
    let spec = spec(options)?;
    let apis = ClusterApis::from_api_versions(&options.api_versions);
    if let Some(note) = automatic_settings_note(&spec, apis, renders_monitors) {
        eprintln!("{note}");
    }
    let spec = manifests::resolve(&spec, apis);
    let objects = match &command {
        DeployCommand::GenerateAll(AllOptions { keep_tls: false, renewal, .. }) => {
            manifests::all(&spec, &renewal.mint()?)
        }
        DeployCommand::GenerateAll(AllOptions { keep_tls: true, .. }) => {
            // Placeholder key material: the objects that would carry it are left out.
            let carries_tls = |o: &Object| match o {
                Object::ValidatingWebhookConfiguration(_) => true,
                Object::Secret(secret) => secret.metadata.name.as_deref() == Some(manifests::WEBHOOK_TLS_SECRET),
                _ => false,
            };
            manifests::all(&spec, &manifests::WebhookTls::placeholder())
                .into_iter()
                .filter(|o| !carries_tls(o))
                .collect()
        }
        DeployCommand::GenerateRbac(_) => manifests::rbac(&spec),
        DeployCommand::GenerateDeployments(_) => manifests::deployments(&spec),
        DeployCommand::GenerateObservability(_) => manifests::observability(&spec),
        DeployCommand::GenerateWebhook(WebhookOptions { renewal, .. }) => {
            manifests::webhook_admission(&spec, &renewal.mint()?)
        }
    };
    crate::yaml::print(&crate::yaml::to_yaml_stream(&objects)?);
    Ok(exit::OK)
}

/// The CA bundle in `path`: PEM as it is, or `data."ca.crt"` of a Secret manifest.
fn read_previous_ca(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = read_text(path)?;
    previous_ca(&text).with_context(|| format!("--previous-ca {}", path.display()))
}

/// The CA bundle in `text`: PEM certificates, or a Secret manifest (YAML or JSON) whose
/// `data."ca.crt"` holds them.
pub fn previous_ca(text: &str) -> anyhow::Result<Vec<u8>> {
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return Ok(text.as_bytes().to_vec());
    }
    let docs: Vec<serde_json::Value> = crate::yaml::from_documents(text).context("neither PEM nor YAML")?;
    let secret = docs.into_iter().find(|d| d["kind"] == "Secret").context("no PEM certificate and no Secret")?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(secret).context("not a valid Secret")?;
    let ca = secret.data.and_then(|mut d| d.remove("ca.crt")).context("the Secret has no ca.crt")?;
    Ok(ca.0)
}

/// What the user should know when an automatic setting left something out because these
/// commands cannot see the cluster.
pub fn automatic_settings_note(
    spec: &KubeDevopsInstallSpec,
    apis: ClusterApis,
    renders_monitors: bool,
) -> Option<String> {
    (renders_monitors && spec.service_monitor.enabled.is_none() && !apis.service_monitors).then(|| {
        format!(
            "note: no ServiceMonitors rendered: spec.serviceMonitor.enabled is unset (automatic) and this command \
             does not read the cluster; with the Prometheus Operator's CRDs installed pass --api-versions {} \
             (or set spec.serviceMonitor.enabled: true)",
            ClusterApis::SERVICE_MONITOR_API
        )
    })
}

/// The spec to render: the file's (or the defaults), then the command-line overrides.
pub fn spec(options: &DeployOptions) -> anyhow::Result<KubeDevopsInstallSpec> {
    let mut spec = match &options.file {
        Some(path) => read_install(path)?,
        None => KubeDevopsInstallSpec::default(),
    };
    if let Some(image) = &options.image {
        let (repository, tag) = parse_image(image)?;
        spec.image.repository = repository;
        if tag.is_some() {
            spec.image.tag = tag;
        }
    }
    if let Some(replicas) = options.replicas {
        spec.replicas = replicas;
    }
    if let Some(endpoint) = &options.otlp_endpoint {
        spec.tracing.otlp_endpoint = Some(endpoint.clone());
    }
    if let Err(problems) = manifests::validate(&spec) {
        bail!("invalid installation:\n  {}", problems.join("\n  "));
    }
    Ok(spec)
}

fn read_install(path: &Path) -> anyhow::Result<KubeDevopsInstallSpec> {
    let text = read_text(path)?;
    parse_install(&text).with_context(|| format!("{}", path.display()))
}

/// A file's text, or stdin's for `-`.
fn read_text(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// The spec of the one KubeDevopsInstall in a YAML (or JSON) document.
pub fn parse_install(text: &str) -> anyhow::Result<KubeDevopsInstallSpec> {
    let docs: Vec<serde_json::Value> = crate::yaml::from_documents(text).context("not YAML")?;
    let mut docs: Vec<_> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if docs.len() != 1 {
        bail!("expected one KubeDevopsInstall, found {} documents", docs.len());
    }
    let doc = docs.remove(0);
    let (api_version, kind) = (doc["apiVersion"].as_str().unwrap_or(""), doc["kind"].as_str().unwrap_or(""));
    if (api_version, kind) != ("devops.stochastic.io/v1alpha1", "KubeDevopsInstall") {
        bail!(
            "expected apiVersion devops.stochastic.io/v1alpha1, kind KubeDevopsInstall; found {api_version:?}, {kind:?}"
        );
    }
    let install: KubeDevopsInstall = serde_json::from_value(doc).context("not a valid KubeDevopsInstall")?;
    Ok(install.spec)
}

/// `REPOSITORY[:TAG]` split in two; a `:` before the last `/` is a registry port. Digests are
/// refused: `spec.image` has no digest field.
pub fn parse_image(image: &str) -> anyhow::Result<(String, Option<String>)> {
    if image.contains('@') {
        bail!("--image {image:?}: digests are not supported (spec.image has a repository and a tag)");
    }
    if image.is_empty() || image.contains(char::is_whitespace) {
        bail!("--image {image:?} is not an image reference");
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => {
            let (repository, tag) = (&image[..name_start + i], &image[name_start + i + 1..]);
            if repository.is_empty() || tag.is_empty() {
                bail!("--image {image:?} is not an image reference");
            }
            Ok((repository.to_string(), Some(tag.to_string())))
        }
        None => Ok((image.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_at_the_tag_not_at_a_registry_port() {
        let split = |s| parse_image(s).unwrap();
        assert_eq!(split("reg:5000/team/app:v1"), ("reg:5000/team/app".into(), Some("v1".into())));
        assert_eq!(split("reg:5000/team/app"), ("reg:5000/team/app".into(), None));
        assert_eq!(split("app:1.2"), ("app".into(), Some("1.2".into())));
        assert!(parse_image("app@sha256:abc").is_err());
        assert!(parse_image("app:").is_err());
        assert!(parse_image("").is_err());
    }

    #[test]
    fn an_install_file_is_read_with_its_defaults() {
        let spec = parse_install(
            "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  webhook: {replicas: 3}\n",
        )
        .unwrap();
        assert_eq!(spec.webhook.replicas, Some(3));
        assert_eq!(spec.replicas, 2);
        assert!(spec.pdb.enabled);
        assert!(parse_install("apiVersion: v1\nkind: ConfigMap\n").is_err());
        assert!(parse_install("").is_err());
    }

    #[test]
    fn an_automatic_setting_that_left_service_monitors_out_says_so() {
        let automatic = KubeDevopsInstallSpec::default();
        let note = automatic_settings_note(&automatic, ClusterApis::default(), true).unwrap();
        assert!(note.contains("--api-versions monitoring.coreos.com/v1"), "{note}");
        let served = ClusterApis { service_monitors: true, policy_reports: false, assigns_ids: false };
        assert_eq!(automatic_settings_note(&automatic, served, true), None);
        assert_eq!(automatic_settings_note(&automatic, ClusterApis::default(), false), None, "nothing left out");
        let mut explicit = automatic.clone();
        explicit.service_monitor.enabled = Some(false);
        assert_eq!(automatic_settings_note(&explicit, ClusterApis::default(), true), None);
    }

    #[test]
    fn the_previous_ca_comes_from_pem_or_from_the_secret() {
        let tls = webhook::generate_tls().unwrap();
        assert_eq!(previous_ca(&tls.ca_crt).unwrap(), tls.ca_crt.as_bytes());
        let secret = crate::yaml::to_yaml(&webhook::tls_secret(&tls)).unwrap();
        assert_eq!(previous_ca(&secret).unwrap(), tls.ca_crt.as_bytes());
        let json = serde_json::to_string(&webhook::tls_secret(&tls)).unwrap();
        assert_eq!(previous_ca(&json).unwrap(), tls.ca_crt.as_bytes());
        assert!(previous_ca("apiVersion: v1\nkind: ConfigMap\n").is_err());
        let mut no_ca = webhook::tls_secret(&tls);
        no_ca.data.as_mut().unwrap().remove("ca.crt");
        let err = previous_ca(&crate::yaml::to_yaml(&no_ca).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("no ca.crt"), "{err:#}");
    }

    fn options(image: Option<&str>, replicas: Option<i32>, otlp_endpoint: Option<&str>) -> DeployOptions {
        DeployOptions {
            file: None,
            image: image.map(String::from),
            replicas,
            otlp_endpoint: otlp_endpoint.map(String::from),
            api_versions: Vec::new(),
        }
    }

    #[test]
    fn command_line_overrides_win_and_are_validated() {
        let spec = spec(&options(Some("reg/kd:v2"), Some(4), Some("http://collector:4318"))).unwrap();
        assert_eq!(spec.image.reference(), "reg/kd:v2");
        assert_eq!(spec.replicas, 4);
        assert_eq!(spec.tracing.otlp_endpoint.as_deref(), Some("http://collector:4318"));
        let untagged = super::spec(&options(Some("reg/kd"), None, None)).unwrap();
        assert_eq!(untagged.image.reference(), format!("reg/kd:v{}", env!("CARGO_PKG_VERSION")));
        let err = super::spec(&options(None, None, Some("collector:4318"))).unwrap_err();
        assert!(format!("{err:#}").contains("spec.tracing.otlpEndpoint must be an http:// or https:// URL"), "{err:#}");
    }
}
