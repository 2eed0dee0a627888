/**
 * What one hostile client cannot do to everyone else, each as a short,
 * deterministic attack over real sockets: freeze a room, grow the server's
 * memory without bound, hold descriptors past the limits, stay forever
 * without finishing a line, or pass for the server or for someone else.
 * The 20-second versions, with figures, are in `deno task stress`.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { ChatServer } from "../lib/chat_server.ts";
import { ChatClient } from "../lib/client/chat_client.ts";
import type { Session } from "../lib/core/session.ts";
import { MAX_HISTORY_BYTES } from "../lib/core/session.ts";
import { Connection, HARD_LIMIT_FACTOR, MAX_WRITES_IN_FLIGHT } from "../lib/net/connection.ts";
import { listen } from "../lib/net/listen.ts";
import { leaseBytes, release } from "../lib/wire/shared_bytes.ts";
import { ServerConsole } from "../lib/terminal/server_console.ts";
import { OutputBuffer } from "../lib/terminal/output.ts";
import type { LinePeer } from "../lib/transports/line.ts";
import {
  connectMany,
  LineReader,
  MemoryLog,
  Program,
  startServer,
  TestClient,
  tlsVisit,
  within,
} from "./_helpers.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const fixture = (name: string) => new URL(name, fixtures).pathname;

/**
 * Waits until `test()` holds, checking every few milliseconds: for server
 * state that no line or event announces (a queue over its mark).
 */
function eventually(test: () => boolean, what: string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const check = () => test() ? resolve() : setTimeout(check, 5);
      check();
    }),
    what,
  );
}

/** The connection of the session called `name`. */
function connectionOf(
  server: ChatServer,
  name: string,
): { session: Session; connection: Connection } {
  const session = server.find(name)!;
  return { session, connection: (session.peer as LinePeer).connection };
}

/** Reads everything a client is sent, so it never falls behind. */
function drain(client: TestClient): Promise<unknown> {
  return client.lines.rest().catch(() => {});
}

/** Sends one line in a write of its own and waits until `reader` has it. */
async function talk(from: TestClient, to: TestClient, text: string): Promise<void> {
  await from.send(text);
  await to.lines.until(`<${from.name}> ${text}`);
}

// Flow control: each cause costs its own.

Deno.test("a client flooding /history without reading is paused at its own queue; its room goes on", async () => {
  const sendQueue = 64 * 1024;
  await using t = startServer({ relay: true, sendQueue, slowTimeout: 60_000, drainTimeout: 200 });
  const [a, b, attacker] = await connectMany(t.port, 3);
  try {
    // 50 lines of 1,000 bytes: each "/history 50" (12 bytes) asks for 50 KB.
    const long = "h".repeat(1000);
    await a.send(...Array.from({ length: 50 }, (_, i) => `${i} ${long}`));
    await b.lines.until(`<${a.name}> 49 ${long}`);
    const { session, connection } = connectionOf(t.server, attacker.name);
    let peak = 0;
    const watch = setInterval(() => peak = Math.max(peak, connection.queuedBytes), 1);
    try {
      await attacker.write("/history 50\n".repeat(1000)); // 50 MB of replies, never read
      await eventually(() => session.behind, "the attacker to fall behind on its own replies");
      peak = Math.max(peak, connection.queuedBytes);
    } finally {
      clearInterval(watch);
    }
    // The rest of its commands wait: its queue holds its mark, the replies
    // buffered at that moment, and one reply more.
    const bound = sendQueue + 64 * 1024 + MAX_HISTORY_BYTES + 4096;
    assert.ok(peak <= bound, `attacker's queue reached ${peak} bytes (bound ${bound})`);
    // Its replies are its own: they hold no room.
    assert.equal(session.holding, false);
    await talk(a, b, "uno");
    await talk(a, b, "dos");
    // Still behind (or again: a first "behind" can end for a moment while the
    // kernel grows the socket's buffer).
    await eventually(() => session.behind, "the attacker to be behind at the end");
  } finally {
    for (const c of [a, b, attacker]) c.close();
  }
});

