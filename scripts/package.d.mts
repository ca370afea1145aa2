// Types for scripts/package.mjs, which test/e2e/install.test.ts imports.

/** npm's report on one packed (or dry-run) package. */
export interface PackReport {
  name: string;
  version: string;
  /** The tarball; null for a dry run. */
  file: string | null;
  size: number;
  unpackedSize: number;
  /** Paths inside the package, sorted. */
  files: string[];
}

/** Facts about a built addon. */
export interface BinaryInfo {
  platform: string;
  path: string;
  size: number;
  elf: boolean;
  symtab: boolean;
  debugInfo: boolean;
  /** Newest GLIBC_ symbol version it needs (ELF, with objdump on PATH), else null. */
  glibc: string | null;
}

export interface PlatformPackage {
  platform: string;
  dir: string;
  manifest: Record<string, unknown> & { name: string; version: string };
  binary: string;
}

/** The main package's folder. */
export declare const PACKAGE_DIR: string;
export declare function hostPlatform(): string;
export declare function platformPackages(npmDir?: string): PlatformPackage[];
export declare function describeBinary(path: string): Omit<BinaryInfo, 'platform'>;
export declare function npmPack(
  dir: string,
  options?: { outDir?: string; dryRun?: boolean; log?: (line: string) => void },
): PackReport;
export declare function staleBuildOutput(files: string[]): string[];
export declare function packMain(
  outDir: string,
  platforms: PlatformPackage[],
  options?: { log?: (line: string) => void },
): PackReport & { optionalDependencies: Record<string, string> };
export declare function packageAll(options?: {
  build?: boolean;
  all?: boolean;
  outDir?: string;
  npmDir?: string;
  allowDebug?: boolean;
  log?: (line: string) => void;
}): { outDir: string; binaries: BinaryInfo[]; packages: PackReport[] };
