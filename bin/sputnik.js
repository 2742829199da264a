#!/usr/bin/env node
// Thin launcher: runs the TypeScript CLI through tsx so that `npm start`, `npx sputnik` and
// a global install all share one code path without a separate build step.
//
// libuv's thread pool runs node-llama-cpp's decode and sampling jobs. Its default 4 threads
// compete with llama.cpp's own compute threads for the cores and cost a quarter of the decode
// speed on a 2-core machine (measured, see the engine notes); one thread keeps them out of each
// other's way. The size is read once, when the pool starts, and loading an ES module already
// starts it: that is why this file is CommonJS (bin/package.json) and sets it before any import.
// An operator's own UV_THREADPOOL_SIZE wins.
"use strict";
process.env.UV_THREADPOOL_SIZE ??= "1";
import("tsx/esm/api")
  .then(({ register }) => {
    register();
    return import("../src/cli/main.ts");
  })
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
