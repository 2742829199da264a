import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { serviceSecret } from "./secrets.ts";

/**
 * Encryption at rest for the few secrets the server must read back (a TOTP secret cannot be
 * hashed: checking a code needs the secret itself). AES-256-GCM, whose tag also detects any change
 * to the stored text, with a fresh 96-bit nonce per seal and "associated data" naming what the
 * value belongs to (`totp:<user id>`), so a sealed value copied onto another account's row does
 * not open there.
 *
 * The key is derived with HKDF-SHA256 from the service secret (src/auth/secrets.ts: generated on
 * first run and kept in the `settings` table, shared by every replica), with a purpose label of its
 * own, so it is never the same key as the CSRF or remembered-device keys derived from that secret.
 * What this protects against: a copy of the credential table alone (an export, a partial dump, a
 * log of rows) reveals no secret. What it does not: whoever holds the whole database also holds the
 * service secret, as with every other key derived from it.
 */
const VERSION = "v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError("SecretBox needs a 32-byte key");
    this.key = Buffer.from(key);
  }

  /** Derives the key for `purpose` from the service secret. */
  static fromServiceSecret(secret: string, purpose: string): SecretBox {
    return new SecretBox(new Uint8Array(hkdfSync("sha256", Buffer.from(secret, "utf8"), Buffer.alloc(0), `sputnik:${purpose}`, 32)));
  }

  /** `v1.<base64url(nonce | ciphertext | tag)>`. */
  seal(plaintext: string, associatedData: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return `${VERSION}.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64url")}`;
  }

  /** The plaintext; throws when the value was changed, sealed for something else, or under another key. */
  open(sealed: string, associatedData: string): string {
    const dot = sealed.indexOf(".");
    if (dot < 0 || sealed.slice(0, dot) !== VERSION) throw new Error("sealed value of an unknown format");
    const raw = Buffer.from(sealed.slice(dot + 1), "base64url");
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new Error("sealed value too short");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString("utf8");
  }
}

const cache = new WeakMap<object, Promise<SecretBox>>();

/** The SecretBox for TOTP secrets of this install (one per database, like the secret it comes from). */
export function totpSecretBox(db: Kysely<Database>): Promise<SecretBox> {
  let found = cache.get(db);
  if (!found) {
    found = serviceSecret(db).then((secret) => SecretBox.fromServiceSecret(secret, "totp-secret"));
    found.catch(() => cache.delete(db));
    cache.set(db, found);
  }
  return found;
}
