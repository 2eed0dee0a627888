/**
 * IPv4 and IPv6 networks in CIDR notation, and the allow/deny list behind the server's
 * repeatable `--allow <cidr>` and `--deny <cidr>` flags. Pure: no sockets, no console.
 *
 * Matching works on address bytes. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, which is how
 * a server listening on `::` sees IPv4 clients) counts as the IPv4 address it carries, so one
 * rule covers a client however the socket reports it.
 *
 * @example Deciding whether a client may connect
 * ```ts
 * import assert from "node:assert/strict";
 * import { AccessList } from "./cidr.ts";
 *
 * const access = new AccessList({ allow: ["10.0.0.0/8"], deny: ["10.9.0.0/16"] });
 * assert.deepEqual(access.check("10.1.2.3"), { allowed: true, rule: "--allow 10.0.0.0/8" });
 * assert.deepEqual(access.check("::ffff:10.9.0.1"), { allowed: false, rule: "--deny 10.9.0.0/16" });
 * ```
 *
 * @module
 */

/** A parsed network: address family, network bits, prefix length. */
export interface Cidr {
  /** 4 for IPv4, 6 for IPv6 (including IPv4-mapped forms such as `::ffff:10.0.0.0/104`). */
  readonly family: 4 | 6;
  /** The network address with every host bit cleared: 4 bytes for IPv4, 16 for IPv6. */
  readonly network: Uint8Array;
  /** How many leading bits of an address must equal `network`: 0-32 or 0-128. */
  readonly prefix: number;
  /** Canonical form, e.g. `"10.0.0.0/8"`, `"2001:db8::/32"`, `"::ffff:10.0.0.0/104"`. */
  readonly text: string;
}

/** A parsed value, or the reason it is not one (the part of an error message after the colon). */
type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

const DECIMAL = /^[0-9]+$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const HEX = /^[0-9a-fA-F]+$/;
const WHITESPACE = /\s/;

/** The first 12 bytes of every IPv4-mapped IPv6 address (`::ffff:0:0/96`). */
const MAPPED_PREFIX = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff);

function parseIpv4(text: string): Parsed<Uint8Array> {
  const octets = text.split(".");
  if (octets.length !== 4) return fail(`expected 4 dot-separated octets, found ${octets.length}`);
  const bytes = new Uint8Array(4);
  for (const [index, octet] of octets.entries()) {
    if (octet === "") return fail("empty octet");
    if (!DECIMAL.test(octet)) return fail(`octet "${octet}" is not a decimal number`);
    // "010" means 8 to inet_aton (octal) and 10 to others: refuse rather than guess.
    if (octet.length > 1 && octet[0] === "0") return fail(`octet "${octet}" has a leading zero`);
    const value = Number(octet);
    if (value > 255) return fail(`octet ${octet} is out of range`);
    bytes[index] = value;
  }
  return { ok: true, value: bytes };
}

/** Parses one side of a possible "::" into 16-bit groups; `last` allows a trailing IPv4 part. */
function parseGroups(text: string, last: boolean): Parsed<number[]> {
  if (text === "") return { ok: true, value: [] };
  const parts = text.split(":");
  const groups: number[] = [];
  for (const [index, part] of parts.entries()) {
    if (part.includes(".")) {
      if (!last || index !== parts.length - 1) {
        return fail(`embedded IPv4 address "${part}" must come last`);
      }
      const ipv4 = parseIpv4(part);
      if (!ipv4.ok) return ipv4;
      const [a, b, c, d] = ipv4.value;
      groups.push((a << 8) | b, (c << 8) | d);
    } else if (part === "") {
      return fail('empty group (a stray ":")');
    } else if (HEX_GROUP.test(part)) {
      groups.push(parseInt(part, 16));
    } else if (HEX.test(part)) {
      return fail(`group "${part}" has more than 4 hex digits`);
    } else {
      return fail(`group "${part}" is not hexadecimal`);
    }
  }
  return { ok: true, value: groups };
}

