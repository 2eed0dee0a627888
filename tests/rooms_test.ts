/**
 * Rooms (relay mode): lines stay in their room, /join and /part, the room
 * commands, and per-room flow control, over real sockets on 127.0.0.1.
 */

import assert from "node:assert/strict";
import { runOperatorLine } from "../lib/operator.ts";
import { connectMany, startServer, TestClient, within } from "./_helpers.ts";

/** Connects a client and moves it to `room`, reading until it is there. */
async function inRoom(port: number, room: string): Promise<TestClient> {
  const client = await TestClient.connect(port);
  await client.send(`/join ${room}`);
  await client.lines.until(new RegExp(`^\\* you are now in ${room}[,;]`));
  return client;
}

Deno.test("rooms keep their lines apart: every line once, in order, only in its room", async () => {
  await using t = startServer({ relay: true });
  const rooms = ["#a", "#b", "#c"];
  const members: TestClient[][] = [];
  for (const room of rooms) {
    const group: TestClient[] = [];
    for (let i = 0; i < 4; i++) group.push(await inRoom(t.port, room));
    members.push(group);
  }
  const perClient = 30;
  try {
    await Promise.all(
      members.flat().map(async (c) => {
        for (let n = 0; n < perClient; n += 10) {
          const batch = [];
          for (let k = n; k < n + 10; k++) batch.push(`${c.name} n${k}`);
          await c.send(...batch);
        }
      }),
    );
    await t.log.until(
      () => t.log.messages.length === members.flat().length * perClient,
      "every line to reach the server",
    );
    runOperatorLine(t.server, "fin");
    for (const [r, group] of members.entries()) {
      const names = new Set(group.map((c) => c.name));
      for (const c of group) {
        const next = new Map<string, number>();
        for (const line of (await c.lines.until("<server> fin")).slice(0, -1)) {
          if (line.startsWith("* ")) continue;
          const m = /^<(user\d+)> (user\d+) n(\d+)$/.exec(line);
          assert.ok(m, `malformed: ${line}`);
          const [, from, said, n] = m;
          assert.equal(from, said, "a line under another name");
          assert.ok(names.has(from), `${c.name} in ${rooms[r]} got a line from ${from}`);
          assert.notEqual(from, c.name, "got its own line back");
          assert.equal(Number(n), next.get(from) ?? 0, `from ${from}: lost, repeated or reordered`);
          next.set(from, Number(n) + 1);
        }
        for (const other of names) {
          if (other !== c.name) {
            assert.equal(next.get(other), perClient, `${c.name} lost ${other}'s lines`);
          }
        }
      }
    }
  } finally {
    for (const c of members.flat()) c.close();
  }
});

Deno.test("/join tells the old room and the new one; /part goes back to the default room", async () => {
  await using t = startServer({ relay: true });
  await using ana = await TestClient.connect(t.port);
  await using bea = await TestClient.connect(t.port);
  await ana.send("/nick ana");
  await ana.lines.until("* you are now ana");
  await bea.send("/nick bea", "/join #dev");
  assert.deepEqual((await bea.lines.until(/^\* you are now in/)).slice(-2), [
    "* you are now bea",
    "* you are now in #dev; nobody else is here",
  ]);
  assert.equal((await ana.lines.until(/left for/)).at(-1), "* bea left for #dev");
  await ana.send("/JOIN #Dev");
  assert.equal((await ana.lines.until(/you are now in/)).at(-1), "* you are now in #dev, with bea");
  assert.equal((await bea.lines.until(/joined/)).at(-1), "* ana joined");
  await ana.send("/join #dev");
  assert.equal(await ana.lines.next(), "* you are already in #dev");
  await bea.send("/part");
  assert.equal(
    (await bea.lines.until(/you are now in/)).at(-1),
    "* you are now in #lobby; nobody else is here",
  );
  assert.equal((await ana.lines.until(/left/)).at(-1), "* bea left for #lobby");
  await bea.send("/part");
  assert.equal(
    await bea.lines.next(),
    "* you are in the default room, #lobby; /quit leaves the server",
  );
  await bea.send("/join dev", "/join #no spaces", "/join #" + "x".repeat(33), "/join #ñ");
  assert.equal((await bea.lines.until(/you are now in/)).at(-1), "* you are now in #dev, with ana");
  assert.deepEqual([await bea.lines.next(), await bea.lines.next(), await bea.lines.next()], [
    "* error: usage: /join <#room>",
    '* error: a room name has "#" and 1 to 32 characters',
    '* error: the room name "#ñ" has characters other than letters, digits, "_" and "-"',
  ]);
});

