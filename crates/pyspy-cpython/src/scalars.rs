//! Text of scalar values as Python prints them: floats (`repr()`), complex
//! numbers, and numpy scalars, which are read by their type from the
//! object's own bytes (never by calling into the target).

/// Python's `repr()` of a float: the shortest digits that read back to the
/// same value, positional for exponents -4..16 (with a `.0` when integral),
/// else scientific (`1e-05`, `1.5e+16`).
pub fn float_repr(v: f64) -> String {
    layout_digits(&format!("{v:e}"), true)
}

/// `float_repr` for an `f32`: its own shortest digits (numpy's `str()` of a
/// `float32`: `0.1`, not the `0.10000000149011612` of its widened value).
pub fn f32_repr(v: f32) -> String {
    layout_digits(&format!("{v:e}"), true)
}

/// numpy's `str()` of a `float16`: the fewest digits that still name the
/// same half-precision value.
pub fn f16_repr(bits: u16) -> String {
    let v = f16_to_f64(bits);
    if !v.is_finite() {
        return float_repr(v);
    }
    // The neighbours bound the interval of decimal texts that read back as
    // this half; the shortest inside it is the one printed.
    let below = f16_to_f64(bits.wrapping_sub(1));
    let mut above = f16_to_f64(bits.wrapping_add(1));
    if above.is_infinite() {
        // Past the largest half, texts round to infinity halfway to the
        // next (unrepresentable) step.
        above = v + (v - below);
    }
    for precision in 0..6 {
        let text = format!("{v:.precision$e}");
        let Ok(back) = text.parse::<f64>() else {
            continue;
        };
        let d = (back - v).abs();
        let nearest = |n: f64| !n.is_finite() || d < (back - n).abs() || d == 0.0;
        if nearest(below) && nearest(above) {
            return layout_digits(&text, true);
        }
    }
    float_repr(v)
}

/// Python's `repr()` of a complex: `(1.5-2j)`, or `2j` when the real part
/// is +0.0; parts print without a forced `.0`.
pub fn complex_repr(re: f64, im: f64) -> String {
    let part = |v: f64| layout_digits(&format!("{v:e}"), false);
    let imag = if im.is_nan() {
        "nan".to_owned()
    } else {
        part(im)
    };
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let sign = if im.is_sign_negative() && !im.is_nan() {
        ""
    } else {
        "+"
    };
    format!("({}{sign}{imag}j)", part(re))
}

