//! The per-run work directory, and the sweep of directories that earlier
//! runs (killed before they could clean up) left behind.

use std::path::{Path, PathBuf};

use crate::TestEnvError;

const PREFIX: &str = "apisix-operator-testenv-";

/// A temporary directory named after this process, removed on drop.
pub struct WorkDir {
    dir: tempfile::TempDir,
}

impl WorkDir {
    pub fn new() -> Result<WorkDir, TestEnvError> {
        let base = std::env::temp_dir();
        sweep_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&base)
            .map_err(|e| TestEnvError::io("creating the test environment's work directory", e))?;
        Ok(WorkDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes work directories whose owning process no longer exists.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
