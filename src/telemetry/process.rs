//! The standard Prometheus process metrics, read from `/proc/self` at each scrape (Linux only;
//! elsewhere they are left out).

use std::fmt::Write as _;

/// Appends `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds` and `process_start_time_seconds`; a value
/// that cannot be read is left out rather than reported as 0.
#[cfg(target_os = "linux")]
pub fn render(out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat(&s));
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    if let Some(stat) = stat.filter(|_| ticks > 0 && page > 0) {
        let ticks = ticks as f64;
        metric(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, seconds.",
            (stat.utime + stat.stime) as f64 / ticks,
        );
        metric(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size, bytes.",
            (stat.rss_pages * page as u64) as f64,
        );
        metric(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, bytes.",
            stat.vsize as f64,
        );
        if let Some(boot) = boot_time() {
            metric(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time since the Unix epoch, seconds.",
                boot as f64 + stat.start_ticks as f64 / ticks,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(out, "process_open_fds", "gauge", "Open file descriptors.", fds.count() as f64);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn render(_out: &mut String) {}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// The fields of `/proc/self/stat` used here (proc(5)); the command name in parentheses may hold
/// spaces, so fields are counted from its closing parenthesis.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// Boot time, seconds since the Unix epoch (`btime` in /proc/stat).
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (idverify (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 \
                    12345 987654321 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat { utime: 250, stime: 50, start_ticks: 12345, vsize: 987654321, rss_pages: 4321 })
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_its_metrics() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(out.contains(&format!("\n{name} ")), "{name} missing:\n{out}");
        }
    }
}
