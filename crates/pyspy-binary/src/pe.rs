//! PE (PE32+ only): sections from the section table, symbols from the
//! export table. Addresses include the image base, like a debugger shows them.
//!
//! Section names are the 8-byte names of the section table, so CPython's
//! `PyRuntime` section, truncated by MSVC's linker, is `PyRuntim`; long
//! names that GNU ld keeps in the COFF string table are resolved.

use goblin::pe::options::ParseOptions;
use goblin::pe::section_table::SectionTable;
use goblin::pe::PE;

use crate::binary::{Builder, Rank, Segment};
use crate::{Binary, Error, Format, Section};

const F: Format = Format::Pe;

pub(crate) fn parse(bytes: &[u8]) -> Result<Binary, Error> {
    // Skip what we never look at: less work, and fewer parsers that could
    // trip over a damaged file. RVAs must stay resolved to read export names.
    let mut options = ParseOptions::default();
    options.parse_attribute_certificates = false;
    options.parse_resources = false;
    options.parse_tls_data = false;
    options.parse_imports = false;
    let pe = PE::parse_with_opts(bytes, &options)
        .map_err(|e| Error::malformed(F, "PE headers and export table", e))?;
    if !pe.is_64 {
        return Err(Error::unsupported("32-bit PE file (PE32)"));
    }
    let image_base = pe.image_base;
    let mut builder = Builder::new(F);
    // Windows maps the whole image at once, laid out by RVA.
    let size_of_image = (pe.header.optional_header.as_ref())
        .map_or(0, |o| u64::from(o.windows_fields.size_of_image));
    builder.segment(Segment {
        offset: 0,
        file_size: size_of_image,
        vaddr: image_base,
        align: 0,
    });

    for table in &pe.sections {
        let (section, data) = section(table, image_base);
        builder.section(section, "", data);
    }
    for export in &pe.exports {
        // A forwarder names a function in another DLL, not an address here.
        if export.reexport.is_some() {
            continue;
        }
        if let Some(name) = export.name.filter(|n| !n.is_empty()) {
            builder.symbol(
                name,
                image_base.wrapping_add(export.rva as u64),
                Rank::Global,
            );
        }
    }
    Ok(builder.finish(".bss"))
}

/// One section table entry, and where its initialised bytes are.
fn section(table: &SectionTable, image_base: u64) -> (Section, Option<(u64, u64)>) {
    let name = match &table.real_name {
        Some(name) => name.clone(),
        None => {
            let end = table.name.iter().position(|&b| b == 0).unwrap_or(8);
            String::from_utf8_lossy(&table.name[..end]).into_owned()
        }
    };
    let raw_size = u64::from(table.size_of_raw_data);
    // Some linkers leave VirtualSize 0; then the raw size is the size.
    let size = match table.virtual_size {
        0 => raw_size,
        virtual_size => u64::from(virtual_size),
    };
    let file_offset = (raw_size > 0 && table.pointer_to_raw_data > 0)
        .then(|| u64::from(table.pointer_to_raw_data));
    // Raw data is padded to the file alignment, or shorter than the section
    // when its tail is zero-filled: the initialised bytes are the smaller.
    let data = file_offset.map(|offset| (offset, raw_size.min(size)));
    let section = Section {
        name,
        addr: image_base.wrapping_add(u64::from(table.virtual_address)),
        size,
        file_offset,
    };
    (section, data)
}
