//! Flush-to-zero and denormals-are-zero on the thread that runs a session.
//!
//! Intel cores take a microcode assist (tens to hundreds of cycles) for every floating-point
//! operation with a subnormal operand or result; AMD Zen cores do not. The text detector makes
//! millions of subnormal activations per page, which made scans about 3x slower on an Intel
//! machine than here. ONNX Runtime's `session.set_denormal_as_zero` sets the flags on its own
//! intra-op worker threads and, once per process, on the thread that builds the first session,
//! but with one intra-op thread the kernels run on the thread that calls `Session::run`: that is
//! a tokio blocking thread, so the flags are set here around each run and restored afterwards.

/// Sets FTZ and DAZ in MXCSR while alive and restores the previous value when dropped (also
/// when unwinding). A no-op off x86_64.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
mod mxcsr {
    use std::arch::asm;

    /// Flush-to-zero: subnormal results become zero.
    pub const FTZ: u32 = 1 << 15;
    /// Denormals-are-zero: subnormal operands are read as zero.
    pub const DAZ: u32 = 1 << 6;

    pub fn read() -> u32 {
        let mut value: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit control register into the local we own.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags)) };
        value
    }

    pub fn write(value: u32) {
        // SAFETY: ldmxcsr loads a 32-bit value we own; callers only pass a value read from the
        // register with FTZ/DAZ changed, both defined bits (no reserved bit is ever set).
        unsafe { asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, readonly, preserves_flags)) };
    }
}

impl FlushDenormals {
    pub fn new() -> FlushDenormals {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = mxcsr::read();
            mxcsr::write(saved | mxcsr::FTZ | mxcsr::DAZ);
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        FlushDenormals::new()
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        mxcsr::write(self.saved);
    }
}

/// Whether this thread currently flushes denormals (FTZ and DAZ both set); always false off
/// x86_64.
pub fn denormals_flushed() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let both = mxcsr::FTZ | mxcsr::DAZ;
        mxcsr::read() & both == both
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A subnormal computed at run time (the optimizer must not fold it).
    fn halve(x: f32) -> f32 {
        std::hint::black_box(x) / 2.0
    }

    /// MXCSR without its sticky exception flags (bits 0 to 5), which arithmetic sets.
    fn control() -> u32 {
        mxcsr::read() & !0x3F
    }

    #[test]
    fn the_guard_flushes_and_restores() {
        let before = control();
        assert!(!denormals_flushed(), "test threads start with IEEE denormals");
        assert!(halve(f32::MIN_POSITIVE) > 0.0, "a subnormal result is kept");
        {
            let _guard = FlushDenormals::new();
            assert!(denormals_flushed());
            assert_eq!(halve(f32::MIN_POSITIVE), 0.0, "a subnormal result is flushed");
        }
        assert_eq!(control(), before);
        assert!(halve(f32::MIN_POSITIVE) > 0.0);
    }
}