Deno.test("private messages flooding a client that does not read hold their sender only", async () => {
  await using t = startServer({
    relay: true,
    sendQueue: 64 * 1024,
    slowTimeout: 60_000,
    drainTimeout: 200,
  });
  const [a, b, victim, attacker] = await connectMany(t.port, 4);
  const reading = drain(attacker);
  try {
    const { session } = connectionOf(t.server, victim.name);
    // Long ones: a sender's commands may take only so much server time a second.
    const line = `/msg ${victim.name} ${"p".repeat(60_000)}`;
    // The attacker's writes stop completing once it waits for its victim.
    // Until told to stop: the victim's first "behind" may end as the kernel takes more.
    let stop = false;
    const flooding = (async () => {
      for (let i = 0; i < 2_000 && !stop; i++) await attacker.send(line);
    })().catch(() => {});
    await eventually(() => session.behind, "the victim to fall behind");
    assert.equal(session.holding, false, "private messages held the victim's room");
    await talk(a, b, "uno");
    await talk(a, b, "dos");
    await eventually(() => session.behind, "the victim to be behind at the end");
    stop = true;
    attacker.close();
    await flooding;
  } finally {
    for (const c of [a, b, victim, attacker]) c.close();
    await reading;
  }
});

Deno.test("a reader that stopped holds heavy senders in its room, not people talking", async () => {
  await using t = startServer({
    relay: true,
    sendQueue: 64 * 1024,
    slowTimeout: 60_000,
    drainTimeout: 200,
  });
  const [a, b, heavy, stalled] = await connectMany(t.port, 4);
  // a and heavy read all they are sent (b reads in talk()); stalled never does.
  const reading = [drain(a), drain(heavy)];
  try {
    const { session } = connectionOf(t.server, stalled.name);
    const line = "x".repeat(1000);
    let stop = false;
    const flooding = (async () => {
      for (let i = 0; i < 20_000 && !stop; i += 50) {
        await heavy.send(...Array.from({ length: 50 }, () => line));
      }
    })().catch(() => {});
    await eventually(() => session.holding, "the stalled reader to hold the room");
    await talk(a, b, "uno");
    await talk(a, b, "dos");
    await eventually(() => session.holding, "the room to be held at the end");
    stop = true;
    heavy.close();
    await flooding;
  } finally {
    for (const c of [a, b, heavy, stalled]) c.close();
    await Promise.all(reading);
  }
});

Deno.test("a stalled reader is disconnected as too slow, and the room is told why", async () => {
  await using t = startServer({ relay: true, sendQueue: 64 * 1024, slowTimeout: 200 });
  const [a, b, stalled] = await connectMany(t.port, 3);
  const reading = drain(a);
  try {
    const line = "x".repeat(1000);
    let left = false;
    const gone = t.log.until(
      () => left = t.log.of("leave").some((e) => e.reason === "too slow"),
      "the stalled reader to leave",
    );
    for (let i = 0; i < 20_000 && !left; i += 50) {
      await b.send(...Array.from({ length: 50 }, () => line));
    }
    await gone;
    assert.equal(t.log.of("leave")[0].peer.name, stalled.name);
  } finally {
    for (const c of [a, b, stalled]) c.close();
    await reading;
  }
});

