/**
 * The directory: who is connected, by id and by name. It is the one owner of
 * ids and names; rooms hold members, not names.
 *
 * Ids come from an {@linkcode IdSource} and names are checked with a
 * {@linkcode NameClaims}, so that when several processes share rooms both can
 * ask a shared store: ids stay unique across processes (the `user<n>` rule
 * depends on it) and a name is held by one person in the whole cluster. Alone,
 * both are local and answer at once.
 *
 * JavaScript runs one callback at a time, so there is no lock; the rule that
 * replaces it is that no method awaits between reading the maps and changing
 * them. The one await, a claim's answer, is followed by a fresh check.
 *
 * @module
 */

import { nameKey } from "./names.ts";

/** What the directory keeps of a person: a local session or, in a cluster, a remote one. */
export interface Entry {
  /** Unique for the life of the server or cluster, never reused. */
  readonly id: number;
  /** Unique by {@linkcode nameKey}; changed only through {@linkcode Directory.rename}. */
  name: string;
}

/** Hands out ids. */
export interface IdSource {
  /** A new id, never handed out before. */
  next(): number;
}

/** A local counter from 1: the ids of a server that is alone. */
export class CounterIds implements IdSource {
  #next = 1;
  next(): number {
    return this.#next++;
  }
}

/**
 * Asks whether a name may be taken beyond this process. A cluster claims it in
 * a shared store; alone, there is nothing to ask and this is not given.
 */
export interface NameClaims {
  /** Resolves true when `key` is now held by `holder`, false when someone else holds it. */
  claim(key: string, holder: Entry): Promise<boolean>;
  /** Gives up a name held by `holder`. */
  release(key: string, holder: Entry): void;
}

/** The outcome of {@linkcode Directory.rename}. */
export type RenameResult = "renamed" | "taken" | "same" | "gone";

/**
 * Everyone connected, by id and by name key.
 *
 * @example
 * ```ts
 * import { Directory } from "./directory.ts";
 * import assert from "node:assert/strict";
 *
 * const directory = new Directory();
 * const ana = { id: directory.nextId(), name: "user1" };
 * directory.add(ana);
 * assert.equal(await directory.rename(ana, "ana"), "renamed");
 * assert.equal(directory.find("ANA"), ana);
 * assert.equal(directory.find("#1"), ana);
 * const other = { id: directory.nextId(), name: "user2" };
 * directory.add(other);
 * assert.equal(await directory.rename(other, "AnA"), "taken");
 * ```
 */
export class Directory<E extends Entry = Entry> {
  readonly #ids: IdSource;
  readonly #claims: NameClaims | null;
  /** Every entry, in the order they were added. */
  readonly #byId = new Map<number, E>();
  /** Every entry by name key; kept in step with `#byId`. */
  readonly #byKey = new Map<string, E>();

  /** A directory; ids from `ids`, names claimed beyond this process through `claims`. */
  constructor(options: { ids?: IdSource; claims?: NameClaims } = {}) {
    this.#ids = options.ids ?? new CounterIds();
    this.#claims = options.claims ?? null;
  }

  /** How many entries there are. */
  get size(): number {
    return this.#byId.size;
  }

  /** A new id for someone about to be added. */
  nextId(): number {
    return this.#ids.next();
  }

  /**
   * Adds an entry under its current name, which must be free here (a default
   * `user<id>` name always is, since ids are unique).
   */
  add(entry: E): void {
    const key = nameKey(entry.name);
    if (this.#byId.has(entry.id) || this.#byKey.has(key)) {
      throw new Error(`Entry #${entry.id} "${entry.name}" is already registered`);
    }
    this.#byId.set(entry.id, entry);
    this.#byKey.set(key, entry);
  }

  /** Removes an entry and gives up its name; false when it was not there. */
  remove(entry: E): boolean {
    if (this.#byId.get(entry.id) !== entry) return false;
    this.#byId.delete(entry.id);
    const key = nameKey(entry.name);
    if (this.#byKey.get(key) === entry) this.#byKey.delete(key);
    this.#claims?.release(key, entry);
    return true;
  }

  /**
   * Gives an entry a new name, if nobody else holds it or a look-alike of it.
   * (Checking the name's form is the caller's job: see `checkName`.) Answers at
   * once alone; in a cluster, after the shared store did.
   */
  rename(entry: E, name: string): RenameResult | Promise<RenameResult> {
    if (name === entry.name) return "same";
    const key = nameKey(name);
    const holder = this.#byKey.get(key);
    if (holder !== undefined && holder !== entry) return "taken";
    if (this.#claims === null || holder === entry) return this.#setName(entry, name);
    return this.#claims.claim(key, entry).then((granted) => {
      // The world may have changed while the store answered: check again.
      const now = this.#byKey.get(key);
      if (!granted || (now !== undefined && now !== entry)) {
        if (granted) this.#claims!.release(key, entry);
        return "taken";
      }
      if (this.#byId.get(entry.id) !== entry) {
        this.#claims!.release(key, entry);
        return "gone";
      }
      return this.#setName(entry, name);
    });
  }

  #setName(entry: E, name: string): RenameResult {
    const oldKey = nameKey(entry.name);
    const key = nameKey(name);
    if (this.#byKey.get(oldKey) === entry) this.#byKey.delete(oldKey);
    if (oldKey !== key) this.#claims?.release(oldKey, entry);
    entry.name = name;
    this.#byKey.set(key, entry);
    return "renamed";
  }

  /** The entry with this name (any case, or a look-alike), or this id (`7` or `#7`). */
  find(target: string): E | undefined {
    // Ids first: no name is only digits, but "1" is a look-alike of the name "l".
    const id = /^#?(\d{1,15})$/.exec(target);
    if (id !== null) return this.#byId.get(Number(id[1]));
    return this.#byKey.get(nameKey(target));
  }

  /** The entry with this id. */
  get(id: number): E | undefined {
    return this.#byId.get(id);
  }

  /** Every entry, in the order they were added. */
  entries(): IterableIterator<E> {
    return this.#byId.values();
  }
}
