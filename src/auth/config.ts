import { z } from "zod";
import { OWASP_ARGON2ID } from "./passwords.ts";
import { oidcProvidersSchema } from "./oidcConfig.ts";

/**
 * Accounts and sign-in settings, under "auth" in the config file (or JSON in SPUTNIK_AUTH).
 * The defaults are the production ones; tests lower the argon2 cost to stay fast.
 */
export const authConfigSchema = z
  .object({
    /**
     * Loopback single-user mode: while Sputnik listens on loopback only and no account exists,
     * requests from this machine may use /v1 without a key. Set false to always require keys.
     */
    localMode: z.boolean().default(true),
    /** A session ends this long after sign-in. */
    sessionMaxAgeHours: z.number().int().min(1).max(24 * 366).default(24 * 30),
    /** …or after this long unused. */
    sessionIdleHours: z.number().int().min(1).max(24 * 366).default(24 * 7),
    /** argon2id cost; defaults to OWASP's recommendation (19 MiB, 2 passes, 1 lane). */
    passwordHashing: z
      .object({
        memoryKiB: z.number().int().min(8).max(4 * 1024 * 1024).default(OWASP_ARGON2ID.memoryKiB),
        iterations: z.number().int().min(1).max(100).default(OWASP_ARGON2ID.iterations),
        parallelism: z.number().int().min(1).max(16).default(OWASP_ARGON2ID.parallelism),
      })
      .strict()
      .prefault({}),
    /** Single sign-on: OpenID Connect providers shown as "Sign in with …" (src/auth/oidcConfig.ts). */
    oidcProviders: oidcProvidersSchema,
    /**
     * Local password sign-in (and password sign-up). false: only single sign-on signs in, and the
     * app hides the password form; `sputnik admin create-user` still creates accounts.
     */
    passwordSignIn: z.boolean().default(true),
  })
  .strict()
  .prefault({});

export type AuthConfig = z.infer<typeof authConfigSchema>;

/** "https://chat.example.com" or "http://localhost:5173": scheme, host and port only. */
export const originSchema = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === value;
  } catch {
    return false;
  }
}, "must be an exact origin such as https://chat.example.com (scheme, host and optional port; no path, no trailing slash, no wildcard)");

/**
 * Fastify's trustProxy: true (trust every hop) or the addresses/CIDRs of the proxies (safer).
 * Text from the environment ("true", "10.0.0.0/8,127.0.0.1") is turned into one of those.
 */
export const trustProxySchema = z.preprocess(
  (value) => {
    if (typeof value !== "string") return value;
    if (/^(true|yes|on)$/i.test(value)) return true;
    if (/^(false|no|off|)$/i.test(value)) return false;
    return value.split(",").map((s) => s.trim()).filter(Boolean);
  },
  z.union([z.boolean(), z.array(z.string().min(1))]),
);
