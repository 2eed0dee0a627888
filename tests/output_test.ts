/**
 * What the programs print when they are not on a terminal: JSON events with
 * --json, and never an escape code.
 */

import assert from "node:assert/strict";
import { Program, TestClient } from "./_helpers.ts";

Deno.test("server.ts --json prints every event as one JSON object per line", async () => {
  await using srv = new Program("server.ts", [
    "--json",
    "--relay",
    "--port",
    "0",
    "--max-clients",
    "3",
    "--max-line",
    "100",
  ]);
  const first = JSON.parse((await srv.stdout.next())!);
  assert.equal(first.event, "listening");
  assert.equal(first.relay, true);
  const port = Number(first.address.split(":").at(-1));
  const a = await TestClient.connect(port);
  const b = await TestClient.connect(port);
  const c = await TestClient.connect(port);
  try {
    await a.send("/nick ana", "hola", "/me saluda", "/msg user2 secreto", "/msg server ayuda");
    await a.send("x".repeat(101));
    await a.lines.until(/line longer than/);
    await srv.write("hola a todos\n/to ana psst\n/list\n");
    await a.lines.until("*server* psst");
    const refused = await TestClient.raw(port); // one over --max-clients
    assert.deepEqual(await refused.lines.rest(), ["* server full"]);
    refused.close();
    await srv.write("/kick user3 fuera\n");
    await c.lines.rest();
    await b.send("/quit adiós");
    await b.lines.rest();
    await srv.write("/quit\n");
    assert.equal(await srv.exit(), 0);
  } finally {
    for (const x of [a, b, c]) x.close();
  }
  const events = [first, ...(await srv.stdout.rest()).map((line) => JSON.parse(line))];
  for (const event of events) {
    assert.match(event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(event));
  }
  const kinds = new Set(events.map((e) => e.event));
  for (
    const kind of [
      "listening",
      "connect",
      "join",
      "nick",
      "message",
      "action",
      "private",
      "broadcast",
      "error",
      "refused",
      "kick",
      "leave",
      "reply",
      "shutdown",
    ]
  ) {
    assert.ok(kinds.has(kind), `no ${kind} event in ${[...kinds]}`);
  }
  const find = (kind: string, test: (e: Record<string, unknown>) => boolean = () => true) =>
    events.find((e) => e.event === kind && test(e));
  assert.deepEqual(
    (({ id, name, text }) => ({ id, name, text }))(find("message")),
    { id: 1, name: "ana", text: "hola" },
  );
  assert.equal(find("nick")?.from, "user1");
  assert.deepEqual(find("private", (e) => e.to === null)?.from, {
    id: 1,
    name: "ana",
    address: find("connect")?.address,
    transport: "line",
  });
  assert.equal(find("join")?.room, "#lobby");
  assert.equal(find("message")?.room, "#lobby");
  assert.equal(find("private", (e) => e.from === null)?.text, "psst");
  assert.equal(find("leave", (e) => e.name === "user2")?.reason, "quit: adiós");
  assert.equal(find("leave", (e) => e.name === "user3")?.reason, "kicked: fuera");
  assert.equal(find("refused")?.reason, "server full");
  assert.match(String(find("error")?.message), /line longer than 100 bytes/);
  assert.equal(events.at(-1).event, "shutdown");
});

Deno.test("without a terminal, no program writes an escape code, even from peers' text", async () => {
  const srv = new Program("server.ts", ["--relay", "--port", "0"], [], { cleanEnv: true });
  const port = (await srv.stdout.next())!.split(":").at(-1)!;
  const ana = new Program("client.ts", ["-p", port, "-n", "ana"], [], { cleanEnv: true });
  const bea = new Program("client.ts", ["-p", port, "-n", "bea"], [], { cleanEnv: true });
  const seen: string[] = [];
  try {
    seen.push(...await ana.stdout.until("* you are now ana"));
    seen.push(...await bea.stdout.until("* you are now bea"));
    await ana.write("\x1b[31mrojo\x1b[0m \x1b]0;título\x07 ñ\n/msg bea \x1b[2Jsecreto\n/bogus\n");
    seen.push(...await bea.stdout.until(/^\*ana\*/));
    seen.push(...await ana.stdout.until(/unknown command/));
    await srv.write("/list\n");
    seen.push(...await srv.stdout.until(/^ +#\d+ +bea /)); // the /list reply
    srv.child.kill("SIGTERM");
    assert.equal(await srv.exit(), 0);
    for (const program of [ana, bea]) assert.equal(await program.exit(), 0);
    for (const program of [srv, ana, bea]) {
      seen.push(...await program.stdout.rest(), ...await program.stderr.rest());
    }
  } finally {
    for (const program of [srv, ana, bea]) await program[Symbol.asyncDispose]();
  }
  assert.ok(
    seen.includes("<ana> ^[[31mrojo^[[0m ^[]0;título^G ñ"),
    "the peer's text, made harmless",
  );
  const escapes = seen.filter((line) => line.includes("\x1b"));
  assert.deepEqual(escapes, []);
});
