import { sql, type Kysely, type Selectable, type Updateable } from "kysely";
import { titleFromExchange } from "./conversationTitle.ts";
import { EMPTY_ANSWER } from "./emptyAnswer.ts";
import { newId } from "../store/ids.ts";
import type { ConversationTable, Database, MessageRole, MessageStatus, MessageTable } from "../store/schema.ts";

/**
 * Conversations and their messages in the store. Plain data access: who may touch what is decided by
 * src/policies/conversations.ts before any of these run.
 */

export type Conversation = Selectable<ConversationTable>;
export type Message = Selectable<MessageTable>;

export const MAX_PAGE_SIZE = 200;

export async function createConversation(
  db: Kysely<Database>,
  input: { userId: string; title?: string | null; model?: string | null; now?: number },
): Promise<Conversation> {
  const now = input.now ?? Date.now();
  const row: Conversation = {
    id: newId(now),
    user_id: input.userId,
    title: input.title ?? null,
    model: input.model ?? null,
    current_message_id: null,
    created_at: now,
    updated_at: now,
    settings: null,
    pinned_at: null,
  };
  await db.insertInto("conversations").values(row).execute();
  return row;
}

export async function findConversation(db: Kysely<Database>, id: string): Promise<Conversation | undefined> {
  return db.selectFrom("conversations").selectAll().where("id", "=", id).executeTakeFirst();
}

export interface ConversationPage {
  items: Conversation[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** Conversations one user may pin: the first page carries all of them. */
export const MAX_PINNED = 50;

/**
 * One user's conversations, most recently active first, optionally filtered by a case-insensitive
 * substring of the title. Keyset-paged on (updated_at, id). Without a search, pinned conversations
 * come first, all of them on the first page (most recently pinned first, beside `limit` others),
 * and the pages page through the others.
 */
export async function listConversations(
  db: Kysely<Database>,
  opts: { userId: string; search?: string; limit: number; cursor?: string },
): Promise<ConversationPage> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_PAGE_SIZE) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  let q = db.selectFrom("conversations").selectAll().where("user_id", "=", opts.userId);
  const search = opts.search?.trim();
  if (search) {
    // lower() on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's only folds ASCII.
    const pattern = `%${search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where(sql<boolean>`lower(coalesce(title, '')) like ${pattern} escape '\\'`);
  }
  const cursor = opts.cursor ? decodeCursor(opts.cursor) : undefined;
  if (cursor) {
    q = q.where((eb) =>
      eb.or([eb("updated_at", "<", cursor.updatedAt), eb.and([eb("updated_at", "=", cursor.updatedAt), eb("id", "<", cursor.id)])]),
    );
  }
  // Pins live apart from the keyset: they would otherwise reorder every page under its cursor.
  const pinned =
    search || cursor
      ? []
      : await db.selectFrom("conversations").selectAll().where("user_id", "=", opts.userId).where("pinned_at", "is not", null).orderBy("pinned_at", "desc").orderBy("id", "desc").limit(MAX_PINNED).execute();
  if (!search) q = q.where("pinned_at", "is", null);
  const rows = await q.orderBy("updated_at", "desc").orderBy("id", "desc").limit(opts.limit + 1).execute();
  const items = rows.slice(0, opts.limit);
  const last = items.at(-1);
  return { items: [...pinned, ...items], nextCursor: rows.length > opts.limit && last ? encodeCursor(last) : null };
}

function encodeCursor(row: Conversation): string {
  return Buffer.from(`${row.updated_at}:${row.id}`).toString("base64url");
}

export class InvalidCursorError extends Error {}

function decodeCursor(cursor: string): { updatedAt: number; id: string } {
  const match = /^(\d{1,16}):(.{1,64})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match) throw new InvalidCursorError("cursor is not one this server handed out");
  return { updatedAt: Number(match[1]), id: match[2]! };
}

export async function updateConversation(
  db: Kysely<Database>,
  id: string,
  patch: Pick<Updateable<ConversationTable>, "title" | "model" | "current_message_id" | "updated_at" | "settings" | "pinned_at">,
): Promise<void> {
  if (Object.keys(patch).length === 0) return;
  await db.updateTable("conversations").set(patch).where("id", "=", id).execute();
}

/** Deletes a conversation; its messages go with it (ON DELETE CASCADE). */
export async function deleteConversation(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom("conversations").where("id", "=", id).execute();
}

export async function listMessages(db: Kysely<Database>, conversationId: string): Promise<Message[]> {
  return db
    .selectFrom("messages")
    .selectAll()
    .where("conversation_id", "=", conversationId)
    .orderBy("created_at")
    .orderBy("id")
    .execute();
}

export async function findMessage(db: Kysely<Database>, id: string): Promise<Message | undefined> {
  return db.selectFrom("messages").selectAll().where("id", "=", id).executeTakeFirst();
}

export interface NewMessage {
  conversationId: string;
  parentId: string | null;
  role: MessageRole;
  content?: string;
  model?: string | null;
  thinking?: boolean;
  status: MessageStatus;
  now?: number;
}

export async function insertMessage(db: Kysely<Database>, input: NewMessage): Promise<Message> {
  const now = input.now ?? Date.now();
  const row: Message = {
    id: newId(now),
    conversation_id: input.conversationId,
    parent_id: input.parentId,
    role: input.role,
    ...EMPTY_ANSWER,
    content: input.content ?? "",
    model: input.model ?? null,
    thinking: input.thinking === false ? 0 : 1,
    status: input.status,
    created_at: now,
    updated_at: now,
    moderation: null,
    sources: null,
  };
  await db.insertInto("messages").values(row).execute();
  return row;
}

export type MessagePatch = Omit<Updateable<MessageTable>, "id" | "conversation_id" | "parent_id" | "role" | "created_at">;

export async function updateMessage(db: Kysely<Database>, id: string, patch: MessagePatch): Promise<void> {
  await db
    .updateTable("messages")
    .set({ ...patch, updated_at: patch.updated_at ?? Date.now() })
    .where("id", "=", id)
    .execute();
}

/**
 * Marks messages still `streaming` whose last write is older than `staleBefore` as `interrupted`:
 * their generation died with a process. The partial text stays. Returns how many were marked.
 */
export async function markInterrupted(db: Kysely<Database>, staleBefore: number): Promise<number> {
  const result = await db
    .updateTable("messages")
    .set({ status: "interrupted", error: "The server stopped while this answer was being written." })
    .where("status", "=", "streaming")
    .where("updated_at", "<", staleBefore)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Gives untitled conversations whose first answer was interrupted (a crash, a shutdown) the title
 * their first exchange would have given them. Returns how many were titled.
 */
export async function titleInterrupted(db: Kysely<Database>, limit = 500): Promise<number> {
  const rows = await db
    .selectFrom("messages as a")
    .innerJoin("messages as q", "q.id", "a.parent_id")
    .innerJoin("conversations as c", "c.id", "a.conversation_id")
    .select(["c.id as conversationId", "q.content as question", "a.content as answer"])
    .where("a.status", "=", "interrupted")
    .where("q.parent_id", "is", null)
    .where("c.title", "is", null)
    .limit(limit)
    .execute();
  for (const row of rows) {
    await db
      .updateTable("conversations")
      .set({ title: titleFromExchange(row.question, row.answer) })
      .where("id", "=", row.conversationId)
      .where("title", "is", null)
      .execute();
  }
  return rows.length;
}
