#!/usr/bin/env node
// The `pyspy-node` command: a shim that runs the compiled CLI (src/cli.ts).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));
