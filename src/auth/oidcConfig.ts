import { z } from "zod";

/** Hosts a plain-http issuer may use: a test or development IdP on this machine, never a network one. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const issuerSchema = z.string().refine((value) => {
  try {
    const url = new URL(value);
    if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") return false;
    return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
  } catch {
    return false;
  }
}, "must be the provider's issuer URL, exactly as its discovery document states it: https:// (plain http:// only for a loopback host), no query, no credentials");

/**
 * One OpenID Connect provider a user may sign in with (auth.oidcProviders[]). Accounts are linked
 * by (id, sub): the `id` is part of every linked identity, so it must never be reused for
 * another IdP (a changed issuer under the same id is refused at sign-in).
 */
export const oidcProviderSchema = z
  .object({
    /** Stable key in URLs and in linked identities: lower-case letters, digits, '-' and '_'. */
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "1 to 32 lower-case letters, digits, '-' or '_'"),
    /** The button label: "Sign in with <name>". */
    name: z.string().trim().min(1).max(60),
    issuer: issuerSchema,
    clientId: z.string().min(1).max(500),
    /** Confidential clients; without one, Sputnik is a public client (PKCE alone). */
    clientSecret: z.string().min(1).max(2000).optional(),
    /** How the secret is sent to the token endpoint; default client_secret_basic (OAuth's own default). */
    tokenEndpointAuthMethod: z.enum(["client_secret_basic", "client_secret_post"]).optional(),
    /** Scopes to ask for; "openid" is always added. */
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "a scope token")).max(20).default(["openid", "email", "profile"]),
    /** Billing plan for accounts this provider creates (default: the default plan). */
    plan: z.string().min(1).max(100).optional(),
    /** Members of any of these groups are admins, others are users: applied at every sign-in. */
    adminGroups: z.array(z.string().min(1).max(256)).max(100).optional(),
    /** The claim holding the groups (a top-level name, or a dotted path such as "realm_access.roles"). */
    groupsClaim: z.string().min(1).max(200).default("groups"),
    /** Group → plan, first listed match wins; applied at every sign-in (no match: `plan`). */
    planByGroup: z.record(z.string().min(1).max(256), z.string().min(1).max(100)).optional(),
    /**
     * Link a first sign-in to the existing account with the same e-mail address, when the
     * provider says the address is verified. Off by default: only for providers that verify
     * addresses of domains the operator controls.
     */
    linkByVerifiedEmail: z.boolean().default(false),
  })
  .strict();

export type OidcProviderConfig = z.infer<typeof oidcProviderSchema>;

export const oidcProvidersSchema = z
  .array(oidcProviderSchema)
  .max(20)
  .default([])
  .superRefine((providers, ctx) => {
    const seen = new Set<string>();
    providers.forEach((provider, index) => {
      if (seen.has(provider.id)) ctx.addIssue({ code: "custom", path: [index, "id"], message: `duplicate provider id "${provider.id}"` });
      seen.add(provider.id);
    });
  });
