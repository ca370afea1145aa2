//! Arguments and local variables of a frame, with short `repr()`s of the
//! common built-in types and numpy scalars. Everything is bounded: item
//! counts, nesting and the length of each rendering (py-spy's budget: 128
//! characters per `-l`).

use pyspy_process::{Memory, MemoryExt};

use crate::codes::CodeInfo;
use crate::error::{Error, ReadContext};
use crate::objects::MAX_BYTES;
use crate::scalars::{complex_repr, float_repr, NumpyKind};
use crate::walker::StackWalker;
use crate::LocalVariable;

/// Longest rendering of one value (characters) at the default level
/// (`--locals` once); each further level adds as much.
pub const MAX_REPR: usize = 128;
/// Most items shown of a list, tuple or dict, per [`MAX_REPR`] characters.
const MAX_ITEMS: usize = 8;
/// Longest rendering ever asked for (a bound on `-lll…`).
const MAX_REPR_LIMIT: usize = 1 << 16;
/// Deepest nesting rendered.
const MAX_DEPTH: usize = 2;
/// Most locals read from one frame.
const MAX_LOCALS: usize = 4096;
/// `co_localspluskinds` flags.
const CO_FAST_HIDDEN: u8 = 0x10;
const CO_FAST_CELL: u8 = 0x40;
const CO_FAST_FREE: u8 = 0x80;

impl<M: Memory> StackWalker<M> {
    /// The arguments and locals of the frame at `frame` running `code`.
    /// Before 3.11: the first `co_nlocals` slots, named by `co_varnames`
    /// (cell and free variables are not shown).
    pub fn locals(&mut self, frame: usize, code: &CodeInfo) -> Result<Vec<LocalVariable>, Error> {
        self.locals_limited(frame, code, MAX_REPR)
    }

    /// [`StackWalker::locals`] with renderings up to `max_repr` characters
    /// (py-spy's `-ll`: 128 per level).
    pub fn locals_limited(
        &mut self,
        frame: usize,
        code: &CodeInfo,
        max_repr: usize,
    ) -> Result<Vec<LocalVariable>, Error> {
        let limit = max_repr.clamp(MAX_REPR, MAX_REPR_LIMIT);
        let o = self.layout().offsets;
        let mut names = self.objects.tuple_items(code.localsplusnames, MAX_LOCALS)?;
        if let Some(n) = code.nlocals {
            names.truncate(usize::try_from(n).unwrap_or(0));
        }
        let kinds = if code.localspluskinds == 0 {
            Vec::new()
        } else {
            self.objects.read_bytes(code.localspluskinds, MAX_BYTES)?
        };
        let values = self
            .objects
            .pointers(frame.wrapping_add(o.frame_localsplus), names.len())?;
        let mut out = Vec::new();
        for (i, (&name, &raw)) in names.iter().zip(&values).enumerate() {
            let kind = kinds.get(i).copied().unwrap_or(0);
            if kind & CO_FAST_HIDDEN != 0 {
                continue;
            }
            let mut addr = raw & !3;
            if addr == 0 {
                continue; // not yet assigned
            }
            if raw & 3 == 3 {
                continue; // a tagged integer (3.15+), interpreter-internal
            }
            if kind & (CO_FAST_CELL | CO_FAST_FREE) != 0
                && self.type_name_of(addr).as_deref() == Some("cell")
            {
                addr = self
                    .objects
                    .mem
                    // `ob_ref` follows the object header (longer when free-threaded).
                    .read_usize(addr + o.ob_type + 8)
                    .what("cell contents")?;
                if addr == 0 {
                    continue;
                }
            }
            let mut repr = String::new();
            self.repr(addr, 0, limit, &mut repr);
            out.push(LocalVariable {
                name: self.objects.read_str(name, 256)?,
                addr,
                arg: (i as i64) < code.argcount as i64,
                repr: Some(cut(repr, limit)),
            });
        }
        Ok(out)
    }

    fn type_name_of(&mut self, obj: usize) -> Option<String> {
        let ty = self.objects.type_of(obj).ok()?;
        self.objects.type_name(ty).ok().map(|n| n.to_string())
    }

