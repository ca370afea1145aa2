/**
 * Loads the native addon, lazily, so that importing pyspy-node (or running
 * `pyspy-node --help`) works even where the addon is missing.
 *
 * @module
 */
import { createRequire } from 'node:module';

import type * as NativeBinding from '../binding/binding.cjs';
import { PyspyError } from './errors.js';

/** The part of the generated binding (`binding/binding.d.cts`) this package uses. */
export type Binding = Pick<typeof NativeBinding, 'dump' | 'dumpSync' | 'dumpCore' | 'startRecorder'>;

let loaded: Binding | undefined;

/**
 * Returns the native addon, loading it on first use.
 *
 * @throws {@link PyspyError} with code `ENOBINDING` when there is no addon for
 * this platform or it fails to load; the message names the platform and says
 * what to do.
 */
export function loadBinding(): Binding {
  if (loaded) return loaded;
  try {
    // The generated loader (binding/binding.cjs) tries ./pyspy-node.<platform>.node
    // beside it (a local build), then the @pyspy-node/binding-<platform> package.
    loaded = createRequire(import.meta.url)('../binding/binding.cjs') as Binding;
    return loaded;
  } catch (cause) {
    throw bindingLoadError(cause);
  }
}

/**
 * Names this machine the way napi-rs names its platform packages, e.g.
 * `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`.
 */
export function platformName(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
  libc: 'gnu' | 'musl' | undefined = platform === 'linux' ? detectLibc() : undefined,
): string {
  if (platform === 'linux') return `${platform}-${arch}-${libc ?? 'gnu'}`;
  if (platform === 'win32') return `${platform}-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/**
 * The platforms with a prebuilt addon: each has an `npm/<name>/` package,
 * `@pyspy-node/binding-<name>`, that pyspy-node lists as an optional
 * dependency. Keep in step with `npm/` (test/e2e/install.test.ts checks).
 */
export const PREBUILT_PLATFORMS = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
  'freebsd-x64',
] as const;

/**
 * The error for an addon that would not load. It says which of three cases
 * this is: no prebuilt addon exists for the platform, the platform package is
 * not installed, or it is installed but failed to load (then with the reason).
 *
 * @param cause What the loader threw.
 * @param name This machine's {@link platformName}.
 */
export function bindingLoadError(cause: unknown, name: string = platformName()): PyspyError {
  const where = `${name}, Node ${process.version}`;
  const source = 'or, in a source checkout, build it with `npm run build` (needs Rust)';
  if (!(PREBUILT_PLATFORMS as readonly string[]).includes(name)) {
    return new PyspyError(
      'ENOBINDING',
      `pyspy-node has no prebuilt native addon for ${where}: prebuilt addons exist for ` +
        `${PREBUILT_PLATFORMS.join(', ')}. Use one of those, ${source}`,
      { cause },
    );
  }
  const pkg = `@pyspy-node/binding-${name}`;
  const failure = loadFailure(cause);
  if (failure) {
    return new PyspyError(
      'ENOBINDING',
      `pyspy-node's native addon for ${where} (${pkg}) did not load: ${failure}. ` +
        `Reinstall pyspy-node, so that npm fetches the package built for this machine (on Linux, ` +
        `the -gnu packages need glibc 2.17 or newer and the -musl ones musl), ${source}`,
      { cause },
    );
  }
  return new PyspyError(
    'ENOBINDING',
    `pyspy-node has no native addon installed for ${where}: install the optional package ${pkg} ` +
      `(reinstall without --omit=optional or --no-optional; if package-lock.json was written on another ` +
      `platform, delete node_modules and package-lock.json and run npm install again), ${source}`,
    { cause },
  );
}

/**
 * The first line of the first error in the loader's cause chain that is not
 * "not found": the reason an installed addon failed to load, if any.
 */
function loadFailure(cause: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let e = cause; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const line = e.message.split('\n')[0]!.trim();
    if (line && !/^Cannot find (module|native binding)\b/.test(line)) return line;
  }
  return undefined;
}

function detectLibc(): 'gnu' | 'musl' {
  // Node's diagnostic report names the glibc it runs on; musl builds have none.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
}
