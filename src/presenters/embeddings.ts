/**
 * /v1/embeddings answers in OpenAI's shape. `base64` is what OpenAI sends for it: the vector's
 * float32 values, little-endian, base64-encoded (the official SDKs ask for it by default and decode
 * it themselves).
 */
export function presentEmbeddings(input: { model: string; data: number[][]; promptTokens: number; encoding: "float" | "base64" }) {
  return {
    object: "list" as const,
    data: input.data.map((vector, index) => ({
      object: "embedding" as const,
      index,
      embedding: input.encoding === "base64" ? float32Base64(vector) : vector,
    })),
    model: input.model,
    usage: { prompt_tokens: input.promptTokens, total_tokens: input.promptTokens },
  };
}

/** The vector as little-endian float32 bytes, base64-encoded. */
export function float32Base64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes.toString("base64");
}
