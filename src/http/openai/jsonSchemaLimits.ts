/**
 * Bounds on `response_format.json_schema.schema`. A schema becomes a llama.cpp grammar, and the
 * grammar's cost is not its byte size: llama.cpp expands every alternative that can start at one
 * position into its own parse stack and de-duplicates those stacks pairwise, so a schema that is
 * one 80,000-value enum (692 KiB, well under the body limit) took ~30 s of main-thread CPU to
 * create and slows every sampled token. The limits follow OpenAI's own structured-output limits
 * (at most 1000 enum values, 5000 properties, 10 levels of schema nesting), so real schemas pass.
 */
export const JSON_SCHEMA_LIMITS = {
  /** The schema serialized as JSON, UTF-8 bytes. */
  maxBytes: 256 * 1024,
  /** Nesting of JSON objects and arrays (one schema level is about two: `properties` → name → schema). */
  maxDepth: 32,
  /** Enum values plus oneOf/anyOf branches, summed over the whole schema. */
  maxAlternatives: 1000,
  /** Keys under `properties`, summed over the whole schema. */
  maxProperties: 5000,
  /** Any one key or string value in the schema. */
  maxStringChars: 8192,
} as const;

/**
 * Why `schema` is over JSON_SCHEMA_LIMITS, or null. Iterative (a deeply nested schema must not
 * overflow the stack) and it stops descending at the depth bound, so its cost is linear in the
 * body, which the body limit bounds.
 */
export function jsonSchemaLimitProblem(schema: unknown, limits = JSON_SCHEMA_LIMITS): string | null {
  let alternatives = 0;
  let properties = 0;
  const pending: Array<{ value: unknown; depth: number }> = [{ value: schema, depth: 1 }];
  while (pending.length > 0) {
    const { value, depth } = pending.pop()!;
    if (typeof value === "string") {
      if (value.length > limits.maxStringChars) return `a string in the schema has ${value.length} characters; at most ${limits.maxStringChars} are accepted`;
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (depth > limits.maxDepth) return `the schema is nested more than ${limits.maxDepth} levels deep`;
    if (Array.isArray(value)) {
      for (const item of value) pending.push({ value: item, depth: depth + 1 });
      continue;
    }
    for (const [key, child] of Object.entries(value)) {
      if (key.length > limits.maxStringChars) return `a key in the schema has ${key.length} characters; at most ${limits.maxStringChars} are accepted`;
      // Counted wherever the keyword appears (a property that happens to be named "enum" holds an
      // object, not an array, so it is not miscounted); over-counting only errs on the safe side.
      if ((key === "enum" || key === "oneOf" || key === "anyOf") && Array.isArray(child)) alternatives += child.length;
      if (key === "properties" && child !== null && typeof child === "object" && !Array.isArray(child)) properties += Object.keys(child).length;
      if (alternatives > limits.maxAlternatives) {
        return `the schema has more than ${limits.maxAlternatives} enum values and oneOf/anyOf branches in all; at most ${limits.maxAlternatives} are accepted`;
      }
      if (properties > limits.maxProperties) return `the schema has more than ${limits.maxProperties} properties in all; at most ${limits.maxProperties} are accepted`;
      pending.push({ value: child, depth: depth + 1 });
    }
  }
  // Safe now: the depth bound keeps JSON.stringify's recursion shallow.
  const bytes = Buffer.byteLength(JSON.stringify(schema), "utf8");
  if (bytes > limits.maxBytes) return `the schema is ${bytes} bytes as JSON; at most ${limits.maxBytes} are accepted`;
  return null;
}
