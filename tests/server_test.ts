/**
 * The server in console mode (clients talk with the operator) and the
 * operator's commands, over real sockets on 127.0.0.1.
 */

import assert from "node:assert/strict";
import { ChatServer } from "../lib/chat_server.ts";
import { runOperatorLine } from "../lib/operator.ts";
import { connectMany, MemoryLog, sendAndReset, startServer, TestClient } from "./_helpers.ts";

Deno.test("ChatServer welcomes each client with an id-based default name", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  assert.equal(a.name, "user1");
  assert.equal(b.name, "user2");
  const joins = t.log.of("connect");
  assert.deepEqual(joins.map((e) => [e.peer.id, e.peer.name]), [[1, "user1"], [2, "user2"]]);
  assert.match(joins[0].peer.address, /^127\.0\.0\.1:\d+$/);
});

Deno.test("ChatServer shows the operator every line of two clients, once and in order", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.send("uno", "dos");
  await b.send("hola");
  await a.send("tres");
  await t.log.until(() => t.log.messages.length === 4, "four messages");
  const fromA = t.log.messages.filter((m) => m.startsWith("user1: "));
  assert.deepEqual(fromA, ["user1: uno", "user1: dos", "user1: tres"]);
  assert.deepEqual(t.log.messages.filter((m) => m.startsWith("user2: ")), ["user2: hola"]);
});

Deno.test("ChatServer takes 50 concurrent clients' lines exactly once each, in order", async () => {
  await using t = startServer();
  const clients = await connectMany(t.port, 50);
  try {
    // Everyone sends at once; each client's 20 lines go in several writes.
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 20; k += 5) {
        await c.send(...[0, 1, 2, 3, 4].map((j) => `client ${i} line ${k + j}`));
      }
    }));
    await t.log.until(() => t.log.messages.length === 1000, "1000 messages");
    for (const [i, c] of clients.entries()) {
      const lines = t.log.messages.filter((m) => m.startsWith(`${c.name}: `));
      assert.deepEqual(lines, [...Array(20).keys()].map((k) => `${c.name}: client ${i} line ${k}`));
    }
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("ChatServer does not relay between clients without --relay", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.send("solo para el operador");
  await t.log.until(() => t.log.messages.length === 1, "the message");
  runOperatorLine(t.server, "marca");
  // b's next line is the operator's: a's line never reached it.
  assert.deepEqual(await b.lines.until(/^<server>/), ["<server> marca"]);
});

Deno.test("operator text goes to every client as <server> text", async () => {
  await using t = startServer();
  const clients = await connectMany(t.port, 3);
  try {
    assert.deepEqual(runOperatorLine(t.server, "hola a todos"), { replies: [], quit: false });
    for (const c of clients) {
      assert.deepEqual((await c.lines.until(/^<server>/)).at(-1), "<server> hola a todos");
    }
    assert.deepEqual(t.log.of("broadcast").map((e) => e.text), ["hola a todos"]);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("operator //text sends a line that starts with /", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  runOperatorLine(t.server, "//etc/hosts");
  assert.equal((await a.lines.until(/^<server>/)).at(-1), "<server> /etc/hosts");
});

Deno.test("operator /to reaches one client only, by id or by name", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  assert.deepEqual(runOperatorLine(t.server, "/to 2 solo para ti").replies, []);
  assert.deepEqual(runOperatorLine(t.server, "/to USER1 y para ti").replies, []);
  runOperatorLine(t.server, "fin");
  assert.deepEqual(await a.lines.until("<server> fin"), ["*server* y para ti", "<server> fin"]);
  assert.deepEqual(await b.lines.until("<server> fin"), ["*server* solo para ti", "<server> fin"]);
});

Deno.test("operator commands report unknown clients and commands in one line", () => {
  const server = new ChatServer(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  try {
    assert.deepEqual(runOperatorLine(server, "/to 9 hola").replies, [
      'error: no client "9"; /list shows who is connected',
    ]);
    assert.deepEqual(runOperatorLine(server, "/kick nadie").replies, [
      'error: no client "nadie"; /list shows who is connected',
    ]);
    assert.deepEqual(runOperatorLine(server, "/bogus").replies, [
      'error: unknown command "/bogus"; /help lists the commands',
    ]);
    assert.deepEqual(runOperatorLine(server, "/to").replies, [
      "error: usage: /to <id|name> <text>",
    ]);
    assert.ok(runOperatorLine(server, "/help").replies.some((l) => l.includes("/kick")));
    assert.deepEqual(runOperatorLine(server, "/quit"), { replies: [], quit: true });
  } finally {
    void server.shutdown();
  }
});

Deno.test("operator /list shows id, name, room, address and since when", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await b.send("/nick bea");
  await b.lines.until("* you are now bea");
  const replies = runOperatorLine(t.server, "/list").replies;
  assert.equal(replies[0], "2 connected:");
  assert.match(
    replies[1],
    /^ {2}#1 {2}user1 {2}#lobby {2}127\.0\.0\.1:\d+ {2}since \d\d:\d\d:\d\d \(\d+s\)$/,
  );
  assert.match(replies[2], /^ {2}#2 {2}bea {4}#lobby {2}127\.0\.0\.1:\d+ {2}since /);
  assert.equal(a.name, "user1");
});

Deno.test("operator /kick disconnects the client with the reason", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  assert.deepEqual(runOperatorLine(t.server, "/kick user1 demasiado spam").replies, [
    "kicked #1 user1",
  ]);
  assert.deepEqual(await a.lines.rest(), ["* you were kicked: demasiado spam"]);
  await t.log.until(() => t.log.of("leave").length === 1, "the leave event");
  assert.equal(t.log.of("leave")[0].reason, "kicked: demasiado spam");
  // The other client is still served.
  await b.send("sigo aquí");
  await t.log.until(() => t.log.messages.includes("user2: sigo aquí"), "b's line");
  assert.equal(t.server.clientCount, 1);
});

Deno.test("ChatServer goes on when a client resets in the middle of a line", async () => {
  await using t = startServer();
  await using good = await TestClient.connect(t.port);
  await sendAndReset(t.port, "a half line without its end");
  await t.log.until(() => t.log.of("leave").length === 1, "the reset client to leave");
  assert.equal(t.log.of("leave")[0].reason, "connection lost");
  await good.send("todavía aquí");
  await t.log.until(() => t.log.messages.includes("user1: todavía aquí"), "the good line");
  // A line cut by a reset is not delivered: only an orderly end completes a line.
  assert.deepEqual(t.log.messages, ["user1: todavía aquí"]);
});

Deno.test("ChatServer delivers a final line without a newline at end of input", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await a.write("última sin salto");
  await a.conn.closeWrite();
  assert.deepEqual(await a.lines.rest(), []);
  assert.deepEqual(t.log.messages, ["user1: última sin salto"]);
  assert.equal(t.log.of("leave")[0].reason, "eof");
});

