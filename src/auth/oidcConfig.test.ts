import assert from "node:assert/strict";
import { test } from "node:test";
import { authConfigSchema } from "./config.ts";

const corp = { id: "corp", name: "Corp", issuer: "https://login.corp.example/realms/staff", clientId: "sputnik" };

test("auth.oidcProviders: defaults, and what an issuer may be", () => {
  const config = authConfigSchema.parse({ oidcProviders: [corp] });
  assert.equal(config.passwordSignIn, true);
  assert.deepEqual(config.oidcProviders[0], { ...corp, scopes: ["openid", "email", "profile"], groupsClaim: "groups", linkByVerifiedEmail: false });
  assert.deepEqual(authConfigSchema.parse({}).oidcProviders, []);
  const bad = (provider: Record<string, unknown>) => assert.throws(() => authConfigSchema.parse({ oidcProviders: [{ ...corp, ...provider }] }));
  bad({ issuer: "http://login.corp.example" }); // plain http off loopback
  bad({ issuer: "https://login.corp.example/?x=1" });
  bad({ issuer: "https://user:pw@login.corp.example" });
  bad({ id: "Corp" });
  bad({ admin_groups: ["x"] }); // unknown keys are typos, not silence
  assert.doesNotThrow(() => authConfigSchema.parse({ oidcProviders: [{ ...corp, issuer: "http://127.0.0.1:8081" }] }));
  assert.throws(() => authConfigSchema.parse({ oidcProviders: [corp, { ...corp, name: "Again" }] }), /duplicate provider id/);
});
