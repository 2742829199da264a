// Worker thread of src/engines/local/grammars.ts: turns a JSON schema into GBNF text off the event
// loop. Plain JavaScript on purpose: it runs the same under tsx (tests, `node bin/sputnik.js`) and
// without it, with no loader to start in the worker.
//
// node-llama-cpp 3.21.1 does not export its schema → GBNF converter (only `createGrammarForJsonSchema`,
// which also parses the grammar natively on the calling thread), and its package "exports" map
// hides dist/; a file URL beside the resolved entry point reaches it. The version is pinned, and
// grammars.test.ts fails loudly if the file moves.
import { parentPort } from "node:worker_threads";

const entry = import.meta.resolve("node-llama-cpp");
const { getGbnfGrammarForGbnfJsonSchema } = await import(new URL("./utils/gbnfJson/getGbnfGrammarForGbnfJsonSchema.js", entry).href);

parentPort.on("message", ({ id, schemaJson }) => {
  try {
    parentPort.postMessage({ id, grammar: getGbnfGrammarForGbnfJsonSchema(JSON.parse(schemaJson)) });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
parentPort.postMessage({ ready: true });
