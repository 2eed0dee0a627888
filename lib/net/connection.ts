/**
 * One `Deno.Conn` at the level of lines: a read loop that feeds a
 * {@linkcode LineDecoder}, and a bounded send queue that coalesces whatever was
 * queued while a write was under way into one write.
 *
 * The traps this module exists for (see DENO_NOTES.md): `conn.write()` may write
 * part of its buffer; a write to a peer that does not read never finishes, so only
 * a bounded queue of our own can tell a slow peer; `conn.readable` would hold a
 * 64 KiB chunk per idle connection, so reads go through `conn.read()` into a buffer
 * that stays small while the peer is quiet.
 *
 * @module
 */

import { LineDecoder, type LineSink } from "../wire/frame.ts";
import { leaseBytes, release, retain } from "../wire/shared_bytes.ts";
import { IAC, TelnetFilter } from "../wire/telnet.ts";

/** Default bound on bytes queued for one peer: past it the peer is behind. */
export const DEFAULT_SEND_QUEUE = 1024 * 1024;
/**
 * Default hard limit, as a multiple of the send queue: a peer whose queue would
 * go past it is closed at once. Behind the mark, senders are told to wait, but
 * reads already under way still land (one per sender), so the limit leaves room
 * for them; it is what bounds a peer's memory when nothing else does.
 */
export const HARD_LIMIT_FACTOR = 8;

/**
 * Read buffer sizes. A quiet peer holds the smallest (10,000 idle peers each
 * hold one), because a pending read keeps its buffer for as long as the peer
 * is silent. A full smallest read means more is waiting: the next read is
 * 16 KiB (or the size the last burst reached), so a burst costs two reads
 * before it is read 64 KiB at a time, not three, and each read is a batch
 * relayed to the whole room. (Through 1 KiB first, a sender's 16 KB burst was
 * three batches: at 1,000 clients, 20% more server CPU per delivery, measured.
 * Holding those 64 bytes to relay them with the next read as one batch held a
 * lone line of exactly 64 bytes until its sender said more.) A short read
 * from a large buffer (the peer is caught up, and may now go quiet) moves back
 * to the smallest, unless the peer is streaming (see {@linkcode STREAM_BYTES}),
 * or to 1 KiB when it brought one line of 64 B to 1 KiB: a person typing long
 * lines stays there, and it goes back only after a read under 64 bytes: one
 * read per line, not two.
 */
const READ_SIZES = [64, 1024, 16 * 1024, 64 * 1024];
/**
 * The zero a field that holds times (`performance.now()`, fractions of a
 * millisecond) starts at: -0 equals 0, but it is not a small integer, so V8
 * stores the field as a double from the start. A field that starts at 0 and
 * gets its first fraction later (the first read ending mid-line, the first
 * pause) gives every connection a new hidden class then, and the write path
 * compiled for the old one is thrown away: `--trace-deopt` showed `publish`,
 * `send` and `#writeNext` dropped ("wrong map") in a fresh server's first
 * burst, and compiled again under it.
 */
const NO_TIME = -0;
/**
 * A peer that sent more than this beyond what drains at {@linkcode STREAM_RATE}
 * is streaming: a short read that still filled a quarter of a large buffer
 * keeps that buffer, because in a stream the next read comes at once (a small
 * read between each, then the large one again, cost the fan-out bench about
 * 10% of its server CPU). A burst of a few hundred KB does not count.
 */
const STREAM_BYTES = 256 * 1024;
/** Bytes per millisecond (1 MB/s) the recent-bytes count of a connection leaks. */
const STREAM_RATE = 1024;
/**
 * Read buffers larger than the smallest, given back by connections whose
 * burst ended, for the next burst anywhere: going back to the small buffer
 * after every short read would otherwise allocate a large one each time the
 * next read is full (measured: several MiB more garbage, and peak memory, in
 * a busy room). Bounded per size; a buffer is given back only once the read
 * that filled it has been handled (nothing keeps a view of it: see LineSink).
 */
const sparePool = new Map<number, Uint8Array[]>();
const SPARES_PER_SIZE = 32;

function takeBuffer(size: number): Uint8Array {
  return sparePool.get(size)?.pop() ?? new Uint8Array(size);
}

function giveBuffer(buffer: Uint8Array): void {
  let spares = sparePool.get(buffer.length);
  if (spares === undefined) sparePool.set(buffer.length, spares = []);
  if (spares.length < SPARES_PER_SIZE) spares.push(buffer);
}
/**
 * Chunks smaller than this are merged with their neighbours into one write...
 * (16 KiB before joins were shared: a room of 1,000 whose 10 senders each said
 * 16 KB in one go got about 12 writes per peer, now 5, and the server's CPU
 * per delivery went from 80 to 52 ns, medians of 8 alternating runs each.)
 */
