/**
 * Relay mode (`--relay`): a chat room. Lines, presence, client commands and
 * text safety, over real sockets on 127.0.0.1.
 */

import assert from "node:assert/strict";
import { runOperatorLine } from "../lib/operator.ts";
import { OutputBuffer } from "../lib/terminal/output.ts";
import { ServerConsole } from "../lib/terminal/server_console.ts";
import { connectMany, startServer, TestClient, type TestServer } from "./_helpers.ts";

/**
 * Every client sends `perClient` lines at once; then checks that each client got
 * every other client's lines exactly once, whole and in order, and none of its own.
 */
async function exchange(t: TestServer, clients: TestClient[], perClient: number): Promise<void> {
  await Promise.all(clients.map(async (c, i) => {
    // Several writes per client, with lines of varied lengths.
    for (let k = 0; k < perClient; k += 5) {
      const batch = [];
      for (let j = k; j < Math.min(k + 5, perClient); j++) {
        batch.push(`from ${i} n ${j} ${"x".repeat((i * 7 + j) % 50)}`);
      }
      await c.send(...batch);
    }
  }));
  await t.log.until(
    () => t.log.messages.length === clients.length * perClient,
    "every line to reach the server",
  );
  runOperatorLine(t.server, "end of test");
  await Promise.all(clients.map(async (c, i) => {
    const lines = await c.lines.until("<server> end of test");
    const next = new Map<number, number>();
    for (const line of lines.slice(0, -1)) {
      if (line.startsWith("* ")) continue; // presence notices
      const m = /^<(user\d+)> from (\d+) n (\d+) (x*)$/.exec(line);
      assert.ok(m, `malformed line at client ${i}: ${JSON.stringify(line)}`);
      const [, name, fromText, nText, filler] = m;
      const from = Number(fromText);
      const n = Number(nText);
      assert.notEqual(from, i, `client ${i} got its own line back`);
      assert.equal(name, clients[from].name);
      assert.equal(n, next.get(from) ?? 0, `client ${i}: from ${from} out of order or duplicated`);
      assert.equal(filler.length, (from * 7 + n) % 50, "line cut or altered");
      next.set(from, n + 1);
    }
    for (let from = 0; from < clients.length; from++) {
      if (from !== i) assert.equal(next.get(from), perClient, `client ${i} lost lines of ${from}`);
    }
  }));
}

