/**
 * A small HTTP site on loopback for web search tests: routes by path, counts hits per path, and
 * closes every connection on stop (routes that never finish a body included).
 *
 *   const site = await startLocalSite({ "/a": (req, res) => res.end("…") });
 *   t.after(() => site.stop());
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export interface LocalSite {
  /** http://127.0.0.1:port (or http://[::1]… style for other hosts) */
  origin: string;
  port: number;
  hits: Map<string, number>;
  /** Every request path seen, in order. */
  requests: string[];
  stop(): Promise<void>;
}

/** `host` "::" listens on every address of both families (a catch-all for SSRF probes). */
export async function startLocalSite(routes: Record<string, Route>, host = "127.0.0.1"): Promise<LocalSite> {
  const hits = new Map<string, number>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://local.test");
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    requests.push(url.pathname);
    const route = routes[url.pathname];
    if (!route) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    route(req, res, url);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host === "::" ? "127.0.0.1" : host}:${port}`,
    port,
    hits,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An article page wrapped in the furniture real sites have: a menu, a header, a sidebar, a footer. */
export function pageWithNavigation(title: string, paragraphs: string[]): string {
  const nav = `<nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/products">Products</a></li><li><a href="/login">Login</a></li><li><a href="/cart">Shopping cart</a></li></ul></nav>`;
  return `<!doctype html><html><head><title>${title}</title><script>window.tracking = "analytics-snippet";</script><style>.menu{color:red}</style></head>
<body>
<header><div class="logo">ACME Corporation</div>${nav}</header>
<aside class="sidebar"><h3>Related</h3><ul><li><a href="/x">Ten tricks you will not believe</a></li><li><a href="/y">Subscribe to our newsletter</a></li></ul></aside>
<main><article><h1>${title}</h1>${paragraphs.map((p) => `<p>${p}</p>`).join("\n")}</article></main>
<footer><p>Copyright 2026 ACME Corporation. All rights reserved. Privacy policy. Terms of use.</p>${nav}</footer>
</body></html>`;
}
