fn main() -> std::process::ExitCode {
    kube_devops::cli::main()
}
