/**
 * One pull per model name at a time: two processes appending to the same `.partial` file would
 * interleave bytes. The lock is a file holding the owner's pid; a lock whose owner is gone
 * (crash, kill -9) is taken over.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { ModelError } from "./errors.ts";

export async function acquirePullLock(lockPath: string, name: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, String(process.pid), { flag: "wx" });
      return () => rm(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number((await readFile(lockPath, "utf8").catch(() => "")).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new ModelError("busy", `Model ${name} is already being pulled by process ${owner}.`);
    }
    if (owner === process.pid) {
      throw new ModelError("busy", `Model ${name} is already being pulled by this process.`);
    }
    await rm(lockPath, { force: true }); // stale: its owner is gone
  }
  throw new ModelError("busy", `Could not lock ${lockPath}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}
