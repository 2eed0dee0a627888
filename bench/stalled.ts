/**
 * Stalled: 20 clients send and read at full speed while one more joins and then
 * never reads again. The promise under test: "A client that stops reading costs
 * the server at most its send-queue bound." A relay that buffers everything for
 * the stalled client grows by all that is addressed to it; charla must instead
 * drop it as too slow, and lose nothing for the others.
 *
 * The healthy clients run a fanout (N = S): each sends its lines in 64 KiB writes
 * and checks every line of every other sender, as in fanout.ts.
 *
 * The memory figure is the server's peak resident memory during the run less its
 * resident memory before it. It includes what the healthy fanout costs by itself
 * (heap growth, read buffers), which at these sizes is most of it, so it bounds the
 * stalled client's cost from above rather than isolating it.
 *
 * @module
 */

import { closeAll, connectMany } from "./bench_client.ts";
import { allReceived, checkDeliveries, FanoutReceiver, FanoutRun, sendLines } from "./fanout.ts";
import { LF, LINE_BYTES } from "./lines.ts";
import { type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one stalled run. */
export interface StalledParams {
  /** Healthy clients, every one a sender and a receiver. */
  senders: number;
  /** Lines each of them sends. */
  lines: number;
  /**
   * charla's `--send-queue` in this run, in bytes: what the memory figure is
   * judged against (see {@linkcode sendQueueBound}).
   */
  sendQueue: number;
}

/** charla's default `--send-queue`: 1 MiB. */
const DEFAULT_SEND_QUEUE = 1024 * 1024;
/**
 * How long the stalled socket is read at the end. A server that dropped it has
 * left at most its queue and the kernel buffers in flight, which loopback delivers
 * in milliseconds, then EOF; a server that kept it never ends the stream.
 */
const DRAIN_MS = 2_000;
const MIB = 1024 * 1024;

/**
 * The send-queue bound charla runs with, given the bench's `--charla-args`: the
 * value of their last `--send-queue` (the server's own syntax: `65536`, `64K`,
 * `1M`), else charla's default; NaN when it does not parse (the server will then
 * refuse to start).
 */
export function sendQueueBound(charlaArgs: string[]): number {
  let text: string | undefined;
  charlaArgs.forEach((arg, i) => {
    if (arg === "--send-queue") text = charlaArgs[i + 1];
    else if (arg.startsWith("--send-queue=")) text = arg.slice("--send-queue=".length);
  });
  if (text === undefined) return DEFAULT_SEND_QUEUE;
  const match = /^(\d{1,15})([kmg]?)(i?b)?$/i.exec(text);
  if (match === null) return NaN;
  return Number(match[1]) * 1024 ** " kmg".indexOf((match[2] || " ").toLowerCase());
}

/** How the stalled client's stream ended when it was finally read. */
interface Drained {
  /** Bytes it had been sent since its welcome (what the kernel held, then the rest). */
  bytes: number;
  /** "eof" or "reset" when the server had dropped it; "kept" when the stream went on. */
  end: "eof" | "reset" | "kept";
}

/**
 * The client that stops reading: a bare socket, not a {@linkcode BenchClient}
 * (whose read loop never stops), read once for its welcome and then not at all
 * until {@linkcode StalledClient.drain}.
 */
class StalledClient {
  /** The socket. */
  readonly conn: Deno.TcpConn;
  /** `N` of its `userN` name, from the welcome. */
  readonly user: number;

  private constructor(conn: Deno.TcpConn, user: number) {
    this.conn = conn;
    this.user = user;
  }

  /** Connects and reads up to the end of the welcome line, and no further. */
  static async connect(port: number): Promise<StalledClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const buf = new Uint8Array(4096);
    let length = 0;
    let nl = -1;
    try {
      while (nl < 0) {
        if (length === buf.length) throw new Error("No welcome line in the first 4 KiB");
        const n = await conn.read(buf.subarray(length));
        if (n === null) throw new Error("Connection ended before the welcome");
        nl = buf.subarray(0, length + n).indexOf(LF, length);
        length += n;
      }
      const first = new TextDecoder().decode(buf.subarray(0, nl)).trimEnd();
      const match = /^\* welcome, you are user(\d+)$/.exec(first);
      if (match === null) throw new Error(`Expected a welcome line first, got "${first}"`);
      return new StalledClient(conn, Number(match[1]));
    } catch (error) {
      conn.close();
      throw error;
    }
  }

  /**
   * Reads whatever the server sent until the stream ends, or `ms` have passed
   * (then closes the socket under the pending read, and the server kept it).
   */
  async drain(ms: number): Promise<Drained> {
    const buf = new Uint8Array(256 * 1024);
    let bytes = 0;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, ms);
    try {
      for (let n; (n = await this.conn.read(buf)) !== null;) bytes += n;
      return { bytes, end: "eof" };
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return { bytes, end: "reset" };
      const closedByUs = error instanceof Deno.errors.BadResource ||
        error instanceof Deno.errors.Interrupted;
      if (timedOut && closedByUs) return { bytes, end: "kept" };
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the socket. Safe to call twice. */
  close(): void {
    try {
      this.conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }
}

/**
 * Reads `/proc/<pid>/status` through `cat` (Deno refuses `/proc` reads without
 * `--allow-all`; see proc.ts): resident memory now and its peak, in KiB.
 */
async function memoryKiB(pid: number): Promise<{ rss: number; peak: number }> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const status = new TextDecoder().decode(out.stdout);
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status);
    if (match === null) throw new Error(`No ${name} in "/proc/${pid}/status"`);
    return Number(match[1]);
  };
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