function parseIpv6(text: string): Parsed<Uint8Array> {
  const halves = text.split("::");
  if (halves.length > 2) return fail('"::" appears more than once');
  const compressed = halves.length === 2;
  const head = parseGroups(halves[0], !compressed);
  if (!head.ok) return head;
  const tail = compressed ? parseGroups(halves[1], true) : { ok: true as const, value: [] };
  if (!tail.ok) return tail;
  const count = head.value.length + tail.value.length;
  if (count > 8) return fail(`too many groups (${count}, at most 8)`);
  // "::" stands for one or more zero groups, so it needs at least one free slot.
  if (compressed && count === 8) return fail('too many groups (8) to leave room for "::"');
  if (!compressed && count < 8) return fail(`too few groups (${count} of 8) and no "::"`);
  const groups = [...head.value, ...new Array<number>(8 - count).fill(0), ...tail.value];
  const bytes = new Uint8Array(16);
  for (const [index, group] of groups.entries()) {
    bytes[index * 2] = group >> 8;
    bytes[index * 2 + 1] = group & 0xff;
  }
  return { ok: true, value: bytes };
}

function parseAddressText(text: string, allowZone: boolean): Parsed<Uint8Array> {
  if (text === "") return fail("address is empty");
  if (WHITESPACE.test(text)) return fail("contains whitespace");
  if (!text.includes(":")) return parseIpv4(text);
  const percent = text.indexOf("%");
  if (percent === -1) return parseIpv6(text);
  const zone = text.slice(percent);
  if (!allowZone) return fail(`zone id "${zone}" is not allowed in a network`);
  if (zone === "%") return fail("zone id is empty");
  return parseIpv6(text.slice(0, percent));
}

function parseCidrText(text: string): Parsed<Cidr> {
  if (text === "") return fail("value is empty");
  if (WHITESPACE.test(text)) return fail("contains whitespace");
  const slash = text.indexOf("/");
  const address = parseAddressText(slash === -1 ? text : text.slice(0, slash), false);
  if (!address.ok) return address;
  const bytes = address.value;
  const family = bytes.length === 4 ? 4 : 6;
  const maxPrefix = bytes.length * 8;
  let prefix = maxPrefix;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (prefixText === "") return fail("prefix is empty");
    if (!DECIMAL.test(prefixText)) return fail(`prefix "${prefixText}" is not a number`);
    if (prefixText.length > 1 && prefixText[0] === "0") {
      return fail(`prefix "${prefixText}" has a leading zero`);
    }
    prefix = Number(prefixText);
    if (prefix > maxPrefix) return fail(`prefix must be 0-${maxPrefix} for IPv${family}`);
  }
  const network = mask(bytes, prefix);
  return {
    ok: true,
    value: { family, network, prefix, text: `${formatAddress(network)}/${prefix}` },
  };
}

/** A copy of `bytes` with every bit after the first `prefix` cleared. */
function mask(bytes: Uint8Array, prefix: number): Uint8Array {
  const masked = new Uint8Array(bytes.length);
  const whole = prefix >> 3;
  masked.set(bytes.subarray(0, whole));
  if (whole < bytes.length) masked[whole] = bytes[whole] & ~(0xff >> (prefix & 7));
  return masked;
}

function startsWith(bytes: Uint8Array, start: Uint8Array): boolean {
  return start.every((byte, index) => bytes[index] === byte);
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of 2+ zero groups as "::". */
function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  if (startsWith(bytes, MAPPED_PREFIX)) return `::ffff:${bytes.subarray(12).join(".")}`;
  const groups = Array.from(
    { length: 8 },
    (_, index) => (bytes[index * 2] << 8) | bytes[index * 2 + 1],
  );
  let bestStart = -1;
  let bestLength = 1; // a single zero group is written as "0", never "::"
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) [bestStart, bestLength] = [start, length];
  }
  const hex = (part: number[]) => part.map((group) => group.toString(16)).join(":");
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/**
 * Parses a network in CIDR notation: `"10.0.0.0/8"`, `"2001:db8::/32"`,
 * `"::ffff:10.0.0.0/104"`, or a bare address, which means that one host (`/32` or `/128`).
 * Host bits may be set and are masked off: `"10.0.0.1/8"` is `10.0.0.0/8`. IPv4 octets with a
 * leading zero (`"010.0.0.1"`) are refused because tools disagree on whether they are octal.
 *
 * @throws {TypeError} When `text` is not a network, e.g.
 * `Invalid CIDR "10.0.0.300/8": octet 300 is out of range`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr } from "./cidr.ts";
 *
 * assert.equal(parseCidr("10.1.2.3/8").text, "10.0.0.0/8");
 * assert.equal(parseCidr("2001:DB8:0:0:0:0:0:1").text, "2001:db8::1/128");
 * assert.throws(() => parseCidr("10.0.0.0/33"), {
 *   name: "TypeError",
 *   message: 'Invalid CIDR "10.0.0.0/33": prefix must be 0-32 for IPv4',
 * });
 * ```
 */
