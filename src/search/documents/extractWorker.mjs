// Worker thread of src/search/documents/extract.ts: runs one extraction (extractors.ts) and ends.
// A fresh worker per file: whatever a hostile file did to this thread's heap leaves with it.
//
// Plain JavaScript, so it starts without a loader; it then registers tsx itself to import the
// TypeScript extractors. The parent starts it with no execArgv (the parent's `--import tsx` is not
// inherited), and `bin/sputnik.js` registers tsx through the same API, so this runs alike under
// the tests, `node bin/sputnik.js` and an installed package (tsx is a runtime dependency).
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { loadExtractor, ExtractionRefusal } = await import("./extractors.ts");
// Only this file's format's library: the parent names it before the file comes.
const extract = await loadExtractor(workerData.kind);

parentPort.once("message", async (job) => {
  try {
    const result = await extract(job);
    parentPort.postMessage({ ok: true, result });
  } catch (error) {
    parentPort.postMessage({
      ok: false,
      refusal: error instanceof ExtractionRefusal ? error.refusal : "unreadable",
      message: error instanceof ExtractionRefusal ? error.message : `${describe(error)}`,
    });
  }
});
parentPort.postMessage({ ready: true });

function describe(error) {
  // A stack overflow (absurd nesting) is the file's fault, named as such.
  const message = error instanceof Error ? error.message : String(error);
  if (/maximum call stack/i.test(message)) return "The document is nested too deeply to read.";
  return `The document could not be read: ${message.replace(/\s+/g, " ").slice(0, 200)}`;
}
