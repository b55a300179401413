//! The operator binary, built inside this package so its tests can run it
//! (`CARGO_BIN_EXE_chaos-operator`): the same entry point as
//! `operator/src/main.rs`, nothing added.

fn main() -> std::process::ExitCode {
    apisix_operator::cli::main()
}