Deno.test("--room sets the default room", async () => {
  await using t = startServer({ relay: true, defaultRoom: "#general" });
  await using a = await TestClient.raw(t.port);
  assert.deepEqual([await a.lines.next(), await a.lines.next()], [
    "* welcome, you are user1",
    "* you are in #general; nobody else is here",
  ]);
});

Deno.test("/rooms, /who #room, /topic: what every room is and who is in it", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await inRoom(t.port, "#dev");
  await using c = await inRoom(t.port, "#dev");
  await b.lines.until("* user3 joined");
  await b.send("/topic release on friday");
  const topicLine = "* user2 set the topic of #dev: release on friday";
  assert.equal((await b.lines.until(/topic/)).at(-1), topicLine);
  assert.equal((await c.lines.until(/topic/)).at(-1), topicLine);
  await c.send("/topic");
  assert.equal(await c.lines.next(), "* topic of #dev: release on friday");
  await a.send("/rooms", "/who #dev", "/who", "/who #nope");
  assert.deepEqual((await a.lines.until(/no room #nope/)).slice(-6), [
    "* 2 rooms:",
    "*   #lobby (1)",
    "*   #dev (2): release on friday",
    "* in #dev (2): user2, user3",
    "* in #lobby (1): user1",
    "* error: there is no room #nope",
  ]);
  // A room's topic outlives the room, and a newcomer is told it.
  b.close();
  c.close();
  await t.log.until(() => t.log.of("leave").length === 2, "both to leave");
  await a.send("/join #dev");
  assert.deepEqual((await a.lines.until(/^\* topic:/)).slice(-2), [
    "* you are now in #dev; nobody else is here",
    "* topic: release on friday",
  ]);
});

Deno.test("/whois shows room, since, idle and away; the address only to oneself", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await inRoom(t.port, "#dev");
  await b.send("/away comiendo");
  assert.equal(await b.lines.next(), "* you are away: comiendo");
  await a.send("/whois user2");
  assert.match(
    (await a.lines.until(/^\* user2 \(#2\)/)).at(-1)!,
    /^\* user2 \(#2\): in #dev, via line, connected since \d\d:\d\d:\d\d, idle \d+s, away: comiendo$/,
  );
  await a.send("/whois user1");
  assert.match((await a.lines.next())!, /, from 127\.0\.0\.1:\d+$/);
  await a.send("/whois nadie");
  assert.equal(await a.lines.next(), '* error: nobody here is called "nadie"');
});

Deno.test("/away shows in /who and to whoever sends a private message; /away alone is back", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await b.send("/away en una reunión");
  await b.lines.until("* you are away: en una reunión");
  await a.send("/who", "/msg user2 ¿vienes?");
  assert.deepEqual(await a.lines.until(/is away/), [
    "* user2 joined",
    "* in #lobby (2): user1, user2 (away)",
    "-> *user2* ¿vienes?",
    "* user2 is away: en una reunión",
  ]);
  assert.equal((await b.lines.until(/vienes/)).at(-1), "*user1* ¿vienes?");
  await b.send("/away");
  assert.equal(await b.lines.next(), "* you are back");
  await a.send("/msg user2 ¿y ahora?");
  assert.equal(await a.lines.next(), "-> *user2* ¿y ahora?");
  await a.send("/who");
  assert.equal(await a.lines.next(), "* in #lobby (2): user1, user2");
});

Deno.test("/msg reaches anyone on the server, whatever room", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await inRoom(t.port, "#otra");
  await a.send("/msg user2 hola desde el lobby");
  assert.equal(
    await a.lines.until(/hola desde/).then((l) => l.at(-1)),
    "-> *user2* hola desde el lobby",
  );
  assert.equal((await b.lines.until(/hola desde/)).at(-1), "*user1* hola desde el lobby");
});

Deno.test("/ignore hides someone's room lines and private messages; /unignore brings them back", async () => {
  await using t = startServer({ relay: true });
  const [a, b, c] = await connectMany(t.port, 3);
  try {
    await a.lines.until("* user3 joined");
    await a.send("/ignore user2");
    assert.equal(await a.lines.next(), "* you ignore user2");
    await b.send("uno de bea", "/msg user1 privado de bea");
    await b.lines.until(/privado de bea/);
    await c.send("uno de carla");
    assert.equal((await a.lines.until(/carla/)).at(-1), "<user3> uno de carla");
    await a.send("/ignore");
    assert.equal(await a.lines.next(), "* you ignore user2");
    await a.send("/unignore user2");
    assert.equal(await a.lines.next(), "* you ignore nobody");
    await b.send("dos de bea");
    assert.equal((await a.lines.until(/bea/)).at(-1), "<user2> dos de bea");
    await a.send("/ignore user1", "/unignore user3");
    assert.deepEqual([await a.lines.next(), await a.lines.next()], [
      "* error: you cannot ignore yourself",
      '* error: you are not ignoring "user3"',
    ]);
  } finally {
    for (const x of [a, b, c]) x.close();
  }
});

Deno.test("blank lines are not relayed; /me is echoed to its sender", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await TestClient.connect(t.port);
  await a.lines.until("* user2 joined");
  await a.send("", "   ", "\t", "/me saluda", "algo");
  assert.equal(await a.lines.next(), "** user1 saluda");
  assert.deepEqual(await b.lines.until("<user1> algo"), ["** user1 saluda", "<user1> algo"]);
  await t.log.until(() => t.log.messages.length === 1, "one message logged");
  assert.deepEqual(t.log.messages, ["user1: algo"]);
});