    /// Appends a `repr()` of `obj` to `out`; unknown or unreadable objects
    /// render as `<type at 0x...>`.
    fn repr(&mut self, obj: usize, depth: usize, limit: usize, out: &mut String) {
        if out.len() > limit {
            return;
        }
        let ty = self.type_name_of(obj).unwrap_or_default();
        let r = &self.objects;
        let done = match ty.as_str() {
            "NoneType" => Some("None".to_owned()),
            "bool" => r
                .read_int(obj)
                .ok()
                .flatten()
                .map(|v| if v != 0 { "True" } else { "False" }.to_owned()),
            "int" => r
                .read_int(obj)
                .ok()
                .map(|v| v.map_or_else(|| "<big int>".to_owned(), |v| v.to_string())),
            // Python 2's arbitrary-precision integer.
            "long" => r
                .read_int(obj)
                .ok()
                .map(|v| v.map_or_else(|| "<big long>".to_owned(), |v| format!("{v}L"))),
            "float" => r.read_float(obj).ok().map(float_repr),
            // `cval` (two doubles) sits where a float's `ob_fval` does: right
            // after the object header.
            "complex" => r
                .mem
                .read_vec(obj.wrapping_add(r.layout.offsets.float_ob_fval), 16)
                .ok()
                .and_then(|b| Some(complex_repr(f64_at(&b, 0)?, f64_at(&b, 8)?))),
            // Python 2 `str` is bytes, shown as its text like Python 2 does.
            "str" => r.read_str(obj, limit).ok().map(|s| str_repr(&s)),
            "unicode" => r
                .read_str(obj, limit)
                .ok()
                .map(|s| format!("u{}", str_repr(&s))),
            "bytes" => r
                .read_bytes(obj, 1 << 16)
                .ok()
                .map(|b| bytes_repr(&b, limit)),
            name => NumpyKind::from_type_name(name).and_then(|kind| {
                // A numpy scalar's value (`obval`) follows the object header
                // (aligned: 16 bytes on 64-bit, also for `long double`).
                let at = obj.wrapping_add(r.layout.offsets.ob_type + 8);
                kind.format(&r.mem.read_vec(at, kind.size()).ok()?)
            }),
        };
        if let Some(s) = done {
            out.push_str(&s);
            return;
        }
        let max_items = MAX_ITEMS * (limit / MAX_REPR);
        let container = match ty.as_str() {
            "list" | "tuple" if depth < MAX_DEPTH => self.sequence_items(obj, &ty, max_items).ok(),
            "dict" if depth < MAX_DEPTH => self
                .objects
                .dict_items(obj)
                .ok()
                .map(|i| i.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            _ => None,
        };
        let Some(items) = container else {
            out.push_str(&format!(
                "<{} at {obj:#x}>",
                if ty.is_empty() { "object" } else { &ty }
            ));
            return;
        };
        let (open, close) = match ty.as_str() {
            "list" => ("[", "]"),
            "tuple" => ("(", ")"),
            _ => ("{", "}"),
        };
        out.push_str(open);
        let step = if ty == "dict" { 2 } else { 1 };
        let shown = items.len().min(max_items * step);
        for (n, chunk) in items[..shown].chunks(step).enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            self.repr(chunk[0], depth + 1, limit, out);
            if let Some(&v) = chunk.get(1) {
                out.push_str(": ");
                self.repr(v, depth + 1, limit, out);
            }
        }
        if items.len() > shown {
            out.push_str(", ...");
        } else if ty == "tuple" && items.len() == 1 {
            out.push(',');
        }
        out.push_str(close);
    }

    fn sequence_items(&self, obj: usize, ty: &str, max_items: usize) -> Result<Vec<usize>, Error> {
        let o = self.layout().offsets;
        if ty == "tuple" {
            let n = self
                .objects
                .mem
                .read_usize(obj.wrapping_add(o.tuple_ob_size))
                .what("tuple size")?;
            return self
                .objects
                .pointers(obj.wrapping_add(o.tuple_ob_item), n.min(max_items + 1));
        }
        let n = self
            .objects
            .mem
            .read_usize(obj.wrapping_add(o.list_ob_size))
            .what("list size")?;
        let items = self
            .objects
            .mem
            .read_usize(obj.wrapping_add(o.list_ob_item))
            .what("list items")?;
        if n > isize::MAX as usize {
            return Err(Error::Corrupt {
                what: "list size",
                addr: obj,
            });
        }
        self.objects.pointers(items, n.min(max_items + 1))
    }
}

fn cut(mut s: String, limit: usize) -> String {
    if s.chars().count() > limit {
        s = s.chars().take(limit - 3).collect::<String>() + "...";
    }
    s
}

fn f64_at(b: &[u8], at: usize) -> Option<f64> {
    Some(f64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Python's `repr()` of a str: single quotes unless the text has one and no
/// double quote, with backslash escapes for quotes and control characters.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn bytes_repr(b: &[u8], limit: usize) -> String {
    let mut out = String::from("b'");
    for &c in b.iter().take(limit) {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprs_like_python() {
        assert_eq!(str_repr("foo"), "'foo'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(str_repr("測試"), "'測試'");
        assert_eq!(bytes_repr(b"a'\x00", MAX_REPR), "b'a\\'\\x00'");
        assert_eq!(cut("x".repeat(200), MAX_REPR).chars().count(), MAX_REPR);
        assert_eq!(
            cut("x".repeat(300), 2 * MAX_REPR).chars().count(),
            2 * MAX_REPR
        );
        assert_eq!(cut("x".repeat(200), 2 * MAX_REPR).chars().count(), 200);
    }
}
