/**
 * The rules for names of people and rooms, and the keys that make them unique.
 *
 * @module
 */

/** Longest name, in characters. */
export const MAX_NAME = 32;

/** Names nobody may take: they would pass for the server or for everyone. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "server",
  "operator",
  "admin",
  "root",
  "system",
  "charla",
  "everyone",
  "all",
  "nobody",
  "you",
]);

const NAME = /^[A-Za-z0-9_-]{1,32}$/;
const DIGITS = /^\d+$/;
const DEFAULT_NAME = /^user(\d+)$/i;
const ROOM = /^#[A-Za-z0-9_-]{1,32}$/;

/**
 * Checks a name someone asked for. Returns null when it is acceptable, or the
 * reason it is not, as a sentence fragment for an error notice.
 *
 * Names are ASCII letters, digits, `_` and `-`: non-ASCII letters would let
 * `аlice` (Cyrillic а) pass for `alice`. Names made of digits only are refused
 * because `/to 7` and `/kick 7` mean client #7. `user<n>` is the default name of
 * client #n, so only that client may hold it.
 *
 * @example
 * ```ts
 * import { checkName } from "./names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkName("ana_1", 3), null);
 * assert.equal(checkName("Server", 3), 'the name "Server" is reserved');
 * assert.equal(checkName("user3", 3), null);
 * ```
 */
export function checkName(name: string, id: number): string | null {
  if (!NAME.test(name)) {
    return name.length === 0 || name.length > MAX_NAME
      ? `a name has 1 to ${MAX_NAME} characters`
      : `the name "${name}" has characters other than letters, digits, "_" and "-"`;
  }
  if (DIGITS.test(name)) return `the name "${name}" is only digits, which mean a client number`;
  if (RESERVED_NAMES.has(name.toLowerCase())) return `the name "${name}" is reserved`;
  const numbered = DEFAULT_NAME.exec(name);
  if (numbered !== null && Number(numbered[1]) !== id) {
    return `the name "${name}" is reserved for client #${Number(numbered[1])}`;
  }
  return null;
}

/**
 * The key under which a name is unique: lower case, with the ASCII look-alikes
 * folded together (`I`, `l`, `1` and `i`; `O` and `0`; `rn` and `m`; `vv` and
 * `w`), so that `AIice` cannot stand beside `Alice`, nor `rnallory` beside
 * `mallory`. Two names with one key cannot both be held.
 *
 * @example
 * ```ts
 * import { nameKey } from "./names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nameKey("AIice"), nameKey("alice"));
 * assert.equal(nameKey("b0b"), nameKey("Bob"));
 * assert.equal(nameKey("rnallory"), nameKey("mallory"));
 * assert.notEqual(nameKey("ana"), nameKey("ane"));
 * ```
 */
export function nameKey(name: string): string {
  return name.toLowerCase()
    .replace(/rn/g, "m")
    .replace(/vv/g, "w")
    .replace(/[il1|]/g, "l")
    .replace(/0/g, "o");
}

/**
 * Checks a room name: `#` and 1 to 32 ASCII letters, digits, `_` or `-`.
 * Returns null when acceptable, or the reason.
 *
 * @example
 * ```ts
 * import { checkRoomName } from "./names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkRoomName("#dev"), null);
 * assert.match(checkRoomName("dev")!, /starts with "#"/);
 * ```
 */
export function checkRoomName(room: string): string | null {
  if (ROOM.test(room)) return null;
  if (!room.startsWith("#")) return `a room name starts with "#", as in #${room}`;
  return room.length < 2 || room.length > MAX_NAME + 1
    ? `a room name has "#" and 1 to ${MAX_NAME} characters`
    : `the room name "${room}" has characters other than letters, digits, "_" and "-"`;
}

/** The key under which a room name is unique: lower case. */
export function roomKey(room: string): string {
  return room.toLowerCase();
}
