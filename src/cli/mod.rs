//! The command line: argument parsing and dispatch to the commands.

mod audit;
mod crd;
mod deploy;
mod fleet;
mod gitops;
mod policy;

pub use deploy::{DeployCommand, DeployOptions};

use crate::api::bundles::BundleName;
use crate::audit::render::{AuditFormat, OutputFormat};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The score is under `--fail-below`.
    pub const BELOW_THRESHOLD: u8 = 1;
    /// `policy diff` found changes (as `kubectl diff`).
    pub const CHANGES: u8 = 1;
    /// Bad input, bad usage, or the cluster could not be read.
    pub const ERROR: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "kube-devops",
    version,
    about = "Kubernetes DevOps governance: scores workloads against best practices"
)]
pub struct Cli {
    /// Log lines of the server commands (watch, reconcile, operator, webhook serve): text, or
    /// one JSON object a line. Levels come from RUST_LOG (default info).
    #[arg(long, global = true, value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit manifests offline (files, folders, or - for stdin), e.g. `helm template . | kube-devops audit -`.
    Audit {
        /// YAML or JSON files, folders (walked for .yaml/.yml/.json), or - for stdin.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        opts: AuditOptions,
    },
    /// Audit the pods of the cluster in KUBECONFIG (read-only).
    Analyze {
        /// Only this namespace (default: every namespace).
        #[arg(short, long)]
        namespace: Option<String>,
        #[command(flatten)]
        opts: AuditOptions,
    },
    /// Built-in policy bundles, and DevOpsPolicies in git: export, import, diff.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Several clusters (the contexts of KUBECONFIG) at once.
    MultiCluster {
        #[command(subcommand)]
        command: MultiClusterCommand,
    },
    /// The CustomResourceDefinitions of kube-devops.
    Crd {
        #[command(subcommand)]
        command: CrdCommand,
    },
    /// The validating admission webhook.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// The watch controller: the elected leader of its replicas scores every pod and exports
    /// the scores on /metrics (HTTP, with /healthz and /readyz).
    Watch {
        /// Address to listen on (default: $POD_IP:8080, or 0.0.0.0:8080 without POD_IP).
        #[arg(long)]
        addr: Option<String>,
        /// The built-in bundle pods are scored against.
        #[arg(long, value_enum, ignore_case = true, value_name = "NAME")]
        bundle: Option<BundleName>,
    },
    /// The reconcile operator: evaluates every DevOpsPolicy, writes its status and audit
    /// history, and exports per-policy metrics (HTTP /healthz, /readyz, /metrics).
    Reconcile {
        /// Address to listen on (default: $POD_IP:9090, or 0.0.0.0:9090 without POD_IP).
        #[arg(long)]
        addr: Option<String>,
        /// Seconds between evaluations of each policy (pods change without touching it).
        #[arg(long, value_name = "SECONDS", default_value_t = crate::reconcile::controller::EVALUATION_INTERVAL.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        evaluation_interval: u64,
        /// Keep a wgpolicyk8s.io/v1alpha2 PolicyReport `kube-devops` in each namespace with
        /// DevOpsPolicies (needs the PolicyReport CRD; without it, nothing is written).
        #[arg(long)]
        policy_reports: bool,
    },
    /// The bootstrap operator: reconciles the KubeDevopsInstall `default` into the whole
    /// installation (HTTP /healthz, /readyz, /metrics).
    Operator {
        /// Address to listen on (default: $POD_IP:8081, or 0.0.0.0:8081 without POD_IP).
        #[arg(long)]
        addr: Option<String>,
    },
    /// The web dashboard: the cluster's scores, findings and DevOpsPolicies as a page, built
    /// again on every load (read-only, like analyze; HTTP, with /healthz and /readyz).
    Dashboard {
        /// Address to listen on (default 0.0.0.0:8090, so kubectl port-forward reaches it).
        #[arg(long)]
        addr: Option<String>,
        /// The built-in bundle pods are scored against (default baseline).
        #[arg(long, value_enum, ignore_case = true, value_name = "NAME")]
        bundle: Option<BundleName>,
    },
    /// Installation manifests (pipe into kubectl apply -f -).
    Deploy {
        #[command(subcommand)]
        command: DeployCommand,
    },
    /// Print the version.
    Version,
}

