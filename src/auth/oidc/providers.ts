/**
 * The configured OpenID Connect providers, and the two halves of a sign-in with one of them
 * (openid-client does the protocol):
 *
 * - `begin`: discovers the provider (once, then cached), makes a fresh state, nonce and PKCE
 *   verifier (S256), and the authorization URL to send the browser to;
 * - `finish`: checks the returned state against the one kept for this browser, exchanges the code
 *   (with the verifier), and has openid-client validate the ID token: signature against the
 *   provider's JWKS (`enableNonRepudiationChecks`; by default openid-client trusts TLS alone for
 *   tokens from the token endpoint), `iss` equal to the configured issuer (discovery refuses a
 *   document naming another one), `aud`/`azp` equal to our client id, the nonce, and expiry.
 *   Claims the ID token lacks (e-mail, groups: many providers send them from userinfo only) come
 *   from the userinfo endpoint, whose `sub` must match the ID token's.
 *
 * Errors are ServiceErrors whose codes the sign-in page explains (`sso_*`).
 */
import * as client from "openid-client";
import { ServiceError } from "../../errors.ts";
import type { OidcProviderConfig } from "../oidcConfig.ts";
import { safeEqual } from "../secrets.ts";
import { guardedOidcFetch } from "./egress.ts";
import { SSO_FLOW_TTL_MS, type SsoFlow } from "./flow.ts";

/** Who the provider says signed in, reduced to what Sputnik uses. */
export interface SsoIdentity {
  providerId: string;
  issuer: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  preferredUsername: string | null;
  name: string | null;
  /** The groups claim; null when the provider sent none at all (then group mappings are left alone). */
  groups: string[] | null;
}

export interface SsoProvidersOptions {
  /** Whether URLs the provider names (not the issuer itself) may be private addresses. */
  allowPrivateNetwork: boolean;
  /** The address users reach Sputnik at: the redirect URI is built on it when set. */
  publicUrl?: string | undefined;
  /** Per request to the provider, in seconds. */
  timeoutS?: number;
}

export class SsoProviders {
  private readonly byId: Map<string, OidcProviderConfig>;
  private readonly discovered = new Map<string, Promise<client.Configuration>>();

  constructor(
    providers: readonly OidcProviderConfig[],
    private readonly options: SsoProvidersOptions,
  ) {
    this.byId = new Map(providers.map((p) => [p.id, p]));
  }

  /** What the sign-in page shows: one button per provider. */
  list(): { id: string; name: string }[] {
    return [...this.byId.values()].map((p) => ({ id: p.id, name: p.name }));
  }

  get(id: string): OidcProviderConfig | undefined {
    return this.byId.get(id);
  }

  /**
   * The callback URL registered at the provider: on `publicUrl` when configured, else on the
   * origin the browser used (the provider compares it with its registered list, so a forged Host
   * header only gets the sign-in refused there).
   */
  redirectUri(providerId: string, requestOrigin: string): string {
    const base = (this.options.publicUrl ?? requestOrigin).replace(/\/+$/, "");
    return `${base}/api/auth/sso/${encodeURIComponent(providerId)}/callback`;
  }

