/**
 * Documents through the real service (issue 15): OpenAI's Files API on /v1 with the official SDK,
 * and the web app's /api/files, on SQLite (the commands' policy and quota checks also run on
 * PostgreSQL: src/commands/files.test.ts). Files are generated here: a PDF made with pdf-lib is
 * uploaded, indexed in the background and reaches `processed` with chunks.
 *
 *   alice, bob  plan "docs" (features: documents)
 *   carol       the default plan (no documents): 403
 *   dave        plan "tiny": documents with a 3,000-byte storage quota: 429
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import OpenAI, { toFile } from "openai";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { savePlan, type Plan } from "../src/billing/plans.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

const MAX_FILE_BYTES = 256 * 1024;
const DOCS: Plan = { id: "docs", name: "Docs", billed: false, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: ["documents"] };

let service: TestService;
const users: Record<string, { app: AppClient; api: OpenAI }> = {};

before(async () => {
  service = await startTestService({
    models: ["scripted"],
    config: { auth: { passwordHashing: TEST_PASSWORD_HASHING }, documents: { maxFileBytes: MAX_FILE_BYTES, indexConcurrency: 1 } },
  });
  await savePlan(service.store.db, DOCS);
  await savePlan(service.store.db, { ...DOCS, id: "tiny", name: "Tiny", storedBytesQuota: 3_000 });
  for (const [name, plan] of [["alice", "docs"], ["bob", "docs"], ["carol", null], ["dave", "tiny"]] as const) {
    const app = new AppClient(service.url);
    assert.equal((await app.post("/api/auth/signup", { username: name, password: TEST_PASSWORD })).status, 201);
    if (plan) await service.store.db.updateTable("users").set({ plan_id: plan }).where("username", "=", name).execute();
    const key = await app.post("/api/keys", { name: "tests" });
    users[name] = { app, api: new OpenAI({ baseURL: `${service.url}/v1`, apiKey: key.body.key as string, maxRetries: 0 }) };
  }
});
after(() => service?.stop());

const user = (name: string) => users[name]!;

async function pdfWith(lines: string[]): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  const page = pdf.addPage([600, 800]);
  lines.forEach((line, i) => page.drawText(line, { x: 40, y: 760 - i * 18, size: 12, font }));
  return pdf.save();
}

async function upload(name: string, bytes: Uint8Array | string, filename: string) {
  return user(name).api.files.create({ file: await toFile(typeof bytes === "string" ? Buffer.from(bytes) : bytes, filename), purpose: "assistants" });
}

/** Polls the app API until indexing has ended (the background job is not awaited by the upload). */
async function settled(name: string, id: string) {
  for (let i = 0; i < 600; i++) {
    const res = await user(name).app.get(`/api/files/${id}`);
    assert.equal(res.status, 200);
    if (res.body.status !== "processing") return res.body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`file ${id} is still processing`);
}

async function status(promise: Promise<unknown>): Promise<{ status: number | undefined; code: string | undefined; message: string }> {
  try {
    await promise;
    return { status: 200, code: undefined, message: "" };
  } catch (error) {
    const e = error as { status?: number; code?: string; error?: { code?: string }; message: string };
    return { status: e.status, code: e.code ?? e.error?.code, message: e.message };
  }
}

