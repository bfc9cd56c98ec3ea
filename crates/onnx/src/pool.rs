//! A few sessions of one model, shared by every thread of the process.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::session::Session;

use crate::denormals::FlushDenormals;
use crate::{OnnxError, load_session};

/// Sessions of one model. `Session::run` needs `&mut`, so each sits behind its own mutex and
/// at most `count` inferences of the model run at once; further calls wait for a session.
pub struct SessionPool<S = Session> {
    sessions: Vec<Mutex<S>>,
    next: AtomicUsize,
}

impl SessionPool {
    /// `count` sessions (at least one) of `models_dir/model`, each with `intra_threads` intra-op
    /// threads (see [`load_session`]).
    pub fn load(
        models_dir: &Path,
        model: &str,
        count: usize,
        intra_threads: usize,
    ) -> Result<SessionPool, OnnxError> {
        let path = models_dir.join(model);
        let sessions = (0..count.max(1))
            .map(|_| load_session(models_dir, &path, intra_threads))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SessionPool::new(sessions))
    }
}

impl<S> SessionPool<S> {
    /// `sessions` must not be empty.
    fn new(sessions: Vec<S>) -> SessionPool<S> {
        assert!(!sessions.is_empty(), "a session pool needs at least one session");
        SessionPool { sessions: sessions.into_iter().map(Mutex::new).collect(), next: AtomicUsize::new(0) }
    }

    /// Runs `f` on a free session, or waits for one, with denormals flushed on this thread while
    /// `f` runs (see [`crate::denormals`]: single-threaded sessions run their kernels here).
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let _flush = FlushDenormals::new();
        // Every session is tried without blocking, from a rotating start, and only when all are
        // busy does the call wait, on the session where its search started: no call waits while a
        // session is free, and the rotation spreads both the picks and the waiters evenly, so no
        // queue builds up on one session while another idles.
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(mut session) = self.sessions[(start + i) % n].try_lock() {
                return f(&mut session);
            }
        }
        // A panic inside `f` poisons the mutex but leaves the session usable.
        let mut session = self.sessions[start % n].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_sessions_are_picked_in_turn() {
        let pool = SessionPool::new(vec![0, 1, 2]);
        let picked: Vec<i32> = (0..4).map(|_| pool.with(|s| *s)).collect();
        assert_eq!(picked, [0, 1, 2, 0]);
    }

    #[test]
    fn a_busy_session_is_skipped_without_waiting() {
        let pool = SessionPool::new(vec![0, 1]);
        // The outer call holds one session (a `try_lock` on it fails, also from this thread).
        for _ in 0..3 {
            let (outer, inner) = pool.with(|outer| (*outer, pool.with(|inner| *inner)));
            assert_ne!(outer, inner);
        }
    }

    #[test]
    fn a_poisoned_session_is_still_used() {
        let pool = SessionPool::new(vec![7]);
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.with(|_| panic!("boom"))));
        assert!(panicked.is_err());
        assert_eq!(pool.with(|s| *s), 7);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sessions_run_with_denormals_flushed_and_the_thread_is_restored() {
        let pool = SessionPool::new(vec![0]);
        let outside = crate::denormals_flushed();
        assert!(pool.with(|_| crate::denormals_flushed()));
        assert_eq!(crate::denormals_flushed(), outside);
        // Restored on unwinding too.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.with(|_| panic!("boom"))));
        assert_eq!(crate::denormals_flushed(), outside);
    }
}
