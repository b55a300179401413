//! A replica's own network namespace, for real partitions: a veth pair to
//! the host (`10.251.<n>.1` on the host, `.2` inside), and the host's
//! loopback services (the API server, the APISIX etcd) reachable from
//! inside at the host-side address through DNAT (`route_localnet`), so the
//! test environment needs no other listening address. Faults are rules
//! inside the namespace: `cut` rejects one port, `lossy` drops a share of
//! its packets. Everything is removed on drop.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
#[error("{command}: {reason}")]
pub struct NetnsError {
    command: String,
    reason: String,
}

fn run(program: &str, args: &[&str]) -> Result<(), NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetnsError {
            command: command.clone(),
            reason: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetnsError {
            command,
            reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

pub struct Netns {
    pub name: String,
    host_if: String,
    inner_if: String,
    /// The host's address as seen from inside.
    pub host_ip: String,
    chain: String,
}

impl Netns {
    /// Creates namespace `name` (number `n`, 1..=250, keeps addresses apart)
    /// reaching the host's loopback `ports`.
    pub fn create(name: &str, n: u8, ports: &[u16]) -> Result<Netns, NetnsError> {
        let netns = Netns {
            name: name.to_string(),
            host_if: format!("ch{n}h"),
            inner_if: format!("ch{n}n"),
            host_ip: format!("10.251.{n}.1"),
            chain: format!("CHAOS-{n}"),
        };
        let inner_ip = format!("10.251.{n}.2");
        netns.remove();
        run("ip", &["netns", "add", name])?;
        run(
            "ip",
            &[
                "link",
                "add",
                &netns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &netns.inner_if,
            ],
        )?;
        run("ip", &["link", "set", &netns.inner_if, "netns", name])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", netns.host_ip),
                "dev",
                &netns.host_if,
            ],
        )?;
        run("ip", &["link", "set", &netns.host_if, "up"])?;
        netns.inside(
            "ip",
            &[
                "addr",
                "add",
                &format!("{inner_ip}/24"),
                "dev",
                &netns.inner_if,
            ],
        )?;
        netns.inside("ip", &["link", "set", &netns.inner_if, "up"])?;
        netns.inside("ip", &["link", "set", "lo", "up"])?;
        run(
            "sysctl",
            &[
                "-qw",
                &format!("net.ipv4.conf.{}.route_localnet=1", netns.host_if),
            ],
        )?;
        run("iptables", &["-t", "nat", "-N", &netns.chain])?;
        run(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-i",
                &netns.host_if,
                "-j",
                &netns.chain,
            ],
        )?;
        for port in ports {
            let port = port.to_string();
            run(
                "iptables",
                &[
                    "-t",
                    "nat",
                    "-A",
                    &netns.chain,
                    "-p",
                    "tcp",
                    "-d",
                    &netns.host_ip,
                    "--dport",
                    &port,
                    "-j",
                    "DNAT",
                    "--to-destination",
                    &format!("127.0.0.1:{port}"),
                ],
            )?;
        }
        Ok(netns)
    }

    fn inside(&self, program: &str, args: &[&str]) -> Result<(), NetnsError> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// The command prefix that runs a program inside (network namespace only).
    pub fn prefix(&self) -> Vec<String> {
        vec!["nsenter".into(), format!("--net=/run/netns/{}", self.name)]
    }

    /// Rejects new and established traffic to the host's `port`.
    pub fn cut(&self, port: u16) -> Result<(), NetnsError> {
        self.rule("-A", port)
    }

    pub fn heal(&self, port: u16) -> Result<(), NetnsError> {
        self.rule("-D", port)
    }

    fn rule(&self, action: &str, port: u16) -> Result<(), NetnsError> {
        self.output_rule(
            action,
            port,
            &["-j", "REJECT", "--reject-with", "tcp-reset"],
        )
    }

    /// Appends (`-A`) or deletes (`-D`) an OUTPUT rule for TCP to the
    /// host's `port`, matching further with `rest`.
    fn output_rule(&self, action: &str, port: u16, rest: &[&str]) -> Result<(), NetnsError> {
        let port = port.to_string();
        let mut args = vec![
            action,
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            &self.host_ip,
            "--dport",
            &port,
        ];
        args.extend_from_slice(rest);
        self.inside("iptables", &args)
    }

    /// Drops `percent` of the packets to the host's `port` at random
    /// (iptables' statistic match: this machine's kernel has no netem, so
    /// latency cannot be added this way).
    pub fn lossy(&self, port: u16, percent: u32) -> Result<(), NetnsError> {
        self.loss_rule("-A", port, percent)
    }

    pub fn lossless(&self, port: u16, percent: u32) -> Result<(), NetnsError> {
        self.loss_rule("-D", port, percent)
    }

    fn loss_rule(&self, action: &str, port: u16, percent: u32) -> Result<(), NetnsError> {
        let probability = format!("{:.2}", f64::from(percent) / 100.0);
        let statistic = [
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &probability,
        ];
        let mut rest = statistic.to_vec();
        rest.extend(["-j", "DROP"]);
        self.output_rule(action, port, &rest)
    }

    fn remove(&self) {
        let _ = run("ip", &["netns", "delete", &self.name]);
        let _ = run("ip", &["link", "delete", &self.host_if]);
        let _ = run(
            "iptables",
            &[
                "-t",
                "nat",
                "-D",
                "PREROUTING",
                "-i",
                &self.host_if,
                "-j",
                &self.chain,
            ],
        );
        let _ = run("iptables", &["-t", "nat", "-F", &self.chain]);
        let _ = run("iptables", &["-t", "nat", "-X", &self.chain]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}
