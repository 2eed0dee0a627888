/**
 * Rooms: R rooms of P clients each. Every client joins its room with
 * `/join #r<k>` and waits for the server's confirmation; then S clients of every
 * room send L lines each as fast as they can, and every line must reach exactly
 * the other members of its sender's room: once, intact, in order, and never a
 * client of another room.
 *
 * The confirmation is a notice starting `* you are now in #r<k>` (charla; the
 * peers add ` (<n> people)`). A server without rooms answers `/join` with an
 * error notice, and the run fails at once saying so; one that does not answer at
 * all fails after {@linkcode JOIN_TIMEOUT_MS}.
 *
 * @module
 */

import { type BenchClient, closeAll, connectMany } from "./bench_client.ts";
import { allReceived, checkDeliveries, FanoutReceiver, FanoutRun, sendLines } from "./fanout.ts";
import { type Outcome, Window } from "./outcome.ts";
import { settle } from "./proc.ts";
import type { ServerProcess } from "./server_process.ts";

/** Sizes of one rooms run. */
export interface RoomsParams {
  /** Rooms (R). */
  rooms: number;
  /** Clients in each room (P). */
  perRoom: number;
  /** Senders in each room (S). */
  senders: number;
  /** Lines each sender sends (L). */
  lines: number;
}

/** How long a client waits for the answer to its `/join`. */
export const JOIN_TIMEOUT_MS = 10_000;
/** Joins sent at once: like connections, a few hundred in flight keep the server busy. */
const JOIN_CONCURRENCY = 200;

const JOINED = "* you are now in ";

/** The room client `index` joins: `#r<k>`, clients `k*P .. k*P+P-1`. */
function roomOf(index: number, perRoom: number): number {
  return Math.floor(index / perRoom);
}

/**
 * Sends `/join #r<k>` from every client and waits for each confirmation. Throws
 * a clear error on the first refusal (`* error: ...`), a wrong confirmation, or
 * a server that does not answer in time.
 */
export async function joinRooms(clients: BenchClient[], perRoom: number): Promise<void> {
  const encoder = new TextEncoder();
  let next = 0;
  const worker = async () => {
    while (next < clients.length) {
      const index = next++;
      const client = clients[index];
      const room = `#r${roomOf(index, perRoom)}`;
      const answer = client.waitNotice(
        (text) => text.startsWith(JOINED) || text.startsWith("* error"),
        JOIN_TIMEOUT_MS,
      );
      await client.write(encoder.encode(`/join ${room}\n`));
      let text: string;
      try {
        text = await answer;
      } catch (error) {
        throw new Error(`"/join ${room}" (user${client.user}): ${(error as Error).message}`);
      }
      if (text.startsWith("* error")) {
        throw new Error(
          `The server refused "/join ${room}" (does it support rooms?): "${text}"`,
        );
      }
      const rest = text.slice(JOINED.length);
      // "#r0 (3 people)" from the peers; "#r0, with …" or "#r0; nobody else is here" from charla.
      const after = rest.slice(room.length);
      if (!rest.startsWith(room) || (after !== "" && !/^[ ,;]/.test(after))) {
        throw new Error(`"/join ${room}" was answered "${text}"`);
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(JOIN_CONCURRENCY, clients.length) }, worker),
  );
}

/** Runs one rooms measurement against a relay-mode server. */
export async function runRooms(server: ServerProcess, params: RoomsParams): Promise<Outcome> {
  const { rooms, perRoom, senders: s, lines } = params;
  const clients = await connectMany(server.port, rooms * perRoom, { bufferSize: 65_536 });
  let sending: Promise<void> = Promise.resolve();
  try {
    const joinStart = performance.now();
    await joinRooms(clients, perRoom);
    const joinMs = performance.now() - joinStart;

    // Sender g = k*S + j is member j of room k; its lines go to room k only.
    const senderClients: BenchClient[] = [];
    for (let k = 0; k < rooms; k++) {
      for (let j = 0; j < s; j++) senderClients.push(clients[k * perRoom + j]);
    }
    const run = new FanoutRun(senderClients.map((client) => client.user), lines, clients.length);
    const fromRoom = Array.from({ length: rooms }, (_, k) => {
      const from = new Uint8Array(rooms * s);
      from.fill(1, k * s, (k + 1) * s);
      return from;
    });
    const receivers = clients.map((client, i) => {
      const k = roomOf(i, perRoom);
      const j = i - k * perRoom;
      const receiver = new FanoutReceiver(run, j < s ? k * s + j : -1, fromRoom[k]);
      client.handler = receiver;
      return receiver;
    });
    const settleMs = await settle(server.pid);

    const window = await Window.open(server);
    let writeError: unknown = null;
    // Not awaited before the receivers are done (see fanout.ts).
    sending = Promise.all(senderClients.map((client, g) => sendLines(client, g, lines)))
      .then(() => {}, (error) => void (writeError ??= error));
    const { end, stalled } = await allReceived(run, receivers, clients);
    const measured = await window.close(end);

    const deliveries = rooms * s * lines * (perRoom - 1);
    const { counts, failures } = checkDeliveries(receivers, clients, stalled, writeError, {
      rooms: true,
    });
    return {
      figures: {
        deliveries_per_s: deliveries / (measured.wallMs / 1000),
        server_cpu_ns_per_delivery: measured.serverCpuMs * 1e6 / deliveries,
        deliveries,
        join_ms: joinMs,
      },
      failures,
      notes: {
        ...counts,
        notices: clients.reduce((t, c) => t + c.notices, 0),
        join_ms: joinMs,
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
