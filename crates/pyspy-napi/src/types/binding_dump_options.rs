use napi_derive::napi;

/// Options for `dump`/`dumpSync`; mirrors `pyspy_sampler::DumpConfig`.
/// Every field may be left out.
#[napi(object, object_to_js = false)]
#[derive(Debug, Clone, Default)]
pub struct BindingDumpOptions {
    /// Read the arguments and local variables of every frame.
    /// @default false
    pub locals: Option<bool>,
    /// With `locals`: how long each value's rendering may be, in levels of
    /// 128 characters (py-spy's `-ll`). @default 1
    pub locals_level: Option<u32>,
    /// Do not pause the target while reading; stacks may come out torn.
    /// @default false
    pub nonblocking: Option<bool>,
    /// Keep full filenames instead of package-relative ones.
    /// @default false
    pub full_filenames: Option<bool>,
    /// Also dump the target's Python descendants. @default false
    pub subprocesses: Option<bool>,
    /// Merge native (C, C++, Cython) frames into the stacks (Linux x86-64 and arm64;
    /// not with `nonblocking`). @default false
    pub native: Option<bool>,
    /// Also read the asyncio tasks (CPython 3.11+). @default false
    pub asyncio: Option<bool>,
}

impl From<BindingDumpOptions> for pyspy_sampler::DumpConfig {
    fn from(o: BindingDumpOptions) -> Self {
        Self {
            locals: o.locals.unwrap_or(false),
            locals_level: o.locals_level.unwrap_or(1),
            nonblocking: o.nonblocking.unwrap_or(false),
            full_filenames: o.full_filenames.unwrap_or(false),
            subprocesses: o.subprocesses.unwrap_or(false),
            native: o.native.unwrap_or(false),
            asyncio: o.asyncio.unwrap_or(false),
        }
    }
}
