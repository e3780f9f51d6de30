//! CPU and memory-management knobs under `/sys`: transparent huge pages, the frequency governor
//! and the clock source.

use super::Check;
use crate::host::{garbage, HostView};
use crate::report::{Finding, Fix, HostWrite, Status};

/// The THP mode file.
pub const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
/// The directory holding `cpuN/cpufreq/scaling_governor`.
pub const CPU_DIR: &str = "/sys/devices/system/cpu";
/// The current clock source file.
pub const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
/// The clock sources the kernel offers.
pub const CLOCKSOURCES: &str = "/sys/devices/system/clocksource/clocksource0/available_clocksource";

/// The selected word of a `/sys` choice file: `always [madvise] never` gives `madvise`; a file
/// holding a single bare word gives that word.
pub fn selected(content: &str) -> Option<&str> {
    let t = content.trim();
    if let (Some(a), Some(b)) = (t.find('['), t.find(']')) {
        return (a < b && !t[a + 1..b].trim().is_empty()).then(|| t[a + 1..b].trim());
    }
    (!t.is_empty() && !t.contains(char::is_whitespace)).then_some(t)
}

/// Transparent huge pages mode.
#[derive(Debug, Clone, Copy)]
pub struct TransparentHugePages;

const THP_WHY: &str = "With `always` khugepaged compacts memory and collapses pages in the background \
    and page faults may stall on compaction: latency spikes and memory bloat. A broker gains little \
    from huge pages; madvise lets only programs that ask use them";

impl Check for TransparentHugePages {
    fn evaluate(&self, host: &HostView) -> Finding {
        let setting = "transparent_hugepage";
        let recommended = "madvise or never";
        let content = match host.read_value(THP_ENABLED) {
            Ok(c) => c,
            Err(e) => return Finding::unknown(setting, recommended, e, THP_WHY),
        };
        let status = match selected(&content) {
            Some("madvise") | Some("never") => Status::Ok,
            Some("always") => Status::Warn,
            _ => {
                return Finding::unknown(
                    setting,
                    recommended,
                    garbage(THP_ENABLED, &content, "always, madvise or never"),
                    THP_WHY,
                )
            }
        };
        let current = selected(&content).unwrap_or("?").to_string();
        Finding::new(setting, current, recommended, THP_WHY, status).with_fix(Fix::Runtime {
            writes: vec![HostWrite { path: THP_ENABLED.to_string(), value: "madvise".to_string() }],
            command: format!("echo madvise > {THP_ENABLED}"),
            persist: "add transparent_hugepage=madvise to the kernel command line (takes effect at reboot)".to_string(),
        })
    }
}

/// CPU frequency governor across all CPUs.
#[derive(Debug, Clone, Copy)]
pub struct Governor;

const GOV_WHY: &str =
    "Power-saving governors lower the clock when a shard waits on io_uring and take \
    time to ramp up again, adding latency to every request burst; performance keeps cores at speed";

fn governor_path(cpu: &str) -> String {
    format!("{CPU_DIR}/{cpu}/cpufreq/scaling_governor")
}