describe("/v1/files with the OpenAI SDK", () => {
  test("a PDF is uploaded, indexed in the background, listed, downloaded as an attachment and deleted", async () => {
    const bytes = await pdfWith(["Orbital mechanics notes", "Sputnik 1 was launched on 4 October 1957.", "It transmitted radio pulses for three weeks."]);
    const created = await upload("alice", bytes, "notes.pdf");
    assert.match(created.id, /^file-/);
    assert.equal(created.object, "file");
    assert.equal(created.bytes, bytes.byteLength);
    assert.equal(created.filename, "notes.pdf");
    assert.equal(created.purpose, "assistants");
    assert.ok(Math.abs(created.created_at - Date.now() / 1000) < 120, "created_at in seconds");

    const app = await settled("alice", created.id);
    assert.equal(app.status, "processed", JSON.stringify(app));
    assert.equal(app.mime, "application/pdf");
    assert.ok(app.chunks_total >= 1 && app.chunks_indexed === app.chunks_total, JSON.stringify(app));
    const chunks = await service.store.db.selectFrom("file_chunks").select("text").where("file_id", "=", created.id).execute();
    assert.match(chunks.map((c) => c.text).join("\n"), /launched on 4 October 1957/);

    const retrieved = await user("alice").api.files.retrieve(created.id);
    assert.equal(retrieved.status, "processed");
    assert.ok((await user("alice").api.files.list()).data.some((f) => f.id === created.id));

    const content = await user("alice").api.files.content(created.id);
    assert.deepEqual(new Uint8Array(await content.arrayBuffer()), bytes);
    assert.equal(content.headers.get("content-type"), "application/octet-stream");
    assert.equal(content.headers.get("x-content-type-options"), "nosniff");
    assert.match(content.headers.get("content-disposition") ?? "", /^attachment; filename="notes\.pdf"; filename\*=UTF-8''notes\.pdf$/);

    assert.deepEqual(await user("alice").api.files.delete(created.id), { id: created.id, object: "file", deleted: true });
    assert.equal((await status(user("alice").api.files.retrieve(created.id))).status, 404);
  });

  test("another user's file is 404 on retrieve, content and delete, and stays the owner's", async () => {
    const mine = await upload("alice", "Alice's private notes about telemetry.", "private.txt");
    for (const attempt of [user("bob").api.files.retrieve(mine.id), user("bob").api.files.content(mine.id), user("bob").api.files.delete(mine.id)]) {
      const refused = await status(attempt);
      assert.equal(refused.status, 404, refused.message);
    }
    assert.equal((await status(user("bob").api.files.retrieve("file-does-not-exist"))).status, 404, "the same answer as for a missing id");
    assert.ok(!(await user("bob").api.files.list()).data.some((f) => f.id === mine.id));
    for (const path of [`/api/files/${mine.id}`, `/api/files/${mine.id}/content`]) assert.equal((await user("bob").app.get(path)).status, 404);
    assert.equal((await user("bob").app.delete(`/api/files/${mine.id}`)).status, 404);
    assert.equal((await user("alice").api.files.retrieve(mine.id)).id, mine.id);
  });

  test("a plan without documents gets 403 feature_not_allowed", async () => {
    const refused = await status(upload("carol", "hello", "hello.txt"));
    assert.equal(refused.status, 403);
    assert.equal(refused.code, "feature_not_allowed");
    assert.match(refused.message, /does not include documents/);
  });

  test("the plan's storage quota answers 429 with what to delete", async () => {
    await upload("dave", "x".repeat(2_000), "first.txt");
    const refused = await status(upload("dave", "y".repeat(2_000), "second.txt"));
    assert.equal(refused.status, 429);
    assert.equal(refused.code, "quota_exceeded");
    assert.match(refused.message, /storage quota/);
    assert.match(refused.message, /Delete files you no longer need/);
    assert.equal((await user("dave").api.files.list()).data.length, 1);
  });

  test("an oversized upload is 413 (declared or streamed) and the server stays healthy", async () => {
    const declared = await status(upload("alice", "z".repeat(MAX_FILE_BYTES + 100_000), "big.txt"));
    assert.equal(declared.status, 413);
    assert.equal(declared.code, "file_too_large");

    // No Content-Length (chunked): the bound is enforced while the body streams in.
    const streamed = await chunkedUpload(user("alice").api, "/v1/files", MAX_FILE_BYTES * 4);
    assert.equal(streamed.status, 413, streamed.text);
    assert.equal(JSON.parse(streamed.text).error.code, "file_too_large");
    assert.equal(streamed.headers.connection, "close", "the rest of the upload is not read");

    assert.equal((await fetch(`${service.url}/health`)).status, 200);
    const small = await upload("alice", "Still accepting files.", "small.txt");
    assert.equal((await settled("alice", small.id)).status, "processed");
  });

  test("names like ../../x, CON.txt, control characters and 1,000 characters are labels only", async () => {
    const names = ["../../x", "CON.txt", "a\u0000b\r\nc\u202e.txt", `${"n".repeat(1_000)}.txt`, '"; filename=evil.html'];
    for (const name of names) {
      const file = await upload("alice", `content of ${JSON.stringify(name)}`, name);
      assert.ok(file.filename.length <= 255, "trimmed for display");
      assert.ok(!/[\u0000-\u001f\u202e]/.test(file.filename), `no control characters: ${JSON.stringify(file.filename)}`);
      const content = await user("alice").api.files.content(file.id);
      assert.equal(await content.text(), `content of ${JSON.stringify(name)}`);
      const disposition = content.headers.get("content-disposition") ?? "";
      assert.match(disposition, /^attachment; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9%._~!-]+$/, disposition);
      assert.ok(!disposition.includes("/") && !disposition.includes("\\"), disposition);
    }
    // busboy keeps the last path segment of a multipart filename; either way it is only a label.
    const traversal = (await user("alice").api.files.list()).data.find((f) => f.filename === "../../x" || f.filename === "x");
    assert.ok(traversal, "stored under its own id");
    const download = await user("alice").api.files.content(traversal.id);
    assert.match(download.headers.get("content-disposition") ?? "", /filename="x"/);
  });
});

