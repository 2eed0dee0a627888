/**
 * What a client reads from a server, as typed events when the server is
 * charla and as plain lines otherwise.
 *
 * A charla server greets with `* welcome, you are <name>`. The client then
 * asks for JSON lines (`/json`); the server sends where the client stands
 * again, as JSON (its name, its room, the room's history), and everything
 * after. Text lines between the greeting and the first JSON line are
 * superseded by that JSON, so they are not shown: what could be lost is a
 * presence notice in the round trip after connecting (room lines are in the
 * history the server sends again). Any other server (`ncat -l`, a Python
 * tutorial's) is shown line by line as it is.
 *
 * @module
 */

import type { ChatEvent, ClosingReason } from "../core/messages.ts";
import type { ReadSink } from "../net/connection.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The greeting that tells a charla server. */
const GREETING = /^\* welcome, you are \S+$/;
/** What an older charla says to `/json`: it stays in text. */
const NO_JSON = /^\* error: unknown command "\/json"/;
/** Most text lines held while waiting for JSON; more, and the server is taken as text-only. */
const MAX_HELD = 1000;
/**
 * A server that says nothing this long after the connection is not waited for
 * (`ncat -l` speaks when its operator types): typed lines go.
 */
const FIRST_LINE_WAIT_MS = 2000;

/** What a server said as it let the client go (or would not let it in). */
export interface Farewell {
  /**
   * `denied` or `full`: refused at the door; `password`: the server needs a
   * password and did not get the right one; the rest: see `ClosingReason`.
   */
  readonly reason: ClosingReason | "denied" | "full" | "password";
  /** What the server said, for people. */
  readonly text: string;
}

/** The first line of a server that turns the client away (the line protocol's refusals). */
const REFUSED: readonly [RegExp, Farewell["reason"]][] = [
  [/^\* access denied$/, "denied"],
  [/^\* server full$/, "full"],
  [/^\* you are banned\b/, "banned"],
  [/^\* wrong password$/, "password"],
  [/^\* too many wrong passwords\b/, "password"],
];

/** What a charla server with a password sends first (see core/password.ts). */
const PASSWORD_REQUEST = /^\* this server needs a password\b/;

/**
 * Where the password comes from when a server asks for one: a string, or
 * null when there is none to give (the reader then ends the connection, with
 * a `password` farewell).
 */
export type PasswordSource = () => string | null | Promise<string | null>;

/** Options for {@linkcode ServerReader}. */
export interface ServerReaderOptions {
  /** Asked when the server wants a password. @default there is none */
  password?: PasswordSource;
  /** Ends the connection (a server that wants a password we do not have). */
  close?: () => void;
}

/** Where a {@linkcode ServerReader} reports what the server sent. */
export interface ServerView {
  /** A typed event from a charla server. */
  event(event: ChatEvent): void;
  /** A line as it came (another server, or a line that is not JSON), without its `\n`. */
  text(line: string): void;
  /** The server sent a line too long to take. */
  overlong?(): void;
  /** End of a read; a promise pushes back (the screen is behind). */
  flush?(): void | Promise<unknown>;
}

/**
 * Reads one connection: reports typed events or lines to a view, and says
 * when typed lines may go (once the server is known to be charla and speaks
 * JSON, or is known not to be).
 *
 * @example
 * ```ts
 * import { ServerReader } from "./server_reader.ts";
 * import type { ChatEvent, ClosingReason } from "../core/messages.ts";
 * import assert from "node:assert/strict";
 *
 * const events: ChatEvent[] = [];
 * const sent: string[] = [];
 * const reader = new ServerReader(
 *   { event: (e) => events.push(e), text: () => {} },
 *   (bytes) => sent.push(new TextDecoder().decode(bytes)),
 * );
 * const feed = (line: string) => {
 *   const bytes = new TextEncoder().encode(line);
 *   reader.line(bytes, 0, bytes.length);
 * };
 * feed("* welcome, you are user1");
 * assert.deepEqual(sent, ["/json\n"]);
 * feed('{"type":"welcome","you":{"id":1,"name":"user1"},"server":"charla"}');
 * await reader.ready;
 * assert.equal(events[0].type, "welcome");
 * ```
 */
