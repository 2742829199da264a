/**
 * Child process for database.test.ts: loads the store, prints "ready", waits for a line on stdin
 * (so sibling processes start together), then opens the SQLite store in argv[2] and records argv[4]
 * rows whose models start with argv[3], one statement at a time.
 */
import { once } from "node:events";
import { openDatabase } from "../database.ts";
import { recordRequest } from "../requestLog.ts";

const [dataDir, prefix, count] = process.argv.slice(2);
process.stdout.write("ready\n");
await once(process.stdin, "data");
process.stdin.destroy();
const store = await openDatabase({ dataDir });
try {
  for (let i = 0; i < Number(count); i++) {
    await recordRequest(store.db, { model: `${prefix}${i}`, engine: "local", status: 200 });
  }
} finally {
  await store.close();
}
