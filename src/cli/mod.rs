//! The command line: argument parsing and dispatch to the commands.

mod audit;
mod crd;
mod deploy;
mod policy;

pub use deploy::{DeployCommand, DeployOptions};

use crate::api::bundles::BundleName;
use crate::audit::render::OutputFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The score is under `--fail-below`.
    pub const BELOW_THRESHOLD: u8 = 1;
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
    /// Built-in policy bundles.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
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
    },
    /// The bootstrap operator: reconciles the KubeDevopsInstall `default` into the whole
    /// installation (HTTP /healthz, /readyz, /metrics).
    Operator {
        /// Address to listen on (default: $POD_IP:8081, or 0.0.0.0:8081 without POD_IP).
        #[arg(long)]
        addr: Option<String>,
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
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Exit with code 1 when the overall score is under N (0-100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub fail_below: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
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
    let result = match cli.command {
        Command::Audit { paths, opts } => audit::audit(&paths, &opts),
        Command::Analyze { namespace, opts } => audit::analyze(namespace.as_deref(), &opts),
        Command::Policy { command } => policy::run(command),
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
        Command::Reconcile { addr, evaluation_interval } => {
            let addr = addr.unwrap_or_else(|| crate::http::pod_addr(9090));
            let interval = std::time::Duration::from_secs(evaluation_interval);
            crate::reconcile::controller::run(addr, interval).map(|()| exit::OK)
        }
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