const SMALL_CHUNK = 64 * 1024;
/** ...up to about this many bytes per write. */
const COALESCE_UP_TO = 64 * 1024;
/**
 * Joins made lately, by the chunks they join. Peers of one room are queued the
 * same chunks (what each sender said, encoded once for all), so the next peer
 * to write the same run of chunks writes the same join: one copy for the room,
 * not one per peer. Each join is a leased buffer (wire/shared_bytes.ts) that
 * every peer writing it holds, and this list too until the join drops out of
 * it. A chunk queued is never changed (see `send`), so the same chunks mean
 * the same bytes.
 */
const JOINS_KEPT = 8;
const recentJoins: ({ readonly parts: Uint8Array[]; readonly bytes: Uint8Array } | undefined)[] =
  new Array(JOINS_KEPT);
let nextJoin = 0;

/** `chunks[from..to)` (`size` bytes) in one buffer, held for the caller; see recentJoins. */
function sharedJoin(chunks: Uint8Array[], from: number, to: number, size: number): Uint8Array {
  const count = to - from;
  search: for (const join of recentJoins) {
    if (join === undefined || join.bytes.length !== size || join.parts.length !== count) continue;
    for (let i = 0; i < count; i++) if (join.parts[i] !== chunks[from + i]) continue search;
    retain(join.bytes);
    return join.bytes;
  }
  const bytes = joinInto(leaseBytes(size), chunks, from, to);
  release(recentJoins[nextJoin]?.bytes);
  recentJoins[nextJoin] = { parts: chunks.slice(from, to), bytes };
  nextJoin = (nextJoin + 1) % JOINS_KEPT;
  retain(bytes); // the caller's hold; the lease's own is the list's
  return bytes;
}

/**
 * Writes in flight at once, across all connections. Each `conn.write()` under
 * way costs the runtime more the more others are (measured on Deno 2.9: 7.1 µs
 * each with 100 in flight, 16.2 with 1,000, 26.5 with 9,000), so a broadcast to
 * thousands starts its writes in waves: past this many, a connection with bytes
 * to write waits its turn, and each write that completes starts the next waiting
 * connection's. Order per connection is kept; only when writes start changes.
 * Not fewer: with 256, a room of 1,000 waited on its own waves (fan-out at
 * 1,000 clients, three alternating runs: 5.8-8.6 M deliveries/s against
 * 9.6-10.6 with 1,024), and a broadcast to 10,000 took 127-171 ms against
 * 131-144 (unlimited: 223-263).
 */
export const MAX_WRITES_IN_FLIGHT = 1024;
/**
 * A write to a peer that does not read never completes, and would keep its
 * place among the writes in flight for good. When none has completed for this
 * long while connections wait, the writes then in flight stop counting (they
 * go on, as before), and the waiting ones start.
 */
const WRITE_STALL_MS = 5;
/** How long close() gives the last bytes it writes before the socket closes anyway. */
const FINAL_WRITE_MS = 1_000;

/** What a {@linkcode Connection}'s read loop feeds: lines, and a batch boundary. */
export interface ReadSink extends LineSink {
  /**
   * Called after the lines of each read chunk were delivered, so a sink can send
   * them on as one batch. A returned promise pauses reading until it settles:
   * that is how a slow consumer (say, the operator's terminal) pushes back.
   */
  flush(): void | Promise<unknown>;
  /**
   * Called once when reading stops: with `"eof"`, a close reason, or
   * `"connection lost"`; or with the error that stopped it (then `reason` is
   * `"error: …"`). See {@linkcode Connection.read}.
   */
  end?(reason: CloseReason, error?: unknown): void;
  /**
   * Called when a line took longer than `lineTimeout` to arrive, just before
   * the connection is closed, so the peer can be told why.
   */
  lineTimedOut?(ms: number): void;
  /**
   * Called when a Telnet subnegotiation ran past its bound without its end
   * (see telnet.ts): `bytes` were dropped, and what follows is data again.
   */
  telnetOverlong?(bytes: number): void;
}

/** Options for {@linkcode Connection}. */
export interface ConnectionOptions {
  /**
   * Longest line accepted from the peer, in bytes.
   * @default {65536}
   */
  maxLine?: number;
  /**
   * Bytes queued past which the peer is behind. Without `onBehind`, a send that
   * would queue more closes the connection with the reason `"too slow"`.
   * @default {1048576}
   */
  sendQueue?: number;
  /**
   * Told when the queue goes past `sendQueue` (`behind` true), and when it is
   * back to half of it or the connection closed (false). With it, sends are
   * refused for size only past `hardLimit`: the caller decides what a peer
   * that is behind costs (the chat server pauses some reads, and drops peers
   * that stay behind).
   */
  onBehind?: (connection: Connection, behind: boolean) => void;
  /**
   * Like `onBehind`, for the shared bytes alone (those not sent with
   * `direct`): what others sent through a shared channel, such as a room,
   * as opposed to what was made for this peer (replies, private messages).
   */
  onSharedBehind?: (connection: Connection, behind: boolean) => void;
  /**
   * With `onBehind`: bytes queued past which a send closes the connection with
   * the reason `"too slow"`, whatever the cause.
   * @default {8 * sendQueue}
   */
  hardLimit?: number;
  /**
   * Milliseconds a line may take to arrive, from its first byte to its `\n`:
   * a peer that starts a line and never ends it (a byte a second, to hold a
   * connection open for free) is closed with the reason `"line timeout"`. Time
   * while reading is paused by the sink does not count. 0: no limit.
   * @default {0}
   */
  lineTimeout?: number;
  /**
   * Strip Telnet commands from what the peer sends and refuse its option
   * requests (see telnet.ts), so `telnet` works as a client.
   * @default {false}
   */
  telnet?: boolean;
}

