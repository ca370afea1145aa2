/**
 * Parsers that read every output format of `record` back, for the
 * end-to-end tests: the raw/collapsed text, flamegraph SVG, speedscope JSON,
 * Chrome trace events and gzipped pprof (also through `go tool pprof`).
 * Re-exported by `record.ts`.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { gunzipSync } from 'node:zlib';

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Profile as PprofProfile } from 'pprof-format';

/** `Wrote <format> to 'FILE'. Samples: N Errors: E`, after py-spy's `pyspy-node> ` prefix. */
export interface RecordSummary {
  format: string;
  file: string;
  samples: number;
  errors: number;
}

const SUMMARY = /^(?:pyspy-node> )?Wrote (.+?) to '(.*)'\. Samples: (\d+) Errors: (\d+)$/m;

/** The summary line of `record`'s stderr, or null when there is none. */
export function parseSummary(stderr: string): RecordSummary | null {
  const m = SUMMARY.exec(stderr);
  if (!m) return null;
  return { format: m[1]!, file: m[2]!, samples: Number(m[3]), errors: Number(m[4]) };
}

// --- raw (folded stacks) --------------------------------------------------------

/** One frame label of a raw line. */
export interface RawFrame {
  /** The label as written. */
  label: string;
  /** Function name, or the whole label of a thread root. */
  name: string;
  /** Filename as labelled, or null (thread roots, frames without one). */
  file: string | null;
  /** Line, or null when the label has none. */
  line: number | null;
  /** For a `--threads` root frame: the id in parentheses and the name after it. */
  thread: { id: string; name: string | null } | null;
}

/** One line of raw output. */
export interface RawStack {
  frames: RawFrame[];
  count: number;
}

const THREAD_LABEL = /^thread \((\d+|0x[0-9a-f]+)\)(?:: (.*))?$/;
const FRAME_LABEL = /^(.*) \(([^()]*?)(?::(\d+))?\)$/;

/** Parses one frame label; `first` says whether it is a line's root. */
export function parseLabel(label: string, first: boolean): RawFrame {
  const t = first ? THREAD_LABEL.exec(label) : null;
  if (t) return { label, name: label, file: null, line: null, thread: { id: t[1]!, name: t[2] ?? null } };
  const m = FRAME_LABEL.exec(label);
  if (!m) return { label, name: label, file: null, line: null, thread: null };
  return { label, name: m[1]!, file: m[2]!, line: m[3] === undefined ? null : Number(m[3]), thread: null };
}

/**
 * Parses raw output: every line must be `label;label;... COUNT` with a
 * positive integer count.
 *
 * @throws Error quoting the first malformed line.
 */
export function parseRaw(text: string): RawStack[] {
  if (text !== '' && !text.endsWith('\n')) throw new Error('raw output does not end with a newline');
  const lines = text.split('\n').slice(0, -1);
  return lines.map((line, i) => {
    const m = /^(.+) (\d+)$/.exec(line);
    if (!m || Number(m[2]) <= 0) throw new Error(`raw line ${i + 1} is not "stack COUNT": ${JSON.stringify(line)}`);
    const labels = m[1]!.split(';');
    if (labels.some((l) => l === '')) throw new Error(`raw line ${i + 1} has an empty frame: ${JSON.stringify(line)}`);
    return { frames: labels.map((l, j) => parseLabel(l, j === 0)), count: Number(m[2]) };
  });
}

/** Sum of the counts. */
export function totalCount(stacks: { count: number }[]): number {
  return stacks.reduce((n, s) => n + s.count, 0);
}

/** `short` is `full` or a trailing run of its path segments. */
export function isPathSuffix(short: string, full: string): boolean {
  return short === full || full.endsWith(`/${short}`);
}

/**
 * Samples per function, counting each stack once for its leaf-most frame
 * that belongs to `script` (frames of other files, e.g. the standard
 * library, are looked through). Stacks with no frame of `script` count
 * under `''`.
 */