Deno.test("without --relay, /help lists only what works with the operator", async () => {
  await using t = startServer();
  await using a = await TestClient.connect(t.port);
  await a.send("/help", "/join #dev");
  const help = await a.lines.until(/^\*\s+\/\/text/);
  assert.ok(help.some((l) => l.includes("/msg <name> <text>")));
  for (const relayOnly of ["/join", "/who", "/rooms", "/topic", "/away", "/ignore"]) {
    assert.ok(!help.some((l) => l.includes(relayOnly)), `${relayOnly} listed without --relay`);
  }
  assert.equal(await a.lines.next(), "* error: /join needs a chat room (server --relay)");
});

Deno.test("the operator sees each room: [#room name] lines, /say to one room, text to all", async () => {
  await using t = startServer({ relay: true });
  await using a = await TestClient.connect(t.port);
  await using b = await inRoom(t.port, "#dev");
  await b.send("hola dev");
  await t.log.until(() => t.log.messages.length === 1, "b's line");
  assert.deepEqual(t.log.rooms, ["#dev"]);
  assert.deepEqual(runOperatorLine(t.server, "/say #dev sólo para dev").replies, []);
  assert.equal((await b.lines.until(/^<server>/)).at(-1), "<server> sólo para dev");
  assert.deepEqual(runOperatorLine(t.server, "/say #nadie hola").replies, [
    "error: nobody is in #nadie; /rooms lists the rooms",
  ]);
  runOperatorLine(t.server, "para todos");
  assert.equal((await a.lines.until(/^<server>/)).at(-1), "<server> para todos");
  assert.equal((await b.lines.until(/^<server>/)).at(-1), "<server> para todos");
  assert.deepEqual(runOperatorLine(t.server, "/rooms").replies, [
    "2 rooms:",
    "  #lobby (1)",
    "  #dev (1)",
  ]);
  assert.deepEqual(
    t.log.of("broadcast").map((e) => [e.room, e.text]),
    [["#dev", "sólo para dev"], [null, "para todos"]],
  );
});

