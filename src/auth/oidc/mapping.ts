/**
 * What a provider's claims mean here: the user name a new account gets, and the role and plan
 * its groups map to (auth.oidcProviders[].adminGroups / planByGroup / plan).
 */
import type { Role } from "../actor.ts";
import type { OidcProviderConfig } from "../oidcConfig.ts";
import { DEFAULT_PLAN_ID } from "../users.ts";
import type { SsoIdentity } from "./providers.ts";

const MAX_USERNAME = 32;

/**
 * A valid user name (usernameSchema's rules) from preferred_username, else the e-mail's local
 * part, else the name: lower-cased, accents dropped, other characters turned into '-'. Only a
 * base: `usernameCandidates` makes it unique.
 */
export function baseUsername(identity: Pick<SsoIdentity, "preferredUsername" | "email" | "name">): string {
  const source = identity.preferredUsername ?? identity.email?.split("@")[0] ?? identity.name ?? "user";
  let name = source
    // An e-mail-shaped preferred_username (common): its local part reads better.
    .split("@")[0]
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, MAX_USERNAME)
    .replace(/[^a-z0-9]+$/, "");
  if (name.length < 3) name = name ? `${name}-user` : "user";
  return name;
}

/** `base`, then `base-2` … `base-<count>`, each cut to fit 32 characters. */
export function usernameCandidates(base: string, count: number): string[] {
  const out = [base];
  for (let i = 2; out.length < count; i++) {
    const suffix = `-${i}`;
    out.push(base.slice(0, MAX_USERNAME - suffix.length).replace(/[^a-z0-9]+$/, "") + suffix);
  }
  return out;
}

/**
 * The role the groups give: admin for a member of `adminGroups`, user otherwise. undefined when
 * roles are not managed by this provider (no adminGroups) or the provider sent no groups claim at
 * all — a provider that stops sending groups (a changed scope or mapper) must not demote every
 * admin; an empty list is an answer and does.
 */
export function roleFromGroups(provider: OidcProviderConfig, groups: string[] | null): Role | undefined {
  if (!provider.adminGroups || provider.adminGroups.length === 0 || groups === null) return undefined;
  return provider.adminGroups.some((g) => groups.includes(g)) ? "admin" : "user";
}

/**
 * The plan the groups give: the first `planByGroup` entry (in the order configured) whose group
 * the user is in, else the provider's `plan`, else the default plan. undefined when plans are not
 * managed by groups (no planByGroup) or no groups claim came.
 */
export function planFromGroups(provider: OidcProviderConfig, groups: string[] | null): string | undefined {
  if (!provider.planByGroup || Object.keys(provider.planByGroup).length === 0 || groups === null) return undefined;
  for (const [group, plan] of Object.entries(provider.planByGroup)) {
    if (groups.includes(group)) return plan;
  }
  return provider.plan ?? DEFAULT_PLAN_ID;
}

/** The plan a new account starts on. */
export function initialPlan(provider: OidcProviderConfig, groups: string[] | null): string {
  return planFromGroups(provider, groups) ?? provider.plan ?? DEFAULT_PLAN_ID;
}
