/**
 * The generator's side of one connection: connect, wait for the welcome, then
 * read lines into a scenario's handler, with no string and no allocation per line.
 *
 * @module
 */

import { GT, LF, LT, readDigits, STAR } from "./lines.ts";

/** Receives the lines a {@linkcode BenchClient} reads, other than notices. */
export interface LineHandler {
  /**
   * When every line this handler accepts is `<userN> ` followed by exactly this
   * many bytes, the read loop predicts where a line ends instead of searching for
   * its `\n` (a search per line costs the generator about as much as all its
   * checks). `line()` must then check every byte of the line, so that a line it
   * accepts cannot hide an earlier `\n`; on a rejection the loop searches anyway.
   */
  readonly payloadBytes?: number;
  /**
   * One line: `buf[start..end)`, without its line ending; `view` is a DataView of
   * `buf` (index 0 is `buf[0]`), made once per connection. Returns false, having
   * changed nothing, when the line is malformed; the client counts it then. The
   * bytes are only valid during the call: the read buffer is reused.
   */
  line(buf: Uint8Array, start: number, end: number, view: DataView): boolean;
}

/** How a {@linkcode BenchClient} connects and reads. */
export interface ClientOptions {
  /**
   * Size of the read buffer, kept for the connection's life. Large for clients
   * that receive floods (fewer reads, so fewer round trips into the runtime),
   * small when thousands of clients sit idle.
   * @default {65536}
   */
  bufferSize?: number;
  /**
   * Record `performance.now()` after every read in {@linkcode BenchClient.readAt}:
   * the arrival time of every line in that read, for latency.
   * @default {false}
   */
  timestamps?: boolean;
}

const WELCOME = new TextEncoder().encode("* welcome, you are user");
const CR = 0x0d;

