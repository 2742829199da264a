import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { InvalidCursorError } from "../../auth/cursor.ts";
import { ApiError } from "../errors.ts";

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The `:id` of the URL, or null when it cannot be an id. Routes then look it up and let the policy
 * answer 404 for null and for other people's rows alike.
 */
export function idParam(request: FastifyRequest): string | null {
  const id = (request.params as { id?: unknown }).id;
  return typeof id === "string" && ID.test(id) ? id : null;
}

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
};

/** An ISO 8601 timestamp in the future, as milliseconds. */
export const futureTime = z.iso.datetime({ offset: true }).transform((text, ctx) => {
  const ms = Date.parse(text);
  if (ms <= Date.now()) {
    ctx.addIssue({ code: "custom", message: "must be in the future" });
    return z.NEVER;
  }
  return ms;
});

/** Runs a paged listing, turning a foreign cursor into a 400 on `cursor`. */
export async function paged<T>(list: () => Promise<T>): Promise<T> {
  try {
    return await list();
  } catch (error) {
    if (error instanceof InvalidCursorError) throw new ApiError(400, error.message, "invalid_parameter", "cursor");
    throw error;
  }
}

/** Expiry from either `expires_at` (ISO time) or `expires_in_days`; null for never. */
export function expiryOf(body: { expires_at?: number | null; expires_in_days?: number | null }, now: number = Date.now()): number | null {
  if (body.expires_at != null && body.expires_in_days != null) {
    throw new ApiError(400, "Send expires_at or expires_in_days, not both.", "invalid_parameter", "expires_at");
  }
  if (body.expires_at != null) return body.expires_at;
  if (body.expires_in_days != null) return now + body.expires_in_days * 86_400_000;
  return null;
}