/// Options shared by `audit` and `analyze`.
#[derive(Debug, Args)]
pub struct AuditOptions {
    /// A file holding the DevOpsPolicy to apply.
    #[arg(long, conflicts_with = "bundle")]
    pub policy: Option<PathBuf>,
    /// A built-in bundle to apply.
    #[arg(long, value_enum, ignore_case = true, value_name = "NAME")]
    pub bundle: Option<BundleName>,
    /// Output format: `policyreport` prints one wgpolicyk8s.io/v1alpha2 PolicyReport per
    /// namespace (YAML documents, ready for `kubectl apply`); `html` one self-contained page
    /// (`-o html > report.html`, opens without network).
    #[arg(short, long, value_enum, default_value_t = AuditFormat::Table)]
    pub output: AuditFormat,
    /// Exit with code 1 when the overall score is under N (0-100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub fail_below: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the check catalogue: each check's id, category, default severity and weight,
    /// the DevOpsPolicy setting that turns it on, and the bundles that include it.
    Checks {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// List the built-in bundles.
    BundleList,
    /// Print a bundle as a ready-to-apply DevOpsPolicy.
    BundleShow {
        /// Bundle name (case-insensitive).
        #[arg(value_enum, ignore_case = true)]
        name: BundleName,
        /// Namespace of the printed policy.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Name of the printed policy (default: the bundle name).
        #[arg(long)]
        policy_name: Option<String>,
    },
    /// Print the cluster's DevOpsPolicies, ready to commit (server-owned metadata and status
    /// removed, annotated with where and when they were exported). Only YAML (or JSON) on stdout.
    Export {
        /// Only this namespace (default: the kubeconfig's namespace).
        #[arg(short, long, conflicts_with = "all_namespaces")]
        namespace: Option<String>,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = ExportFormat::Yaml)]
        output: ExportFormat,
    },
    /// Apply DevOpsPolicy files with server-side apply (field manager kube-devops-cli, forced),
    /// after validating every document against the CRD's schema: nothing is sent if any is
    /// invalid.
    Import {
        /// YAML or JSON files (multi-document; `kind: List` is read), or - for stdin.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Namespace of documents that name none; with it, every document must be in it.
        #[arg(short, long)]
        namespace: Option<String>,
        /// `client`: validate only, no cluster needed. `server`: the API server validates and
        /// reports without storing anything.
        #[arg(long, value_enum, value_name = "MODE")]
        dry_run: Option<DryRun>,
        /// After every policy applied, delete the other DevOpsPolicies of the namespace (needs
        /// -n; with --dry-run=server, says what it would delete).
        #[arg(long, requires = "namespace")]
        prune: bool,
    },
    /// Compare the cluster's DevOpsPolicies with files: a unified diff of what import would
    /// change, and the policies only the cluster has. Exit 0 no changes, 1 changes, 2 error.
    Diff {
        /// YAML or JSON files, or - for stdin.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Namespace of documents that name none; with it, every document must be in it, and
        /// its policies missing from the files are reported.
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

/// Output formats of `policy export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Yaml,
    Json,
}

/// `policy import --dry-run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    Client,
    Server,
}

