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
  await fs.mkdir(path.dirname(memoFile), { recursive: true });
  const temp = `${memoFile}.tmp-${process.pid}-${Date.now()}`;
  await fs.writeFile(temp, JSON.stringify(latest, null, 1));
  await fs.rename(temp, memoFile);
  return hash;
}

async function readMemo(file: string): Promise<Record<string, string>> {
  try {
    const value = JSON.parse(await fs.readFile(file, "utf8")) as unknown;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v)));
    }
  } catch {
    // missing or unreadable: hash again
  }
  return {};
}
