import { randomBytes } from "node:crypto";

/**
 * A new row id: a UUIDv7 string (RFC 9562). The leading 48 bits are the millisecond clock, so ids
 * created later sort later — index inserts stay append-mostly and ids make stable tie-breakers in
 * keyset pagination. The other 74 bits are random.
 */
export function newId(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6] & 0x0f);
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
