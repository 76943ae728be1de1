//! What Linux's `/proc` says about the processes under test and the machine: CPU time
//! (utime + stime), resident memory (now and its peak), the whole machine's busy time,
//! and the CPU model, cores and memory for the report.

use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

/// Bytes per MB in reports: the budget is in MB, so 10^6, not MiB.
const MB: f64 = 1e6;

/// CPU seconds (user + system) a process has used so far.
///
/// # Errors
///
/// When the process is gone or its stat line is not understood.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds (user + system) one thread of a process has used so far.
///
/// # Errors
///
/// When the thread is gone or its stat line is not understood.
pub fn thread_cpu_seconds(pid: u32, tid: u32) -> anyhow::Result<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/task/{tid}/stat"))
}

fn stat_cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {} of {path}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)`: the unit of the times in `/proc` (100 on Linux).
fn clock_ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// The process's resident memory now (`VmRSS`), in MB.
///
/// # Errors
///
/// When the process is gone.
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    status_kb(pid, "VmRSS:").map(|kb| kb * 1024.0 / MB)
}

/// The process's peak resident memory (`VmHWM`) since it started or since the last
/// [`reset_peak_rss`], in MB.
///
/// # Errors
///
/// When the process is gone.
pub fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    status_kb(pid, "VmHWM:").map(|kb| kb * 1024.0 / MB)
}

/// Starts a new peak: `VmHWM` falls to the current RSS, so each workload reports its
/// own peak. Whether the kernel allowed it (Linux ≥ 4.0, and our own child).
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn status_kb(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{key} in /proc/{pid}/status"))
}

/// CPU time of the whole machine, to tell how busy it was beside the processes measured.
#[derive(Debug, Clone, Copy)]
pub struct MachineTime {
    /// Seconds any core spent busy (everything but idle, iowait and steal), summed over
    /// cores.
    pub busy: f64,
    pub at: Instant,
}

impl MachineTime {
    /// # Errors
    ///
    /// When `/proc/stat` cannot be read.
    pub fn now() -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
        let at = Instant::now();
        let cpu = stat
            .lines()
            .find_map(|line| line.strip_prefix("cpu "))
            .context("the cpu line of /proc/stat")?;
        let ticks: Vec<u64> = cpu
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq, then steal: time the hypervisor gave
        // to someone else, which is no work on this machine (guest time is inside user).
        let busy: u64 = ticks
            .iter()
            .take(7)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, t)| t)
            .sum();
        Ok(Self {
            busy: busy as f64 / clock_ticks(),
            at,
        })
    }
}

/// The machine the run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    /// The first core's clock as `/proc/cpuinfo` states it (absent on some architectures).
    pub cpu_mhz: Option<f64>,
    pub cores: usize,
    pub memory_gb: f64,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
        };
        let cpu_model = field("model name").unwrap_or_else(|| "unknown".to_owned());
        let cpu_mhz = field("cpu MHz").and_then(|mhz| mhz.parse().ok());
        let cores = cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kb: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| release.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpu_model,
            cpu_mhz,
            cores,
            memory_gb: (memory_kb * 1024.0 / 1e9 * 10.0).round() / 10.0,
            kernel,
        }
    }

    /// `AMD EPYC 7B13 at 2,596 MHz, 2 cores, 24.6 GB`: what the figures were measured on.
    pub fn summary(&self) -> String {
        let clock = self
            .cpu_mhz
            .map(|mhz| format!(" at {} MHz", crate::report::number(mhz)))
            .unwrap_or_default();
        format!(
            "{}{clock}, {} cores, {} GB",
            self.cpu_model, self.cores, self.memory_gb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let pid = std::process::id();
        // Burn a little CPU so the figure is not zero on a coarse clock.
        let start = Instant::now();
        let mut x = 0_u64;
        while start.elapsed().as_millis() < 30 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds(pid).unwrap() > 0.0);
        let rss = rss_mb(pid).unwrap();
        assert!(rss > 0.0);
        assert!(peak_rss_mb(pid).unwrap() >= rss);
        assert!(MachineTime::now().unwrap().busy > 0.0);
        let machine = Machine::describe();
        assert!(machine.cores > 0);
        assert!(machine.summary().contains(" cores, "));
    }
}