/** Why a connection ended, when it was not the peer's orderly end of input. */
export type CloseReason = string;

const OPEN = 0;
const ENDING = 1;
const CLOSED = 2;

/**
 * A line-oriented connection with a bounded, coalescing send queue.
 *
 * @example An echo server for one client
 * ```ts
 * import { Connection } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = new Connection(await listener.accept());
 * const done = server.readLines({
 *   line: (buf, start, end) => server.send(buf.slice(start, end + 1)), // with its "\n"
 *   overlong: () => {},
 *   flush: () => {},
 * });
 * const sent = new TextEncoder().encode("hola\nadiós\n");
 * await client.write(sent);
 * await client.closeWrite();
 * const reply = new Uint8Array(64);
 * let received = 0;
 * while (received < sent.length) {
 *   const n = await client.read(reply.subarray(received));
 *   if (n === null) break;
 *   received += n;
 * }
 * assert.equal(new TextDecoder().decode(reply.subarray(0, received)), "hola\nadiós\n");
 * assert.equal(await done, "eof"); // the client half-closed
 * server.close();
 * client.close();
 * ```
 */
export class Connection {
  /** The underlying socket; owned by this object from construction on. */
  readonly conn: Deno.Conn;
  /** The peer's address as people write it: `127.0.0.1:5000`, `[::1]:5000`, `unix:/path`. */
  readonly remote: string;
  /** Splits what the peer sends into lines; holds at most one bounded partial line. */
  readonly decoder: LineDecoder;
  /** `performance.now()` at the last read that brought bytes. */
  lastActive: number = performance.now();
  /** The mark on `#queuedBytes` past which the peer is behind. */
  readonly #sendQueue: number;
  /** Past this, a send closes the connection (with `onBehind`; see the options). */
  readonly #hardLimit: number;
  /** See `ConnectionOptions.onBehind` and `onSharedBehind`. */
  readonly #onBehind: ((connection: Connection, behind: boolean) => void) | undefined;
  readonly #onSharedBehind: ((connection: Connection, behind: boolean) => void) | undefined;
  /** True from when the queue goes past the mark until it is back to half of it. */
  #behind = false;
  /** The same, for the shared bytes alone. */
  #sharedBehind = false;
  /** Chunks waiting for the next write; null when none, so an idle peer holds nothing. */
  #queue: Uint8Array[] | null = null;
  /**
   * Which chunks of `#queue` were sent `direct` (by index), or null while none
   * was: most peers only ever get shared chunks, and pay nothing for this.
   */
  #queueDirect: Set<number> | null = null;
  /** Bytes queued or being written: what the bound is checked against. */
  #queuedBytes = 0;
  /** Of those, bytes sent `direct` (made for this peer alone). */
  #directBytes = 0;
  /** Bytes written since the connection opened: how a reader's progress is measured. */
  #written = 0;
  /** True while the write loop runs; at most one write is under way at a time. */
  #writing = false;
  /** The batch being written (taken whole from `#queue`), and the index of its next chunk. */
  #batch: Uint8Array[] | null = null;
  #batchDirect: Set<number> | null = null;
  #next = 0;
  /** The bytes of the write under way, how many of them went out so far, how many are direct. */
  #data: Uint8Array | null = null;
  #done = 0;
  #dataDirect = 0;
  /** OPEN, then ENDING (no new sends; draining), then CLOSED. */
  #state = OPEN;
  /** The first reason given for ending; kept for the "left" notice. */
  #reason: CloseReason | null = null;
  /** Callbacks waiting for the queue to drain (see `drained()`). */
  #drainWaiters: (() => void)[] | null = null;
  /** What close() found still queued: see `takeUnsent()`. */
  #unsent: Uint8Array[] | null = null;
  /** Whether Telnet commands are stripped from input. */
  readonly #telnet: boolean;
  /** The Telnet filter, made when the first command arrives (most peers never send one). */
  #telnetFilter: TelnetFilter | null = null;
  /** Where the read loop delivers lines, while it runs. */
  #sink: ReadSink | null = null;
  /** The read buffer: small while the peer is quiet, large during bursts. */
  #buffer: Uint8Array | null = null;
  /** The size the last burst was read with: where a full small read goes back to. */
  #burstSize = READ_SIZES[0];
  /** Bytes read lately, leaking at {@linkcode STREAM_RATE}: how a stream is told from a burst. */
  #recent = 0;
  /** See `ConnectionOptions.lineTimeout`. */
  readonly #lineTimeout: number;
  /** When the partial line now held began arriving (`performance.now()`); 0 when none is. */
  #partialSince = NO_TIME;
  /** Time spent paused since `#partialSince`: it does not count against the peer. */
  #pausedFor = NO_TIME;
  /** When the current pause began, or 0 while reading. */
  #pausedAt = NO_TIME;
  /** Fires when the partial line may have outlived `#lineTimeout`. */
  #lineTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settle the promise `readLines()` returned, when it was called. */
  #readEnded: ((reason: CloseReason) => void) | null = null;
  #readFailed: ((error: unknown) => void) | null = null;

