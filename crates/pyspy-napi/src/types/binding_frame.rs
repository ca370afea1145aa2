use napi_derive::napi;

use super::BindingLocalVariable;

/// One Python frame; mirrors `pyspy_sampler::Frame`.
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Debug, Clone)]
pub struct BindingFrame {
    /// Function name: `co_qualname` on 3.11+ (e.g. `Worker.run`), `co_name` before (`run`); `<module>` for module code.
    pub name: String,
    /// Source path as the target sees it (`co_filename`).
    pub filename: String,
    /// Package-relative form of `filename`, when one was worked out.
    pub short_filename: Option<String>,
    /// Line number; 0 when unknown.
    pub line: i32,
    /// Native module (a `.so`), for native frames only.
    pub module: Option<String>,
    /// Arguments and locals; null unless asked for with `locals: true`.
    pub locals: Option<Vec<BindingLocalVariable>>,
}

impl From<pyspy_sampler::Frame> for BindingFrame {
    fn from(f: pyspy_sampler::Frame) -> Self {
        Self {
            name: f.name,
            filename: f.filename,
            short_filename: f.short_filename,
            line: f.line,
            module: f.module,
            locals: f
                .locals
                .map(|locals| locals.into_iter().map(Into::into).collect()),
        }
    }
}