Deno.test("Connection closes a peer as too slow when its queue would pass the hard limit", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const sendQueue = 64 * 1024;
  const server = new Connection(await listener.accept(), {
    sendQueue,
    onBehind: () => {}, // behind, but nobody does anything about it
  });
  try {
    const chunk = new Uint8Array(16 * 1024);
    let peak = 0;
    let sends = 0;
    // The kernel takes a few MB first; the queue may then hold 8 x 64 KiB.
    while (sends < 2_000 && server.send(chunk)) {
      sends++;
      peak = Math.max(peak, server.queuedBytes);
      if (sends % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(server.reason, "too slow");
    assert.ok(peak <= HARD_LIMIT_FACTOR * sendQueue, `queued ${peak} bytes`);
  } finally {
    server.close();
    client.close();
  }
});

// Writes in flight, started in waves (MAX_WRITES_IN_FLIGHT).

/** A server-side Connection and its client socket, on loopback. */
async function connectionPair(
  listener: Deno.TcpListener,
  sendQueue = 1024 * 1024,
): Promise<{ server: Connection; client: Deno.TcpConn }> {
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  return { server: new Connection(await listener.accept(), { sendQueue }), client };
}

/** Reads from `conn` until `bytes` bytes came; returns them. */
async function readBytes(conn: Deno.Conn, bytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(bytes);
  let got = 0;
  while (got < bytes) {
    const n = await conn.read(out.subarray(got));
    if (n === null) throw new Error(`end of input after ${got} of ${bytes} bytes`);
    got += n;
  }
  return out;
}

Deno.test("writes past the limit in flight wait their turn; every peer gets its bytes in order", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = [];
  for (let i = 0; i < 10; i++) pairs.push(await connectionPair(listener));
  Connection.maxWritesInFlight = 1;
  try {
    const encoder = new TextEncoder();
    const expected = pairs.map(() => "");
    for (let round = 0; round < 50; round++) {
      pairs.forEach(({ server }, i) => {
        const line = `${i}:${round}\n`;
        expected[i] += line;
        assert.ok(server.send(encoder.encode(line)));
      });
      assert.ok(Connection.writesInFlight <= 1);
      if (round % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const got = await within(
      Promise.all(pairs.map(({ client }, i) => readBytes(client, expected[i].length))),
      "every peer's bytes",
    );
    got.forEach((bytes, i) => assert.equal(new TextDecoder().decode(bytes), expected[i]));
  } finally {
    Connection.maxWritesInFlight = MAX_WRITES_IN_FLIGHT;
    for (const { server, client } of pairs) {
      server.close();
      client.close();
    }
  }
});

Deno.test("a shared buffer queued to a peer that is behind is not reused before it is written", async () => {
  // A relayed batch is one leased buffer for the whole room; its maker gives
  // it up at once, and the connections that queued it hold it until written.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { server, client } = await connectionPair(listener, 64 * 1024 * 1024);
  try {
    const size = 200_000;
    const chunks = 40; // 8 MB: more than the kernel takes while the client does not read
    for (let k = 0; k < chunks; k++) {
      const bytes = leaseBytes(size);
      bytes.fill(k);
      assert.ok(server.send(bytes));
      release(bytes);
    }
    // Fresh leases, filled with something else: they must not be queued buffers.
    for (let k = 0; k < chunks; k++) {
      const other = leaseBytes(size);
      other.fill(0xee);
      release(other);
    }
    assert.ok(server.queuedBytes > size, `only ${server.queuedBytes} bytes still queued`);
    const got = await within(readBytes(client, chunks * size), "every queued byte");
    for (let k = 0; k < chunks; k++) {
      const chunk = got.subarray(k * size, (k + 1) * size);
      assert.ok(chunk.every((b) => b === k), `chunk ${k} was overwritten before it was written`);
    }
  } finally {
    server.close();
    client.close();
  }
});

Deno.test("small chunks joined into one write per peer arrive intact, with every peer writing at once", async () => {
  // Each peer's lines are joined in a leased buffer (wire/shared_bytes.ts); a
  // buffer given back before its write is done would carry another peer's bytes.
  // Every peer's lines differ: no two peers share a join.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = [];
  for (let i = 0; i < 80; i++) pairs.push(await connectionPair(listener));
  try {
    const encoder = new TextEncoder();
    const expected = pairs.map(() => "");
    for (let round = 0; round < 3; round++) {
      // One turn of the event loop: every peer's writes start together.
      pairs.forEach(({ server }, i) => {
        for (let n = 0; n < 200; n++) {
          const line = `peer ${i} round ${round} line ${n} ${String(i).repeat(40)}\n`;
          expected[i] += line;
          assert.ok(server.send(encoder.encode(line)));
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const got = await within(
      Promise.all(pairs.map(({ client }, i) => readBytes(client, expected[i].length))),
      "every peer's bytes",
    );
    got.forEach((bytes, i) => assert.equal(new TextDecoder().decode(bytes), expected[i]));
  } finally {
    for (const { server, client } of pairs) {
      server.close();
      client.close();
    }
  }
});

Deno.test("a join is shared by the peers queued the same chunks, and only by them", async () => {
  // Peers of a room are queued the same chunks, and write one join of them.
  // Chunks of the same sizes in another order, or another chunk in place of
  // one, must not be taken for the same.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = [];
  for (let i = 0; i < 30; i++) pairs.push(await connectionPair(listener));
  try {
    const chunk = (c: string) => new TextEncoder().encode(c.repeat(20_000 - 1) + "\n");
    const [a, b, c] = [chunk("a"), chunk("b"), chunk("c")];
    const orders = [[a, b], [a, c], [b, a], [a, b, c]];
    const expected = pairs.map(() => "");
    for (let round = 0; round < 2; round++) {
      pairs.forEach(({ server }, i) => {
        for (const bytes of orders[(i + round) % orders.length]) {
          expected[i] += new TextDecoder().decode(bytes);
          assert.ok(server.send(bytes));
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const got = await within(
      Promise.all(pairs.map(({ client }, i) => readBytes(client, expected[i].length))),
      "every peer's bytes",
    );
    got.forEach((bytes, i) =>
      assert.equal(new TextDecoder().decode(bytes), expected[i], `peer ${i}`)
    );
  } finally {
    for (const { server, client } of pairs) {
      server.close();
      client.close();
    }
  }
});

Deno.test("peers that never read do not keep the others' writes from starting", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stalled = [
    await connectionPair(listener, 256 << 20),
    await connectionPair(listener, 256 << 20),
  ];
  const reader = await connectionPair(listener);
  Connection.maxWritesInFlight = 2;
  try {
    // Far more than loopback's socket buffers take: both writes stay in flight for good.
    const chunk = new Uint8Array(1 << 20);
    for (const { server } of stalled) for (let i = 0; i < 64; i++) assert.ok(server.send(chunk));
    // Both places are held by writes that never complete: no event says when the
    // kernel's buffers are full, so give them 50 ms and check they are.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(stalled.every(({ server }) => server.written < 64 * chunk.length));
    assert.equal(Connection.writesInFlight, 2);
    // ...yet the reader's line is written, once no write completed for a few milliseconds.
    assert.ok(reader.server.send(new TextEncoder().encode("hola\n")));
    const got = await within(readBytes(reader.client, 5), "the reader's line");
    assert.equal(new TextDecoder().decode(got), "hola\n");
  } finally {
    Connection.maxWritesInFlight = MAX_WRITES_IN_FLIGHT;
    for (const { server, client } of [...stalled, reader]) {
      server.close();
      client.close();
    }
  }
});

Deno.test("close() still sends what was waiting for its turn to be written", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stalled = await connectionPair(listener, 256 << 20);
  const leaving = await connectionPair(listener);
  Connection.maxWritesInFlight = 1;
  try {
    // The one place among the writes in flight is held by a peer that never reads.
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 64; i++) assert.ok(stalled.server.send(chunk));
    await Promise.resolve(); // writes start at the end of the turn: its write starts
    assert.equal(Connection.writesInFlight, 1);
    assert.ok(leaving.server.send(new TextEncoder().encode("* error: bye\n")));
    leaving.server.close("line timeout");
    const got = await within(readBytes(leaving.client, 13), "the last line");
    assert.equal(new TextDecoder().decode(got), "* error: bye\n");
  } finally {
    Connection.maxWritesInFlight = MAX_WRITES_IN_FLIGHT;
    for (const { server, client } of [stalled, leaving]) {
      server.close();
      client.close();
    }
  }
});

// The operator's console.

Deno.test("a stalled operator console never stops the chat; it says how many lines it skipped", async () => {
  const gate = Promise.withResolvers<void>();
  let text = "";
  const output = new OutputBuffer({
    write: async (p: Uint8Array) => {
      await gate.promise; // the operator's terminal is paused
      text += new TextDecoder().decode(p);
      return p.length;
    },
  }, 64 * 1024);
  const log = new ServerConsole(output);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = new ChatServer(listener, { relay: true, log });
  const [a, b] = await connectMany(listener.addr.port, 2);
  try {
    const count = 3000; // 300 KB of log lines, well past the console's 64 KiB
    const lines = Array.from({ length: count }, (_, i) => `n${i} ${"z".repeat(95)}`);
    for (let i = 0; i < count; i += 500) await a.send(...lines.slice(i, i + 500));
    const got = await b.lines.until(`<${a.name}> n${count - 1} ${"z".repeat(95)}`);
    assert.equal(got.filter((l) => l.startsWith("<")).length, count);
    assert.ok(log.skipped > 0);
    gate.resolve();
    await eventually(() => /log lines skipped/.test(text), "the console to say what it skipped");
    const logged = text.split("\n").filter((l) => / n\d+ z+$/.test(l)).length;
    const skipped = Number(/\* ([\d,]+) log lines skipped/.exec(text)![1].replaceAll(",", ""));
    // Every line is either shown or counted (the joins and the rest are logged too).
    assert.ok(logged + skipped >= count && logged < count, `${logged} logged, ${skipped} skipped`);
  } finally {
    gate.resolve();
    a.close();
    b.close();
    await server.shutdown();
    await output.drained();
  }
});

// Descriptors and limits.

Deno.test("TLS: silent clients are closed at the handshake timeout, and a real client gets in meanwhile", async () => {
  const listener = await listen({
    port: 0,
    certFile: fixture("server.pem"),
    keyFile: fixture("server-key.pem"),
  });
  const log = new MemoryLog();
  const server = new ChatServer(listener, { log, handshakeTimeout: 300 });
  const port = (listener.addr as Deno.NetAddr).port;
  const silent = await Promise.all(
    Array.from({ length: 20 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  try {
    assert.equal((await tlsVisit(port, fixture("ca.pem")))[0], "* welcome, you are user1");
    // Each silent client sees its connection end: the server really closed the
    // socket (Deno.listenTls kept it open until the client left).
    for (const conn of silent) {
      const end = await within(conn.read(new Uint8Array(16)).catch(() => null), "the end");
      assert.equal(end, null);
    }
    await log.until(() => log.of("refused").length === 20, "the timeouts");
    assert.ok(log.of("refused").every((e) => e.reason === "handshake timed out"));
  } finally {
    for (const conn of silent) conn.close();
    await server.shutdown();
  }
});

/** A client from `localAddress` (127.0.0.x: still loopback), through node:net. */
async function connectFrom(port: number, localAddress: string) {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress });
  await within(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    }),
    "the connection",
  );
  const chunks: Uint8Array[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    wake?.();
  });
  socket.on("close", () => {
    ended = true;
    wake?.();
  });
  socket.on("error", () => {});
  const lines = new LineReader({
    async read(p) {
      while (chunks.length === 0 && !ended) await new Promise<void>((r) => wake = r);
      const chunk = chunks.shift();
      if (chunk === undefined) return null;
      const n = Math.min(p.length, chunk.length);
      p.set(chunk.subarray(0, n));
      if (n < chunk.length) chunks.unshift(chunk.subarray(n));
      return n;
    },
  });
  return { lines, close: () => socket.destroy() };
}

Deno.test("a client flooding cheap commands runs them at its share of server time; the others talk meanwhile", async () => {
  await using t = startServer({ relay: true });
  const [a, b, attacker] = await connectMany(t.port, 3);
  try {
    // 300 commands of a microsecond each. Charged what they took, all would run
    // at once; charged at least 50 µs each, about 100 fit the 5 ms at once.
    await attacker.write(Array.from({ length: 300 }, (_, i) => `/away a${i + 1}\n`).join(""));
    const session = t.server.find(attacker.name)!;
    await eventually(() => session.away !== null, "the first of them to run");
    await talk(a, b, "uno");
    assert.notEqual(session.away, "a300", "all 300 ran before anyone else's line");
    // None is lost: the rest run in order, at 400 a second.
    await eventually(() => session.away === "a300", "the last of them to run");
  } finally {
    for (const c of [a, b, attacker]) c.close();
  }
});

Deno.test("a person makes 50 rooms at once, then one a second; a room in use, or the default room, is not limited", async () => {
  await using t = startServer({ relay: true });
  const [maker, other] = await connectMany(t.port, 2);
  try {
    await other.send("/join #busy");
    await other.lines.until("* you are now in #busy; nobody else is here");
    // 51 rooms: the burst of 50, and one more, made while the budget was not yet in debt.
    for (let i = 0; i <= 50; i++) await maker.send(`/join #new${i}`);
    await maker.lines.until("* you are now in #new50; nobody else is here");
    await maker.send("/join #new51");
    await maker.lines.until(
      /^\* error: you are making rooms too fast; #new51 is new: try again in 1 s$/,
    );
    await maker.send("/join #busy");
    await maker.lines.until(`* you are now in #busy, with ${other.name}`);
    assert.equal(t.server.rooms().some((r) => r.name === "#new51"), false);
    // Nobody is left in #lobby; /part takes the maker back there all the same.
    await other.send("/join #other");
    await other.lines.until("* you are now in #other; nobody else is here");
    await maker.send("/part");
    await maker.lines.until("* you are now in #lobby; nobody else is here");
  } finally {
    maker.close();
    other.close();
  }
});

Deno.test("--max-per-address: one connection too many from an address is told so; others get in", async () => {
  await using t = startServer({ relay: true, maxPerAddress: 2 });
  const first = await connectFrom(t.port, "127.0.0.2");
  const second = await connectFrom(t.port, "127.0.0.2");
  try {
    assert.match((await first.lines.next())!, /^\* welcome/);
    assert.match((await second.lines.next())!, /^\* welcome/);
    const third = await connectFrom(t.port, "127.0.0.2");
    assert.deepEqual(await third.lines.rest(), [
      "* too many connections from your address (at most 2)",
    ]);
    third.close();
    assert.deepEqual(t.log.of("refused").map((e) => e.reason), [
      "more than 2 connections from 127.0.0.2",
    ]);
    // Another address is counted apart.
    const other = await connectFrom(t.port, "127.0.0.3");
    assert.match((await other.lines.next())!, /^\* welcome/);
    other.close();
    // Once one leaves, there is room again.
    first.close();
    await t.log.until(() => t.log.of("leave").length >= 1, "the first to leave");
    const again = await connectFrom(t.port, "127.0.0.2");
    assert.match((await again.lines.next())!, /^\* welcome/);
    again.close();
  } finally {
    first.close();
    second.close();
  }
});

Deno.test("server.ts limits each address to 16 connections by default", async () => {
  await using server = new Program("server.ts", ["--port", "0"]);
  const port = Number((await server.stdout.next())!.split(":").at(-1));
  const clients = await connectMany(port, 16);
  try {
    const extra = await TestClient.raw(port);
    assert.deepEqual(await extra.lines.rest(), [
      "* too many connections from your address (at most 16)",
    ]);
    extra.close();
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("--line-timeout: a client that never ends its line is disconnected; slow talkers are not", async () => {
  await using t = startServer({ relay: true, lineTimeout: 300 });
  const [talker, trickler] = await connectMany(t.port, 2);
  try {
    // One byte at a time, never a newline: each byte is activity, none a line.
    const trickle = setInterval(() => void trickler.write("a").catch(() => {}), 50);
    // Complete lines, slowly, from the other: they never trip the timeout.
    const talking = setInterval(() => void talker.send("sigo aquí").catch(() => {}), 100);
    try {
      assert.deepEqual(
        (await trickler.lines.until(/^\* error: no end of line/)).at(-1),
        "* error: no end of line in 0.3 s: disconnecting",
      );
      assert.equal(await trickler.lines.rest().then((rest) => rest.length >= 0), true);
      await t.log.until(() => t.log.of("leave").length === 1, "the trickler to leave");
      assert.deepEqual(t.log.of("leave").map((e) => [e.peer.name, e.reason]), [
        [trickler.name, "line timeout"],
      ]);
    } finally {
      clearInterval(trickle);
      clearInterval(talking);
    }
    assert.equal(t.server.clientCount, 1);
  } finally {
    talker.close();
    trickler.close();
  }
});

Deno.test("--idle-timeout counts complete lines, not bytes", async () => {
  await using t = startServer({ relay: true, idleTimeout: 300 });
  await using trickler = await TestClient.connect(t.port);
  const trickle = setInterval(() => void trickler.write("b").catch(() => {}), 50);
  try {
    assert.equal(
      (await trickler.lines.until(/^\* idle/)).at(-1),
      "* idle for 0.3 s: disconnecting",
    );
  } finally {
    clearInterval(trickle);
  }
});

// Posing as someone else.

Deno.test("/nick refuses names confusable with one in use, ignoring case and look-alikes", async () => {
  await using t = startServer({ relay: true });
  const [alice, bob, mallory, wanda, other] = await connectMany(t.port, 5);
  try {
    for (
      const [client, name] of [[alice, "Alice"], [bob, "bob"], [mallory, "mallory"], [
        wanda,
        "wanda",
      ]] as const
    ) {
      await client.send(`/nick ${name}`);
      await client.lines.until(`* you are now ${name}`);
    }
    for (
      const name of [
        "AIice",
        "A1ice",
        "alice",
        "ALlCE",
        "b0b",
        "BOB",
        "rnallory",
        "vvanda",
        "VVanda",
      ]
    ) {
      await other.send(`/nick ${name}`);
      assert.match((await other.lines.until(/^\* error/)).at(-1)!, /is taken/, name);
    }
    // Free again once its holder has left.
    alice.close();
    await t.log.until(() => t.log.of("leave").length === 1, "Alice to leave");
    await other.send("/nick AIice");
    assert.equal((await other.lines.until(/^\* you are now/)).at(-1), "* you are now AIice");
  } finally {
    for (const c of [alice, bob, mallory, wanda, other]) c.close();
  }
});

Deno.test("/me cannot pass for a server notice: actions start with two stars", async () => {
  await using t = startServer({ relay: true });
  const [mallory, ana] = await connectMany(t.port, 2);
  try {
    await mallory.send("/nick mallory");
    await ana.lines.until("* user1 is now mallory");
    await mallory.send("/me left (kicked: flooding)", "/me is now ana");
    assert.deepEqual((await ana.lines.until(/is now ana$/)).slice(-2), [
      "** mallory left (kicked: flooding)",
      "** mallory is now ana",
    ]);
  } finally {
    mallory.close();
    ana.close();
  }
});

Deno.test("a line padded with blanks cannot push text onto a row of its own", async () => {
  await using t = startServer({ relay: true });
  const [mallory, ana] = await connectMany(t.port, 2);
  try {
    await mallory.send(
      `hola${" ".repeat(66)}<server> the room moves to evil.example:5000; reconnect there`,
      `hola${"\t".repeat(10)}<server> otra`,
    );
    assert.deepEqual((await ana.lines.until(/otra$/)).slice(-2), [
      `<${mallory.name}> hola   <server> the room moves to evil.example:5000; reconnect there`,
      `<${mallory.name}> hola   <server> otra`,
    ]);
  } finally {
    mallory.close();
    ana.close();
  }
});

// Smaller things.

/**
 * Reads `count` lines of 100 B that were all waiting when reading started:
 * how many reads (flushes) that took, and the read buffer held after.
 */
async function readWaitingBurst(count: number): Promise<{ flushes: number; bufferSize: number }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  await client.write(new TextEncoder().encode(("x".repeat(99) + "\n").repeat(count)));
  const server = new Connection(await listener.accept());
  let lines = 0;
  let flushes = 0;
  const all = Promise.withResolvers<void>();
  server.read({
    line: () => {
      if (++lines === count) all.resolve();
    },
    overlong: () => {},
    flush: () => void flushes++,
  });
  try {
    await within(all.promise, "the burst");
    return { flushes, bufferSize: server.readBufferSize };
  } finally {
    server.close();
    client.close();
  }
}

Deno.test("Connection goes back to its smallest read buffer when a burst is over", async () => {
  // 20 KB: read 64 B, 16 KiB, then 64 KiB.
  assert.deepEqual(await readWaitingBurst(200), { flushes: 3, bufferSize: 64 });
});

Deno.test("Connection reads a 16 KB burst in two reads, each relayed as one batch", async () => {
  // The first 64 B, then the rest in a 16 KiB read.
  assert.equal((await readWaitingBurst(160)).flushes, 2);
});

Deno.test("Connection keeps 1 KiB for someone typing lines longer than 64 B, 64 B after a short line", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = new Connection(await listener.accept());
  const seen: string[] = [];
  let next = Promise.withResolvers<void>();
  server.read({
    line: (buf, start, end) => {
      seen.push(new TextDecoder().decode(buf.subarray(start, end)));
      next.resolve();
    },
    overlong: () => {},
    flush: () => {},
  });
  const say = async (text: string) => {
    next = Promise.withResolvers<void>();
    await client.write(new TextEncoder().encode(text + "\n"));
    await within(next.promise, `the line "${text.slice(0, 10)}…"`);
  };
  try {
    await say("a".repeat(200)); // 64 B, then the rest in 16 KiB: one typed line
    assert.equal(server.readBufferSize, 1024);
    await say("b".repeat(300)); // one read of 1 KiB
    assert.equal(server.readBufferSize, 1024);
    await say("hola");
    assert.equal(server.readBufferSize, 64);
    assert.deepEqual(seen, ["a".repeat(200), "b".repeat(300), "hola"]);
  } finally {
    server.close();
    client.close();
  }
});

Deno.test("an unfinished telnet subnegotiation is cut and reported; the lines after it go through", async () => {
  await using t = startServer({ relay: true });
  const [telnet, ana] = await connectMany(t.port, 2);
  try {
    await telnet.write(new Uint8Array([0xff, 0xfa, ...new TextEncoder().encode("x".repeat(300))]));
    await telnet.send("", "hola");
    assert.equal(
      (await telnet.lines.until(/^\* error/)).at(-1),
      "* error: telnet subnegotiation without its end (IAC SE): 256 bytes were dropped",
    );
    assert.deepEqual((await ana.lines.until(/hola$/)).slice(-2), [
      `<${telnet.name}> ${"x".repeat(44)}`,
      `<${telnet.name}> hola`,
    ]);
  } finally {
    telnet.close();
    ana.close();
  }
});

Deno.test("--reconnect backs off further after each connection the server ends at once", async () => {
  // A full server: it accepts, says so, and closes.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      await conn.write(new TextEncoder().encode("* server full\n")).catch(() => {});
      conn.close();
    }
  })();
  const statuses: string[] = [];
  const stop = new AbortController();
  const delays = Promise.withResolvers<void>();
  const client = new ChatClient({ port: listener.addr.port }, {
    reconnect: true,
    signal: stop.signal,
    open: () => ({ line() {}, overlong() {}, flush() {} }),
    onStatus: (text) => {
      statuses.push(text);
      if (statuses.filter((s) => s.startsWith("reconnecting")).length === 3) delays.resolve();
    },
  });
  const running = client.run();
  try {
    await within(delays.promise, "three reconnections");
  } finally {
    stop.abort();
    await running;
    listener.close();
    await serving.catch(() => {});
  }
  const seconds = statuses.filter((s) => s.startsWith("reconnecting"))
    .map((s) => Number(/in ([\d.]+) s/.exec(s)![1]));
  // 0.5 s, then 1 s, then 2 s, each within 20%: not 0.5 s forever.
  assert.ok(seconds[0] <= 0.6 && seconds[1] >= 0.8 && seconds[2] >= 1.6, `${seconds}`);
});