export function leafFunctionCounts(
  stacks: { count: number; frames: { name: string; file: string | null }[] }[],
  script: string,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of stacks) {
    const leaf = [...s.frames].reverse().find((f) => f.file !== null && isPathSuffix(f.file, script));
    const key = leaf?.name ?? '';
    counts.set(key, (counts.get(key) ?? 0) + s.count);
  }
  return counts;
}

/** How a 3:1 run of {@link RECORD_FIXTURE} (`--mode ratio`) split between work_three and work_one. */
export interface RatioSplit {
  /** Samples per function of the fixture ({@link leafFunctionCounts}). */
  counts: Map<string, number>;
  three: number;
  one: number;
  /** work_three's and work_one's shares of the samples in either, in percent (75 and 25 expected). */
  shareThree: number;
  shareOne: number;
  /** The counts and the total, for failure messages. */
  detail: string;
}

/** The split of raw `stacks` recorded from the 3:1 fixture at `script`, of `samples` in all. */
export function ratioSplit(stacks: RawStack[], script: string, samples: number): RatioSplit {
  const counts = leafFunctionCounts(stacks, script);
  const three = counts.get('work_three') ?? 0;
  const one = counts.get('work_one') ?? 0;
  const both = three + one;
  return {
    counts,
    three,
    one,
    shareThree: both === 0 ? NaN : (100 * three) / both,
    shareOne: both === 0 ? NaN : (100 * one) / both,
    detail: `${JSON.stringify(Object.fromEntries(counts))} of ${samples} samples`,
  };
}

// --- flamegraph -----------------------------------------------------------------

/** A frame box of the flame graph: its `<title>` (`label (N samples, P%)`) and its rectangle's top. */
export interface FlameBox {
  label: string;
  samples: number;
  percent: number;
  /** The `y` of its `<rect>`: smaller is higher up. */
  y: number;
}

/** Every `<g>` holding a `<title>` and a `<rect>`, wherever it is nested. */
function boxes(node: unknown, out: { title: unknown; rect: unknown }[]): void {
  if (Array.isArray(node)) {
    for (const n of node) boxes(n, out);
  } else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if ('title' in o && 'rect' in o) out.push({ title: o.title, rect: o.rect });
    for (const v of Object.values(o)) boxes(v, out);
  }
}

/**
 * Validates the SVG as XML and returns its frame boxes.
 *
 * @throws Error when it is not well-formed XML, has no `<svg>` root, or a
 *   box's title is not `label (N samples, P%)`.
 */
export function parseFlamegraph(svg: string): FlameBox[] {
  const valid = XMLValidator.validate(svg);
  if (valid !== true) throw new Error(`the flamegraph is not well-formed XML: ${JSON.stringify(valid.err)}`);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false, processEntities: true }).parse(
    svg,
  ) as Record<string, unknown>;
  const root = doc.svg;
  if (!root || typeof root !== 'object') throw new Error('the flamegraph has no <svg> root element');
  const found: { title: unknown; rect: unknown }[] = [];
  boxes(root, found);
  return found.map(({ title, rect }) => {
    const text = typeof title === 'string' ? title : String((title as Record<string, unknown>)?.['#text'] ?? '');
    const m = /^(.*) \(([\d,]+) samples?, ([\d.]+)%\)$/s.exec(text);
    if (!m) throw new Error(`flamegraph title is not "label (N samples, P%)": ${JSON.stringify(text)}`);
    const y = Number((rect as Record<string, unknown>)?.y);
    if (!Number.isFinite(y)) throw new Error(`flamegraph box "${text}" has a rect without a numeric y`);
    return { label: m[1]!, samples: Number(m[2]!.replace(/,/g, '')), percent: Number(m[3]), y };
  });
}

// --- speedscope -----------------------------------------------------------------