export function parseCidr(text: string): Cidr {
  const parsed = parseCidrText(text);
  if (!parsed.ok) throw new TypeError(`Invalid CIDR "${text}": ${parsed.reason}`);
  return parsed.value;
}

/**
 * Parses an IP address into its bytes: 4 for an IPv4 dotted quad, 16 for any IPv6 text form
 * (`"::"`, `"::1"`, `"2001:db8::8:800:200c:417a"`, embedded IPv4 as in `"::ffff:1.2.3.4"`).
 * A zone id (`"fe80::1%eth0"`) is accepted and ignored. Returns `null` when `text` is not an
 * address, including when it has surrounding whitespace or a prefix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAddress } from "./cidr.ts";
 *
 * assert.deepEqual(parseAddress("192.168.1.7"), Uint8Array.of(192, 168, 1, 7));
 * assert.equal(parseAddress("::ffff:1.2.3.4")?.length, 16);
 * assert.equal(parseAddress("example.com"), null);
 * ```
 */
export function parseAddress(text: string): Uint8Array | null {
  const parsed = parseAddressText(text, true);
  return parsed.ok ? parsed.value : null;
}

/** `bytes` as IPv4 when it is an IPv4 or IPv4-mapped address; otherwise unchanged. */
function unmapAddress(bytes: Uint8Array): Uint8Array {
  return bytes.length === 16 && startsWith(bytes, MAPPED_PREFIX) ? bytes.subarray(12) : bytes;
}

/** `cidr` as an IPv4 network when it lies inside `::ffff:0:0/96`; otherwise unchanged. */
function unmapCidr(cidr: Cidr): { network: Uint8Array; prefix: number } {
  if (cidr.network.length === 16 && cidr.prefix >= 96 && startsWith(cidr.network, MAPPED_PREFIX)) {
    return { network: cidr.network.subarray(12), prefix: cidr.prefix - 96 };
  }
  return cidr;
}

/**
 * True when `address` lies inside `cidr`. `address` is text as Deno reports a remote
 * hostname: `"127.0.0.1"`, `"::1"`, or `"::ffff:127.0.0.1"` for an IPv4 client of a server
 * listening on `"::"`. An IPv4-mapped address is treated as the IPv4 address it carries, and a
 * network inside `::ffff:0:0/96` as the IPv4 network it writes, so `10.0.0.0/8` and
 * `::ffff:10.0.0.0/104` match the same clients. Other IPv6 networks, even `::/0`, never match
 * IPv4 clients: use `0.0.0.0/0` for those.
 *
 * @throws {TypeError} When `address` is not an IP address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cidrContains, parseCidr } from "./cidr.ts";
 *
 * const lan = parseCidr("192.168.0.0/16");
 * assert.equal(cidrContains(lan, "192.168.4.20"), true);
 * assert.equal(cidrContains(lan, "::ffff:192.168.4.20"), true);
 * assert.equal(cidrContains(lan, "192.169.0.1"), false);
 * ```
 */
export function cidrContains(cidr: Cidr, address: string): boolean {
  const parsed = parseAddressText(address, true);
  if (!parsed.ok) throw new TypeError(`Invalid address "${address}": ${parsed.reason}`);
  return contains(unmapCidr(cidr), unmapAddress(parsed.value));
}

/** Byte-wise prefix match; `network` has its host bits cleared already. */
function contains(
  { network, prefix }: { network: Uint8Array; prefix: number },
  address: Uint8Array,
): boolean {
  if (network.length !== address.length) return false;
  const whole = prefix >> 3;
  for (let index = 0; index < whole; index++) {
    if (network[index] !== address[index]) return false;
  }
  const bits = prefix & 7;
  if (bits === 0) return true;
  return (address[whole] & ~(0xff >> bits) & 0xff) === network[whole];
}