Deno.test("relay delivers every line of three clients to the other two, once and in order", async () => {
  await using t = startServer({ relay: true });
  const clients = await connectMany(t.port, 3);
  try {
    await exchange(t, clients, 30);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("relay delivers every line of fifty clients to the other 49, once and in order", async () => {
  await using t = startServer({ relay: true });
  const clients = await connectMany(t.port, 50);
  try {
    await exchange(t, clients, 20);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("relay welcomes with who is online and announces joins and leaves", async () => {
  await using t = startServer({ relay: true });
  const a = new TestClientLines(await TestClient.raw(t.port));
  assert.deepEqual(await a.take(2), [
    "* welcome, you are user1",
    "* you are in #lobby; nobody else is here",
  ]);
  const b = new TestClientLines(await TestClient.raw(t.port));
  assert.deepEqual(await b.take(2), [
    "* welcome, you are user2",
    "* you are in #lobby, with user1",
  ]);
  assert.deepEqual(await a.take(1), ["* user2 joined"]);
  await b.client.send("/quit me voy");
  assert.deepEqual(await b.client.lines.rest(), ["* goodbye"]);
  assert.deepEqual(await a.take(1), ["* user2 left (quit: me voy)"]);
  const c = new TestClientLines(await TestClient.raw(t.port));
  await c.take(2);
  await a.take(1); // user3 joined
  c.client.close();
  assert.deepEqual(await a.take(1), ["* user3 left"]);
  a.client.close();
  b.client.close();
});

Deno.test("relay tells the room why someone left: timed out, kicked", async () => {
  await using t = startServer({ relay: true, idleTimeout: 300 });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  // a keeps talking so the idle timeout does not take it.
  const keepAlive = setInterval(() => void a.send("/who").catch(() => {}), 50);
  try {
    await a.lines.until("* user2 joined");
    assert.equal((await b.lines.until(/^\* idle/)).at(-1), "* idle for 0.3 s: disconnecting");
    await a.lines.until("* user2 left (timed out)");
    await using c = await TestClient.connect(t.port);
    runOperatorLine(t.server, "/kick user3 fuera");
    await a.lines.until("* user3 left (kicked: fuera)");
    assert.equal(c.name, "user3");
  } finally {
    clearInterval(keepAlive);
  }
});

Deno.test("/nick renames, tells everyone, and later lines carry the new name", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.lines.until("* user2 joined");
  await a.send("antes", "/nick Ana", "después");
  assert.deepEqual(await a.lines.next(), "* you are now Ana");
  assert.deepEqual(await b.lines.until("<Ana> después"), [
    "<user1> antes",
    "* user1 is now Ana",
    "<Ana> después",
  ]);
  assert.deepEqual(t.log.of("nick").map((e) => [e.from, e.peer.name]), [["user1", "Ana"]]);
});

Deno.test("/nick refuses taken, reserved and malformed names with a reason", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.send("/nick ana");
  await a.lines.until("* you are now ana");
  await b.lines.until("* user1 is now ana");
  const cases: [string, string][] = [
    ["/nick ANA", '* error: the name "ANA" is taken; you are still user2'],
    ["/nick Server", '* error: the name "Server" is reserved; you are still user2'],
    ["/nick user1", '* error: the name "user1" is reserved for client #1; you are still user2'],
    [
      "/nick 42",
      '* error: the name "42" is only digits, which mean a client number; you are still user2',
    ],
    [
      "/nick ñandú",
      '* error: the name "ñandú" has characters other than letters, digits, "_" and "-"; you are still user2',
    ],
    [
      "/nick a.b",
      '* error: the name "a.b" has characters other than letters, digits, "_" and "-"; you are still user2',
    ],
    [`/nick ${"x".repeat(33)}`, "* error: a name has 1 to 32 characters; you are still user2"],
    ["/nick", "* error: usage: /nick <name>"],
  ];
  for (const [command, reply] of cases) {
    await b.send(command);
    assert.equal(await b.lines.next(), reply, command);
  }
  await b.send(`/nick ${"y".repeat(32)}`);
  assert.equal(await b.lines.next(), `* you are now ${"y".repeat(32)}`);
  await b.send("/nick user2"); // its own default name is fine
  assert.equal(await b.lines.next(), "* you are now user2");
});

Deno.test("/msg reaches one person, marked as private; others see nothing", async () => {
  await using t = startServer({ relay: true });
  const [a, b, c] = await connectMany(t.port, 3);
  try {
    await b.send("/nick bea");
    await b.lines.until("* you are now bea");
    await a.lines.until("* user2 is now bea");
    await a.send("/msg BEA un secreto: ñ", "/msg nadie hola", "/msg bea", "/msg user1 a mí");
    assert.deepEqual(await a.lines.until(/that is you/), [
      "-> *bea* un secreto: ñ",
      '* error: nobody here is called "nadie"',
      "* error: usage: /msg <name> <text>",
      "* error: that is you",
    ]);
    assert.equal((await b.lines.until(/^\*user1\*/)).at(-1), "*user1* un secreto: ñ");
    runOperatorLine(t.server, "marca");
    assert.deepEqual((await c.lines.until("<server> marca")).filter((l) => !l.startsWith("* ")), [
      "<server> marca",
    ]);
    assert.deepEqual(t.log.of("private").map((e) => [e.from?.name, e.to?.name, e.text]), [
      ["user1", "bea", "un secreto: ñ"],
    ]);
  } finally {
    for (const x of [a, b, c]) x.close();
  }
});

Deno.test("/msg server talks privately with the operator", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await a.send("/msg server ayuda, por favor");
  assert.equal(await a.lines.next(), "-> *server* ayuda, por favor");
  assert.deepEqual(t.log.of("private").map((e) => [e.from?.name, e.to, e.text]), [
    ["user1", null, "ayuda, por favor"],
  ]);
});

Deno.test("/me, /who, /help and unknown commands", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.lines.until("* user2 joined");
  await a.send("/me saluda con la mano");
  assert.equal((await b.lines.until(/saluda/)).at(-1), "** user1 saluda con la mano");
  // The sender sees its action as the room does.
  assert.equal((await a.lines.until(/saluda/)).at(-1), "** user1 saluda con la mano");
  await a.send("/who");
  assert.equal((await a.lines.until(/^\* in #lobby/)).at(-1), "* in #lobby (2): user1, user2");
  await a.send("/HELP");
  const help = await a.lines.until(/^\*\s+\/\/text/);
  assert.ok(help.includes("* commands:"));
  assert.ok(help.some((l) => l.startsWith("*   /msg <name> <text>")));
  await a.send("/bailar", "/me");
  assert.deepEqual([await a.lines.next(), await a.lines.next()], [
    '* error: unknown command "/bailar"; /help lists the commands',
    "* error: usage: /me <action>",
  ]);
});

Deno.test("nothing a client sends after its /quit, or after it was kicked, is relayed", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await using c = await TestClient.connect(t.port);
  await a.send("antes", "/quit adiós", "después del quit");
  runOperatorLine(t.server, "/kick user2");
  await b.send("después del kick");
  await t.log.until(() => t.log.of("leave").length === 2, "both to leave");
  runOperatorLine(t.server, "fin");
  const seen = await c.lines.until("<server> fin");
  assert.ok(seen.includes("* user1 left (quit: adiós)") && seen.includes("* user2 left (kicked)"));
  assert.deepEqual(seen.filter((l) => l.startsWith("<user")), ["<user1> antes"]);
  assert.deepEqual(t.log.messages, ["user1: antes"]);
});

Deno.test("// sends a literal line starting with /", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.send("//nick no es un comando", "///doble");
  assert.deepEqual((await b.lines.until("<user1> //doble")).slice(-2), [
    "<user1> /nick no es un comando",
    "<user1> //doble",
  ]);
});

Deno.test("relay keeps a long line whole when it arrives in many small writes", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  const long = Array.from({ length: 4000 }, (_, i) => ["ñ", "你", "😀"][i % 3]).join("");
  const bytes = new TextEncoder().encode(`${long}\n`);
  // 7-byte writes split the multi-byte characters at every possible offset.
  for (let at = 0; at < bytes.length; at += 7) {
    await a.write(bytes.subarray(at, Math.min(at + 7, bytes.length)));
  }
  assert.equal((await b.lines.until(/^<user1>/)).at(-1), `<user1> ${long}`);
});

Deno.test("relay splits many lines sent in one write into whole lines", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  const lines = Array.from({ length: 500 }, (_, i) => `línea ${i}`);
  await a.write(lines.map((l) => `${l}\r\n`).join(""));
  const got = await b.lines.until("<user1> línea 499");
  assert.deepEqual(got.filter((l) => l.startsWith("<")), lines.map((l) => `<user1> ${l}`));
});

Deno.test("a line that fills the server's smallest read after a paste is relayed without waiting for more", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  // A 100 KB paste in one write: the server reads it with its larger buffers,
  // then goes back to its smallest (64 bytes) to wait for the quiet peer.
  const paste = Array.from({ length: 1600 }, (_, i) => `paste ${i} ${"x".repeat(50)}`);
  await a.write(paste.map((l) => `${l}\n`).join(""));
  await b.lines.until(`<${a.name}> ${paste.at(-1)}`);
  // Then lines of 63 characters: with the newline, each fills that buffer
  // exactly. Each must arrive with nothing sent after it.
  for (const c of ["p", "q", "r"]) {
    const line = c.repeat(63);
    await a.send(line);
    assert.equal(
      (await b.lines.until(new RegExp(`^<${a.name}> ${c}`))).at(-1),
      `<${a.name}> ${line}`,
    );
  }
});

