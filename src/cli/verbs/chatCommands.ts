/**
 * The terminal chat's own commands, handled locally and never sent to the model. A line is a
 * command when its first word is a slash and letters (`/help`, `/bye`); text such as
 * `/usr/bin/env is…` is an ordinary message.
 */
export type ChatCommand = { kind: "help" } | { kind: "leave" } | { kind: "new" } | { kind: "unknown"; name: string };

export const CHAT_HELP = [
  "Commands:",
  "  /help, /?      this list",
  "  /new           start over: forget this conversation (the system prompt stays)",
  "  /bye, /quit    leave (Ctrl-D does too)",
  "Ctrl-C stops the answer being written.",
].join("\n");

export function parseChatCommand(line: string): ChatCommand | null {
  const match = /^\/([a-z?]+)(?:\s|$)/i.exec(line.trim());
  if (!match) return null;
  const name = match[1]!.toLowerCase();
  switch (name) {
    case "help":
    case "?":
      return { kind: "help" };
    case "bye":
    case "exit":
    case "quit":
      return { kind: "leave" };
    case "new":
    case "clear":
      return { kind: "new" };
    default:
      return { kind: "unknown", name: `/${name}` };
  }
}
