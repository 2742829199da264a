#!/usr/bin/env node
// Thin launcher: runs the TypeScript CLI through tsx so that `npm start`, `npx sputnik` and
// a global install all share one code path without a separate build step.
import { register } from "tsx/esm/api";
register();
await import("../src/cli/main.ts");
