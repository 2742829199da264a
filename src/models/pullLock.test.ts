import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ModelError } from "./errors.ts";
import { acquirePullLock } from "./pullLock.ts";

test("one pull per model at a time; a dead owner's lock is taken over", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sputnik-lock-"));
  const lock = join(dir, "m.gguf.partial.lock");
  try {
    const release = await acquirePullLock(lock, "m");
    assert.equal(await readFile(lock, "utf8"), String(process.pid));
    await assert.rejects(acquirePullLock(lock, "m"), (e: unknown) => e instanceof ModelError && e.code === "busy");
    await release();
    await assert.rejects(stat(lock), { code: "ENOENT" });

    // The pid of a process that has exited: its lock is stale.
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    await writeFile(lock, dead);
    const again = await acquirePullLock(lock, "m");
    assert.equal(await readFile(lock, "utf8"), String(process.pid));
    await again();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
