//! Faults for a replica running as a pod on this machine's kubelet
//! (`testenv/cluster/`): its container's process is a host process, found
//! by the pod name the kubelet puts in its environment, and its network
//! namespace is the pod's, where iptables rules cut one destination.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("no apisix-operator process of pod {0} on this host")]
    NoProcess(String),
    #[error("signal {signal} to pid {pid}: {source}")]
    Signal {
        signal: i32,
        pid: i32,
        source: std::io::Error,
    },
    #[error("{command}: {reason}")]
    Command { command: String, reason: String },
}

/// The operator process of pod `pod` (the one whose `HOSTNAME` is the pod's
/// name and whose command is `apisix-operator`).
pub fn process_of(pod: &str) -> Result<i32, PodError> {
    let hostname = format!("HOSTNAME={pod}");
    let entries = std::fs::read_dir("/proc").map_err(|_| PodError::NoProcess(pod.into()))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != "apisix-operator" {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|var| var == hostname.as_bytes())
        {
            return Ok(pid);
        }
    }
    Err(PodError::NoProcess(pod.into()))
}

pub fn signal(pid: i32, signal: i32) -> Result<(), PodError> {
    // SAFETY: kill(2) has no memory effects; a stale pid fails with ESRCH.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(PodError::Signal {
            signal,
            pid,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Rejects (or with `heal`, stops rejecting) TCP from the process's network
/// namespace to `ip:port`.
pub fn cut(pid: i32, ip: &str, port: u16, heal: bool) -> Result<(), PodError> {
    let netns = format!("--net=/proc/{pid}/ns/net");
    let port = port.to_string();
    let action = if heal { "-D" } else { "-I" };
    let args = [
        netns.as_str(),
        "iptables",
        action,
        "OUTPUT",
        "-d",
        ip,
        "-p",
        "tcp",
        "--dport",
        &port,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ];
    let output = Command::new("nsenter")
        .args(args)
        .output()
        .map_err(|e| PodError::Command {
            command: format!("nsenter {}", args.join(" ")),
            reason: e.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(PodError::Command {
        command: format!("nsenter {}", args.join(" ")),
        reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}