  // Writes in flight (see MAX_WRITES_IN_FLIGHT), shared by every connection:
  // how many count, and the connections waiting to start one, oldest first.
  static #maxInFlight = MAX_WRITES_IN_FLIGHT;
  static #inFlight = 0;
  static #waiting: (Connection | undefined)[] = [];
  static #waitHead = 0;
  /** Bumped when stalled writes stop counting; a write counts while its generation is current. */
  static #generation = 0;
  /** Writes completed so far, and as of when the stall timer was armed. */
  static #completed = 0;
  static #completedAtArm = 0;
  static #stallTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Sets how many writes may be in flight at once across all connections
   * (default {@linkcode MAX_WRITES_IN_FLIGHT}); for tests and benchmarks.
   */
  static set maxWritesInFlight(n: number) {
    Connection.#maxInFlight = Math.max(1, n);
    Connection.#startWaiting();
  }

  /** Writes in flight that count against the limit now; for tests. */
  static get writesInFlight(): number {
    return Connection.#inFlight;
  }

  /**
   * Connections given bytes since the last microtask checkpoint while idle:
   * their writes start together once the reads completed in this turn of the
   * event loop have all been handled, so that what several senders said in it
   * goes to each peer in one write, not one write per sender.
   */
  static #toStart: Connection[] = [];