/** One generator connection to the server under test. */
export class BenchClient {
  /** The socket. */
  readonly conn: Deno.TcpConn;
  /** `N` of the `userN` name the welcome line gave; 0 until then. */
  user = 0;
  /** Where lines other than notices go; when null they are counted in `rejected`. */
  handler: LineHandler | null = null;
  /** Notices (`* ` lines) after the welcome: counted, not checked. */
  notices = 0;
  /** Lines that were not notices and that the handler rejected (or that had no handler). */
  rejected = 0;
  /** Lines longer than the read buffer that were not notices: they were skipped. */
  overlong = 0;
  /** When the latest read completed (`performance.now()`), if timestamps are on. */
  readAt = 0;
  /** True once the read loop has ended: the server closed, or we did. */
  closed = false;
  /** The error that ended the read loop, if one did. */
  error: Error | null = null;
  /** Resolves when the read loop ends. */
  readonly finished: Promise<void>;
  /** Settled by the welcome line, or by the connection ending before it. */
  readonly #welcome = Promise.withResolvers<void>();
  /** Whether to stamp `readAt`. */
  readonly #timestamps: boolean;
  /** Set by waitNotice(): who is waiting for which notice. */
  #noticeWaiter: {
    match: (text: string) => boolean;
    resolve: (text: string) => void;
    reject: (error: Error) => void;
  } | null = null;

  private constructor(conn: Deno.TcpConn, options: ClientOptions) {
    this.conn = conn;
    this.#timestamps = options.timestamps ?? false;
    this.#welcome.promise.catch(() => {}); // awaited by connect(); never an unhandled rejection
    this.finished = this.#readLoop(options.bufferSize ?? 65_536);
  }

  /** Connects to 127.0.0.1:`port` and waits for the welcome line. */
  static async connect(port: number, options: ClientOptions = {}): Promise<BenchClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    // Deno.connect leaves Nagle on; without this a lone small write can wait for an ACK.
    conn.setNoDelay(true);
    const client = new BenchClient(conn, options);
    await client.#welcome.promise;
    return client;
  }

  /** Writes all of `bytes`, looping over partial writes. */
  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      done += await this.conn.write(done === 0 ? bytes : bytes.subarray(done));
    }
  }

  /**
   * Waits for the next notice (a `* ` line, decoded, line ending removed) that
   * `match` accepts, for at most `ms`: a server that never answers fails the wait
   * instead of hanging it. Rejects as well when the connection ends first. One
   * wait at a time; call it before sending what the notice answers.
   */
  waitNotice(match: (text: string) => boolean, ms: number): Promise<string> {
    if (this.#noticeWaiter !== null) throw new Error("Already waiting for a notice");
    if (this.closed) return Promise.reject(new Error("The connection has ended"));
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    const timer = setTimeout(() => {
      this.#noticeWaiter = null;
      reject(new Error(`No answer from the server in ${ms} ms`));
    }, ms);
    this.#noticeWaiter = {
      match,
      resolve: (text) => {
        clearTimeout(timer);
        resolve(text);
      },
      reject: (error) => {
        clearTimeout(timer);
        reject(error);
      },
    };
    return promise;
  }

  /** Closes the socket; the read loop then ends. Safe to call twice. */
  close(): void {
    try {
      this.conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  async #readLoop(bufferSize: number): Promise<void> {
    const buf = new Uint8Array(bufferSize);
    const dataView = new DataView(buf.buffer);
    let carry = 0; // bytes of a partial line kept at buf[0..carry)
    let skipping = false; // inside a line longer than buf, discarded up to its "\n"
    try {
      while (true) {
        const n = await this.conn.read(carry === 0 ? buf : buf.subarray(carry));
        if (n === null) break;
        if (this.#timestamps) this.readAt = performance.now();
        const end = carry + n;
        // A view that ends at the data, so indexOf cannot find a stale "\n" beyond it.
        const view = end === buf.length ? buf : buf.subarray(0, end);
        let pos = 0;
        if (skipping) {
          const nl = view.indexOf(LF);
          if (nl < 0) {
            carry = 0;
            continue;
          }
          skipping = false;
          pos = nl + 1;
        }
        const fixed = this.handler?.payloadBytes ?? 0;
        while (true) {
          if (fixed > 0 && view[pos] === LT) {
            // "<user" N "> " payload: the ">" is a few digits on, the "\n" right after.
            let gt = pos + 5;
            const limit = Math.min(pos + 16, end);
            while (gt < limit && view[gt] !== GT) gt++;
            const guess = gt + 2 + fixed;
            if (
              guess < end && view[guess] === LF && this.handler!.line(view, pos, guess, dataView)
            ) {
              pos = guess + 1;
              continue;
            }
          }
          const nl = view.indexOf(LF, pos);
          if (nl < 0) break;
          this.#line(view, pos, nl, dataView);
          pos = nl + 1;
        }
        if (pos === end) {
          carry = 0;
        } else if (pos === 0 && end === buf.length) {
          if (buf[0] !== STAR) this.overlong++; // a long notice (a huge "online" list) is fine
          skipping = true;
          carry = 0;
        } else {
          buf.copyWithin(0, pos, end);
          carry = end - pos;
        }
      }
    } catch (error) {
      // Expected: ConnectionReset from the server, BadResource or Interrupted when we
      // close the socket under the pending read. Anything else is recorded too, not
      // thrown: nobody awaits this loop until the end, so a throw would be an
      // unhandled rejection that kills the whole run; the scenarios report it.
      this.error = error instanceof Error ? error : new Error(String(error));
    } finally {
      this.closed = true;
      if (this.user === 0) this.#welcome.reject(new Error("Connection ended before the welcome"));
      this.#noticeWaiter?.reject(new Error("The connection ended before the expected notice"));
      this.#noticeWaiter = null;
    }
  }

  #line(buf: Uint8Array, start: number, end: number, view: DataView): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (this.user === 0) {
      const user = isWelcome(buf, start, end) ? readDigits(buf, start + WELCOME.length, end) : -1;
      if (user <= 0) {
        const text = new TextDecoder().decode(buf.subarray(start, end));
        this.#welcome.reject(new Error(`Expected a welcome line first, got "${text}"`));
        this.close();
        return;
      }
      this.user = user;
      this.#welcome.resolve();
    } else if (buf[start] === STAR) {
      this.notices++;
      const waiter = this.#noticeWaiter;
      if (waiter !== null) {
        const text = new TextDecoder().decode(buf.subarray(start, end));
        if (waiter.match(text)) {
          this.#noticeWaiter = null;
          waiter.resolve(text);
        }
      }
    } else if (this.handler === null || !this.handler.line(buf, start, end, view)) {
      this.rejected++;
    }
  }
}

function isWelcome(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start <= WELCOME.length) return false;
  for (let i = 0; i < WELCOME.length; i++) {
    if (buf[start + i] !== WELCOME[i]) return false;
  }
  return true;
}

/**
 * Opens `count` connections, at most `concurrency` at a time, each waiting for its
 * welcome. Batches: opening thousands at once would overflow the listen backlog
 * (dropped SYNs are retried only after a second) and measure the kernel rather
 * than the server. Throws if one fails, after closing those already open.
 */
export async function connectMany(
  port: number,
  count: number,
  options: ClientOptions & { concurrency?: number } = {},
): Promise<BenchClient[]> {
  const clients: BenchClient[] = [];
  const concurrency = Math.min(options.concurrency ?? 100, count);
  let started = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (started < count && failure === null) {
      started++;
      try {
        clients.push(await BenchClient.connect(port, options));
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== null) {
    for (const client of clients) client.close();
    throw new Error(`Connection ${clients.length + 1} of ${count} failed: ${failure}`, {
      cause: failure,
    });
  }
  return clients;
}

/** Closes every client and waits for their read loops to end. */
export async function closeAll(clients: BenchClient[]): Promise<void> {
  for (const client of clients) client.close();
  await Promise.all(clients.map((client) => client.finished));
}
