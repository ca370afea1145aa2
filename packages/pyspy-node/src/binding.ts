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
export type Binding = Pick<typeof NativeBinding, 'dump' | 'dumpSync' | 'startRecorder'>;

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
 * The error for an addon that would not load.
 *
 * @param cause What the loader threw.
 * @param name This machine's {@link platformName}.
 */
export function bindingLoadError(cause: unknown, name: string = platformName()): PyspyError {
  return new PyspyError(
    'ENOBINDING',
    `pyspy-node has no working native addon for ${name} (Node ${process.version}): ` +
      `install the optional package @pyspy-node/binding-${name} (reinstall without --omit=optional or --no-optional), ` +
      `or, in a source checkout, build it with \`npm run build\` (needs Rust)`,
    { cause },
  );
}

function detectLibc(): 'gnu' | 'musl' {
  // Node's diagnostic report names the glibc it runs on; musl builds have none.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
}
