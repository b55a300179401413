//! Child processes that never outlive the test process.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not
//! the process. Test harnesses run each test on a thread of its own, so a
//! child forked by a test thread would be killed when that test ends, even if
//! a shared environment still needs it. All children are therefore forked by
//! one spawner thread that lives as long as the process.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use crate::TestEnvError;

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, inbox) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testenv-spawner".into())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
                // The senders live in a static, so the loop only ends with the
                // process; park anyway so the thread (and PDEATHSIG) outlives
                // every child.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning the testenv spawner thread");
        Mutex::new(requests)
    })
}

/// A child process killed (SIGKILL) and reaped on drop; its stdout and stderr
/// go to a log file whose tail is shown in start-up errors.
pub struct ManagedProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ManagedProcess {
    /// Spawns `program args` with its output appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<ManagedProcess, TestEnvError> {
        Self::spawn_with_env(name, program, args, &[], log)
    }

    /// Like [`ManagedProcess::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<ManagedProcess, TestEnvError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| TestEnvError::io(format!("opening {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| TestEnvError::io("duplicating a log file handle", e))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls the async-signal-safe prctl(2).
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (reply, answer) = mpsc::channel();
        spawner()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send((command, reply))
            .expect("the spawner thread lives as long as the process");
        let child = answer
            .recv()
            .expect("the spawner thread answers every request")
            .map_err(|e| TestEnvError::io(format!("starting {}", program.display()), e))?;
        Ok(ManagedProcess {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Returns the exit status if the process has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 30)
    }

    /// Sends a signal (for chaos tests: SIGSTOP/SIGCONT/SIGTERM).
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(std::io::Error::other)?;
        // SAFETY: kill(2) on our own child's pid; the child is not reaped yet
        // (we hold it), so the pid cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub(crate) fn exited_early_error(&mut self, status: ExitStatus) -> TestEnvError {
        TestEnvError::ExitedEarly {
            name: self.name.clone(),
            status,
            log: self.log.clone(),
            tail: self.log_tail(),
        }
    }

    pub(crate) fn not_ready_error(
        &self,
        waited: std::time::Duration,
        last_error: String,
    ) -> TestEnvError {
        TestEnvError::NotReady {
            name: self.name.clone(),
            waited,
            last_error,
            log: self.log.clone(),
            tail: self.log_tail(),
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
