//! The little JSON writing the speedscope and chrometrace formats need:
//! escaped strings and numbers that are always valid JSON, appended to a
//! byte buffer (see [`crate::sink::Sink`]).

use std::time::Duration;

/// Appends `s` as a JSON string literal, quotes included.
pub(crate) fn string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"\\u00",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[plain..i]);
        buf.extend_from_slice(escape);
        if escape == b"\\u00" {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        plain = i + 1;
    }
    buf.extend_from_slice(&bytes[plain..]);
    buf.push(b'"');
}

/// Appends a float; JSON has no NaN or infinity, so those become 0.
pub(crate) fn number(buf: &mut Vec<u8>, x: f64) {
    use std::io::Write;
    if x.is_finite() {
        // `Display` for f64 never uses exponents and round-trips.
        let _ = write!(buf, "{x}");
    } else {
        buf.push(b'0');
    }
}

/// Appends an unsigned integer.
pub(crate) fn uint(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Appends a signed integer.
pub(crate) fn int(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    uint(buf, v.unsigned_abs());
}

/// Appends a duration in microseconds with nanosecond precision, e.g. `12.345`.
pub(crate) fn micros(buf: &mut Vec<u8>, d: Duration) {
    let ns = d.as_nanos().min(u64::MAX as u128) as u64;
    uint(buf, ns / 1000);
    let frac = ns % 1000;
    buf.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        let mut buf = Vec::new();
        string(&mut buf, text);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn strings_round_trip_through_serde_json() {
        for text in [
            "",
            "plain",
            "a\"b\\c",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}",
            "ünï €",
            "<module>",
        ] {
            let back: String = serde_json::from_str(&s(text)).unwrap();
            assert_eq!(back, text);
        }
        assert_eq!(s("\u{1}\u{1b}"), "\"\\u0001\\u001b\"");
    }

    #[test]
    fn numbers_are_valid_json() {
        for x in [0.0, 0.01, 1.0 / 3.0, 1e-9, 1e21, f64::NAN, f64::INFINITY] {
            let mut buf = Vec::new();
            number(&mut buf, x);
            let v: f64 = serde_json::from_slice(&buf).unwrap();
            assert_eq!(v, if x.is_finite() { x } else { 0.0 });
        }
        for v in [0i64, 7, -7, 1234567890, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            int(&mut buf, v);
            assert_eq!(buf, v.to_string().as_bytes());
        }
        let mut buf = Vec::new();
        uint(&mut buf, u64::MAX);
        assert_eq!(buf, u64::MAX.to_string().as_bytes());
        for (ns, text) in [
            (12_345_006u64, "12345.006"),
            (0, "0.000"),
            (999, "0.999"),
            (1_000, "1.000"),
        ] {
            let mut buf = Vec::new();
            micros(&mut buf, Duration::from_nanos(ns));
            assert_eq!(buf, text.as_bytes());
        }
    }
}
