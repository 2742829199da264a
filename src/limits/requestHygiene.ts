import { ServiceError } from "../errors.ts";

export type HygieneRejection = "too_many_messages" | "message_too_long";

/**
 * Bounds on one chat request beyond the body size (Fastify's bodyLimit): how many messages, and
 * how long each may be. The schema has hard upper bounds; these are the operator's, usually lower.
 */
/**
 * The same per-message bound on a raw completion's texts (/v1/completions `prompt` and `suffix`),
 * naming the parameter over it.
 */
export function checkCompletionTexts(
  texts: { prompt: string; suffix?: string },
  limits: { maxMessageChars: number },
  onRejected: (reason: HygieneRejection) => void = () => undefined,
): void {
  for (const param of ["prompt", "suffix"] as const) {
    const length = texts[param]?.length ?? 0;
    if (length > limits.maxMessageChars) {
      onRejected("message_too_long");
      throw new ServiceError("invalid_request", `${param} is ${length} characters long; the limit is ${limits.maxMessageChars}.`, { code: "message_too_long", param });
    }
  }
}

export function checkMessages(
  messages: ReadonlyArray<{ content?: string | null }>,
  limits: { maxMessages: number; maxMessageChars: number },
  onRejected: (reason: HygieneRejection) => void = () => undefined,
): void {
  if (messages.length > limits.maxMessages) {
    onRejected("too_many_messages");
    throw new ServiceError("invalid_request", `Too many messages: ${messages.length}, the limit is ${limits.maxMessages}.`, { code: "too_many_messages", param: "messages" });
  }
  messages.forEach((message, index) => {
    const length = message.content?.length ?? 0;
    if (length > limits.maxMessageChars) {
      onRejected("message_too_long");
      throw new ServiceError("invalid_request", `Message ${index} is ${length} characters long; the limit is ${limits.maxMessageChars}.`, {
        code: "message_too_long",
        param: `messages[${index}].content`,
      });
    }
  });
}
