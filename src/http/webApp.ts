import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { markRoutesPublic } from "../auth/requestAuth.ts";
import { ApiError } from "./errors.ts";

/** Where `npm run build:web` writes the web app. */
export const WEB_DIST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web/dist");

/** Paths that belong to the APIs: an unknown one is a JSON 404, never the app's HTML. */
const API_PREFIXES = ["/api/", "/v1/", "/health", "/metrics"];

/**
 * Serves the built web app at `/`: hashed assets with long caching, and index.html for every other
 * GET that is not an API path, so client-side routes (/c/:id, /settings…) survive a reload.
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
      // Vite names files under assets/ by content hash: they never change. The rest (index.html) may.
      setHeaders(reply, file) {
        const hashed = file.startsWith(path.join(root, "assets") + path.sep);
        reply.header("cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
      },
    });
    const sendIndex = async (request: FastifyRequest, reply: FastifyReply) => {
      const pathname = request.url.split("?")[0]!;
      if (API_PREFIXES.some((p) => pathname === p.replace(/\/$/, "") || pathname.startsWith(p))) {
        throw new ApiError(404, `No route for GET ${pathname}`, "route_not_found");
      }
      return reply.sendFile("index.html");
    };
    scope.get("/", sendIndex);
    scope.get("/*", sendIndex);
  });
}
