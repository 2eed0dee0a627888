/**
 * The registry of connected peers and who receives what. It does no I/O of its
 * own: sending means queueing on each peer's bounded send queue, which returns
 * at once, so a broadcast never waits on a slow peer.
 *
 * Like the broadcaster goroutine of the Go book's chat, the hub is the single
 * owner of the registry. JavaScript runs one callback at a time, so there is no
 * lock; the rule that replaces it is that no method awaits between reading the
 * registry and changing it (none of them awaits at all).
 *
 * @module
 */

/** What the hub needs of a peer. */
export interface HubPeer {
  /** Unique for the life of the server, never reused. */
  readonly id: number;
  /** Unique ignoring case; changed only through {@linkcode Hub.rename}. */
  name: string;
  /** Queues bytes for the peer without waiting; false when they were not queued. */
  send(bytes: Uint8Array): boolean;
}

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
const DEFAULT_NAME = /^user(\d+)$/i;

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
 * import { checkName } from "./hub.ts";
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
  if (/^\d+$/.test(name)) return `the name "${name}" is only digits, which mean a client number`;
  if (RESERVED_NAMES.has(name.toLowerCase())) return `the name "${name}" is reserved`;
  const numbered = DEFAULT_NAME.exec(name);
  if (numbered !== null && Number(numbered[1]) !== id) {
    return `the name "${name}" is reserved for client #${Number(numbered[1])}`;
  }
  return null;
}

/**
 * The registry of peers, by id and by name (ignoring case).
 *
 * @example
 * ```ts
 * import { Hub } from "./hub.ts";
 * import assert from "node:assert/strict";
 *
 * const got: string[] = [];
 * const peer = (id: number) => ({
 *   id,
 *   name: `user${id}`,
 *   send: (b: Uint8Array) => got.push(`${id}:${new TextDecoder().decode(b)}`) > 0,
 * });
 * const hub = new Hub();
 * const [a, b] = [peer(1), peer(2)];
 * hub.add(a);
 * hub.add(b);
 * hub.broadcast(new TextEncoder().encode("hi\n"), a);
 * assert.deepEqual(got, ["2:hi\n"]);
 * assert.equal(hub.find("USER2"), b);
 * assert.equal(hub.find("#1"), a);
 * ```
 */
export class Hub<P extends HubPeer = HubPeer> {
  /** Every peer, in the order they joined. */
  readonly #byId = new Map<number, P>();
  /** Every peer by lower-cased name; kept in step with `#byId`. */
  readonly #byName = new Map<string, P>();

  /** How many peers are registered. */
  get size(): number {
    return this.#byId.size;
  }

  /** Registers a peer under its current name, which must be free. */
  add(peer: P): void {
    const key = peer.name.toLowerCase();
    if (this.#byId.has(peer.id) || this.#byName.has(key)) {
      throw new Error(`Peer #${peer.id} "${peer.name}" is already registered`);
    }
    this.#byId.set(peer.id, peer);
    this.#byName.set(key, peer);
  }

  /** Removes a peer; false when it was not registered. */
  remove(peer: P): boolean {
    if (this.#byId.get(peer.id) !== peer) return false;
    this.#byId.delete(peer.id);
    this.#byName.delete(peer.name.toLowerCase());
    return true;
  }

  /**
   * Gives a registered peer a new name. Returns false, changing nothing, when
   * another peer holds that name in any case. (Checking the name's form is the
   * caller's job: see {@linkcode checkName}.)
   */
  rename(peer: P, name: string): boolean {
    const key = name.toLowerCase();
    const holder = this.#byName.get(key);
    if (holder !== undefined && holder !== peer) return false;
    this.#byName.delete(peer.name.toLowerCase());
    peer.name = name;
    this.#byName.set(key, peer);
    return true;
  }

  /** The peer with this name (any case), or this id (`7` or `#7`). */
  find(target: string): P | undefined {
    const byName = this.#byName.get(target.toLowerCase());
    if (byName !== undefined) return byName;
    const id = /^#?(\d{1,15})$/.exec(target);
    return id === null ? undefined : this.#byId.get(Number(id[1]));
  }

  /** Every peer, in the order they joined. */
  peers(): IterableIterator<P> {
    return this.#byId.values();
  }

  /**
   * Queues the same bytes for every peer but `except`. The buffer is shared, not
   * copied: it must not change afterwards. Never waits.
   */
  broadcast(bytes: Uint8Array, except?: P): void {
    for (const peer of this.#byId.values()) {
      if (peer !== except) peer.send(bytes);
    }
  }
}
