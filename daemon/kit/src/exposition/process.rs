//! The standard `process_*` metrics of the Prometheus client libraries, read from Linux's
//! `/proc/self` at scrape time (no dependency): resident memory, CPU time, open and maximum
//! file descriptors, start time. A value that cannot be read is left out, not faked.

use std::fmt::Write as _;

/// Clock ticks per second of `/proc/<pid>/stat`: `USER_HZ`, 100 on every Linux architecture
/// a daemon of this workspace runs on (the kernel fixes it for user space).
const USER_HZ: f64 = 100.0;

/// The `process_*` families in OpenMetrics text (what [`crate::exposition::prometheus_text`] rewrites).
pub fn render() -> String {
    let mut out = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name, which is in parentheses and may hold spaces: field 3
    // (state) is index 0 here, so utime (14) is 11, stime (15) 12, starttime (22) 19.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
        family(
            &mut out,
            "process_cpu_seconds",
            "counter",
            "Total user and system CPU time spent in seconds.",
            "process_cpu_seconds_total",
            (user + system) as f64 / USER_HZ,
        );
    }
    if let Some(rss) = status_kib("VmRSS:") {
        family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            "process_resident_memory_bytes",
            (rss * 1024) as f64,
        );
    }
    if let Some(virtual_kib) = status_kib("VmSize:") {
        family(
            &mut out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            "process_virtual_memory_bytes",
            (virtual_kib * 1024) as f64,
        );
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        family(
            &mut out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            "process_open_fds",
            entries.count() as f64,
        );
    }
    if let Some(max) = max_open_files() {
        family(
            &mut out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            "process_max_fds",
            max as f64,
        );
    }
    if let (Some(start), Some(boot)) = (ticks(19), boot_time()) {
        family(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            "process_start_time_seconds",
            boot as f64 + start as f64 / USER_HZ,
        );
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, sample: &str, value: f64) {
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{sample} {value}\n"
    );
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The soft limit of open files ("unlimited": none to report).
fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Boot time, Unix seconds (`btime` of `/proc/stat`).
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_process_metric_is_read_from_proc() {
        let text = crate::exposition::prometheus_text(&render());
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing in {text}"))
                .parse()
                .unwrap();
            assert!(value >= 0.0, "{name} {value}");
        }
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_start_time_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(started <= now + 1.0 && started > now - 86_400.0 * 365.0);
    }
}