  async begin(providerId: string, redirectUri: string, now: number = Date.now()): Promise<{ url: URL; flow: SsoFlow }> {
    const provider = this.require(providerId);
    const config = await this.configuration(provider);
    const codeVerifier = client.randomPKCECodeVerifier();
    const flow: SsoFlow = {
      providerId,
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier,
      redirectUri,
      expiresAt: now + SSO_FLOW_TTL_MS,
    };
    const scopes = new Set(["openid", ...provider.scopes]);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: [...scopes].join(" "),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state: flow.state,
      nonce: flow.nonce,
    });
    return { url, flow };
  }

  /** `query` is the callback's query string, as received. */
  async finish(flow: SsoFlow, query: string): Promise<SsoIdentity> {
    const provider = this.require(flow.providerId);
    const currentUrl = new URL(flow.redirectUri);
    currentUrl.search = query;
    // Checked here first (openid-client checks it again) so that a wrong state is told apart from
    // an error answer: an error answer with someone else's state is not this browser's business.
    const state = currentUrl.searchParams.get("state");
    if (state === null || !safeEqual(state, flow.state)) {
      throw new ServiceError("unauthenticated", "The sign-in could not be matched to this browser.", { code: "sso_state_mismatch" });
    }
    const config = await this.configuration(provider);
    try {
      const tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: flow.codeVerifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims();
      if (!idClaims) throw new ServiceError("unauthenticated", "The identity provider sent no ID token.", { code: "sso_invalid_response" });
      let userinfo: Record<string, unknown> = {};
      if (config.serverMetadata().userinfo_endpoint && tokens.access_token) {
        userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      }
      return identityFrom(provider, config.serverMetadata().issuer, idClaims, userinfo);
    } catch (error) {
      throw asSsoError(error);
    }
  }

  private require(providerId: string): OidcProviderConfig {
    const provider = this.byId.get(providerId);
    if (!provider) throw new ServiceError("not_found", "There is no such sign-in provider.", { code: "sso_unknown_provider" });
    return provider;
  }

  /** Discovery on first use, then cached (a failure is forgotten, so the next sign-in retries). */
  private configuration(provider: OidcProviderConfig): Promise<client.Configuration> {
    let pending = this.discovered.get(provider.id);
    if (!pending) {
      pending = this.discover(provider);
      this.discovered.set(provider.id, pending);
      pending.catch(() => this.discovered.delete(provider.id));
    }
    return pending;
  }

  private async discover(provider: OidcProviderConfig): Promise<client.Configuration> {
    const issuer = new URL(provider.issuer);
    const auth = provider.clientSecret
      ? provider.tokenEndpointAuthMethod === "client_secret_post"
        ? client.ClientSecretPost(provider.clientSecret)
        : client.ClientSecretBasic(provider.clientSecret)
      : client.None();
    const execute = [client.enableNonRepudiationChecks];
    // Config accepts plain http only for a loopback issuer (a development or test IdP).
    if (issuer.protocol === "http:") execute.push(client.allowInsecureRequests);
    try {
      return await client.discovery(issuer, provider.clientId, provider.clientSecret ?? undefined, auth, {
        [client.customFetch]: guardedOidcFetch(issuer, { allowPrivateNetwork: this.options.allowPrivateNetwork }),
        execute,
        timeout: this.options.timeoutS ?? 10,
      });
    } catch (error) {
      throw new ServiceError("unavailable", `The identity provider "${provider.name}" could not be reached: ${describe(error)}`, {
        code: "sso_provider_unavailable",
        cause: error,
      });
    }
  }
}

/** Claims from the ID token first (signed); what it lacks, from userinfo (same `sub`, checked). */
function identityFrom(provider: OidcProviderConfig, issuer: string, id: Record<string, unknown>, userinfo: Record<string, unknown>): SsoIdentity {
  // E-mail and its verification travel together: never one source's address with the other's flag.
  const emailSource = typeof id.email === "string" ? id : userinfo;
  const email = typeof emailSource.email === "string" && emailSource.email.length <= 254 ? emailSource.email.trim().toLowerCase() : null;
  const groupsFromId = claimAt(id, provider.groupsClaim);
  const groups = groupList(groupsFromId !== undefined ? groupsFromId : claimAt(userinfo, provider.groupsClaim));
  const text = (name: string) => {
    const value = id[name] ?? userinfo[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
  };
  const subject = id.sub;
  if (typeof subject !== "string" || subject === "" || subject.length > 255) {
    throw new ServiceError("unauthenticated", "The identity provider sent an unusable subject.", { code: "sso_invalid_response" });
  }
  return {
    providerId: provider.id,
    issuer,
    subject,
    email: email && email.includes("@") ? email : null,
    // Only a literal true counts: some providers send "true" as text, which proves nothing here.
    emailVerified: email !== null && emailSource.email_verified === true,
    preferredUsername: text("preferred_username"),
    name: text("name"),
    groups,
  };
}

/** A top-level claim by its exact name (URL-like names contain dots), else a dotted path. */
function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let value: unknown = claims;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || !(part in value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function groupList(value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === "string");
  return [];
}

const UNREACHABLE_CODES = new Set(["OAUTH_TIMEOUT", "OAUTH_ABORT", "OAUTH_RESPONSE_IS_NOT_CONFORM", "OAUTH_RESPONSE_IS_NOT_JSON"]);

/** Which of the page's explanations fits an openid-client failure. */
function asSsoError(error: unknown): unknown {
  if (error instanceof ServiceError) return error;
  if (error instanceof client.AuthorizationResponseError) {
    return new ServiceError("forbidden", `The identity provider refused the sign-in (${error.error}).`, { code: "sso_denied", cause: error });
  }
  // openid-client wraps transport failures (refused connections, the egress guard, timeouts) as
  // ClientErrors without a code or with one of these; everything else is an answer that failed a check.
  const transport = error instanceof client.ClientError && (error.code === undefined || UNREACHABLE_CODES.has(error.code));
  if (transport || !(error instanceof client.ClientError || error instanceof client.ResponseBodyError)) {
    return new ServiceError("unavailable", `The identity provider could not be reached: ${describe(error)}`, { code: "sso_provider_unavailable", cause: error });
  }
  return new ServiceError("unauthenticated", `The identity provider's answer failed validation: ${describe(error)}`, { code: "sso_invalid_response", cause: error });
}

/** For the log only (the browser gets a code); the logger adds the causes' own messages. */
function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
