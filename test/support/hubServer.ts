/**
 * Test support: a real HTTP server on 127.0.0.1 that plays the Hugging Face Hub (the endpoints
 * pull.ts calls) and a plain file host, with switches for the failures a download must survive.
 */
import { createHash } from "node:crypto";
import http, { type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  path: string;
  headers: IncomingHttpHeaders;
}

export class FakeHub {
  /** Served bodies by URL path, e.g. "/user/repo/resolve/main/model.gguf" or "/files/x.gguf". */
  readonly files = new Map<string, Buffer>();
  /** File lists by "user/repo", answered at /api/models/user/repo. */
  readonly repos = new Map<string, string[]>();
  readonly requests: RecordedRequest[] = [];
  /** Answer every download with 200 and the whole file, whatever the Range header says. */
  ignoreRange = false;
  /** Honour Range even when If-Range names another version of the file (a broken server). */
  ignoreIfRange = false;
  /** Cut the connection of the next file response after this many body bytes. */
  cutNextAt: number | null = null;
  /** Send this many body bytes of the next file response, then stop sending (never end it). */
  stallNextAt: number | null = null;
  /** Answer /resolve/ paths with a 302 to the same path on this base URL (a "CDN"). */
  redirectBase: string | null = null;
  /** Answer every request with a redirect to itself (a loop). */
  redirectLoop = false;
  private server = http.createServer((req, res) => this.handle(req.url ?? "/", req.headers, res));
  baseUrl = "";

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.baseUrl;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Requests for a path, in order. */
  requestsFor(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  static etag(body: Buffer): string {
    return `"${createHash("sha256").update(body).digest("hex").slice(0, 32)}"`;
  }

  private handle(url: string, headers: IncomingHttpHeaders, res: ServerResponse): void {
    const path = decodeURI(url.split("?")[0]);
    this.requests.push({ path, headers });
    if (this.redirectLoop) {
      res.writeHead(302, { location: path }).end();
      return;
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)$/.exec(path);
    if (api) {
      const files = this.repos.get(api[1]);
      if (!files) return void res.writeHead(404, { "content-type": "application/json" }).end('{"error":"Repository not found"}');
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: api[1], sha: "0".repeat(40), siblings: files.map((rfilename) => ({ rfilename })) }));
      return;
    }
    if (this.redirectBase !== null && path.includes("/resolve/")) {
      res.writeHead(302, { location: this.redirectBase + path }).end();
      return;
    }
    const body = this.files.get(path);
    if (!body) return void res.writeHead(404).end("not found");
    this.serveFile(body, headers, res);
  }

  private serveFile(body: Buffer, headers: IncomingHttpHeaders, res: ServerResponse): void {
    const etag = FakeHub.etag(body);
    const common = { etag, "accept-ranges": "bytes", "content-type": "application/octet-stream" };
    const range = /^bytes=(\d+)-$/.exec(headers.range ?? "");
    const validatorMatches = this.ignoreIfRange || headers["if-range"] === undefined || headers["if-range"] === etag;
    let start = 0;
    if (range && !this.ignoreRange && validatorMatches) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { ...common, "content-range": `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { ...common, "content-length": body.length - start, "content-range": `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { ...common, "content-length": body.length });
    }
    const rest = body.subarray(start);
    if (this.cutNextAt !== null) {
      const cut = this.cutNextAt;
      this.cutNextAt = null;
      res.write(rest.subarray(0, cut), () => res.destroy());
      return;
    }
    if (this.stallNextAt !== null) {
      const stall = this.stallNextAt;
      this.stallNextAt = null;
      res.write(rest.subarray(0, stall));
      return;
    }
    res.end(rest);
  }
}
