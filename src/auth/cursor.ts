import { sql, type RawBuilder } from "kysely";

/**
 * Opaque keyset-paging cursors over (created_at, id), newest first: a page's last row becomes the
 * next page's starting point, so paging stays exact while rows are added.
 */
export class InvalidCursorError extends Error {
  constructor() {
    super("The cursor is not valid: pass next_cursor from the previous page unchanged.");
    this.name = "InvalidCursorError";
  }
}

export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const match = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match) throw new InvalidCursorError();
  return { createdAt: Number(match[1]), id: match[2]! };
}

/** WHERE condition for the rows after `cursor` (table columns `created_at` and `id`). */
export function afterCursor(cursor: string): RawBuilder<boolean> {
  const c = decodeCursor(cursor);
  return sql<boolean>`(created_at < ${c.createdAt} or (created_at = ${c.createdAt} and id < ${c.id}))`;
}

/** Splits `limit + 1` fetched rows (ordered created_at desc, id desc) into a page and its cursor. */
export function toPage<T extends { created_at: number; id: string }>(rows: T[], limit: number): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null };
}
