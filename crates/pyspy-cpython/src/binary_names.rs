//! Which mapped files hold the interpreter (by name, on Linux and FreeBSD
//! (ELF), macOS and Windows) and where `_PyRuntime` sits in one. Names only:
//! reading the process is `discover.rs`'s job.

use pyspy_binary::Binary;

/// The file name of a Unix or Windows path.
fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `_PyRuntime` (link-time address): the symbol, else the section CPython
/// puts it in (ELF `.PyRuntime`, Mach-O `__DATA,PyRuntime`, PE `PyRuntim`:
/// PE section names are cut to 8 bytes), which stripped builds keep.
pub(crate) fn runtime_address(binary: &Binary) -> Option<u64> {
    binary
        .symbol("_PyRuntime")
        .or_else(|| binary.section(".PyRuntime").map(|s| s.addr))
        .or_else(|| binary.section("__DATA,PyRuntime").map(|s| s.addr))
        .or_else(|| binary.section("PyRuntim").map(|s| s.addr))
}

/// A shared library holding the interpreter: `libpython3.X.so*` (Linux),
/// `libpython3.X.dylib` and `Python.framework/Versions/3.X/Python` (macOS),
/// `python3XY.dll` (Windows, whose names are case-insensitive).
pub(crate) fn is_libpython(path: &str) -> bool {
    let name = basename(path);
    let lower = name.to_ascii_lowercase();
    (name.starts_with("libpython") && (name.contains(".so") || name.ends_with(".dylib")))
        || (name == "Python" && path.contains("Python.framework/"))
        || (lower.starts_with("python") && lower.ends_with(".dll"))
}

/// The process's executable, a libpython, or a file named `python*`.
pub(crate) fn is_python_binary(path: &str, exe: &str) -> bool {
    let name = basename(path).to_ascii_lowercase();
    path == exe || is_libpython(path) || (name.starts_with("python") && !name.ends_with(".py"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_interpreter_binaries_and_runtime() {
        assert!(is_libpython(
            "/opt/homebrew/opt/python@3.12/Frameworks/Python.framework/Versions/3.12/Python"
        ));
        assert!(is_libpython(
            "/Users/me/.pyenv/versions/3.11.9/lib/libpython3.11.dylib"
        ));
        assert!(!is_libpython(
            "/Applications/Python Launcher.app/Contents/MacOS/Python"
        ));
        assert!(!is_libpython("/usr/lib/libSystem.B.dylib"));
        // pyspy-binary's Mach-O fixture: `_PyRuntime` in `__DATA,PyRuntime`.
        let dylib = include_bytes!("../../pyspy-binary/tests/fixtures/macho-x86_64.dylib");
        let binary = Binary::parse(dylib).unwrap();
        assert_eq!(runtime_address(&binary), Some(0x2000));
        // Stripped of the symbol (its name renamed), the section still finds it.
        let mut stripped = dylib.to_vec();
        let at = stripped
            .windows(12)
            .position(|w| w == b"__PyRuntime\0")
            .expect("the symbol's name in the string table");
        stripped[at + 10] = b'X';
        let binary = Binary::parse(&stripped).unwrap();
        assert_eq!(binary.symbol("_PyRuntime"), None);
        assert_eq!(runtime_address(&binary), Some(0x2000));
    }

    #[test]
    fn recognises_python_binaries() {
        assert!(is_libpython("/usr/lib/libpython3.12.so.1.0"));
        assert!(is_libpython(
            "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        ));
        assert!(is_libpython("/opt/py/lib/libpython3.14t.so.1.0"));
        assert!(!is_libpython("/usr/lib/libboost_python3.so"));
        assert!(is_libpython(r"C:\Python314\python314.dll"));
        assert!(is_libpython(r"C:\Python314\PYTHON314.DLL"));
        assert!(!is_libpython(r"C:\Python314\python.exe"));
        assert!(is_python_binary(r"C:\Python314\python.exe", "other"));
        assert!(!is_python_binary(
            r"C:\Windows\system32\KERNEL32.DLL",
            "other"
        ));
        assert!(is_python_binary(
            "/usr/bin/python3.14",
            "/usr/bin/python3.14"
        ));
        assert!(is_python_binary("/opt/app/bin/myapp", "/opt/app/bin/myapp"));
        // FreeBSD's ports: the same ELF names under /usr/local (its rtld
        // maps /lib/libc.so.7 alongside).
        assert!(is_libpython("/usr/local/lib/libpython3.11.so.1.0"));
        assert!(is_python_binary(
            "/usr/local/bin/python3.11",
            "/usr/local/bin/python3.11"
        ));
        assert!(!is_python_binary(
            "/lib/libc.so.7",
            "/usr/local/bin/python3.11"
        ));
        assert!(!is_python_binary(
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/bin/python3"
        ));
    }
}
