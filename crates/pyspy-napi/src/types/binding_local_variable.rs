use napi_derive::napi;

/// One argument or local variable of a frame; mirrors
/// `pyspy_sampler::LocalVariable`.
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Debug, Clone)]
pub struct BindingLocalVariable {
    /// Variable name.
    pub name: String,
    /// Address of the object in the target (exact as an `f64`; see the
    /// crate doc).
    pub addr: f64,
    /// True for function arguments.
    pub arg: bool,
    /// A `repr()`-like rendering, when the type is understood.
    pub repr: Option<String>,
}

impl From<pyspy_sampler::LocalVariable> for BindingLocalVariable {
    fn from(v: pyspy_sampler::LocalVariable) -> Self {
        Self {
            name: v.name,
            // Exact: a user-space address is below 2^48 (crate doc).
            addr: v.addr as f64,
            arg: v.arg,
            repr: v.repr,
        }
    }
}