#[derive(Debug, Subcommand)]
pub enum MultiClusterCommand {
    /// Try every context of KUBECONFIG (a version call) and say whether it is reachable.
    ListContexts {
        /// How long each cluster may take to answer, e.g. 10s, 500ms.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        timeout: std::time::Duration,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Score the pods of several clusters at once: per cluster (and namespace), the
    /// pod-weighted aggregate, and the clusters that could not be read.
    Analyze {
        /// The contexts to read (default: every context of KUBECONFIG).
        #[arg(long, value_delimiter = ',', value_name = "CONTEXT,...")]
        contexts: Vec<String>,
        /// A built-in bundle to apply everywhere (default baseline).
        #[arg(long, value_enum, ignore_case = true, value_name = "NAME", conflicts_with = "use_cluster_policies")]
        bundle: Option<BundleName>,
        /// Apply each cluster's own DevOpsPolicies to their namespaces instead of a bundle.
        #[arg(long)]
        use_cluster_policies: bool,
        /// Report each cluster's namespaces too.
        #[arg(long)]
        per_cluster: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
        /// How long each cluster may take to be read (every page), e.g. 10s, 1m.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        timeout: std::time::Duration,
        /// Exit with code 1 when the aggregate score is under N (0-100).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
        fail_below: Option<u32>,
        /// Exit with code 2 when any cluster could not be read (a gate that never passes on a
        /// cluster it did not see); by default only when none could.
        #[arg(long)]
        require_all: bool,
    },
}

/// A positive duration such as `10s`, `500ms`, `1m30s`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration: jiff::SignedDuration = text.parse().map_err(|e| format!("not a duration ({e}); e.g. 10s, 500ms"))?;
    match std::time::Duration::try_from(duration) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err("must be more than zero".into()),
    }
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Serve AdmissionReviews over HTTPS (/validate, /healthz, /readyz).
    Serve {
        /// Address to listen on (default: $POD_IP:8443, or 0.0.0.0:8443 without POD_IP).
        #[arg(long)]
        addr: Option<String>,
        /// PEM certificate (chain) to serve with.
        #[arg(long, default_value = "tls.crt")]
        tls_cert: PathBuf,
        /// PEM private key of the certificate.
        #[arg(long, default_value = "tls.key")]
        tls_key: PathBuf,
        /// A user whose requests to create a pod, Job or ReplicaSet for the workload that
        /// controls it are trusted like the built-in controllers' (repeatable), e.g.
        /// system:serviceaccount:argo-rollouts:argo-rollouts.
        #[arg(long = "trusted-controller", value_name = "USER")]
        trusted_controllers: Vec<String>,
        /// Seconds to keep serving after SIGTERM (with /readyz failing) while the endpoint is
        /// withdrawn.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::admission::server::DRAIN_DELAY.as_secs())]
        drain_seconds: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum CrdCommand {
    /// Print every CRD as multi-document YAML, or write one file per CRD with --out-dir.
    Generate {
        /// Write `<plural>.yaml` files into this folder instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli))
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    // The server commands log and trace; the guard flushes their last spans when they end.
    let server = match &cli.command {
        Command::Watch { .. } => Some("watch"),
        Command::Reconcile { .. } => Some("reconcile"),
        Command::Operator { .. } => Some("operator"),
        Command::Webhook { .. } => Some("webhook"),
        Command::Dashboard { .. } => Some("dashboard"),
        _ => None,
    };
    let _traces = server.and_then(|component| crate::logging::init(cli.log_format, component));
    let result = match cli.command {
        Command::Audit { paths, opts } => audit::audit(&paths, &opts),
        Command::Analyze { namespace, opts } => audit::analyze(namespace.as_deref(), &opts),
        Command::Policy { command } => policy::run(command),
        Command::MultiCluster { command } => fleet::run(command),
        Command::Crd { command: CrdCommand::Generate { out_dir } } => crd::generate(out_dir.as_deref()),
        Command::Deploy { command } => deploy::run(command),
        Command::Webhook {
            command: WebhookCommand::Serve { addr, tls_cert, tls_key, trusted_controllers, drain_seconds },
        } => {
            let addr = addr.unwrap_or_else(crate::admission::server::default_addr);
            let trusted = crate::admission::TrustedControllers::new(trusted_controllers);
            let drain = std::time::Duration::from_secs(drain_seconds);
            let options = crate::admission::server::WebhookOptions { addr, tls_cert, tls_key, trusted, drain };
            crate::admission::server::serve(options).map(|()| exit::OK)
        }
        Command::Watch { addr, bundle } => {
            crate::watch::controller::run(crate::watch::controller::WatchOptions::from_env(addr, bundle))
                .map(|()| exit::OK)
        }
        Command::Reconcile { addr, evaluation_interval, policy_reports } => {
            let addr = addr.unwrap_or_else(|| crate::http::pod_addr(9090));
            let interval = std::time::Duration::from_secs(evaluation_interval);
            crate::reconcile::controller::run(addr, interval, policy_reports).map(|()| exit::OK)
        }
        Command::Dashboard { addr, bundle } => crate::dashboard::server::serve(
            addr.unwrap_or_else(crate::dashboard::server::default_addr),
            bundle.unwrap_or(BundleName::Baseline),
        )
        .map(|()| exit::OK),
        Command::Operator { addr } => {
            crate::bootstrap::controller::run(addr.unwrap_or_else(|| crate::http::pod_addr(8081))).map(|()| exit::OK)
        }
        Command::Version => {
            crate::yaml::print(&format!("kube-devops version {}\n", env!("CARGO_PKG_VERSION")));
            Ok(exit::OK)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ERROR
        }
    }
}
