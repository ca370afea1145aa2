//! py-spy's short filenames: a module path relative to the directory above
//! its top-level package (`requests/api.py`), found by walking up while
//! `__init__.py` exists. Looked up in the target's filesystem (through
//! `/proc/PID/root`) and cached per path.

use std::collections::HashMap;
use std::path::Path;

use pyspy_cpython::{Frame, LocalVariable};
use pyspy_process::Target;

/// Deepest package nesting followed.
const MAX_PACKAGE_DEPTH: usize = 64;

/// Cache of short filenames for one process.
#[derive(Default)]
pub struct ShortFilenames {
    cache: HashMap<String, String>,
}

impl ShortFilenames {
    /// A dump frame of Python code: `filename` with its short form as the
    /// target sees it (or the full path again with `full_filenames`).
    pub fn python_frame(
        &mut self,
        target: &impl Target,
        full_filenames: bool,
        name: &str,
        filename: &str,
        line: i32,
        locals: Option<Vec<LocalVariable>>,
    ) -> Frame {
        Frame {
            name: name.to_owned(),
            short_filename: Some(if full_filenames {
                filename.to_owned()
            } else {
                self.get(target, filename)
            }),
            filename: filename.to_owned(),
            line,
            module: None,
            locals,
        }
    }

    /// The short form of `path` as the target sees it.
    pub fn get(&mut self, process: &impl Target, path: &str) -> String {
        if let Some(s) = self.cache.get(path) {
            return s.clone();
        }
        let short = shorten(path, |p| process.host_path(p).exists());
        self.cache.insert(path.to_owned(), short.clone());
        short
    }
}

/// Shortens `path` using `exists` to test for `__init__.py` files.
pub fn shorten(path: &str, exists: impl Fn(&str) -> bool) -> String {
    // Absolute as this OS reads paths: `/...`, or on Windows `C:\...` too.
    if !Path::new(path).is_absolute() || !path.ends_with(".py") {
        return path.to_owned();
    }
    let mut dir = Path::new(path).parent();
    for _ in 0..MAX_PACKAGE_DEPTH {
        let Some(d) = dir else { break };
        let init = d.join("__init__.py");
        if !exists(&init.to_string_lossy()) {
            break;
        }
        dir = d.parent();
    }
    match dir.and_then(|d| Path::new(path).strip_prefix(d).ok()) {
        Some(rel) => rel.to_string_lossy().into_owned(),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_packages() {
        let inits = [
            "/site/requests/__init__.py",
            "/site/requests/adapters/__init__.py",
        ];
        let exists = |p: &str| inits.contains(&p);
        assert_eq!(
            shorten("/site/requests/adapters/http.py", exists),
            "requests/adapters/http.py"
        );
        assert_eq!(shorten("/site/requests/api.py", exists), "requests/api.py");
        assert_eq!(shorten("/home/me/script.py", exists), "script.py");
        assert_eq!(
            shorten("<frozen importlib._bootstrap>", exists),
            "<frozen importlib._bootstrap>"
        );
        assert_eq!(shorten("relative.py", exists), "relative.py");
    }
}
