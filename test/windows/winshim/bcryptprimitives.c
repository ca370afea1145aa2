/* Wine 8 (Debian bookworm) has no bcryptprimitives.dll; Rust's standard
   library takes its random numbers from ProcessPrng there. This stands in
   for it in the test prefix only, through advapi32's RtlGenRandom. */
#include <windows.h>
#define SystemFunction036 RtlGenRandom_import
#include <ntsecapi.h>
#undef SystemFunction036
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
