//! Keeps panics from crossing into JavaScript.
//!
//! [`catch`] runs a closure under `catch_unwind` and turns a panic into an
//! `EINTERNAL` [`BindingError`] whose message carries the panic's text and
//! location. A panic hook (installed once, for this library's copy of std)
//! records that text instead of printing it while inside [`catch`], so the
//! CLI's stderr stays a single `Error: ...` line; set
//! `PYSPY_NODE_BACKTRACE=1` to also print the default report. Panics outside
//! [`catch`] get the default report as before.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::types::BindingError;

thread_local! {
    /// The last panic's "message at file:line", taken by [`catch`].
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// How many [`catch`] calls this thread is inside.
    static GUARDED: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f`, returning its value or an `EINTERNAL` error if it panicked.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, BindingError> {
    install_hook();
    GUARDED.with(|depth| depth.set(depth.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|depth| depth.set(depth.get() - 1));
    outcome.map_err(|payload| {
        let detail = LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| payload_text(payload.as_ref()));
        BindingError::internal(&detail)
    })
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) == 0 {
                return default(info);
            }
            let text = payload_text(info.payload());
            let detail = match info.location() {
                Some(at) => format!("{text} at {}:{}", at.file(), at.line()),
                None => text,
            };
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(detail));
            if std::env::var_os("PYSPY_NODE_BACKTRACE").is_some_and(|v| v != "0") {
                default(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_values_through() {
        assert_eq!(catch(|| 7), Ok(7));
    }

    #[test]
    fn turns_a_panic_into_einternal() {
        let err = catch(|| -> u8 { panic!("boom {}", 42) }).unwrap_err();
        assert_eq!(err.code, "EINTERNAL");
        assert!(
            err.message.starts_with("internal error: boom 42 at "),
            "{}",
            err.message
        );
        assert!(err.message.contains("panic_guard.rs"), "{}", err.message);
        assert!(err
            .message
            .ends_with("(this is a bug in pyspy-node; please report it)"));
    }
}
