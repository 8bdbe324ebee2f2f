//! This host's processes: the name a job's owner is recorded under, whether an owner's
//! process is still alive, and asking one to stop (`mp jobs`).

use std::path::Path;
use std::process::{Command, Stdio};

use marketpipe_ports::OwnerProbe;

/// This host's processes, behind the `OwnerProbe` port.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocalProcesses;

impl OwnerProbe for LocalProcesses {
    fn host_name(&self) -> String {
        host_name()
    }

    fn pid_alive(&self, pid: u32) -> Option<bool> {
        pid_alive(pid)
    }
}

/// This host's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `uname -n`).
pub(crate) fn host_name() -> String {
    let from_proc = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned());
    from_proc
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| {
            Command::new("uname")
                .arg("-n")
                .stderr(Stdio::null())
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether process `pid` of this host is alive: `None` when that cannot be told here.
/// A zombie (exited, not yet reaped) is not alive.
pub(crate) fn pid_alive(pid: u32) -> Option<bool> {
    if Path::new("/proc/self").exists() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Some(false);
        };
        // `pid (comm) state …`: comm may hold spaces and parentheses; the state follows the
        // last ')'.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        return Some(!matches!(state, Some("Z" | "X")));
    }
    if cfg!(unix) {
        return Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .map(|s| s.success());
    }
    None
}

/// Asks process `pid` of this host to stop (SIGTERM: it finishes the work in flight and
/// ends its job `cancelled`). Whether the signal was delivered.
pub(crate) fn terminate(pid: u32) -> bool {
    cfg!(unix)
        && Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_has_a_host() {
        assert!(!host_name().is_empty());
        assert_eq!(pid_alive(std::process::id()), Some(true));
        // Pids are below 2^22 on Linux; this one cannot exist.
        assert_eq!(pid_alive(u32::MAX - 1), Some(false));
    }
}
