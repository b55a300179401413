//! Free loopback ports.

use std::net::TcpListener;

use crate::TestEnvError;

/// Asks the kernel for a free port on 127.0.0.1. The port is released before
/// the child binds it, so another process may take it in between; callers
/// retry a start-up that fails (see `process::start_with_retries`).
pub fn free_port() -> Result<u16, TestEnvError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TestEnvError::io("binding a free loopback port", e))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| TestEnvError::io("reading a bound port", e))
}