Deno.test("relay passes UTF-8 through unchanged and neutralises control characters", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.send("¿Qué tal? ñandú 你好 👋🏽 é\ttab");
  // A tab becomes a space: its width depends on where it lands on each screen.
  assert.equal((await b.lines.until(/^<user1>/)).at(-1), "<user1> ¿Qué tal? ñandú 你好 👋🏽 é tab");
  // ESC sequences (clear screen, title), BEL, backspace, DEL, C1 CSI, a lone CR.
  await a.write(
    new Uint8Array([
      ...new TextEncoder().encode("a\x1b[2J\x1b]0;pwned\x07b\x08c\x7fd"),
      0xc2,
      0x9b,
      0x33,
      0x31,
      0x6d, // U+009B CSI "31m"
      0x0d,
      0x65, // a CR not before LF
      0xfe,
      0xc3,
      0x28,
      0xff,
      0x41, // invalid UTF-8
      0x0a,
    ]),
  );
  const line = (await b.lines.until(/^<user1> a/)).at(-1)!;
  assert.equal(line, "<user1> a^[[2J^[]0;pwned^Gb^Hc^?d\uFFFD31m^Me\uFFFD\uFFFD(\uFFFDA");
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(line, /[\x00-\x08\x0a-\x1f\x7f-\x9f]/);
  assert.equal(t.log.messages.at(-1), `user1: ${line.slice("<user1> ".length)}`);
});

