import assert from "node:assert/strict";
import { test } from "node:test";
import { buildEmbedModel, EMBED_SHAPE } from "./embedModel.ts";

test("the embedding model is the same bytes on every build (seeded weights), and small", () => {
  const build = () => Buffer.concat([...buildEmbedModel("stamp").bytes()]);
  const a = build();
  assert.deepEqual(a, build());
  assert.ok(a.length < 1024 * 1024, `${a.length} bytes`);
  assert.notDeepEqual(a, Buffer.concat([...buildEmbedModel("other stamp").bytes()]), "the stamp is in the file");
  assert.equal(EMBED_SHAPE.heads * EMBED_SHAPE.headDim, EMBED_SHAPE.embedding);
});