  static #startQueued = (): void => {
    const list = Connection.#toStart;
    Connection.#toStart = [];
    for (const c of list) {
      if (c.#state === CLOSED) c.#stopWriting();
      else if (Connection.#takeSlot(c)) c.#writeNext();
    }
  };

  /** The generation of this connection's write in flight while it counts, or -1. */
  #slot = -1;

  /** Takes ownership of `conn`. */
  constructor(conn: Deno.Conn, options: ConnectionOptions = {}) {
    this.conn = conn;
    this.remote = formatAddress(conn.remoteAddr);
    this.decoder = new LineDecoder({ maxLine: options.maxLine });
    this.#sendQueue = options.sendQueue ?? DEFAULT_SEND_QUEUE;
    this.#hardLimit = options.hardLimit ?? HARD_LIMIT_FACTOR * this.#sendQueue;
    this.#onBehind = options.onBehind;
    this.#onSharedBehind = options.onSharedBehind;
    this.#telnet = options.telnet ?? false;
    this.#lineTimeout = options.lineTimeout ?? 0;
  }

  /** Bytes waiting to be written to this peer. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Of those, the bytes sent without `direct`: shared with others. */
  get sharedBytes(): number {
    return this.#queuedBytes - this.#directBytes;
  }

  /** Bytes written to the peer so far. */
  get written(): number {
    return this.#written;
  }

  /** Bytes the read buffer holds now (a pending read keeps it): for tests and diagnostics. */
  get readBufferSize(): number {
    return this.#buffer?.length ?? 0;
  }

  /** Why the connection was ended or closed by this side; null while open. */
  get reason(): CloseReason | null {
    return this.#reason;
  }

  /** True once `close()` ran: nothing more is read or written. */
  get closed(): boolean {
    return this.#state === CLOSED;
  }

  /**
   * Queues `bytes` for the peer and returns at once: it never waits for the peer.
   * The bytes must not be changed afterwards; one buffer may be queued to many
   * connections, and a leased one (wire/shared_bytes.ts) is held until written.
   * `direct` marks bytes made for this peer alone (replies, private messages),
   * counted apart from shared ones (see `onSharedBehind`).
   * Returns false when the connection is ending or closed, or when the bytes
   * would overflow the send queue (with no `onBehind`) or the hard limit, in
   * which case the connection is closed with the reason `"too slow"`.
   */
  send(bytes: Uint8Array, direct = false): boolean {
    if (this.#state !== OPEN) return false;
    const queued = this.#queuedBytes + bytes.length;
    if (queued > this.#sendQueue) {
      if (this.#onBehind === undefined || queued > this.#hardLimit) {
        this.close("too slow");
        return false;
      }
      if (!this.#behind) {
        this.#behind = true;
        this.#onBehind(this, true);
        // The callback may have closed the connection.
        if (this.#state !== OPEN) return false;
      }
    }
    this.#queuedBytes = queued;
    if (direct) this.#directBytes += bytes.length;
    else if (
      !this.#sharedBehind && this.#onSharedBehind !== undefined &&
      queued - this.#directBytes > this.#sendQueue
    ) {
      this.#sharedBehind = true;
      this.#onSharedBehind(this, true);
      if (this.#state !== OPEN) return false;
    }
    retain(bytes); // a shared buffer stays ours until it is written or copied
    if (this.#queue === null) this.#queue = [bytes];
    else this.#queue.push(bytes);
    if (direct) (this.#queueDirect ??= new Set()).add(this.#queue.length - 1);
    if (!this.#writing) {
      this.#writing = true;
      Connection.#toStart.push(this);
      if (Connection.#toStart.length === 1) queueMicrotask(Connection.#startQueued);
    }
    return true;
  }

  /**
   * Reads until end of input, feeding `sink` line by line and calling
   * `sink.flush()` after every chunk. Resolves with `"eof"` when the peer ended
   * its side in order (a final line without `\n` is delivered first), or with
   * the close reason when this side closed the connection. A reset peer resolves
   * with `"connection lost"`. Errors other than the expected connection errors
   * (including errors thrown by the sink) reject it.
   */
  readLines(sink: ReadSink): Promise<CloseReason> {
    this.read(sink); // first: it throws if a read loop already runs
    const { promise, resolve, reject } = Promise.withResolvers<CloseReason>();
    this.#readEnded = resolve;
    this.#readFailed = reject;
    return promise;
  }

  /**
   * Like {@linkcode readLines}, but says how it ended through `sink.end()`
   * instead of a promise: the cheapest way to keep many idle connections.
   */
  read(sink: ReadSink): void {
    if (this.#sink !== null) throw new Error("The connection is already being read");
    this.#sink = sink;
    this.#buffer = new Uint8Array(READ_SIZES[0]);
    this.#readNext();
  }

  // The read loop is written with callbacks, not as an async function: a
  // suspended async function costs about a kilobyte more per idle connection
  // (measured with 15,000), and most connections of a chat server are idle.

  #readNext(): void {
    if (this.#state === CLOSED) return this.#endRead(this.#reason!);
    this.conn.read(this.#buffer!).then(this.#onRead, this.#onReadError);
  }

  readonly #onRead = (n: number | null): void => {
    // Closed while the read was under way (the socket itself may close a little
    // later, after close()'s last write): what it brought is not for anyone.
    if (this.#state === CLOSED) return this.#endRead(this.#reason!);
    try {
      const sink = this.#sink!;
      if (n === null) {
        this.decoder.end(sink);
        const pause = sink.flush();
        if (pause === undefined) this.#endRead("eof");
        else pause.then(() => this.#endRead("eof"), this.#onReadError);
        return;
      }
      const now = performance.now();
      this.#recent = Math.max(0, this.#recent - (now - this.lastActive) * STREAM_RATE) + n;
      this.lastActive = now;
      const buffer = this.#buffer!;
      const pause = this.#handleChunk(n === buffer.length ? buffer : buffer.subarray(0, n), sink);
      // A full read means more is waiting: read bigger (after a full small read,
      // 16 KiB at least, or as big as the last burst read). A short one means we
      // caught up, and the next read may wait a long time: hold little while it does.
      if (n === buffer.length) {
        const next = buffer.length === READ_SIZES[0]
          ? Math.max(this.#burstSize, READ_SIZES[2])
          : READ_SIZES[Math.min(READ_SIZES.indexOf(buffer.length) + 1, READ_SIZES.length - 1)];
        if (next !== buffer.length) {
          if (buffer.length > READ_SIZES[0]) giveBuffer(buffer);
          this.#buffer = takeBuffer(next);
        }
        this.#burstSize = next;
      } else if (
        buffer.length > READ_SIZES[1] ? !this.#streaming(n) : n < READ_SIZES[0] && buffer.length > n
      ) {
        if (buffer.length > READ_SIZES[1]) giveBuffer(buffer);
        // (Here from 1 KiB or less only after a read under 64 bytes.)
        const typing = n >= READ_SIZES[0] && n < READ_SIZES[1];
        this.#buffer = typing ? takeBuffer(READ_SIZES[1]) : new Uint8Array(READ_SIZES[0]);
      } else if (buffer.length === READ_SIZES[0]) {
        this.#burstSize = READ_SIZES[0]; // a short small read: the burst is over
      }
      if (pause === undefined) this.#readNext();
      else this.#pauseFor(pause);
    } catch (error) {
      this.#onReadError(error);
    }
  };

  /** Whether the peer is sending a steady stream (see {@linkcode STREAM_BYTES}). */
  #streaming(n: number): boolean {
    return n >= READ_SIZES[READ_SIZES.length - 1] / 4 && this.#recent > STREAM_BYTES;
  }

  /** Feeds one chunk read to the sink; returns what `flush()` returned. */
  #handleChunk(bytes: Uint8Array, sink: ReadSink): void | Promise<unknown> {
    let chunk = bytes;
    if (this.#telnet && (this.#telnetFilter?.pending || chunk.indexOf(IAC) >= 0)) {
      chunk = this.#stripTelnet(chunk);
    }
    this.decoder.push(chunk, sink);
    if (this.#lineTimeout > 0) this.#watchPartialLine();
    return sink.flush();
  }

  /** Waits for `pause` before reading on; the time does not count against a partial line. */
  #pauseFor(pause: Promise<unknown>): void {
    this.#pausedAt = performance.now();
    pause.then(() => {
      if (this.#partialSince !== 0) this.#pausedFor += performance.now() - this.#pausedAt;
      this.#pausedAt = 0;
      this.#readNext();
    }, this.#onReadError);
  }

  /** After a read: notes when a partial line began, and makes sure its deadline is watched. */
  #watchPartialLine(): void {
    if (!this.decoder.partial) {
      this.#partialSince = 0;
      return;
    }
    // A line completed in this read means the partial one is new.
    if (this.#partialSince === 0 || this.decoder.completed !== this.#completedAt) {
      this.#partialSince = performance.now();
      this.#completedAt = this.decoder.completed;
      this.#pausedFor = 0;
    }
    if (this.#lineTimer === undefined) this.#armLineTimer(this.#lineTimeout);
  }

  /** Lines the decoder had completed when the current partial line began. */
  #completedAt = 0;

  #armLineTimer(ms: number): void {
    this.#lineTimer = setTimeout(this.#onLineTimer, ms);
  }

  readonly #onLineTimer = (): void => {
    this.#lineTimer = undefined;
    if (this.#state === CLOSED || this.#partialSince === 0) return;
    const now = performance.now();
    const paused = this.#pausedFor + (this.#pausedAt === 0 ? 0 : now - this.#pausedAt);
    const left = this.#partialSince + paused + this.#lineTimeout - now;
    if (left > 0) return this.#armLineTimer(left);
    this.#sink?.lineTimedOut?.(this.#lineTimeout);
    this.close("line timeout");
  };

  readonly #onReadError = (error: unknown): void => {
    if (isConnectionError(error)) {
      this.#endRead(this.#state === CLOSED ? this.#reason! : "connection lost");
    } else {
      const sink = this.#sink;
      const fail = this.#readFailed;
      this.#stopReading();
      fail?.(error);
      sink?.end?.(`error: ${message(error)}`, error);
    }
  };

  #endRead(reason: CloseReason): void {
    const sink = this.#sink;
    const done = this.#readEnded;
    this.#stopReading();
    done?.(reason);
    sink?.end?.(reason);
  }

  #stopReading(): void {
    clearTimeout(this.#lineTimer);
    this.#lineTimer = undefined;
    this.#partialSince = 0;
    this.#sink = null;
    this.#buffer = null;
    this.#readEnded = null;
    this.#readFailed = null;
  }

  /**
   * Ends the connection gracefully: refuses new sends, waits until what is
   * queued has been written or `timeoutMs` has passed, then closes.
   */
  async end(reason: CloseReason, timeoutMs: number): Promise<void> {
    if (this.#state === CLOSED) return;
    this.#state = ENDING;
    this.#reason ??= reason;
    if (this.#writing) {
      let timer;
      await Promise.race([
        this.drained(),
        new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
      clearTimeout(timer);
    }
    this.close(reason);
  }

  /** Settles when everything queued so far has been written, or the connection closed. */
  drained(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    (this.#drainWaiters ??= []).push(resolve);
    return promise;
  }

  /**
   * Waits until everything queued so far has been written, then half-closes: the
   * peer reads end of input, and can still answer. A failure closes the
   * connection, since it cannot be used any more; this never rejects.
   */
  async closeWrite(): Promise<void> {
    await this.drained();
    if (this.#state === CLOSED) return;
    this.#state = ENDING;
    try {
      await this.conn.closeWrite();
    } catch (error) {
      this.close(isConnectionError(error) ? "connection lost" : `close failed: ${message(error)}`);
    }
  }

  /**
   * After close: the chunks that were queued and never handed to a write, in
   * order, so a client can send them on its next connection. Empties the list.
   */
  takeUnsent(): Uint8Array[] {
    const unsent = this.#unsent ?? [];
    this.#unsent = null;
    return unsent;
  }

  /** Closes at once, dropping anything still queued. Safe to call more than once. */
  close(reason: CloseReason = "closed"): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    this.#reason ??= reason;
    clearTimeout(this.#lineTimer);
    this.#lineTimer = undefined;
    const queue = this.#queue;
    const queued = this.#queuedBytes;
    this.#unsent = queue;
    this.#queue = null;
    this.#queueDirect = null;
    this.#queuedBytes = 0;
    this.#directBytes = 0;
    this.#caughtUp();
    // Bytes still waiting for their write to start (see #toStart and the writes
    // in flight) get one try, and the socket is closed once it is done (a write
    // under way when the socket closes is cut short): the last words before a
    // close ("* error: …") must reach the peer. Bounded by the send queue, since
    // a peer that is behind has a write in flight, and by FINAL_WRITE_MS.
    let size = 0;
    let rest: Uint8Array[] = [];
    if (this.#data === null && this.#writing && queued <= this.#sendQueue) {
      rest = [...this.#batch?.slice(this.#next) ?? [], ...queue ?? []];
      for (const chunk of rest) size += chunk.length;
    }
    if (size === 0) closeQuietly(this.conn);
    else {
      const conn = this.conn;
      const timer = setTimeout(() => closeQuietly(conn), FINAL_WRITE_MS);
      const done = () => {
        clearTimeout(timer);
        closeQuietly(conn);
      };
      conn.write(joinInto(new Uint8Array(size), rest, 0, rest.length)).then(done, done);
    }
    this.#wakeDrainWaiters();
  }

  /** Removes Telnet commands from `chunk` and answers them. */
  #stripTelnet(chunk: Uint8Array): Uint8Array {
    const filter = this.#telnetFilter ??= new TelnetFilter();
    const { data, reply } = filter.strip(chunk);
    if (reply !== null) this.send(Uint8Array.from(reply), true);
    if (filter.overlong > 0) {
      this.#sink?.telnetOverlong?.(filter.overlong);
      filter.overlong = 0;
    }
    return data;
  }

  // The write loop, like the read loop, is callbacks rather than an async
  // function: a broadcast starts one write per peer, and with 10,000 peers the
  // cost of resuming an async function per write showed (measured: about 13 µs
  // of CPU per send above a bare conn.write, part of it this).

  /** Starts the next write: the next chunk, or run of small chunks, of the batch. */
  #writeNext(): void {
    if (this.#state === CLOSED) return this.#stopWriting();
    let batch = this.#batch;
    if (batch === null || this.#next >= batch.length) {
      batch = this.#queue;
      if (batch === null) return this.#stopWriting();
      this.#queue = null;
      this.#batch = batch;
      this.#batchDirect = this.#queueDirect;
      this.#queueDirect = null;
      this.#next = 0;
    }
    // A run of chunks (what several senders said, lines, notices) becomes one
    // write, in a join shared by the peers queued the same run (sharedJoin). A
    // chunk of 64 KiB or more is written as it is.
    const from = this.#next;
    let end = from + 1;
    let size = batch[from].length;
    while (end < batch.length && size < COALESCE_UP_TO && batch[end].length < SMALL_CHUNK) {
      size += batch[end++].length;
    }
    this.#next = end;
    if (end === from + 1) this.#data = batch[from];
    else {
      this.#data = sharedJoin(batch, from, end, size);
      for (let i = from; i < end; i++) release(batch[i]);
    }
    this.#done = 0;
    let direct = 0;
    const directChunks = this.#batchDirect;
    if (directChunks !== null) {
      for (let i = from; i < end; i++) if (directChunks.has(i)) direct += batch[i].length;
    }
    this.#dataDirect = direct;
    this.conn.write(this.#data).then(this.#onWritten, this.#onWriteError);
  }

  readonly #onWritten = (n: number): void => {
    this.#written += n;
    const data = this.#data!;
    this.#done += n;
    if (this.#done < data.length) {
      // A partial write: the rest goes next.
      this.conn.write(data.subarray(this.#done)).then(this.#onWritten, this.#onWriteError);
      return;
    }
    this.#data = null;
    // Written whole: a chunk or join is free for its other holders' use.
    release(data);
    this.#releaseSlot();
    if (this.#state === CLOSED) return this.#stopWriting();
    this.#queuedBytes -= data.length;
    this.#directBytes -= this.#dataDirect;
    // Half the mark, not the mark: a peer hovering at it would flap.
    const half = this.#sendQueue / 2;
    if (this.#sharedBehind && this.#queuedBytes - this.#directBytes <= half) {
      this.#sharedBehind = false;
      this.#onSharedBehind?.(this, false);
    }
    if (this.#behind && this.#queuedBytes <= half) this.#caughtUp();
    const batch = this.#batch;
    const more = this.#queue !== null || (batch !== null && this.#next < batch.length);
    if (!more || this.#state === CLOSED) this.#stopWriting();
    else if (Connection.#takeSlot(this)) this.#writeNext();
  };

  readonly #onWriteError = (error: unknown): void => {
    // A peer that left, or close() under a pending write. Anything else still
    // ends this peer only: nothing awaits a write, so none may throw.
    this.#data = null;
    this.#releaseSlot();
    this.close(isConnectionError(error) ? "connection lost" : `write failed: ${message(error)}`);
    this.#stopWriting();
  };

  /**
   * Takes a place among the writes in flight for `c`'s next write, or puts `c`
   * at the end of the wait (behind others already waiting, so a busy peer does
   * not pass them); a waiting connection's write starts when a place frees.
   */
  static #takeSlot(c: Connection): boolean {
    if (
      Connection.#inFlight < Connection.#maxInFlight &&
      Connection.#waitHead === Connection.#waiting.length
    ) {
      Connection.#inFlight++;
      c.#slot = Connection.#generation;
      return true;
    }
    Connection.#waiting.push(c);
    if (Connection.#stallTimer === undefined) Connection.#armStallTimer();
    return false;
  }

  /** A write of this connection finished, one way or another: its place goes to the next. */
  #releaseSlot(): void {
    if (this.#slot === -1) return;
    if (this.#slot === Connection.#generation) Connection.#inFlight--;
    this.#slot = -1;
    Connection.#completed++;
    if (Connection.#waitHead < Connection.#waiting.length) Connection.#startWaiting();
  }

  /** Starts the writes of waiting connections while there is room. */
  static #startWaiting(): void {
    const waiting = Connection.#waiting;
    while (
      Connection.#inFlight < Connection.#maxInFlight && Connection.#waitHead < waiting.length
    ) {
      const c = waiting[Connection.#waitHead]!;
      waiting[Connection.#waitHead++] = undefined;
      if (c.#state === CLOSED) {
        c.#stopWriting();
        continue;
      }
      Connection.#inFlight++;
      c.#slot = Connection.#generation;
      c.#writeNext();
    }
    if (Connection.#waitHead === waiting.length) {
      waiting.length = 0;
      Connection.#waitHead = 0;
      clearTimeout(Connection.#stallTimer);
      Connection.#stallTimer = undefined;
    }
  }

  static #armStallTimer(): void {
    Connection.#completedAtArm = Connection.#completed;
    Connection.#stallTimer = setTimeout(Connection.#onStallTimer, WRITE_STALL_MS);
  }

  /** No write completed for a while and some wait: the writes in flight stop counting. */
  static #onStallTimer = (): void => {
    Connection.#stallTimer = undefined;
    if (Connection.#waitHead === Connection.#waiting.length) return;
    if (Connection.#completed === Connection.#completedAtArm) {
      Connection.#generation++;
      Connection.#inFlight = 0;
      Connection.#startWaiting();
    }
    if (Connection.#waitHead < Connection.#waiting.length) Connection.#armStallTimer();
  };

  /** The queue is empty or the connection closed: chunks never handed to a write are kept. */
  #stopWriting(): void {
    this.#releaseSlot();
    const batch = this.#batch;
    if (this.#state === CLOSED && batch !== null && this.#next < batch.length) {
      this.#unsent = [...batch.slice(this.#next), ...(this.#unsent ?? [])];
    }
    this.#batch = null;
    this.#batchDirect = null;
    this.#writing = false;
    this.#wakeDrainWaiters();
  }

  /** The queue is back under half its mark (or gone): no longer behind. */
  #caughtUp(): void {
    if (this.#sharedBehind) {
      this.#sharedBehind = false;
      this.#onSharedBehind?.(this, false);
    }
    if (!this.#behind) return;
    this.#behind = false;
    this.#onBehind?.(this, false);
  }

  #wakeDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    if (waiters === null || (this.#writing && this.#state !== CLOSED)) return;
    this.#drainWaiters = null;
    for (const wake of waiters) wake();
  }
}

/** Closes `conn`, which may have been closed under us (BadResource): that cannot matter. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Copies `chunks[from..to)` one after the other into `out` (large enough); returns `out`. */
function joinInto(out: Uint8Array, chunks: Uint8Array[], from: number, to: number): Uint8Array {
  let at = 0;
  for (let i = from; i < to; i++) {
    out.set(chunks[i], at);
    at += chunks[i].length;
  }
  return out;
}

/**
 * True for the errors a socket raises when its peer goes away or it was closed
 * under a pending operation: they end that connection, and nothing else.
 */
export function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut ||
    isClosedError(error);
}

/** True for the errors of an operation cut short because its resource was closed. */
function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/** The message of an error, or the value as text. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Formats an address as people write it: `127.0.0.1:5000`, `[::1]:5000`, `unix:/tmp/s`.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress({ transport: "tcp", hostname: "::1", port: 80 }), "[::1]:80");
 * ```
 */
export function formatAddress(addr: Deno.Addr): string {
  switch (addr.transport) {
    case "tcp":
    case "udp":
      return addr.hostname.includes(":")
        ? `[${addr.hostname}]:${addr.port}`
        : `${addr.hostname}:${addr.port}`;
    case "unix":
    case "unixpacket":
      return `unix:${addr.path || "(unnamed)"}`;
    default:
      return "unknown";
  }
}
