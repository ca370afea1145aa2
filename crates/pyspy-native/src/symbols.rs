//! Names for native frames: demangling, and which frames a merged stack
//! shows, hides, or replaces with Python frames.

/// What a native frame becomes in a merged stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The evaluation loop: replaced by the Python frames it runs.
    Eval,
    /// Interpreter internals, and thread or process start-up code: hidden.
    Hidden,
    /// An extension's or library's frame: shown.
    Shown,
}

/// Functions of the C library's process and thread start-up, never shown.
const STARTUP: &[&str] = &[
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "__clone_internal",
];

/// What a frame of function `name` becomes; `interpreter` when it lies in
/// the interpreter's own binary (executable or libpython).
pub(crate) fn classify(name: Option<&str>, interpreter: bool, module: &str) -> Kind {
    if interpreter {
        return match name {
            // `.cold`, `.part.N` and other compiler-split pieces included.
            Some(n) if n.starts_with("_PyEval_EvalFrameDefault") => Kind::Eval,
            Some(n) if n == "PyEval_EvalFrameEx" || n.starts_with("PyEval_EvalFrameEx.") => {
                Kind::Eval
            }
            _ => Kind::Hidden,
        };
    }
    match name {
        Some(n) if STARTUP.contains(&n) => Kind::Hidden,
        // Cython's runtime helpers (calls, argument parsing).
        Some(n) if n.starts_with("__Pyx_") => Kind::Hidden,
        // The C library exports every function a program calls; what has no
        // exported name there is its start-up code (`start_thread`,
        // `__libc_start_call_main`, `clone3`, local in a stripped libc).
        None if module.starts_with("libc.so") || module.starts_with("libc-") => Kind::Hidden,
        _ => Kind::Shown,
    }
}

/// A readable form of a symbol: C++ and Rust names demangled (C++ without
/// parameters or return type, Rust without the hash), Cython's
/// `__pyx_pf_<module>_<function>` names turned into `module.function`,
/// anything else unchanged.
pub(crate) fn demangle(name: &str) -> String {
    if name.starts_with("_R") || name.starts_with("_ZN") {
        if let Ok(d) = rustc_demangle::try_demangle(name) {
            let s = format!("{d:#}");
            // A C++ name that happens to parse as a legacy Rust path keeps
            // its C++ form.
            if name.starts_with("_R") || name.ends_with('E') {
                return s;
            }
        }
    }
    if name.starts_with("_Z") {
        let opts = cpp_demangle::DemangleOptions::new()
            .no_params()
            .no_return_type();
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(d) = sym.demangle_with_options(&opts) {
                return d;
            }
        }
    }
    if let Some(rest) = name
        .strip_prefix("__pyx_pf_")
        .or_else(|| name.strip_prefix("__pyx_pw_"))
    {
        if let Some(d) = cython(rest) {
            return d;
        }
    }
    // Compiler-split pieces: `foo.cold`, `foo.part.0`, `foo.isra.0`.
    match name.find('.') {
        Some(i) if i > 0 => name[..i].to_owned(),
        _ => name.to_owned(),
    }
}

/// `7example_3fib` style names: length-prefixed components joined by `_`,
/// the last one prefixed by an index rather than a length.
fn cython(s: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = s;
    loop {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        let n: usize = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let fits = n > 0
            && n < after.len()
            && after.is_char_boundary(n)
            && after.as_bytes()[n] == b'_'
            && !after.starts_with('_');
        if !fits {
            break;
        }
        parts.push(&after[..n]);
        rest = &after[n + 1..];
    }
    let last = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    if parts.is_empty() || last.is_empty() {
        return None;
    }
    parts.push(last);
    Some(parts.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_cpp_rust_and_cython() {
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar");
        assert_eq!(
            demangle("_ZNK3foo3Bar3bazERKSt6vectorIiSaIiEE"),
            "foo::Bar::baz"
        );
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("_RNvCs1234_7mycrate4main"), "mycrate::main");
        assert_eq!(demangle("__pyx_pf_7example_2fib"), "example.fib");
        assert_eq!(
            demangle("__pyx_pw_4lxml_5etree_9XMLSchema_1__init__"),
            "lxml.etree.XMLSchema.__init__"
        );
        assert_eq!(demangle("time_sleep"), "time_sleep");
        assert_eq!(
            demangle("_PyEval_EvalFrameDefault.cold"),
            "_PyEval_EvalFrameDefault"
        );
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    #[test]
    fn classifies() {
        let py = "libpython3.12.so.1.0";
        assert_eq!(
            classify(Some("_PyEval_EvalFrameDefault"), true, py),
            Kind::Eval
        );
        assert_eq!(
            classify(Some("_PyEval_EvalFrameDefault.cold"), true, py),
            Kind::Eval
        );
        assert_eq!(classify(Some("_PyEval_Vector"), true, py), Kind::Hidden);
        assert_eq!(classify(None, true, py), Kind::Hidden);
        assert_eq!(
            classify(Some("start_thread"), false, "libc.so.6"),
            Kind::Hidden
        );
        assert_eq!(
            classify(Some("clock_nanosleep"), false, "libc.so.6"),
            Kind::Shown
        );
        assert_eq!(classify(None, false, "libc.so.6"), Kind::Hidden);
        assert_eq!(classify(None, false, "_ext.so"), Kind::Shown);
    }
}