Deno.test("relay drops an over-long line, tells the sender, and keeps the connection", async () => {
  await using t = startServer({ relay: true, maxLine: 1000 });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.lines.until("* user2 joined");
  await a.send("x".repeat(1001), "y".repeat(1000), "sigue");
  assert.equal(await a.lines.next(), "* error: line longer than 1000 bytes was dropped");
  const got = await b.lines.until("<user1> sigue");
  assert.deepEqual(got.filter((l) => l.startsWith("<")), [
    `<user1> ${"y".repeat(1000)}`,
    "<user1> sigue",
  ]);
});

Deno.test("the operator sees the room: messages, actions and notices", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.send("hola", "/me sonríe");
  await b.lines.until("** user1 sonríe");
  assert.deepEqual(t.log.messages, ["user1: hola"]);
  assert.deepEqual(t.log.of("action").map((e) => e.text), ["sonríe"]);
  runOperatorLine(t.server, "bienvenidos");
  assert.equal((await a.lines.until(/^<server>/)).at(-1), "<server> bienvenidos");
  assert.equal((await b.lines.until(/^<server>/)).at(-1), "<server> bienvenidos");
});

Deno.test("the operator's log keeps the order things happened in, lines logged a batch at a time", async () => {
  let text = "";
  const out = new OutputBuffer({
    write: (p) => Promise.resolve((text += new TextDecoder().decode(p)).length && p.length),
  });
  await using t = startServer({ relay: true, flood: 3, log: new ServerConsole(out) });
  await using a = await TestClient.connect(t.port);
  // One read: three lines, then a fourth over the flood limit, whose event
  // comes while the three are still in the batch, not yet relayed.
  await a.send("uno", "dos", "tres", "cuatro");
  await a.lines.until(/^\* error: flood/);
  await a.send("/nick ana"); // a command: the batch before it goes out first
  await a.lines.until("* you are now ana");
  await out.drained();
  const logged = text.split("\n").filter((l) => l !== "").map((l) =>
    l.replace(/^\d\d:\d\d:\d\d /, "")
  );
  const from = logged.findIndex((l) => l.endsWith("] uno"));
  assert.deepEqual(logged.slice(from, from + 5), [
    "[#lobby user1] uno",
    "[#lobby user1] dos",
    "[#lobby user1] tres",
    "! #1 user1: flood limit reached",
    "* #1 user1 is now ana",
  ]);
});

/** Reads a fixed number of lines from a raw client. */
class TestClientLines {
  constructor(readonly client: TestClient) {}
  async take(count: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push((await this.client.lines.next()) ?? "<end>");
    return out;
  }
}
