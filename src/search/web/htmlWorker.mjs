// The HTML extraction worker (htmlExtractor.ts): runs documents/html.ts off the event loop.
// Plain JavaScript so it starts without the parent's loader; tsx is registered here only to load
// html.ts itself (the service runs its TypeScript through tsx, see bin/sputnik.js).
import { parentPort } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { extractHtmlMainText } = await import("../documents/html.ts");

parentPort.on("message", ({ id, html, url }) => {
  try {
    const { title, text } = extractHtmlMainText(html, url);
    parentPort.postMessage({ id, title, text });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
parentPort.postMessage({ ready: true });
