/**
 * Fanout: N clients connected, S of them send L lines each as fast as they can,
 * every client must receive every other sender's lines, intact and in order.
 *
 * @module
 */

import { BenchClient, closeAll, connectMany, type LineHandler } from "./bench_client.ts";
import {
  DIGITS4,
  fillerMatches,
  LINE_BYTES,
  LineStamper,
  Pattern,
  PAYLOAD_BYTES,
  readDigits,
  SENDER_AT,
  SEQ_AT,
  SEQ_DIGITS,
  SPACE,
} from "./lines.ts";
import { closedFailures, type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one fanout run. */
export interface FanoutParams {
  /** Connected clients (N). */
  clients: number;
  /** How many of them send (S). */
  senders: number;
  /** Lines each sender sends (L). */
  lines: number;
}

/**
 * Lines per write: 1,024 × 64 B = 64 KiB. Writing line by line would measure the
 * generator's per-write cost; a chat client under load writes what it has
 * buffered, and large writes exercise the server's framing across chunk borders.
 */
const LINES_PER_WRITE = 1024;
/** With no new line anywhere for this long, the run stops and counts what is missing. */
const STALL_MS = 5_000;
const TAG_FANOUT = "f".charCodeAt(0);

/** Shared state of one run: who sends as which user, and how far the receivers are. */
export class FanoutRun {
  /** `prefixes[s]` is `<userN> ` of sender `s`, learned from its welcome. */
  readonly prefixes: Pattern[];
  /** Lines every receiver must get from each sender. */
  readonly lines: number;
  /** Good lines received by all receivers so far (progress, for stall detection). */
  received = 0;
  /** Receivers that still miss lines. */
  pending: number;
  /** When the last receiver got its last line. */
  readonly allReceived = Promise.withResolvers<number>();

  constructor(senderUsers: number[], lines: number, receivers: number) {
    const encoder = new TextEncoder();
    this.prefixes = senderUsers.map((user) => new Pattern(encoder.encode(`<user${user}> `)));
    this.lines = lines;
    this.pending = receivers;
  }

  receiverDone(): void {
    if (--this.pending === 0) this.allReceived.resolve(performance.now());
  }
}

/**
 * Checks every line one client receives: prefix, sender, sequence, every payload
 * byte, and that it is never the client's own. Malformed lines are rejected and
 * counted as cut by the client.
 *
 * A sender's lines arrive in runs (a server relays what it read from one sender
 * at a time), so the sender and sequence number are first compared with those
 * expected after the previous line, four digits per 32-bit read; they are parsed
 * only when that guess fails. This keeps the generator's cost per line near the
 * cost of the fastest relay's per delivery.
 */
export class FanoutReceiver implements LineHandler {
  readonly payloadBytes = PAYLOAD_BYTES;
  /** Next sequence number expected from each sender. */
  readonly next: Int32Array;
  /** Lines accepted (in order, intact; after a gap, counting resumes from the new line). */
  ok = 0;
  /** Lines with a sequence number already passed: duplicated, or late (reordered). */
  dup = 0;
  /** Times a sequence number jumped ahead: lines lost or reordered before it. */
  gaps = 0;
  /** This client's own lines sent back to it. */
  own = 0;
  /** Lines from a sender outside this client's room (see `from`). */
  foreign = 0;
  readonly #run: FanoutRun;
  /** This client's sender index, or -1 if it only receives. */
  readonly #self: number;
  /** `from[s]` is 1 when this client must receive sender `s`; null: every sender. */
  readonly #from: Uint8Array | null;
  readonly #expected: number;
  /** Sender of the previous line: the first guess for the next one. */
  #last = 0;

  /**
   * A receiver of every sender of `run` but itself (`self`, -1 for none), or with
   * `from` (rooms) only of the senders marked there: a line of any other sender
   * is counted in `foreign`.
   */
  constructor(run: FanoutRun, self: number, from: Uint8Array | null = null) {
    this.#run = run;
    this.#self = self;
    this.#from = from;
    const senders = run.prefixes.length;
    this.next = new Int32Array(senders);
    let fromCount = senders;
    if (from !== null) fromCount = from.reduce((t, x) => t + x, 0);
    const selfCounted = self >= 0 && (from === null || from[self] === 1);
    this.#expected = (selfCounted ? fromCount - 1 : fromCount) * run.lines;
    if (this.#expected === 0) run.receiverDone();
  }

  line(buf: Uint8Array, start: number, end: number, view: DataView): boolean {
    // "<userN> " then the 63-byte payload; every byte is checked (see payloadBytes).
    const p = end - PAYLOAD_BYTES;
    if (
      p <= start || buf[p] !== TAG_FANOUT || buf[p + SEQ_AT - 1] !== SPACE ||
      buf[p + SEQ_AT + SEQ_DIGITS] !== SPACE
    ) return false;
    const prefixes = this.#run.prefixes;
    let sender = this.#last;
    if (view.getInt32(p + SENDER_AT, true) !== DIGITS4[sender]) {
      sender = readDigits(buf, p + SENDER_AT, p + SENDER_AT + 4);
      if (sender < 0 || sender >= prefixes.length) return false;
    }
    const prefix = prefixes[sender];
    if (p - start !== prefix.bytes.length || !prefix.matchesAt(view, buf, start)) return false;
    let seq = this.next[sender];
    if (
      view.getInt32(p + SEQ_AT, true) !== DIGITS4[Math.floor(seq / 10_000)] ||
      view.getInt32(p + SEQ_AT + 4, true) !== DIGITS4[seq % 10_000]
    ) {
      seq = readDigits(buf, p + SEQ_AT, p + SEQ_AT + SEQ_DIGITS);
      if (seq < 0) return false;
    }
    if (!fillerMatches(view, buf, p, seq)) return false;
    this.#last = sender;
    if (sender === this.#self) {
      this.own++;
      return true;
    }
    if (this.#from !== null && this.#from[sender] === 0) {
      this.foreign++;
      return true;
    }
    const want = this.next[sender];
    if (seq < want) {
      this.dup++;
      return true;
    }
    if (seq > want) this.gaps++;
    this.next[sender] = seq + 1;
    this.#run.received++;
    if (++this.ok === this.#expected) this.#run.receiverDone();
    return true;
  }

  /** Lines that never arrived (or arrived only out of order). */
  get lost(): number {
    return this.#expected - this.ok;
  }
}

/** Sends lines `0..lines` of sender `index` in 64 KiB writes. */
export async function sendLines(client: BenchClient, index: number, lines: number): Promise<void> {
  const stamper = new LineStamper("f", index);
  const batch = new Uint8Array(LINES_PER_WRITE * LINE_BYTES);
  for (let seq = 0; seq < lines; seq += LINES_PER_WRITE) {
    const length = stamper.fill(batch, seq, lines);
    await client.write(length === batch.length ? batch : batch.subarray(0, length));
  }
}

/**
 * Waits until every receiver has all its lines. Lines that never come are only
 * known by their absence: the wait ends when nothing arrives for STALL_MS, or at
 * once when every client still missing lines has been disconnected; `stalled`
 * says so, and `end` is when the last line arrived.
 */
export async function allReceived(
  run: FanoutRun,
  receivers: FanoutReceiver[],
  clients: readonly { readonly closed: boolean }[],
): Promise<{ end: number; stalled: boolean }> {
  let stalled = false;
  let lastReceived = -1;
  let lastProgress = performance.now();
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (run.received !== lastReceived) {
      lastReceived = run.received;
      lastProgress = now;
    } else if (
      now - lastProgress > STALL_MS ||
      receivers.every((r, i) => r.lost === 0 || clients[i].closed)
    ) {
      stalled = true;
      run.allReceived.resolve(lastProgress);
    }
  }, 200);
  const end = await run.allReceived.promise;
  clearInterval(watchdog);
  return { end, stalled };
}

/**
 * Lines lost, cut, duplicated, reordered, sent back or (with `rooms`) delivered to
 * another room, and the failures they make.
 */
export function checkDeliveries(
  receivers: FanoutReceiver[],
  clients: readonly DeliveryClient[],
  stalled: boolean,
  writeError: unknown,
  options: { rooms?: boolean; ownEchoed?: boolean } = {},
): { counts: Record<string, number>; failures: string[] } {
  const sum = (pick: (r: FanoutReceiver) => number) => receivers.reduce((t, r) => t + pick(r), 0);
  const counts: Record<string, number> = {
    lost: sum((r) => r.lost),
    cut: clients.reduce((t, c) => t + c.rejected + (c.overlong ?? 0), 0),
    dup: sum((r) => r.dup),
    reordered: sum((r) => r.gaps),
    own: sum((r) => r.own),
  };
  if (options.rooms) counts.wrong_room = sum((r) => r.foreign);
  const failures: string[] = [];
  if (stalled) failures.push("not every line arrived");
  if (writeError !== null) failures.push(`a sender's write failed: ${writeError}`);
  for (const [name, count] of Object.entries(counts)) {
    // A web sender gets its own lines back (the page's confirmation): counted, not a failure.
    if (count > 0 && !(name === "own" && options.ownEchoed)) failures.push(`${count} ${name}`);
  }
  failures.push(...closedFailures(clients));
  return { counts, failures };
}

/** What {@linkcode checkDeliveries} reads of a generator client, TCP or WebSocket. */
export interface DeliveryClient {
  /** Lines (or frames) the handler rejected. */
  readonly rejected: number;
  /** Lines longer than the read buffer, skipped (TCP only). */
  readonly overlong?: number;
  readonly closed: boolean;
  readonly error: Error | null;
}

/** Runs one fanout against a relay-mode server. */
export async function runFanout(server: ServerProcess, params: FanoutParams): Promise<Outcome> {
  const { clients: n, senders: s, lines } = params;
  const clients = await connectMany(server.port, n, { bufferSize: 65_536 });
  let sending: Promise<void> = Promise.resolve();
  try {
    const run = new FanoutRun(clients.slice(0, s).map((client) => client.user), lines, n);
    const receivers = clients.map((client, i) => {
      const receiver = new FanoutReceiver(run, i < s ? i : -1);
      client.handler = receiver;
      return receiver;
    });
    // Join notices to everyone may still be in flight: let the server finish them first.
    const settleMs = await settle(server.pid);

    const window = await Window.open(server);
    let writeError: unknown = null;
    // Not awaited before the receivers are done: a server that stops reading would
    // leave these writes pending until it is stopped.
    sending = Promise.all(clients.slice(0, s).map((client, i) => sendLines(client, i, lines)))
      .then(() => {}, (error) => void (writeError ??= error));
    const { end, stalled } = await allReceived(run, receivers, clients);
    const measured = await window.close(end);

    const deliveries = s * lines * (n - 1);
    const { counts, failures } = checkDeliveries(receivers, clients, stalled, writeError);
    return {
      figures: {
        deliveries_per_s: deliveries / (measured.wallMs / 1000),
        // Independent of the generator's speed: with a relay as fast as the Node peer,
        // verifying every line costs the generator more than relaying it costs the server.
        server_cpu_ns_per_delivery: measured.serverCpuMs * 1e6 / deliveries,
        deliveries,
      },
      failures,
      notes: {
        ...counts,
        notices: clients.reduce((t, c) => t + c.notices, 0),
        settle_ms: settleMs,
      },
      ...measured,
    };
  } finally {
    await server.stop(); // first, so the clients' departures do not start a flood of notices
    await closeAll(clients);
    await sending;
  }
}
