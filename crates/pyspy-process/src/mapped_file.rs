//! Files mapped read-only into this process: the target's binaries (read
//! through its root) and core files.

use std::path::Path;

/// A file mapped read-only into this process.
pub struct MappedFile(memmap2::Mmap);

impl std::ops::Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Maps the file at `path` read-only.
pub fn map_file(path: &Path) -> std::io::Result<MappedFile> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is read-only and private to this parse. A binary
    // rewritten in place while mapped could change under us; the parser
    // treats its input as untrusted and bounds-checks every read, so that
    // costs a wrong answer at worst.
    Ok(MappedFile(unsafe { memmap2::Mmap::map(&file)? }))
}
