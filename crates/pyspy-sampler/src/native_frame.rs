//! How a native frame of a merged stack appears in a dump.

use pyspy_cpython::Frame;
use pyspy_native::NativeSymbol;

/// The dump form of a native frame: its module in `module`, the source
/// file (or, without line tables, the binary) as its filename.
pub(crate) fn native_frame(symbol: Option<&NativeSymbol>) -> Frame {
    let Some(s) = symbol else {
        return Frame {
            name: "?".into(),
            filename: String::new(),
            short_filename: None,
            line: 0,
            module: Some("?".into()),
            locals: None,
        };
    };
    let (filename, short) = match &s.file {
        Some(f) => (f.clone(), f.rsplit('/').next().unwrap_or(f).to_owned()),
        None => (s.module_path.to_string(), s.module.to_string()),
    };
    Frame {
        name: s.name.clone(),
        filename,
        short_filename: Some(short),
        line: s.line as i32,
        module: Some(s.module.to_string()),
        locals: None,
    }
}

/// A frame that says why a native stack ends where it does (or is
/// missing): shown like a native frame of no known binary.
pub(crate) fn marker_frame(text: String) -> Frame {
    Frame {
        name: text,
        filename: String::new(),
        short_filename: Some("?".into()),
        line: 0,
        module: Some("?".into()),
        locals: None,
    }
}
