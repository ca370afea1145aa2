//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

/// The bytes of a committed fixture in tests/fixtures/.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every binary fixture (not the script, source or README).
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".c") && !n.ends_with(".sh") && !n.ends_with(".md"))
        .collect();
    names.sort();
    names
}

/// One line of /proc/PID/maps.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let _perms = fields.next()?;
            let offset = fields.next()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path = fields.collect::<Vec<_>>().join(" ");
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path,
            })
        })
        .collect()
}

/// The mapping of `path` with the lowest file offset.
pub fn first_mapping<'a>(maps: &'a [Mapping], path: &Path) -> &'a Mapping {
    let path = path.to_str().unwrap();
    maps.iter()
        .filter(|m| m.path == path)
        .min_by_key(|m| m.offset)
        .unwrap_or_else(|| panic!("{path} is not mapped"))
}

/// pyenv's shared libpython3.X builds, smallest version first. Empty (with a
/// loud note) when there is no pyenv.
pub fn pyenv_libpythons() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").unwrap_or_default();
    let versions = Path::new(&home).join(".pyenv/versions");
    let mut found = Vec::new();
    for version in std::fs::read_dir(&versions).into_iter().flatten().flatten() {
        let lib = version.path().join("lib");
        for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
            let name = entry.file_name().into_string().unwrap_or_default();
            // libpython3.so is the 15 KB stable-ABI stub; skip it.
            let minor = name.strip_prefix("libpython3.").unwrap_or_default();
            if minor.starts_with(|c: char| c.is_ascii_digit()) && name.ends_with(".so") {
                found.push(std::fs::canonicalize(entry.path()).unwrap());
            }
        }
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        eprintln!(
            "NOTE: no libpython3.X.so under {}/*/lib; skipping the pyenv libpython sub-cases",
            versions.display()
        );
    }
    found
}

/// The "3.X" minor version in a libpython file name.
pub fn libpython_minor(path: &Path) -> u32 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let rest = name.strip_prefix("libpython3.").unwrap();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap()
}