export class ServerReader implements ReadSink {
  /** Settles once typed lines may be sent. */
  readonly ready: Promise<void>;
  readonly #view: ServerView;
  readonly #send: (bytes: Uint8Array) => void;
  readonly #ready: () => void;
  /**
   * `first` line to come; `password` being asked for; `switching` to JSON;
   * then `json` or `text` for good.
   */
  #state: "first" | "password" | "switching" | "json" | "text" = "first";
  readonly #options: ServerReaderOptions;
  /** Text lines held while switching. */
  #held: string[] = [];
  /** Stops waiting for a silent server's first line. */
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** A reader reporting to `view`, answering the server through `send`. */
  constructor(
    view: ServerView,
    send: (bytes: Uint8Array) => void,
    options: ServerReaderOptions = {},
  ) {
    this.#view = view;
    this.#send = send;
    this.#options = options;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.ready = promise;
    this.#ready = () => {
      clearTimeout(this.#timer);
      resolve();
    };
    this.#timer = setTimeout(this.#ready, FIRST_LINE_WAIT_MS);
  }

  /**
   * Someone typed a line before the server said anything: do not hold it back
   * (a server that waits for its client to speak first would wait forever).
   */
  hurry(): void {
    if (this.#state === "first") this.#ready();
  }

  /** How the server ended the connection, when it said; null otherwise. */
  farewell: Farewell | null = null;

  /** Whether the server speaks JSON to us. */
  get json(): boolean {
    return this.#state === "json";
  }

  line(buf: Uint8Array, start: number, end: number): void {
    const line = decoder.decode(buf.subarray(start, end));
    switch (this.#state) {
      case "first":
        if (GREETING.test(line)) {
          this.#state = "switching";
          this.#held.push(line);
          this.#send(encoder.encode("/json\n"));
        } else if (PASSWORD_REQUEST.test(line) && this.#options.close !== undefined) {
          this.#askPassword(line);
        } else {
          for (const [pattern, reason] of REFUSED) {
            if (pattern.test(line)) this.farewell = { reason, text: line.slice(2) };
          }
          this.#toText([line]);
        }
        return;
      case "password":
        // Nothing is said before the password is sent (a server that is not
        // charla and asks: shown as it is).
        return this.#view.text(line);
      case "switching":
        if (line.startsWith("{")) {
          this.#state = "json";
          this.#held = [];
          this.#ready();
          return this.#json(line);
        }
        this.#held.push(line);
        if (NO_JSON.test(line) || this.#held.length > MAX_HELD) this.#toText(this.#held);
        return;
      case "json":
        return this.#json(line);
      case "text":
        return this.#view.text(line);
    }
  }

  overlong(): void {
    this.#view.overlong?.();
  }

  flush(): void | Promise<unknown> {
    return this.#view.flush?.();
  }

  end(): void {
    // A server that closed while we waited: what it said is shown as it was.
    if (this.#state === "switching") this.#toText(this.#held);
    if (this.#state === "password") this.#state = "text";
    // Refused or sent away: typed lines were not sent, and must not count as sent.
    if (this.farewell !== null) clearTimeout(this.#timer);
    else this.#ready();
  }

  /**
   * The server wants a password: typed lines wait (the first-line timer is
   * stopped) while it is found and sent; then the greeting is expected as
   * usual, or a refusal.
   */
  #askPassword(request: string): void {
    clearTimeout(this.#timer);
    this.#state = "password";
    const answer = (password: string | null) => {
      if (this.#state !== "password") return; // the connection ended meanwhile
      if (password === null) {
        this.farewell = { reason: "password", text: request.slice(2) };
        this.#state = "text";
        this.#options.close!();
        return;
      }
      this.#state = "first";
      this.#send(encoder.encode(`/pass ${password}\n`));
    };
    const ask = this.#options.password ?? (() => null);
    let password;
    try {
      password = ask();
    } catch {
      password = null;
    }
    if (password instanceof Promise) password.then(answer, () => answer(null));
    else answer(password);
  }

  /** This server speaks text: show what was held and go on as text. */
  #toText(lines: string[]): void {
    this.#state = "text";
    this.#held = [];
    for (const line of lines) this.#view.text(line);
    this.#ready();
  }

  #json(line: string): void {
    let event: ChatEvent;
    try {
      event = JSON.parse(line);
    } catch {
      return this.#view.text(line);
    }
    if (typeof event !== "object" || event === null || typeof event.type !== "string") {
      return this.#view.text(line);
    }
    if (event.type === "closing") this.farewell = { reason: event.reason, text: event.text };
    this.#view.event(event);
  }
}