export interface SpeedscopeFile {
  $schema: string;
  shared: { frames: { name: string; file: string | null; line: number | null; col: number | null }[] };
  profiles: {
    type: string;
    name: string;
    unit: string;
    startValue: number;
    endValue: number;
    samples: number[][];
    weights: number[];
  }[];
}

/**
 * Checks the speedscope structure: schema, frames with names, `sampled`
 * profiles whose sample stacks index existing frames and whose weights
 * match the samples one to one. Returns the problems found (empty: valid).
 */
export function speedscopeProblems(file: SpeedscopeFile): string[] {
  const problems: string[] = [];
  if (file.$schema !== 'https://www.speedscope.app/file-format-schema.json') problems.push(`$schema is ${file.$schema}`);
  const frames = file.shared?.frames;
  if (!Array.isArray(frames) || frames.length === 0) return [...problems, 'shared.frames is missing or empty'];
  frames.forEach((f, i) => {
    if (typeof f.name !== 'string' || f.name === '') problems.push(`frame ${i} has no name`);
    // py-spy's frame keys, every one present (null where unknown).
    for (const key of ['file', 'line', 'col'] as const) if (!(key in f)) problems.push(`frame ${i} has no ${key}`);
    if (f.file !== null && typeof f.file !== 'string') problems.push(`frame ${i} file is not a string`);
    if (f.line !== null && !(Number.isInteger(f.line) && f.line > 0)) problems.push(`frame ${i} line ${f.line}`);
    if (f.col !== null) problems.push(`frame ${i} col ${f.col}`);
  });
  if (!Array.isArray(file.profiles) || file.profiles.length === 0) return [...problems, 'no profiles'];
  for (const p of file.profiles) {
    if (p.type !== 'sampled') problems.push(`profile ${p.name} has type ${p.type}`);
    if (!Array.isArray(p.samples) || !Array.isArray(p.weights)) {
      problems.push(`profile ${p.name} lacks samples or weights`);
      continue;
    }
    if (p.samples.length !== p.weights.length) {
      problems.push(`profile ${p.name}: ${p.samples.length} samples but ${p.weights.length} weights`);
    }
    if (p.samples.length === 0) problems.push(`profile ${p.name} has no samples`);
    p.samples.forEach((stack, i) => {
      if (!Array.isArray(stack) || stack.length === 0) problems.push(`profile ${p.name} sample ${i} is empty`);
      else if (stack.some((f) => !Number.isInteger(f) || f < 0 || f >= frames.length)) {
        problems.push(`profile ${p.name} sample ${i} has a frame index out of range: ${JSON.stringify(stack)}`);
      }
    });
    if (p.weights.some((w) => typeof w !== 'number' || !(w > 0))) problems.push(`profile ${p.name} has a weight <= 0`);
  }
  return problems;
}

// --- chrometrace ----------------------------------------------------------------

export interface TraceEvent {
  ph: string;
  name: string;
  pid: number;
  tid?: number;
  ts: number;
  cat?: string;
  args?: Record<string, unknown>;
}

/**
 * Checks that `B`/`E` events nest properly per (pid, tid): each `E` closes
 * the innermost open `B` of the same name, timestamps never go back within
 * a thread, and nothing is left open. Returns the problems found.
 */