Deno.test("ChatServer writes all queued replies before closing at a client's end of input", async () => {
  // Replies far larger than the socket buffers, asked for before reading any:
  // at the client's end of input most of them still wait in the send queue.
  // A share of server time large enough for 50,000 commands at once (at
  // 50 µs each, the default share would take two minutes to run them).
  const commandTime = { msPerSecond: 20, burstMs: 10_000 };
  await using t = startServer({ relay: true, sendQueue: 64 * 1024 * 1024, commandTime });
  await using a = await TestClient.connect(t.port);
  await a.write("/help\n".repeat(50_000) + "/who\n");
  await a.conn.closeWrite();
  const rest = await a.lines.rest();
  assert.equal(rest.filter((l) => l === "* commands:").length, 50_000);
  assert.equal(rest.at(-1), "* in #lobby (1): user1");
});

Deno.test("ChatServer strips telnet's Ctrl-C and answers its TIMING-MARK", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  // What telnet sends for Ctrl-C: IAC IP IAC DO TIMING-MARK. It then hides
  // output until the server answers, so the answer must come.
  await a.write(new Uint8Array([0x61, 0xff, 0xf4, 0xff, 0xfd, 0x06, 0x62, 0x0d, 0x0a]));
  const reply = new Uint8Array(3);
  assert.equal(await a.conn.read(reply), 3);
  assert.deepEqual([...reply], [0xff, 0xfb, 0x06]);
  await t.log.until(() => t.log.messages.length === 1, "the line");
  assert.deepEqual(t.log.messages, ["user1: ab"]);
});

Deno.test("ChatServer keeps accepting after accept() fails for one connection", async () => {
  // Deno's accept() can throw NotConnected when a client resets before the
  // accept completes; `for await` over a listener would end there.
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let failures = 0;
  const flaky = {
    addr: real.addr,
    accept: () => {
      if (failures++ < 3) {
        return Promise.reject(new Deno.errors.NotConnected("Transport endpoint is not connected"));
      }
      return real.accept();
    },
    close: () => real.close(),
  } as unknown as Deno.Listener;
  const log = new MemoryLog();
  const server = new ChatServer(flaky, { log });
  try {
    await using a = await TestClient.connect(real.addr.port);
    assert.equal(a.name, "user1");
    assert.equal(log.of("error").length, 3);
    assert.match(log.of("error")[0].message, /^accept: Transport endpoint is not connected/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("ChatServer tells clients it is shutting down and closes them", async () => {
  const t = startServer();
  const a = await TestClient.connect(t.port);
  const b = await TestClient.connect(t.port);
  const done = t.server.shutdown();
  assert.deepEqual(await a.lines.rest(), ["* server shutting down"]);
  assert.deepEqual(await b.lines.rest(), ["* server shutting down"]);
  await done;
  assert.equal(t.log.events.at(-1)?.event, "shutdown");
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: t.port }));
  a.close();
  b.close();
});

Deno.test("ChatServer ends only the client whose line made the log throw", async () => {
  const log = new MemoryLog();
  const message = log.message.bind(log);
  log.message = (room, peer, text, start, end) => {
    const line = new TextDecoder().decode(text.subarray(start, end));
    if (line === "boom") throw new Error("the log failed");
    message(room, peer, text, start, end);
  };
  await using t = startServer({ relay: true, log });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await using c = await TestClient.connect(t.port);
  await a.send("antes", "boom", "después");
  await log.until(() => log.of("leave").length === 1, "a to leave");
  assert.match(log.of("leave")[0].reason, /^error: the log failed$/);
  await b.send("sigo");
  // c gets b's line whole, under b's name. Of a's, at most the line before the
  // error (if it came in an earlier read than the one that failed): nothing cut,
  // nothing after the error, nothing under another name.
  const seen = (await c.lines.until(/sigo/)).filter((l) => l.startsWith("<"));
  assert.equal(seen.at(-1), "<user2> sigo");
  assert.ok(seen.slice(0, -1).every((l) => l === "<user1> antes"), JSON.stringify(seen));
});
