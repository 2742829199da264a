/**
 * Outbound request policy for downloads: which URLs may be fetched at all. A pull source is
 * user input (and redirects are chosen by a remote server), so without this a `sputnik pull`
 * run by an admin route could be pointed at cloud metadata endpoints or internal services.
 *
 * Addresses are checked in the socket's own DNS lookup (`guardedLookup`), i.e. on the very
 * addresses the connection uses, so a hostname cannot resolve to a public address for a check
 * and to a private one for the connection.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP } from "node:net";
import { ModelError } from "./errors.ts";

export interface NetworkPolicy {
  /** Allow loopback, private, link-local and other non-public addresses. */
  allowPrivateNetwork: boolean;
  /** Allow plain `http:` URLs (e.g. a test server on 127.0.0.1). */
  allowHttp: boolean;
  /**
   * Origins (`scheme://host:port`) that may use private addresses while `allowPrivateNetwork` is
   * false: an operator-configured service on the private network (a SearXNG instance) without
   * opening the private network to whatever it links or redirects to. Exact origin match, so a
   * redirect to another port or host of the same machine is checked as usual.
   */
  privateOrigins?: readonly string[];
}

/** The policy for one request to `url`: `allowPrivateNetwork` turned on for a listed origin only. */
export function policyForUrl(url: URL, policy: NetworkPolicy): NetworkPolicy {
  if (policy.allowPrivateNetwork || !policy.privateOrigins?.length) return policy;
  const listed = policy.privateOrigins.some((origin) => {
    try {
      return new URL(origin).origin === url.origin;
    } catch {
      return false;
    }
  });
  return listed ? { ...policy, allowPrivateNetwork: true } : policy;
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // old site-local
  ["ff00::", 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

/** True for any address that is not a public unicast address (IPv4-mapped and NAT64/6to4-embedded IPv4 included). */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family !== 6) return true; // not an IP address at all: refuse rather than guess
  if (blocked.check(address, "ipv6")) return true; // also covers ::ffff:a.b.c.d
  const embedded = embeddedIpv4(address);
  return embedded !== null && blocked.check(embedded, "ipv4");
}

/** Protocol and IP-literal checks for one URL (each redirect hop included). */
export function assertUrlAllowed(url: URL, policy: NetworkPolicy): void {
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ModelError("insecure_protocol", `Refusing ${url.protocol} URL ${url.href}: only https: is supported.`);
  }
  if (url.protocol === "http:" && !policy.allowHttp) {
    throw new ModelError(
      "insecure_protocol",
      `Refusing plain http: URL ${redact(url)}: use https:, or allow http explicitly (--allow-http).`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new ModelError("bad_source", "URLs with embedded credentials are not supported; use HF_TOKEN for Hugging Face.");
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!policyForUrl(url, policy).allowPrivateNetwork && isIP(host) !== 0 && isBlockedAddress(host)) {
    throw blockedError(url.hostname, host);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A drop-in for `dns.lookup` to pass as the `lookup` option of `http.request`: resolves as
 * usual, then refuses the connection if any resolved address is blocked. Refusing on *any*
 * blocked address (not just the first) closes the door on answers mixing public and private IPs.
 */
export function guardedLookup(policy: NetworkPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      if (!policy.allowPrivateNetwork) {
        const bad = addresses.find((a) => isBlockedAddress(a.address));
        if (bad) return callback(blockedError(hostname, bad.address) as NodeJS.ErrnoException, []);
      }
      if (addresses.length === 0) {
        return callback(Object.assign(new Error(`No addresses for ${hostname}`), { code: "ENOTFOUND" }), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

function blockedError(hostname: string, address: string): ModelError {
  return new ModelError(
    "blocked_address",
    `Refusing to connect to ${hostname} (${address}): it is a private, loopback or otherwise non-public address. ` +
      "Allow it explicitly (--allow-private-network) if this is intended.",
  );
}

/** The IPv4 address carried in a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) IPv6 address. */
function embeddedIpv4(address: string): string | null {
  const groups = expandIpv6(address);
  if (groups === null) return null;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0);
  if (nat64) return ipv4FromGroups(groups[6], groups[7]);
  if (groups[0] === 0x2002) return ipv4FromGroups(groups[1], groups[2]);
  return null;
}

function expandIpv6(address: string): number[] | null {
  let text = address.split("%")[0]; // zone id
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split(".").map(Number);
    text = text.slice(0, -dotted[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const parse = (part: string | undefined) => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 0) return null;
  return [...left, ...new Array<number>(Math.max(missing, 0)).fill(0), ...right];
}

function ipv4FromGroups(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** A URL fit for messages and logs: no query string (signed CDN URLs carry secrets there). */
export function redact(url: URL): string {
  return url.origin + url.pathname;
}