/** The rules of an {@linkcode AccessList}, as given on the command line. */
export interface AccessRules {
  /** Networks from `--allow`; when any is given, an address must match one. @default [] */
  allow?: readonly string[];
  /** Networks from `--deny`; a match refuses the address even if an allow rule matches. @default [] */
  deny?: readonly string[];
}

/** The verdict of {@linkcode AccessList.check}, with the rule that decided it, for logging. */
export interface AccessDecision {
  /** Whether the address may connect. */
  allowed: boolean;
  /** Why, e.g. `"--deny 10.0.0.0/8"`, `"--allow ::1/128"`, `"not in any --allow"`. */
  rule: string;
}

/**
 * Allow/deny rules for client addresses. Deny wins when both match; with no allow rules,
 * everything not denied is allowed; with allow rules, an address must match one of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AccessList } from "./cidr.ts";
 *
 * const access = new AccessList({ deny: ["203.0.113.0/24"] });
 * assert.equal(access.check("203.0.113.9").allowed, false);
 * assert.equal(access.check("198.51.100.1").allowed, true);
 * assert.throws(() => new AccessList({ deny: ["x"] }), {
 *   name: "TypeError",
 *   message: 'Invalid --deny "x": expected 4 dot-separated octets, found 1',
 * });
 * ```
 */
export class AccessList {
  /** Networks from `--allow`, in the order given. */
  #allow: readonly Cidr[];
  /** Networks from `--deny`, in the order given; always checked before `#allow`. */
  #deny: readonly Cidr[];

  /**
   * Parses the rules.
   *
   * @throws {TypeError} On a rule that is not a network, naming its flag, e.g.
   * `Invalid --deny "10.0.0.0/33": prefix must be 0-32 for IPv4`.
   */
  constructor(rules: AccessRules) {
    this.#allow = parseRules("--allow", rules.allow ?? []);
    this.#deny = parseRules("--deny", rules.deny ?? []);
  }

  /**
   * Decides whether `address` (text, as Deno reports a remote hostname) may connect, and
   * names the rule that decided.
   *
   * @throws {TypeError} When `address` is not an IP address.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AccessList } from "./cidr.ts";
   *
   * const access = new AccessList({ allow: ["::1", "127.0.0.0/8"] });
   * assert.deepEqual(access.check("::1"), { allowed: true, rule: "--allow ::1/128" });
   * assert.deepEqual(access.check("10.0.0.1"), { allowed: false, rule: "not in any --allow" });
   * ```
   */
  check(address: string): AccessDecision {
    const parsed = parseAddressText(address, true);
    if (!parsed.ok) throw new TypeError(`Invalid address "${address}": ${parsed.reason}`);
    const bytes = unmapAddress(parsed.value);
    const denied = this.#deny.find((cidr) => contains(unmapCidr(cidr), bytes));
    if (denied) return { allowed: false, rule: `--deny ${denied.text}` };
    if (this.#allow.length === 0) {
      return { allowed: true, rule: this.#deny.length === 0 ? "no rules" : "not in any --deny" };
    }
    const allowed = this.#allow.find((cidr) => contains(unmapCidr(cidr), bytes));
    if (allowed) return { allowed: true, rule: `--allow ${allowed.text}` };
    return { allowed: false, rule: "not in any --allow" };
  }

  /**
   * True when there are no rules, so callers can skip {@linkcode AccessList.check}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AccessList } from "./cidr.ts";
   *
   * assert.equal(new AccessList({}).empty, true);
   * assert.equal(new AccessList({ deny: ["10.0.0.0/8"] }).empty, false);
   * ```
   */
  get empty(): boolean {
    return this.#allow.length === 0 && this.#deny.length === 0;
  }
}

function parseRules(flag: string, texts: readonly string[]): Cidr[] {
  return texts.map((text) => {
    const parsed = parseCidrText(text);
    if (!parsed.ok) throw new TypeError(`Invalid ${flag} "${text}": ${parsed.reason}`);
    return parsed.value;
  });
}
