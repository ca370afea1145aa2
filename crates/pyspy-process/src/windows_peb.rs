//! A Windows process's command line, read from its PEB: Windows keeps it
//! in the target's own memory (`RTL_USER_PROCESS_PARAMETERS.CommandLine`),
//! and `NtQueryInformationProcess` says where the PEB is.

use windows_sys::Wdk::System::Threading::{NtQueryInformationProcess, ProcessBasicInformation};

use crate::windows::Process;
use crate::{Error, Memory, MemoryExt};

/// `PROCESS_BASIC_INFORMATION` (x64), declared here to need only the
/// PEB's address of it.
#[repr(C)]
#[derive(Default)]
struct BasicInformation {
    exit_status: i32,
    peb: usize,
    affinity_mask: usize,
    base_priority: i32,
    unique_process_id: usize,
    parent_process_id: usize,
}

/// `PEB.ProcessParameters` (x64).
const PEB_PROCESS_PARAMETERS: usize = 0x20;
/// `RTL_USER_PROCESS_PARAMETERS.CommandLine`, a `UNICODE_STRING` (x64).
const PARAMETERS_COMMAND_LINE: usize = 0x70;
/// Longest command line Windows allows, in UTF-16 units.
const MAX_COMMAND_LINE: usize = 32768;

pub(crate) fn command_line(process: &Process) -> Result<String, Error> {
    let mut info = BasicInformation::default();
    let mut len = 0u32;
    // SAFETY: `info` is a writable buffer of the size passed.
    let status = unsafe {
        NtQueryInformationProcess(
            process.raw_handle(),
            ProcessBasicInformation,
            (&mut info as *mut BasicInformation).cast(),
            std::mem::size_of::<BasicInformation>() as u32,
            &mut len,
        )
    };
    if status < 0 || info.peb == 0 {
        return Err(process.io_error(
            "NtQueryInformationProcess",
            std::io::Error::other(format!("NTSTATUS {:#x}", status as u32)),
        ));
    }
    let read = |addr| process.read_usize(addr).map_err(|e| process.read_error(e));
    let params = read(info.peb + PEB_PROCESS_PARAMETERS)?;
    let mut header = [0u8; 16];
    process
        .read(params + PARAMETERS_COMMAND_LINE, &mut header)
        .map_err(|e| process.read_error(e))?;
    let bytes = usize::from(u16::from_le_bytes([header[0], header[1]]));
    let buffer = usize::from_le_bytes(header[8..16].try_into().unwrap_or_default());
    let units = (bytes / 2).min(MAX_COMMAND_LINE);
    let raw = process
        .read_vec(buffer, units * 2)
        .map_err(|e| process.read_error(e))?;
    let wide: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&wide))
}