/// The `cpuN` directories under [`CPU_DIR`].
fn cpus(host: &HostView) -> Result<Vec<String>, crate::host::HostError> {
    let mut cpus: Vec<String> = host
        .list_dir(CPU_DIR)?
        .into_iter()
        .filter(|n| {
            n.len() > 3 && n.starts_with("cpu") && n[3..].bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    cpus.sort_by_key(|n| n[3..].parse::<u64>().unwrap_or(u64::MAX));
    Ok(cpus)
}

impl Check for Governor {
    fn evaluate(&self, host: &HostView) -> Finding {
        let setting = "cpu frequency governor";
        let recommended = "performance";
        let cpus = match cpus(host) {
            Ok(c) => c,
            Err(e) => return Finding::unknown(setting, recommended, e, GOV_WHY),
        };
        // (cpu, governor) for each CPU exposing cpufreq with a readable governor.
        let mut govs: Vec<(String, String)> = Vec::new();
        let mut odd = None;
        for cpu in &cpus {
            match host.read_value(&governor_path(cpu)) {
                Ok(g) if !g.contains(char::is_whitespace) => govs.push((cpu.clone(), g)),
                Ok(g) => odd = Some(garbage(&governor_path(cpu), &g, "one governor name")),
                Err(crate::host::HostError::Missing { .. }) => {}
                Err(e) => odd = Some(e),
            }
        }
        if govs.is_empty() {
            let reason = match odd {
                Some(e) => e.to_string(),
                None => format!(
                    "no CPU under {CPU_DIR} exposes cpufreq/scaling_governor (a VM, or frequency scaling \
                     not under OS control)"
                ),
            };
            return Finding::unknown(setting, recommended, reason, GOV_WHY);
        }
        // Summarize as `performance x4, powersave x2`.
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (_, g) in &govs {
            match counts.iter_mut().find(|(n, _)| n == g) {
                Some((_, c)) => *c += 1,
                None => counts.push((g.clone(), 1)),
            }
        }
        let current = counts
            .iter()
            .map(|(g, c)| format!("{g} x{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let slow: Vec<&String> = govs
            .iter()
            .filter(|(_, g)| g != "performance")
            .map(|(c, _)| c)
            .collect();
        let status = if slow.is_empty() && odd.is_none() {
            Status::Ok
        } else if slow.is_empty() {
            Status::Unknown
        } else {
            Status::Warn
        };
        let why = match &odd {
            Some(e) if status == Status::Unknown => format!("unknown: {e}. {GOV_WHY}"),
            _ => GOV_WHY.to_string(),
        };
        let writes = slow
            .iter()
            .filter(|cpu| {
                // Only where performance is offered (or the list is unreadable: try anyway).
                host.read(&format!(
                    "{CPU_DIR}/{cpu}/cpufreq/scaling_available_governors"
                ))
                .map_or(true, |a| a.split_whitespace().any(|g| g == "performance"))
            })
            .map(|cpu| HostWrite {
                path: governor_path(cpu),
                value: "performance".to_string(),
            })
            .collect::<Vec<_>>();
        let fix = if writes.is_empty() {
            Fix::Manual {
                how: "the performance governor is not offered by the cpufreq driver; set the platform \
                      power profile to performance in the firmware / BIOS"
                    .to_string(),
            }
        } else {
            Fix::Runtime {
                writes,
                command: format!("echo performance | tee {CPU_DIR}/cpu*/cpufreq/scaling_governor"),
                persist:
                    "resets at reboot: set it at boot (cpupower frequency-set -g performance in a \
                          systemd unit, or a tuned profile such as throughput-performance)"
                        .to_string(),
            }
        };
        Finding::new(setting, current, recommended, why, status).with_fix(fix)
    }
}

/// The kernel clock source.
#[derive(Debug, Clone, Copy)]
pub struct ClockSource;

const CLOCK_WHY: &str =
    "The broker reads the clock for every batch timestamp, timeout and latency \
    metric; tsc (arch_sys_counter on ARM) is read in user space through the vDSO, while hpet and \
    acpi_pm make every clock read a slow trip to the kernel";

impl Check for ClockSource {
    fn evaluate(&self, host: &HostView) -> Finding {
        let setting = "clocksource";
        let recommended = "tsc (arch_sys_counter on ARM)";
        let current = match host.read_value(CLOCKSOURCE) {
            Ok(c) if !c.contains(char::is_whitespace) => c,
            Ok(c) => {
                return Finding::unknown(
                    setting,
                    recommended,
                    garbage(CLOCKSOURCE, &c, "one clock source name"),
                    CLOCK_WHY,
                )
            }
            Err(e) => return Finding::unknown(setting, recommended, e, CLOCK_WHY),
        };
        let (status, note) = match current.as_str() {
            "tsc" | "arch_sys_counter" => (Status::Ok, ""),
            "kvm-clock" | "hyperv_clocksource_tsc_page" => (
                Status::Warn,
                "A paravirtual clock: vDSO-capable, acceptable on a VM. ",
            ),
            _ => (Status::Warn, ""),
        };
        let offers_tsc = host
            .read(CLOCKSOURCES)
            .is_ok_and(|a| a.split_whitespace().any(|c| c == "tsc"));
        let fix = if offers_tsc {
            Fix::Runtime {
                writes: vec![HostWrite {
                    path: CLOCKSOURCE.to_string(),
                    value: "tsc".to_string(),
                }],
                command: format!("echo tsc > {CLOCKSOURCE}"),
                persist: "add clocksource=tsc to the kernel command line (takes effect at reboot)"
                    .to_string(),
            }
        } else {
            Fix::Manual {
                how: format!(
                    "the kernel does not offer tsc (see {CLOCKSOURCES}; an unstable TSC is reported in \
                     dmesg); nothing to change at runtime"
                ),
            }
        };
        Finding::new(
            setting,
            current,
            recommended,
            format!("{note}{CLOCK_WHY}"),
            status,
        )
        .with_fix(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::selected;

    #[test]
    fn selected_word() {
        assert_eq!(selected("always [madvise] never\n"), Some("madvise"));
        assert_eq!(selected("performance\n"), Some("performance"));
        assert_eq!(selected("always madvise never"), None);
        assert_eq!(selected("[] x"), None);
        assert_eq!(selected("]x["), None);
        assert_eq!(selected(""), None);
    }
}
