/**
 * A real OpenID provider for tests (`oidc-provider`, the certified OP library), in the test
 * process on its own loopback address, with its development login page (any login, any password:
 * the login typed becomes the `sub`) and consent granted automatically:
 *
 *   const idp = await startIdp("127.0.0.2");            // listening: idp.issuer is known
 *   … start Sputnik with idp.issuer …
 *   idp.configure({ clientId, clientSecret, redirectUri, accounts: { alice: { email: …, groups: [...] } } });
 *
 * `forgeKeys: true` makes it publish a key set that does not hold the key it signs ID tokens with
 * (same `kid`, other key), i.e. every ID token it issues is a forgery as far as its JWKS can tell.
 * `rewriteIdToken` changes the claims of each ID token its token endpoint returns and signs it again
 * with its real key: a validly signed token with, say, another audience or issuer.
 * Each provider gets its own address so that the providers' cookies (all on "/") never meet.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import Provider, { type KoaContextWithOIDC } from "oidc-provider";

export interface IdpClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** sub → claims the provider releases (email, email_verified, preferred_username, groups…). */
  accounts: Record<string, Record<string, unknown>>;
}

export interface TestIdp {
  issuer: string;
  configure(client: IdpClient): void;
  close(): Promise<void>;
}

const SCOPES = "openid email profile groups";

export interface IdpOptions {
  forgeKeys?: boolean;
  rewriteIdToken?: (claims: Record<string, unknown>) => Record<string, unknown>;
}

export async function startIdp(host: string, options: IdpOptions = {}): Promise<TestIdp> {
  const kid = "test-key";
  const signing = { ...newRsaJwk(), kid, alg: "RS256", use: "sig" };
  // The public half of another key, under the signing key's kid.
  const { kty, n, e } = newRsaJwk();
  const forged = { keys: [{ kty, n, e, kid, alg: "RS256", use: "sig" }] };
  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null = null;
  const server = http.createServer((req, res) => {
    if (options.forgeKeys && req.url?.split("?")[0] === "/jwks") {
      res.writeHead(200, { "content-type": "application/jwk-set+json" });
      res.end(JSON.stringify(forged));
      return;
    }
    if (!handler) {
      res.writeHead(503).end();
      return;
    }
    if (options.rewriteIdToken && req.method === "POST" && req.url?.split("?")[0] === "/token") rewriteTokenResponse(res, signing, options.rewriteIdToken);
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    configure(client) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: client.clientId,
            client_secret: client.clientSecret,
            redirect_uris: [client.redirectUri],
            grant_types: ["authorization_code"],
            response_types: ["code"],
            token_endpoint_auth_method: "client_secret_basic",
          },
        ],
        jwks: { keys: [signing] },
        cookies: { keys: [randomBytes(16).toString("hex")] },
        claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["preferred_username", "name"], groups: ["groups"] },
        async findAccount(_ctx: unknown, sub: string) {
          const claims = client.accounts[sub];
          if (!claims) return undefined;
          return { accountId: sub, claims: async () => ({ sub, ...claims }) };
        },
        // A first-party client: consent is given without a page, so the test drives only the login form.
        async loadExistingGrant(ctx: KoaContextWithOIDC) {
          const { oidc } = ctx;
          const clientId = oidc.client!.clientId;
          const grantId = oidc.result?.consent?.grantId ?? oidc.session?.grantIdFor(clientId);
          if (grantId) return oidc.provider.Grant.find(grantId);
          const grant = new oidc.provider.Grant({ accountId: oidc.session?.accountId, clientId });
          grant.addOIDCScope(SCOPES);
          grant.addOIDCClaims(["email", "email_verified", "preferred_username", "name", "groups"]);
          await grant.save();
          return grant;
        },
      });
      handler = provider.callback();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function newRsaJwk(): Record<string, string> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return privateKey.export({ format: "jwk" }) as Record<string, string>;
}

/**
 * Makes the token endpoint's answer carry an ID token with rewritten claims, signed again with the
 * provider's own key (the provider's library writes the whole JSON body in one `end`).
 */
function rewriteTokenResponse(res: http.ServerResponse, signing: Record<string, string>, rewrite: (claims: Record<string, unknown>) => Record<string, unknown>): void {
  const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => http.ServerResponse;
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (chunk === undefined || res.statusCode !== 200) return end(chunk, ...rest);
    const body = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk)) as { id_token?: string };
    if (body.id_token) {
      const [header, payload] = body.id_token.split(".");
      const claims = rewrite(JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as Record<string, unknown>);
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
      const signature = sign("sha256", Buffer.from(input), createPrivateKey({ key: signing, format: "jwk" })).toString("base64url");
      body.id_token = `${input}.${signature}`;
    }
    const text = JSON.stringify(body);
    if (!res.headersSent) res.setHeader("content-length", Buffer.byteLength(text));
    return end(text);
  }) as typeof res.end;
}