Deno.test("a reader that stops reading in #a holds #a only: #b goes on", async () => {
  // A long slow timeout keeps #a held for the whole test: #b must not care.
  await using t = startServer({ relay: true, sendQueue: 64 * 1024, slowTimeout: 60_000 });
  const stalled = await inRoom(t.port, "#a"); // reads its own join, then never again
  const talker = await inRoom(t.port, "#a");
  const sender = await inRoom(t.port, "#b");
  const reader = await inRoom(t.port, "#b");
  let flooding: Promise<void> | undefined;
  try {
    const stalledSession = t.server.find(stalled.name)!;
    // Told when the stalled reader falls behind (its queue past the mark), and
    // counting the times it catches up: until the kernel's socket buffers are
    // full, what is queued for it still drains into them now and then.
    const fellBehind = Promise.withResolvers<void>();
    let caughtUp = 0;
    const setBehind = stalledSession.setBehind.bind(stalledSession);
    stalledSession.setBehind = (behind) => {
      setBehind(behind);
      if (behind) fellBehind.resolve();
      else caughtUp++;
    };
    // Flood #a in 64 KiB writes for the rest of the test (bounded): once the
    // buffers towards the stalled reader are full, #a is held for good.
    const lines = Array.from({ length: 64 }, () => "x".repeat(1000));
    // (Its writes fail once the test closes the talker; the test's outcome is below.)
    flooding = (async () => {
      for (let i = 0; i < 1000; i++) await talker.send(...lines);
    })().catch(() => {});
    await within(fellBehind.promise, "the stalled reader to fall behind");
    // Rounds of 2,000 lines through #b, until one of them went through while #a
    // was held from its start to its end. Were #b held with #a, no round could.
    const count = 2000;
    for (let round = 0;; round++) {
      assert.ok(round < 20, "#b's lines never went through while #a was held");
      const before = caughtUp;
      const heldAtStart = stalledSession.behind;
      await sender.send(...Array.from({ length: count }, (_, i) => `r${round} b${i}`));
      const got = await reader.lines.until(`<${sender.name}> r${round} b${count - 1}`);
      const mine = got.filter((l) => l.startsWith(`<${sender.name}> r${round} b`));
      assert.equal(mine.length, count);
      if (heldAtStart && stalledSession.behind && caughtUp === before) break;
    }
  } finally {
    for (const c of [stalled, talker, sender, reader]) c.close();
    await flooding;
  }
});

Deno.test("/join works with 1,000 rooms in use, and /rooms lists 200 of them", async () => {
  await using t = startServer({ relay: true, maxClients: 2000 });
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 1000; i += 50) {
      clients.push(
        ...await Promise.all(
          Array.from({ length: 50 }, (_, k) => inRoom(t.port, `#r${i + k}`)),
        ),
      );
    }
    assert.equal(t.server.rooms().length, 1000);
    await using late = await TestClient.connect(t.port);
    await late.send("/join #r500");
    assert.equal(
      (await late.lines.until(/you are now in/)).at(-1),
      `* you are now in #r500, with ${
        t.server.rooms().find((r) => r.name === "#r500")!.members.values().next().value!.name
      }`,
    );
    await late.send("/rooms");
    const listed = await late.lines.until(/more rooms/);
    assert.equal(listed[0], "* 1000 rooms:");
    assert.equal(listed.length, 202);
    assert.equal(listed.at(-1), "* and 800 more rooms");
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("operator /whois shows the address and transport; /topic sets a room's topic", async () => {
  await using t = startServer({ relay: true });
  await using a = await inRoom(t.port, "#dev");
  await a.send("/away comiendo");
  await a.lines.until("* you are away: comiendo");
  const [line] = runOperatorLine(t.server, "/whois user1").replies;
  assert.match(
    line,
    /^#1 user1: in #dev, from 127\.0\.0\.1:\d+ \(line\), since \d\d:\d\d:\d\d, idle \d+s, away: comiendo$/,
  );
  assert.deepEqual(runOperatorLine(t.server, "/topic #dev bienvenidos").replies, []);
  assert.equal(
    (await a.lines.until(/topic/)).at(-1),
    "* the operator set the topic of #dev: bienvenidos",
  );
  assert.deepEqual(runOperatorLine(t.server, "/topic #nada x").replies, [
    "error: nobody is in #nada; /rooms lists the rooms",
  ]);
});
