//! Cancelling a generation: a flag shared between the generating code, which checks it before
//! every GPU step, and whoever may stop it (a Ctrl-C handler, a JS `AbortSignal`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cancellation flag shared between the generating code and whoever may stop it (a Ctrl-C
/// handler, a JS `AbortSignal`). Generation checks it before every GPU step.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the flag for the next generation.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_flag() {
        let flag = CancelFlag::new();
        let other = flag.clone();
        assert!(!flag.is_cancelled());
        other.cancel();
        assert!(flag.is_cancelled());
        flag.reset();
        assert!(!other.is_cancelled());
    }
}
