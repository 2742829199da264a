import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { fileSha256 } from "./contextCache.ts";

/**
 * SHA-256 of a model file. Hashing a multi-GB file takes seconds, so the result is remembered in
 * `memoFile` under the file's path, size and mtime: a replaced or edited file is hashed again.
 */
export async function modelFingerprint(modelPath: string, memoFile: string): Promise<string> {
  const stat = await fs.stat(modelPath);
  const id = `${path.resolve(modelPath)}|${stat.size}|${stat.mtimeMs}`;
  const memo = await readMemo(memoFile);
  const known = memo[id];
  if (known) return known;
  const hash = fileSha256(modelPath);
  // Re-read before writing: another model of the same process may have added its entry meanwhile.
  const latest = await readMemo(memoFile);
  latest[id] = hash;
  const temp = `${memoFile}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.mkdir(path.dirname(memoFile), { recursive: true });
    await fs.writeFile(temp, JSON.stringify(latest, null, 1));
    await fs.rename(temp, memoFile);
  } catch {
    // The memo only saves time; a damaged cache folder (a file in its place, say) must not stop
    // the model from loading. The context cache reports and handles that folder itself.
    await fs.rm(temp, { force: true }).catch(() => undefined);
  }
  return hash;
}

async function readMemo(file: string): Promise<Record<string, string>> {
  try {
    // Non-blocking open and a type check: a FIFO in its place would otherwise hang the read.
    const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    let text: string;
    try {
      if (!(await handle.stat()).isFile()) return {};
      text = await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v)));
    }
  } catch {
    // missing or unreadable: hash again
  }
  return {};
}
