fn main() -> std::process::ExitCode {
    apisix_operator::cli::main()
}
