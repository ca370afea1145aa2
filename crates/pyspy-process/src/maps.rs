/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRange {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Offset of `start` in the mapped file.
    pub offset: u64,
    /// Inode of the mapped file (0 for anonymous memory).
    pub inode: u64,
    /// Path as the target sees it (inside its mount namespace), if any.
    pub path: Option<String>,
}

impl MapRange {
    /// True when `addr` lies inside.
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.start && addr < self.end
    }
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.end - self.start
    }
}

/// Parses the text of `/proc/PID/maps`, skipping malformed lines.
pub fn parse_maps(text: &str) -> Vec<MapRange> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MapRange> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?.as_bytes();
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _dev = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().map(str::trim_start).filter(|p| !p.is_empty());
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    if perms.len() < 3 || end < start {
        return None;
    }
    Some(MapRange {
        start,
        end,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        offset,
        inode,
        path: path.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_anonymous_lines() {
        let text = "55d0c0a00000-55d0c0a28000 r--p 00000000 fe:01 1234  /usr/bin/python3.11\n\
                    7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0          [stack]\n\
                    7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n\
                    garbage\n";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 3);
        assert_eq!(maps[0].path.as_deref(), Some("/usr/bin/python3.11"));
        assert!(maps[0].read && !maps[0].write && !maps[0].exec);
        assert_eq!(maps[0].inode, 1234);
        assert_eq!(maps[1].path.as_deref(), Some("[stack]"));
        assert_eq!(maps[2].path, None);
        assert!(maps[0].contains(0x55d0c0a00000) && !maps[0].contains(0x55d0c0a28000));
    }

    #[test]
    fn keeps_spaces_in_paths() {
        let maps = parse_maps("1000-2000 r-xp 00001000 08:01 7 /opt/my dir/libpython3.12.so.1.0\n");
        assert_eq!(
            maps[0].path.as_deref(),
            Some("/opt/my dir/libpython3.12.so.1.0")
        );
        assert_eq!(maps[0].offset, 0x1000);
    }
}