export function chrometraceProblems(events: TraceEvent[]): string[] {
  const problems: string[] = [];
  const open = new Map<string, string[]>();
  const lastTs = new Map<string, number>();
  for (const [i, e] of events.entries()) {
    if (!['B', 'E', 'M', 'X', 'i', 'I'].includes(e.ph)) problems.push(`event ${i} has phase ${e.ph}`);
    if (e.ph !== 'B' && e.ph !== 'E') continue;
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid) || typeof e.ts !== 'number') {
      problems.push(`event ${i} lacks pid/tid/ts: ${JSON.stringify(e)}`);
      continue;
    }
    const key = `${e.pid}/${e.tid}`;
    if (e.ts < (lastTs.get(key) ?? -Infinity)) problems.push(`event ${i} (${key}) goes back in time`);
    lastTs.set(key, e.ts);
    const stack = open.get(key) ?? [];
    open.set(key, stack);
    if (e.ph === 'B') {
      stack.push(e.name);
    } else {
      const top = stack.pop();
      if (top === undefined) problems.push(`event ${i}: E "${e.name}" on ${key} with nothing open`);
      else if (top !== e.name) problems.push(`event ${i}: E "${e.name}" on ${key} closes "${top}"`);
    }
  }
  for (const [key, stack] of open) if (stack.length > 0) problems.push(`${key} ends with ${stack.length} open: ${stack.join(' > ')}`);
  return problems;
}

// --- pprof ----------------------------------------------------------------------

/** A pprof profile decoded by `pprof-format`, with strings resolved. */
export interface DecodedPprof {
  profile: PprofProfile;
  sampleTypes: string[];
  periodType: string | null;
  samples: {
    /** Function names, leaf first. */
    functions: string[];
    values: number[];
    labels: Record<string, string | number>;
  }[];
}

/** Gunzips and decodes a pprof file with the `pprof-format` package. */
export function decodePprof(gzipped: Buffer): DecodedPprof {
  const profile = PprofProfile.decode(gunzipSync(gzipped));
  const str = (i: number | bigint): string => profile.stringTable.strings[Number(i)] ?? `<bad string ${i}>`;
  const functions = new Map(profile.function.map((f) => [Number(f.id), str(f.name)]));
  const locations = new Map(
    profile.location.map((l) => [Number(l.id), l.line.map((line) => functions.get(Number(line.functionId)) ?? '?')]),
  );
  return {
    profile,
    sampleTypes: profile.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`),
    periodType: profile.periodType ? `${str(profile.periodType.type)}/${str(profile.periodType.unit)}` : null,
    samples: profile.sample.map((s) => ({
      functions: s.locationId.flatMap((id) => locations.get(Number(id)) ?? ['?']),
      values: s.value.map(Number),
      labels: Object.fromEntries(s.label.map((l) => [str(l.key), Number(l.str) !== 0 ? str(l.str) : Number(l.num)])),
    })),
  };
}

/** Where `go` is: /usr/local/go/bin/go, or the one on PATH. */
export function goBinary(): string {
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
}

/** One row of `go tool pprof -top`. */
export interface PprofTopRow {
  flat: number;
  flatPercent: number;
  cum: number;
  name: string;
}

/**
 * Runs `go tool pprof -top -sample_index=0 FILE` (the `samples` type, so
 * flat and cum are sample counts) and parses its table. The first call may
 * build the pprof tool, hence the long timeout.
 */
export async function goPprofTop(file: string, timeoutMs = 240_000): Promise<{ rows: PprofTopRow[]; output: string }> {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      goBinary(),
      ['tool', 'pprof', '-top', '-sample_index=0', file],
      { cwd: os.tmpdir(), timeout: timeoutMs, env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '' }, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`go tool pprof -top ${file} failed: ${err.message}\n--- stderr:\n${stderr}`));
        else resolve(`${stdout}${stderr ? `\n--- stderr:\n${stderr}` : ''}`);
      },
    );
  });
  const rows: PprofTopRow[] = [];
  let inTable = false;
  for (const line of output.split('\n')) {
    if (/^\s*flat\s+flat%\s+sum%\s+cum\s+cum%/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = /^\s*([\d.]+)\s+([\d.]+)%\s+[\d.]+%\s+([\d.]+)\s+[\d.]+%\s+(.+?)\s*$/.exec(line);
    if (m) rows.push({ flat: Number(m[1]), flatPercent: Number(m[2]), cum: Number(m[3]), name: m[4]! });
    else if (line.startsWith('---')) break;
  }
  return { rows, output };
}
