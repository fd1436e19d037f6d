//! What must hold for every input, accepted or not: the compiler does not panic anywhere a
//! user can reach it (check, diagnostics rendering, formatting, summaries, graphs, code
//! generation and the macro's stand-ins), formatting is idempotent and keeps the verdict, and
//! accepted input becomes Rust that parses. It does not build the Rust; `nnc-build-check`
//! does that for a sample of accepted mutants.

use nnc_core::report::{dot_all, summary_with, DotOptions, SummaryOptions};
use nnc_core::Options;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// A broken promise, with what is needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A stage panicked; the message includes the panic's location.
    Panic {
        stage: &'static str,
        message: String,
    },
    /// `fmt(fmt(x)) != fmt(x)`.
    FormatNotIdempotent,
    /// The formatted text is accepted where the original was rejected, or the reverse.
    FormatChangedVerdict { accepted_before: bool },
    /// The generated Rust (or the stand-in items of a rejected input) does not parse.
    InvalidRust { stage: &'static str, error: String },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Panic { stage, message } => write!(f, "panic in {stage}: {message}"),
            Finding::FormatNotIdempotent => f.write_str("formatting twice differs from once"),
            Finding::FormatChangedVerdict { accepted_before } => write!(
                f,
                "formatting changed the verdict (accepted before: {accepted_before})"
            ),
            Finding::InvalidRust { stage, error } => {
                write!(f, "{stage} produced Rust that does not parse: {error}")
            }
        }
    }
}

thread_local! {
    /// Set while [`guarded`] runs a stage on this thread, so its panics are recorded quietly.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that records the message and location of a panic
/// inside [`guarded`] instead of printing it, so a run of thousands of inputs stays readable.
/// Panics anywhere else (a failing test's assertion) go to the hook that was there before.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.get() {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into a finding attributed to `stage`.
fn guarded<T>(stage: &'static str, f: impl FnOnce() -> T) -> Result<T, Finding> {
    install_hook();
    GUARDED.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.set(false);
    result.map_err(|payload| {
        let recorded = LAST_PANIC.with(|p| p.borrow_mut().take());
        let message = recorded.unwrap_or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".to_string())
        });
        Finding::Panic { stage, message }
    })
}

/// Whether `check` accepted the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
}

/// Puts one input through every user-facing entry point and checks the promises above. The
/// source is analysed once, as `check` and `compile` both do, and code generation and the
/// reports then work from those programs.
pub fn examine(src: &str) -> Result<Verdict, Finding> {
    let analysis = guarded("check", || nnc_core::programs(src))?;
    let accepted = analysis.is_ok();
    if let Err(diags) = &analysis {
        guarded("render", || nnc_core::render(diags, "fuzz.nnc", src, false))?;
    }

    if let Ok(once) = guarded("fmt", || nnc_core::syntax::fmt::format(src))? {
        let twice = guarded("fmt", || nnc_core::syntax::fmt::format(&once))?;
        if twice.as_deref() != Ok(once.as_str()) {
            return Err(Finding::FormatNotIdempotent);
        }
        let accepted_after = !guarded("check", || nnc_core::check(&once))?.has_errors();
        if accepted_after != accepted {
            return Err(Finding::FormatChangedVerdict {
                accepted_before: accepted,
            });
        }
    }

    let programs = match analysis {
        Ok(programs) => programs,
        Err(_) => {
            let stubs = guarded("stubs", || nnc_core::stubs(src, &Options::default()))?;
            return match syn::parse2::<syn::File>(stubs) {
                Ok(_) => Ok(Verdict::Rejected),
                Err(e) => Err(Finding::InvalidRust {
                    stage: "stubs",
                    error: e.to_string(),
                }),
            };
        }
    };
    let rust = guarded("compile", || {
        nnc_core::codegen::generate(&programs, &Options::default())
    })?;
    if let Err(e) = syn::parse_file(&rust) {
        return Err(Finding::InvalidRust {
            stage: "compile",
            error: e.to_string(),
        });
    }
    guarded("report", || {
        for p in &programs {
            summary_with(p, &SummaryOptions::default());
        }
        dot_all(&programs, &DotOptions { backward: true });
    })?;
    Ok(Verdict::Accepted)
}
