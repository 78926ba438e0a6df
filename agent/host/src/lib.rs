//! Facts about the host the agent runs on, read from sysinfo and `/etc/machine-id`. Each fact
//! that cannot be read is left empty; no fact is required to attest.
//!
//! Invariant: reads only; nothing here changes the host.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The host's identity and shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// systemd's machine id (`/etc/machine-id`), stable across reboots.
    pub machine_id: String,
    /// Operating system, e.g. "Linux 12 Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// Boot time, seconds since the Unix epoch.
    pub boot_time_unix_s: i64,
    /// CPU model.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
}

/// Where systemd keeps the machine id.
const MACHINE_ID: &str = "/etc/machine-id";

/// Reads the facts now.
pub fn read() -> HostFacts {
    let system = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let cpus = system.cpus();
    HostFacts {
        hostname: System::host_name().unwrap_or_default(),
        machine_id: std::fs::read_to_string(MACHINE_ID)
            .map(|id| id.trim().to_owned())
            .unwrap_or_default(),
        os: System::long_os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        boot_time_unix_s: i64::try_from(System::boot_time()).unwrap_or(0),
        cpu_model: cpus
            .first()
            .map(|cpu| cpu.brand().trim().to_owned())
            .unwrap_or_default(),
        cpu_count: u32::try_from(cpus.len()).unwrap_or(u32::MAX),
        memory_bytes: system.total_memory(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        let facts = read();
        assert!(!facts.hostname.is_empty());
        assert!(!facts.kernel.is_empty());
        assert!(facts.cpu_count >= 1);
        assert!(facts.memory_bytes > 0);
        assert!(facts.boot_time_unix_s > 1_000_000_000);
    }
}
