// The fixtures' reports, as far as the Windows tests read them.
export interface DumpTargetReport {
  pid: number;
  version_info: number[];
  threads: {
    ident: number;
    native_id: number | null;
    name: string | null;
    frames: { name: string; qualname?: string | null; filename: string; line: number }[];
  }[];
  busy: { ident: number; shown: string; line_range: [number, number] };
}

export interface RecordTargetReport {
  pid: number;
}