/**
 * Resets the peak resident memory (`VmHWM`) of `pid` to its current RSS, so the
 * peak read at the end belongs to the run, not to start-up (Linux 4.0+: writing
 * 5 to `/proc/<pid>/clear_refs`). Through `sh`, as Deno refuses `/proc` writes.
 * Returns false when the kernel refused.
 */
async function resetPeak(pid: number): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", 'echo 5 > "/proc/$0/clear_refs"', String(pid)],
    stderr: "null",
  }).output();
  return out.success;
}

/** Runs the healthy fanout beside one stalled client against a relay-mode server. */
export async function runStalled(server: ServerProcess, params: StalledParams): Promise<Outcome> {
  const { senders: s, lines, sendQueue } = params;
  const clients = await connectMany(server.port, s, { bufferSize: 65_536 });
  let stalled: StalledClient | null = null;
  let sending: Promise<void> = Promise.resolve();
  try {
    stalled = await StalledClient.connect(server.port);
    // The healthy clients are a fanout of 20 senders, checked the same way.
    const run = new FanoutRun(clients.map((client) => client.user), lines, clients.length);
    const receivers = clients.map((client, i) => {
      const receiver = new FanoutReceiver(run, i);
      client.handler = receiver;
      return receiver;
    });
    const settleMs = await settle(server.pid);
    const peakReset = await resetPeak(server.pid);
    const before = await memoryKiB(server.pid);

    const window = await Window.open(server);
    let writeError: unknown = null;
    // Not awaited before the receivers are done (see fanout.ts).
    sending = Promise.all(clients.map((client, i) => sendLines(client, i, lines)))
      .then(() => {}, (error) => void (writeError ??= error));
    const { end, stalled: timedOut } = await allReceived(run, receivers, clients);
    const measured = await window.close(end);
    const after = await memoryKiB(server.pid);
    const drained = await stalled.drain(DRAIN_MS);
    const dropped = drained.end !== "kept";

    // charla logs `* #<id> userN left (too slow)`; the peers never drop anyone.
    const log = await Deno.readTextFile(server.stdoutPath);
    const tooSlow = log.split("\n").filter((line) => line.endsWith(" left (too slow)"));
    const stalledName = `user${stalled.user}`;
    const stalledLogged = tooSlow.some((line) => line.endsWith(` ${stalledName} left (too slow)`));
    const othersTooSlow = tooSlow.filter((line) =>
      !line.endsWith(` ${stalledName} left (too slow)`)
    );

    const deliveries = s * lines * (s - 1);
    // What was addressed to the stalled client: every line, with its sender's prefix.
    const addressed = run.prefixes.reduce(
      (t, prefix) => t + lines * (prefix.bytes.length + LINE_BYTES),
      0,
    );
    const { counts, failures } = checkDeliveries(receivers, clients, timedOut, writeError);
    if (othersTooSlow.length > 0) {
      failures.push(`healthy clients dropped as too slow:\n${othersTooSlow.join("\n")}`);
    }
    if (server.kind === "charla") {
      if (!dropped && drained.bytes >= addressed) {
        // The kernel buffers and the queue held it all: the server was never behind.
        failures.push(
          `the stalled client (${stalledName}) was kept, but it was never behind: all ` +
            `${addressed} bytes addressed to it fit in the socket buffers and the send queue ` +
            `(${sendQueue} bytes); too little traffic to test the bound`,
        );
      } else if (!dropped) {
        failures.push(
          `the stalled client (${stalledName}) was kept: it read ${drained.bytes} bytes and ` +
            `no EOF in ${DRAIN_MS} ms (send queue ${sendQueue} bytes, ${addressed} addressed to it)`,
        );
      } else if (!stalledLogged) {
        failures.push(
          `the stalled client was dropped, but the log has no "${stalledName} left (too slow)"`,
        );
      }
    }
    const growthMiB = (after.peak - before.rss) / 1024;
    return {
      figures: {
        peak_rss_growth_mib: growthMiB,
        deliveries_per_s: deliveries / (measured.wallMs / 1000),
        stalled_dropped: dropped ? 1 : 0,
        rss_before_mib: before.rss / 1024,
        rss_peak_mib: after.peak / 1024,
        rss_after_mib: after.rss / 1024,
        stalled_read_bytes: drained.bytes,
        addressed_to_stalled_bytes: addressed,
        deliveries,
      },
      failures,
      notes: {
        // Beside the memory figure, so the reader can judge it against the bound.
        ...server.kind === "charla" ? { send_queue_mib: sendQueue / MIB } : {},
        addressed_mib: addressed / MIB,
        stalled_read_mib: drained.bytes / MIB,
        ...counts,
        too_slow_logged: tooSlow.length,
        notices: clients.reduce((t, c) => t + c.notices, 0),
        settle_ms: settleMs,
        ...peakReset ? {} : { peak_not_reset: 1 },
      },
      ...measured,
    };
  } finally {
    await server.stop(); // first, so the departures do not start a flood of notices
    stalled?.close();
    await closeAll(clients);
    await sending;
  }
}
