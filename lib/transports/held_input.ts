/**
 * Input a peer's read loop got while that peer must wait: for a command that
 * finishes later (a name claimed in a cluster's shared store), for a password
 * being checked, or for its commands' share of server time. The lines wait, in
 * order, and run when the wait is over; the read loop waits with them (the
 * transport's `flush()` returns {@linkcode HeldInput.pending}), so at most one
 * read's worth is ever held. The line and IRC transports hold input with it.
 *
 * @module
 */

/** What a transport tells {@linkcode HeldInput} about its peer. */
export interface HeldInputOwner {
  /** Undefined when `line` may run now; otherwise what it must wait for first. */
  mustWait(line: Uint8Array): Promise<unknown> | undefined;
  /** Runs one line (it may hold the input again: {@linkcode HeldInput.until}). */
  handle(line: Uint8Array): void;
  /** Sends the replies to the lines run so far: before input waits, and once it ran out. */
  flushOut(): void;
  /** What the read loop waits for once nothing is held (the session's flow control). */
  drained(): Promise<unknown> | undefined;
  /** Whether the peer is gone: what is still held is dropped. */
  gone(): boolean;
}

/** The lines held for one peer, and the promise that runs them. */
export class HeldInput {
  readonly #owner: HeldInputOwner;
  /** Lines waiting, oldest first; null while nothing is held. */
  #queued: Uint8Array[] | null = null;
  /** Settles once the held lines have run (or wait again); null while nothing is held. */
  #pending: Promise<unknown> | null = null;

  constructor(owner: HeldInputOwner) {
    this.#owner = owner;
  }

  /** Whether input is held now: a line read now must be {@linkcode HeldInput.push}ed. */
  get holding(): boolean {
    return this.#queued !== null;
  }

  /** What the read loop must wait for besides the session; null while nothing is held. */
  get pending(): Promise<unknown> | null {
    return this.#pending;
  }

  /**
   * What the read loop waits for before it reads on: `wait` (the session's
   * flow control) and, while lines are held, their run.
   */
  andHeld(wait: Promise<unknown> | undefined): Promise<unknown> | undefined {
    const pending = this.#pending;
    if (pending === null) return wait;
    return wait === undefined ? pending : Promise.all([wait, pending]);
  }

  /** Holds a copy of `buf[start..end)` after the lines held already. */
  push(buf: Uint8Array, start: number, end: number): void {
    (this.#queued ??= []).push(buf.slice(start, end));
  }

  /**
   * Holds input until `wait` settles, after `held` (lines held already, in
   * order); then runs them. Replies so far go out first.
   */
  wait(wait: Promise<unknown>, held: Uint8Array[] = []): Promise<unknown> {
    this.#owner.flushOut();
    this.#queued = held;
    return this.#pending = wait.then(() => this.#run(this.#take()));
  }

  /**
   * Holds input until `later` settles, then calls `then` with its value and
   * runs what was held, unless `then` returns false (a refused password: the
   * held lines are dropped). If `then` holds input again, what was held waits
   * on, ahead of anything read later.
   */
  until<T>(later: Promise<T>, then?: (value: T) => boolean | void): void {
    this.#queued ??= [];
    this.#pending = later.then((value) => {
      const held = this.#take();
      return then?.(value) === false ? undefined : this.#run(held);
    });
  }

  /** Empties the queue and returns what it held. */
  #take(): Uint8Array[] {
    const held = this.#queued ?? [];
    this.#queued = null;
    this.#pending = null;
    return held;
  }

  /** Runs `held` in order, until a line has to wait or input is held again. */
  #run(held: Uint8Array[]): Promise<unknown> | undefined {
    const owner = this.#owner;
    let i = 0;
    for (; i < held.length && this.#queued === null; i++) {
      const wait = owner.mustWait(held[i]);
      if (wait !== undefined) return this.wait(wait, held.slice(i));
      owner.handle(held[i]);
      if (owner.gone()) return undefined;
    }
    if (this.#queued !== null) {
      // Held again, by a command that finishes later or by until()'s callback:
      // the rest wait, ahead of what is read meanwhile, and so does the read
      // loop (it waits for the promise this one returns).
      this.#queued.unshift(...held.slice(i));
      return this.#pending ?? undefined;
    }
    owner.flushOut();
    return owner.drained();
  }
}
