import type { UploadedFile } from "../api/files.ts";

/**
 * Files handed from the Documents page to the chat ("Use in chat"). The two are separate routes
 * (the chat is not mounted while the library shows), so the hand-off is a small module-level queue
 * the chat's composer takes from when it mounts, plus the chat last open, to go back to it.
 */
let offered: UploadedFile[] = [];
let lastConversation: string | null = null;

/** Queues `file` for the next composer and returns where the chat is: the conversation last open, or a new chat. */
export function offerToChat(file: UploadedFile): string {
  offered = [...offered.filter((f) => f.id !== file.id), file];
  return lastConversation ? `/c/${encodeURIComponent(lastConversation)}` : "/";
}

/** What was offered since the last take (each file once). */
export function takeOffered(): UploadedFile[] {
  const taken = offered;
  offered = [];
  return taken;
}

/** The chat says which conversation it shows (null: a new chat). */
export function rememberConversation(id: string | null): void {
  lastConversation = id;
}
