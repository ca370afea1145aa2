//! Python versions: parsing `PY_VERSION_HEX`-style numbers and version text.

use std::fmt;

/// A CPython version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major (2 or 3).
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Micro (patch).
    pub patch: u8,
    /// Release level: `0xa` alpha, `0xb` beta, `0xc` candidate, `0xf` final.
    pub level: u8,
    /// Release serial (the N of `a1`/`rc2`).
    pub serial: u8,
}

impl Version {
    /// From a `PY_VERSION_HEX` number (the `Py_Version` symbol, or the
    /// `_Py_DebugOffsets.version` field): `0xMMmmppLS`.
    pub fn from_hex(hex: u64) -> Option<Version> {
        let v = Version {
            major: (hex >> 24) as u8,
            minor: (hex >> 16) as u8,
            patch: (hex >> 8) as u8,
            level: ((hex >> 4) & 0xf) as u8,
            serial: (hex & 0xf) as u8,
        };
        let plausible = hex >> 32 == 0
            && matches!(v.major, 2 | 3)
            && v.minor < 100
            && matches!(v.level, 0xa | 0xb | 0xc | 0xf);
        plausible.then_some(v)
    }

    /// A final release `major.minor.patch`.
    pub const fn new(major: u8, minor: u8, patch: u8) -> Version {
        Version {
            major,
            minor,
            patch,
            level: 0xf,
            serial: 0,
        }
    }

    /// Finds the first `X.Y.Z` version text in `bytes` that looks like
    /// `sys.version` (digits, optional `a1`/`b2`/`rc3`/`+`, then a space or
    /// NUL), e.g. `3.11.2 (main, ...)`.
    pub fn scan(bytes: &[u8]) -> Option<Version> {
        (0..bytes.len()).find_map(|i| parse_at(bytes, i).map(|(v, _)| v))
    }

    /// Like [`Version::scan`], but only text shaped like a whole
    /// `sys.version` (`X.Y.Z (build info`): for scanning large memory
    /// ranges where a bare `X.Y.Z` could be anything.
    pub fn scan_sys_version(bytes: &[u8]) -> Option<Version> {
        (0..bytes.len()).find_map(|i| {
            let (v, end) = parse_at(bytes, i)?;
            bytes[end..].starts_with(b" (").then_some(v)
        })
    }
}

fn parse_at(bytes: &[u8], start: usize) -> Option<(Version, usize)> {
    if start > 0 && (bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.') {
        return None;
    }
    let mut pos = start;
    let major = number(bytes, &mut pos, 1)?;
    expect(bytes, &mut pos, b'.')?;
    let minor = number(bytes, &mut pos, 2)?;
    expect(bytes, &mut pos, b'.')?;
    let patch = number(bytes, &mut pos, 2)?;
    if !matches!(major, 2 | 3) {
        return None;
    }
    let (mut level, mut serial) = (0xf, 0);
    for (tag, lvl) in [(&b"rc"[..], 0xc), (b"a", 0xa), (b"b", 0xb), (b"c", 0xc)] {
        if bytes[pos..].starts_with(tag) {
            let mut p = pos + tag.len();
            if let Some(s) = number(bytes, &mut p, 2) {
                level = lvl;
                serial = s;
                pos = p;
                break;
            }
        }
    }
    while bytes.get(pos) == Some(&b'+') {
        pos += 1;
        while bytes
            .get(pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
        {
            pos += 1;
        }
    }
    // sys.version continues with " (build info"; a bare NUL also ends it.
    match bytes.get(pos) {
        Some(b' ') | Some(0) => Some((
            Version {
                major,
                minor,
                patch,
                level,
                serial,
            },
            pos,
        )),
        _ => None,
    }
}

fn number(bytes: &[u8], pos: &mut usize, max_digits: usize) -> Option<u8> {
    let start = *pos;
    while *pos < bytes.len() && bytes[*pos].is_ascii_digit() && *pos - start < max_digits {
        *pos += 1;
    }
    if *pos == start || bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&bytes[start..*pos]).ok()?.parse().ok()
}

fn expect(bytes: &[u8], pos: &mut usize, b: u8) -> Option<()> {
    (bytes.get(*pos) == Some(&b)).then(|| *pos += 1)
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        match self.level {
            0xa => write!(f, "a{}", self.serial),
            0xb => write!(f, "b{}", self.serial),
            0xc => write!(f, "rc{}", self.serial),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_version_hex() {
        assert_eq!(
            Version::from_hex(0x030d12f0).unwrap().to_string(),
            "3.13.18"
        );
        assert_eq!(
            Version::from_hex(0x030e0af0).unwrap().to_string(),
            "3.14.10"
        );
        assert_eq!(
            Version::from_hex(0x030f00a3).unwrap().to_string(),
            "3.15.0a3"
        );
        assert_eq!(
            Version::from_hex(0x030c00c1).unwrap().to_string(),
            "3.12.0rc1"
        );
        assert!(Version::from_hex(0).is_none());
        assert!(Version::from_hex(0x0a0b0c0d).is_none());
        assert!(Version::from_hex(0xffff_ffff_030d_12f0).is_none());
    }

    #[test]
    fn scans_sys_version_text() {
        let v = |s: &str| Version::scan(s.as_bytes()).map(|v| v.to_string());
        assert_eq!(
            v("junk\x003.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]").as_deref(),
            Some("3.11.2")
        );
        assert_eq!(
            v("2.7.18+ (default, Jul 1 2022)").as_deref(),
            Some("2.7.18")
        );
        assert_eq!(v("3.10.0rc1 (x)").as_deref(), Some("3.10.0rc1"));
        assert_eq!(v("3.8.5+cinder (y)").as_deref(), Some("3.8.5"));
        assert_eq!(v("1.7.0 (x)"), None);
        assert_eq!(v("3.7 10 "), None);
        assert_eq!(v("3.7.10fooboo "), None);
        assert_eq!(v("13.11.2 (x)"), None);
    }

    #[test]
    fn strict_scan_wants_build_info() {
        let v = |s: &str| Version::scan_sys_version(s.as_bytes()).map(|v| v.to_string());
        assert_eq!(
            v("x 2.7.0 y\0\x003.10.13 (main, May 9 2026) [GCC]").as_deref(),
            Some("3.10.13")
        );
        assert_eq!(v("3.10.13\0"), None);
    }

    #[test]
    fn orders_versions() {
        assert!(Version::new(3, 11, 0) < Version::new(3, 12, 0));
        assert!(Version::from_hex(0x030e00a1).unwrap() < Version::new(3, 14, 0));
    }
}