describe("/api/files (the web app)", () => {
  test("upload, progress, list, content and delete in the app's shape", async () => {
    const alice = user("alice").app;
    const form = new FormData();
    form.append("file", new Blob(["# Launch\n\nThe rocket lifted off at dawn.\n\n## Orbit\n\nIt circled the Earth every 96 minutes.\n"]), "launch.md");
    const csrf = alice.cookies.get("sputnik_csrf")!;
    const res = await fetch(`${service.url}/api/files`, {
      method: "POST",
      body: form,
      headers: { cookie: [...alice.cookies].map(([k, v]) => `${k}=${v}`).join("; "), "x-sputnik-csrf": csrf },
    });
    assert.equal(res.status, 201, await res.clone().text());
    const created = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(created).sort(), ["bytes", "chunks_indexed", "chunks_total", "created_at", "error", "filename", "id", "mime", "status"]);
    assert.equal(created.mime, "text/markdown");
    const done = await settled("alice", created.id as string);
    assert.equal(done.status, "processed");
    assert.ok(done.chunks_total >= 1);
    assert.ok((await alice.get("/api/files")).body.data.some((f: { id: string }) => f.id === created.id));
    const content = await alice.get(`/api/files/${created.id}/content`);
    assert.equal(content.headers["x-content-type-options"], "nosniff");
    assert.equal(content.headers["content-type"], "application/octet-stream");
    assert.match(String(content.headers["content-disposition"]), /^attachment;/);
    assert.equal((await alice.delete(`/api/files/${created.id}`)).status, 204);
    assert.equal((await alice.get(`/api/files/${created.id}`)).status, 404);
  });

  test("an HTML upload is served back as an opaque attachment, never as a page", async () => {
    const file = await upload("alice", "<!doctype html><html><body><script>alert(1)</script><p>Hi</p></body></html>", "page.html");
    const content = await user("alice").app.get(`/api/files/${file.id}/content`);
    assert.equal(content.headers["content-type"], "application/octet-stream");
    assert.match(String(content.headers["content-security-policy"]), /sandbox/);
  });
});

/** A multipart upload with no Content-Length, streamed until the server answers. */
function chunkedUpload(api: OpenAI, path: string, fileBytes: number): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
  const url = new URL(service.url);
  const boundary = "----sputnik-test-boundary";
  const auth = { authorization: `Bearer ${api.apiKey}` };
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      { host: url.hostname, port: url.port, method: "POST", path, headers: { ...auth, "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" }, agent: false },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`);
    const piece = Buffer.alloc(16 * 1024, "a");
    let sent = 0;
    const pump = () => {
      while (!answered && sent < fileBytes) {
        sent += piece.length;
        if (!req.write(piece)) return void req.once("drain", pump);
      }
      if (!answered) req.end(`\r\n--${boundary}--\r\n`);
    };
    pump();
  });
}
