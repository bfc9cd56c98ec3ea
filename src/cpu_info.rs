//! The processor as `idverify bench` reports it: model, clock, the instruction-set flags that
//! decide which kernels ONNX Runtime's MLAS library dispatches to, and the load.
//!
//! ONNX Runtime does not say which kernels it picked; the choice is inferred here from the same
//! CPUID flags MLAS tests (as Linux lists them in /proc/cpuinfo).

use std::io::Write;

/// Flags that matter to the engines' kernels, in the order they are printed.
const FLAGS: [&str; 11] = [
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
];

#[derive(Debug, Default, Clone)]
pub struct CpuInfo {
    pub model: String,
    pub vendor: String,
    pub mhz: Option<f64>,
    pub logical_cpus: usize,
    /// The flags of [`FLAGS`] this CPU has.
    pub flags: Vec<&'static str>,
    /// /proc/loadavg: 1, 5 and 15 minutes.
    pub load: Option<[f64; 3]>,
}

impl CpuInfo {
    /// Reads /proc/cpuinfo and /proc/loadavg (fields stay empty elsewhere).
    pub fn read() -> CpuInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let mut info = CpuInfo::parse(&cpuinfo, &loadavg);
        info.logical_cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        info
    }

    /// The first processor's entry of `cpuinfo`, and the load averages of `loadavg`.
    pub fn parse(cpuinfo: &str, loadavg: &str) -> CpuInfo {
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let present: Vec<String> =
            field("flags").unwrap_or_default().split_whitespace().map(str::to_string).collect();
        let mut load = loadavg.split_whitespace().take(3).map(|v| v.parse::<f64>().ok());
        let load = match (load.next().flatten(), load.next().flatten(), load.next().flatten()) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        };
        CpuInfo {
            model: field("model name").unwrap_or_else(|| "unknown".into()),
            vendor: field("vendor_id").unwrap_or_default(),
            mhz: field("cpu MHz").and_then(|v| v.parse().ok()),
            logical_cpus: 0,
            flags: FLAGS.into_iter().filter(|f| present.iter().any(|p| p == f)).collect(),
            load,
        }
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// The fp32 convolution / GEMM kernels MLAS would pick (face models, text detector).
    pub fn mlas_fp32(&self) -> &'static str {
        if self.has("avx512f") {
            "AVX-512F"
        } else if self.has("avx2") && self.has("fma") {
            "AVX2 + FMA3"
        } else {
            "SSE/AVX (no AVX2)"
        }
    }

    /// The int8 GEMM kernels MLAS would pick (the int8 text recognizer).
    pub fn mlas_int8(&self) -> &'static str {
        if self.has("amx_tile") && self.has("amx_int8") {
            "AMX"
        } else if self.has("avx512bw") && self.has("avx512_vnni") {
            "AVX512-VNNI"
        } else if self.has("avx_vnni") {
            "AVX-VNNI"
        } else if self.has("avx512bw") {
            "AVX512BW"
        } else if self.has("avx2") {
            "AVX2"
        } else {
            "SSE4.1"
        }
    }

    pub fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mhz = self.mhz.map_or("?".to_string(), |m| format!("{:.2}", m / 1000.0));
        writeln!(
            out,
            "  cpu: {} ({}), {} logical CPUs, {mhz} GHz now",
            self.model, self.vendor, self.logical_cpus
        )?;
        let flags = if self.flags.is_empty() { "none of interest".to_string() } else { self.flags.join(" ") };
        writeln!(out, "  flags: {flags}")?;
        writeln!(
            out,
            "  MLAS kernels (inferred from the flags): fp32 {}, int8 {}",
            self.mlas_fp32(),
            self.mlas_int8()
        )?;
        if self.vendor == "GenuineIntel" {
            writeln!(
                out,
                "  Intel: subnormal floats take microcode assists (sessions run with FTZ/DAZ set)"
            )?;
        }
        match self.load {
            Some([a, b, c]) => writeln!(out, "  load average: {a:.2} {b:.2} {c:.2}"),
            None => writeln!(out, "  load average: unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTEL: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Example\n\
                         cpu MHz\t\t: 2000.000\nflags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni \
                         avx_vnni avx512_fp16\n\nprocessor\t: 1\nflags\t\t: fpu\n";

    #[test]
    fn reads_the_first_processor_and_the_load() {
        let info = CpuInfo::parse(INTEL, "1.50 0.75 0.25 1/100 42\n");
        assert_eq!(info.model, "Intel(R) Xeon(R) Example");
        assert_eq!(info.mhz, Some(2000.0));
        assert_eq!(
            info.flags,
            ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_fp16"]
        );
        assert_eq!(info.load, Some([1.5, 0.75, 0.25]));
        assert_eq!((info.mlas_fp32(), info.mlas_int8()), ("AVX-512F", "AVX512-VNNI"));
    }

    #[test]
    fn kernels_follow_the_flags() {
        let avx2 = CpuInfo::parse("flags : avx2 fma avx_vnni\n", "");
        assert_eq!((avx2.mlas_fp32(), avx2.mlas_int8()), ("AVX2 + FMA3", "AVX-VNNI"));
        let amx = CpuInfo::parse("flags : avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8\n", "");
        assert_eq!(amx.mlas_int8(), "AMX");
        let none = CpuInfo::parse("", "");
        assert_eq!(
            (none.model.as_str(), none.mlas_fp32(), none.load),
            ("unknown", "SSE/AVX (no AVX2)", None)
        );
    }
}
