//! glibc malloc tuning for a process whose heavy allocations come from ONNX Runtime on a pool of
//! blocking threads. glibc gives each thread that allocates concurrently its own arena (up to 8
//! per core) and seldom hands their memory back, so peak RSS grew with concurrency: 561 MB at
//! concurrency 1, 723 MB at 4 on 2 cores. With the arenas capped at the number of cores, c=4
//! peaked at 567 MB at the same throughput and CPU per verify (BENCHMARKS.md).

/// Caps glibc's malloc arenas at the number of available cores (at least 2), unless the operator
/// set `MALLOC_ARENA_MAX` (glibc then applies that value itself). Call first thing in `main`,
/// before any other thread exists. A no-op on other C libraries.
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let arenas = arena_cap(std::thread::available_parallelism().map_or(2, |n| n.get()));
        // SAFETY: mallopt only sets a malloc tunable and takes plain integers; it is called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// One arena per core, at least 2 (the main thread's and one for the workers), at most 64.
fn arena_cap(cores: usize) -> i32 {
    cores.clamp(2, 64) as i32
}

#[cfg(test)]
mod tests {
    use super::arena_cap;

    #[test]
    fn one_arena_per_core_within_bounds() {
        assert_eq!(arena_cap(1), 2);
        assert_eq!(arena_cap(2), 2);
        assert_eq!(arena_cap(16), 16);
        assert_eq!(arena_cap(512), 64);
    }
}
