import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "./errors.ts";
import { markRoutesPublic } from "./middleware/auth/index.ts";

/** Where `npm run build:web` writes the web app. */
export const WEB_DIST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web/dist");

/** Paths that belong to the APIs: an unknown one is a JSON 404, never the app's HTML. */
const API_PREFIXES = ["/api/", "/v1/", "/anthropic/", "/health", "/livez", "/readyz", "/metrics"];

/**
 * Whether `url` names an API path in any spelling a client might use: any letter case (`/V1/models`),
 * percent-escapes (`/%761/`), repeated slashes. The router itself is case-sensitive, so such a path
 * matches no API route, and must not fall through to the web app's index.html either.
 */
export function isApiPath(url: string): boolean {
  let pathname = url.split("?")[0]!;
  try {
    pathname = decodeURIComponent(pathname);
  } catch {
    // A malformed escape: judge the raw text.
  }
  pathname = pathname.toLowerCase().replace(/\/{2,}/g, "/");
  return API_PREFIXES.some((p) => pathname === p.replace(/\/$/, "") || pathname.startsWith(p));
}

/**
 * Serves the built web app at `/`: hashed assets with long caching, compressed at build time, and
 * index.html for every other GET that is not an API path, so client-side routes (/c/:id, /settings…)
 * survive a reload.
 */
export async function registerWebApp(app: FastifyInstance, options: { distDir?: string } = {}): Promise<void> {
  const root = options.distDir ?? WEB_DIST_DIR;
  const indexFile = path.join(root, "index.html");
  if (!fs.existsSync(indexFile)) {
    app.log.warn({ root }, "the web app is not built (run `npm run build:web`); serving the API only");
    app.get("/", { config: { access: "public" } }, async (_request, reply) =>
      reply.type("text/plain; charset=utf-8").send("Sputnik's API is running. The web app is not built: run `npm run build:web`, then restart.\n"),
    );
    return;
  }

  // Its own scope: every route in it is public (signed-out visitors need the sign-in page).
  await app.register(async (scope) => {
    markRoutesPublic(scope);
    await scope.register(fastifyStatic, {
      root,
      // One route per built file, found at start: unknown paths fall through to the app's index.
      wildcard: false,
      index: false,
      // The build writes .br and .gz copies beside each text file (tools/precompress.ts): the one the
      // browser accepts is sent as it is (with Vary: Accept-Encoding); the copies are no routes themselves.
      preCompressed: true,
      globIgnore: ["**/*.br", "**/*.gz"],
      // Vite names files under assets/ by content hash: they never change. The rest (index.html) may.
      setHeaders(reply, file) {
        const hashed = file.startsWith(path.join(root, "assets") + path.sep);
        reply.header("cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
      },
    });
    const sendIndex = async (request: FastifyRequest, reply: FastifyReply) => {
      if (isApiPath(request.url)) {
        throw new ApiError(404, `No route for ${request.method} ${request.url.split("?")[0]}`, "route_not_found");
      }
      return reply.sendFile("index.html");
    };
    scope.get("/", sendIndex);
    scope.get("/*", sendIndex);
  });
}
