/**
 * The CLI's own error: a problem with what the user asked for.
 *
 * @module
 * @internal
 */

/** Reported by the CLI as one `Error: <message>` line, with exit code 1. */
export class UsageError extends Error {}
