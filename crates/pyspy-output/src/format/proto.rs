//! The few pieces of the protobuf wire format pprof needs: varints and
//! length-delimited fields, written into a `Vec<u8>`.

const VARINT: u64 = 0;
const LEN: u64 = 2;

/// Appends `v` as a base-128 varint.
pub(super) fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends an integer field (`uint64`, `int64`, `bool`); negative `int64`
/// values go in as their two's complement, as protobuf says. Zero is
/// written too (callers leave out defaults themselves).
pub(super) fn int(buf: &mut Vec<u8>, field: u32, v: u64) {
    varint(buf, (field as u64) << 3 | VARINT);
    varint(buf, v);
}

/// Appends a length-delimited field (string, bytes or message).
pub(super) fn bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    varint(buf, (field as u64) << 3 | LEN);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Appends a packed repeated integer field; nothing when `values` is empty.
pub(super) fn packed(buf: &mut Vec<u8>, field: u32, values: impl Iterator<Item = u64> + Clone) {
    let len: usize = values.clone().map(varint_len).sum();
    if len == 0 {
        return;
    }
    varint(buf, (field as u64) << 3 | LEN);
    varint(buf, len as u64);
    for v in values {
        varint(buf, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_spec_examples() {
        for (v, bytes) in [
            (0u64, &[0u8][..]),
            (1, &[1]),
            (150, &[0x96, 0x01]),
            (300, &[0xac, 0x02]),
        ] {
            let mut buf = Vec::new();
            varint(&mut buf, v);
            assert_eq!(buf, bytes);
            assert_eq!(varint_len(v), bytes.len());
        }
        let mut buf = Vec::new();
        varint(&mut buf, u64::MAX);
        assert_eq!(buf.len(), 10);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn fields_have_keys_and_lengths() {
        let mut buf = Vec::new();
        int(&mut buf, 1, 150);
        bytes(&mut buf, 2, b"testing");
        packed(&mut buf, 4, [3u64, 270, 86942].into_iter());
        packed(&mut buf, 5, [].into_iter());
        assert_eq!(
            buf,
            [
                &[0x08, 0x96, 0x01][..],
                &[0x12, 0x07],
                b"testing",
                &[0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]
            ]
            .concat()
        );
    }
}
