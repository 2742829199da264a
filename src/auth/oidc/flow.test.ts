import assert from "node:assert/strict";
import { test } from "node:test";
import { openFlow, sealFlow, SSO_FLOW_TTL_MS, type SsoFlow } from "./flow.ts";

const secret = "service-secret-for-tests";
const now = 1_700_000_000_000;
const flow: SsoFlow = {
  providerId: "corp",
  state: "state-1",
  nonce: "nonce-1",
  codeVerifier: "verifier-1",
  redirectUri: "https://chat.example.com/api/auth/sso/corp/callback",
  expiresAt: now + SSO_FLOW_TTL_MS,
};

test("a sealed flow opens only unaltered, with the right secret, before it expires", () => {
  const sealed = sealFlow(secret, flow);
  assert.deepEqual(openFlow(secret, sealed, now), flow);
  assert.equal(openFlow("another-secret", sealed, now), null);
  assert.equal(openFlow(secret, sealed, flow.expiresAt), null, "expired");
  assert.equal(openFlow(secret, undefined, now), null);
  assert.equal(openFlow(secret, "garbage", now), null);
  // The browser holds the cookie: a changed state (or provider, or redirect URI) breaks the seal.
  const [payload, mac] = sealed.split(".");
  const data = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8"));
  const altered = Buffer.from(JSON.stringify({ ...data, s: "attacker-state" }), "utf8").toString("base64url");
  assert.equal(openFlow(secret, `${altered}.${mac}`, now), null);
});
