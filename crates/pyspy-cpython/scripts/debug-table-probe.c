/*
 * Prints the `_Py_DebugOffsets` table a build of these headers carries at
 * `_PyRuntime` (the headers' own `_Py_DebugOffsets_INIT`), as hex, 32 bytes
 * a line. scripts/generate-offsets.sh compiles it with -DPy_GIL_DISABLED
 * against Debian's 3.14/3.15 headers: the tables of free-threaded 3.14t and
 * 3.15t, which no build here has, for the tests on fake memory
 * (tests/debug_offsets_tables.rs).
 */
#include "Python.h"
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#include "internal/pycore_debug_offsets.h"

#include <stdio.h>

static const _Py_DebugOffsets table = _Py_DebugOffsets_INIT(_Py_Debug_Cookie);

int main(void) {
    const unsigned char *p = (const unsigned char *)&table;
    for (size_t i = 0; i < sizeof table; i++) {
        printf("%02x%s", p[i], i % 32 == 31 ? "\n" : "");
    }
    printf("\n");
    return 0;
}