/// Lays out Rust's `{:e}` text (`-1.25e-5`, `inf`, `NaN`) the way Python's
/// float repr does.
fn layout_digits(sci: &str, dot_zero: bool) -> String {
    match sci {
        "inf" => return "inf".into(),
        "-inf" => return "-inf".into(),
        "NaN" => return "nan".into(),
        _ => {}
    }
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if (point as usize) >= digits.len() {
        let int = format!("{digits}{}", "0".repeat(point as usize - digits.len()));
        if dot_zero {
            format!("{int}.0")
        } else {
            int
        }
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{text}")
}

/// An IEEE half's exact value.
pub fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        0x1f if frac == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// A C `long double` (the first 10 of its 16 bytes: x87 extended
/// precision, as on x86-64), rounded to the nearest double.
pub fn x87_to_f64(b: &[u8; 10]) -> f64 {
    let mantissa = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let se = u16::from_le_bytes([b[8], b[9]]);
    let sign = if se & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from(se & 0x7fff);
    if exp == 0x7fff {
        return if mantissa << 1 == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    // The explicit integer bit is the mantissa's top bit: value = m / 2^63 * 2^(e - 16383).
    let e = if exp == 0 { -16382 } else { exp - 16383 };
    sign * (mantissa as f64) * 2f64.powi(e - 63)
}

/// A C `long double` in IEEE binary128 (as on arm64 Linux), rounded to
/// the nearest double.
pub fn binary128_to_f64(b: &[u8; 16]) -> f64 {
    let bits = u128::from_le_bytes(*b);
    let sign = if bits >> 127 != 0 { -1.0 } else { 1.0 };
    let exp = ((bits >> 112) & 0x7fff) as i32;
    let frac = bits & ((1u128 << 112) - 1);
    if exp == 0x7fff {
        return if frac == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    let (int, e) = if exp == 0 {
        (0u128, -16382)
    } else {
        (1u128 << 112, exp - 16383)
    };
    // Keep the top 64 bits of the 113-bit significand: plenty for a double.
    let sig = ((int | frac) >> 49) as u64;
    sign * (sig as f64) * 2f64.powi(e - 63)
}

/// What a numpy scalar type holds, by its `tp_name` (`numpy.int8`, ...;
/// numpy 1.x and 2.x names). `None`: not a numpy scalar we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumpyKind {
    Bool,
    Int(u8),
    Uint(u8),
    Half,
    Float,
    Double,
    LongDouble,
    ComplexFloat,
    ComplexDouble,
    ComplexLongDouble,
}

impl NumpyKind {
    /// The kind named by a numpy scalar type's `tp_name`.
    pub fn from_type_name(name: &str) -> Option<Self> {
        use NumpyKind::*;
        let short = name.strip_prefix("numpy.")?;
        Some(match short {
            "bool" | "bool_" => Bool,
            "int8" | "byte" => Int(1),
            "int16" | "short" => Int(2),
            "int32" | "intc" => Int(4),
            // C long and long long are 64-bit on the 64-bit Linux targets read here.
            "int64" | "long" | "int_" | "longlong" | "intp" => Int(8),
            "uint8" | "ubyte" => Uint(1),
            "uint16" | "ushort" => Uint(2),
            "uint32" | "uintc" => Uint(4),
            "uint64" | "ulong" | "uint" | "ulonglong" | "uintp" => Uint(8),
            "float16" | "half" => Half,
            "float32" | "single" => Float,
            "float64" | "double" | "float_" => Double,
            "longdouble" | "float128" | "longfloat" => LongDouble,
            "complex64" | "csingle" | "singlecomplex" => ComplexFloat,
            "complex128" | "cdouble" | "complex_" | "cfloat" => ComplexDouble,
            "complex256" | "clongdouble" | "clongfloat" | "longcomplex" => ComplexLongDouble,
            _ => return None,
        })
    }

    /// Bytes of the value (`obval`) to read.
    pub fn size(self) -> usize {
        use NumpyKind::*;
        match self {
            Bool => 1,
            Int(n) | Uint(n) => n.into(),
            Half => 2,
            Float => 4,
            Double | ComplexFloat => 8,
            LongDouble | ComplexDouble => 16,
            ComplexLongDouble => 32,
        }
    }

    /// numpy's `str()` of the value in `b` (`size()` bytes, little-endian).
    pub fn format(self, b: &[u8]) -> Option<String> {
        use NumpyKind::*;
        let b = b.get(..self.size())?;
        let le = |n: usize| -> [u8; 8] {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&b[..n]);
            w
        };
        let f32_at = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let f64_at = |i: usize| f64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Some(match self {
            Bool => if b[0] != 0 { "True" } else { "False" }.to_owned(),
            Int(n) => {
                let shift = 64 - 8 * u32::from(n);
                // Sign-extend from n bytes.
                ((i64::from_le_bytes(le(n.into())) << shift) >> shift).to_string()
            }
            Uint(n) => u64::from_le_bytes(le(n.into())).to_string(),
            Half => f16_repr(u16::from_le_bytes([b[0], b[1]])),
            Float => f32_repr(f32_at(0)),
            Double => float_repr(f64_at(0)),
            LongDouble => float_repr(long_double(&b[..16])?),
            ComplexFloat => complex_repr(f32_at(0).into(), f32_at(4).into()),
            ComplexDouble => complex_repr(f64_at(0), f64_at(8)),
            ComplexLongDouble => complex_repr(long_double(&b[..16])?, long_double(&b[16..32])?),
        })
    }
}

/// A 16-byte C `long double` of this machine's ABI, as a double.
fn long_double(b: &[u8]) -> Option<f64> {
    if cfg!(target_arch = "x86_64") {
        Some(x87_to_f64(b.get(..10)?.try_into().ok()?))
    } else if cfg!(target_arch = "aarch64") {
        Some(binary128_to_f64(b.get(..16)?.try_into().ok()?))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python_repr() {
        for (v, want) in [
            (2.5, "2.5"),
            (0.1, "0.1"),
            (2.0, "2.0"),
            (-0.0, "-0.0"),
            (1.2345, "1.2345"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1.5e300, "1.5e+300"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(float_repr(v), want, "{v}");
        }
        assert_eq!(f32_repr(0.1), "0.1");
        assert_eq!(f32_repr(0.5), "0.5");
    }

    #[test]
    fn complex_like_python_repr() {
        assert_eq!(complex_repr(1.5, -2.0), "(1.5-2j)");
        assert_eq!(complex_repr(1.0, 2.0), "(1+2j)");
        assert_eq!(complex_repr(0.0, 4.0), "4j");
        assert_eq!(complex_repr(-0.0, 4.0), "(-0+4j)");
        assert_eq!(complex_repr(-0.5, 4.0), "(-0.5+4j)");
    }

    #[test]
    fn halves_print_their_shortest_digits() {
        assert_eq!(f16_repr(0x3400), "0.25"); // 0.25
        assert_eq!(f16_repr(0x2e66), "0.1"); // nearest half to 0.1
        assert_eq!(f16_repr(0x3c00), "1.0");
        assert_eq!(f16_repr(0x7bff), "65500.0"); // max half 65504: numpy prints 65500.0
        assert_eq!(f16_repr(0x7c00), "inf");
    }

    #[test]
    fn long_doubles_convert() {
        // 1.25 as x87: mantissa 0xA000..., exponent 16383.
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&0xA000_0000_0000_0000u64.to_le_bytes());
        b[8..].copy_from_slice(&16383u16.to_le_bytes());
        assert_eq!(x87_to_f64(&b), 1.25);
        b[9] |= 0x80;
        assert_eq!(x87_to_f64(&b), -1.25);
        // 1.25 as binary128: exponent 16383, fraction 0.25 = bit 110.
        let q: u128 = (16383u128 << 112) | (1u128 << 110);
        assert_eq!(binary128_to_f64(&q.to_le_bytes()), 1.25);
    }

    #[test]
    fn numpy_kinds_by_name_and_bytes() {
        use NumpyKind::*;
        assert_eq!(NumpyKind::from_type_name("numpy.int8"), Some(Int(1)));
        assert_eq!(NumpyKind::from_type_name("numpy.bool_"), Some(Bool));
        assert_eq!(NumpyKind::from_type_name("numpy.ndarray"), None);
        assert_eq!(NumpyKind::from_type_name("int"), None);
        assert_eq!(Int(1).format(&[0xfd]).as_deref(), Some("-3"));
        assert_eq!(Int(8).format(&(-9i64).to_le_bytes()).as_deref(), Some("-9"));
        assert_eq!(
            Uint(8).format(&u64::MAX.to_le_bytes()).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(Bool.format(&[1]).as_deref(), Some("True"));
        assert_eq!(Float.format(&0.5f32.to_le_bytes()).as_deref(), Some("0.5"));
        let mut c = [0u8; 16];
        c[..8].copy_from_slice(&(-0.5f64).to_le_bytes());
        c[8..].copy_from_slice(&4.0f64.to_le_bytes());
        assert_eq!(ComplexDouble.format(&c).as_deref(), Some("(-0.5+4j)"));
        assert_eq!(Double.format(&[0; 4]), None, "short input");
    }
}
