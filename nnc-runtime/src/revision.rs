//! A stamp for the contents of a model's parameters and state, so that a workspace can keep
//! values derived from them (batch norm folded into convolution weights) and recompute them
//! only when they may have changed.
//!
//! Every stamp is drawn from one process-wide counter, so that no two models, and no two
//! states of one model, ever share a stamp: a workspace that remembers the stamp its derived
//! values came from can tell both a later state of the same model and another model. Drawing
//! one is an atomic increment, not an allocation.

use core::sync::atomic::{AtomicU64, Ordering};

/// The next stamp to hand out; 0 is never one, so it can stand for "nothing derived yet".
static NEXT: AtomicU64 = AtomicU64::new(1);

fn draw() -> u64 {
    // Uniqueness needs only the atomicity of the increment, no ordering with other memory.
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The stamp of a model's current parameters and state. Generated models call
/// [`Revision::bump`] in every method that can change either (an optimizer step, a training
/// pass that moves running statistics, `params_mut`, `state_mut`, `reset_state`).
#[derive(Debug)]
pub struct Revision(u64);

impl Revision {
    /// A stamp no other model has.
    pub fn new() -> Revision {
        Revision(draw())
    }

    /// Marks the parameters or the state as (possibly) changed.
    pub fn bump(&mut self) {
        self.0 = draw();
    }

    /// The current stamp: never 0, and never equal to any other model's or any earlier one.
    pub fn get(&self) -> u64 {
        self.0
    }
}

impl Default for Revision {
    fn default() -> Revision {
        Revision::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_never_reused() {
        let (mut a, b) = (Revision::new(), Revision::new());
        let first = a.get();
        assert_ne!(first, 0);
        assert_ne!(first, b.get());
        a.bump();
        assert_ne!(a.get(), first);
        assert_ne!(a.get(), b.get());
    }
}
