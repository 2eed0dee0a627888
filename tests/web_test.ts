/**
 * The web transport at the protocol level: the page's files over HTTP, and the
 * WebSocket with Deno's own client (and a raw one where a browser API hides
 * what is checked), against a real server on 127.0.0.1, beside real line
 * clients. The page itself in a real browser: web_browser_test.ts.
 */

import assert from "node:assert/strict";
import { PAGE_CSP, type WebPeer } from "../lib/transports/web.ts";
import { AccessList } from "../lib/net/cidr.ts";
import { makeCertificates } from "../lib/net/make_cert.ts";
import { Program, TestClient, within } from "./_helpers.ts";
import { type Event, RawWebSocket, startWebServer, WebClient } from "./_web.ts";

const is = (type: string) => (e: Event) => e.type === type;

Deno.test("web page is served with the strict CSP, nosniff and revalidation", async () => {
  await using t = await startWebServer({ relay: true });
  const base = `http://127.0.0.1:${t.webPort}`;
  // The policy tests/web_page_test.ts proves the page works under.
  assert.equal(
    PAGE_CSP,
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
      "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  const types: Record<string, string> = {
    "/": "text/html; charset=utf-8",
    "/index.html": "text/html; charset=utf-8",
    "/app.js": "text/javascript; charset=utf-8",
    "/format.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
  };
  for (const [path, type] of Object.entries(types)) {
    const response = await fetch(base + path);
    const body = await response.text();
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("content-type"), type, path);
    assert.equal(response.headers.get("content-security-policy"), PAGE_CSP, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(response.headers.get("cache-control"), "no-cache", path);
    const file = path === "/" || path === "/index.html" ? "index.html" : path.slice(1);
    assert.equal(body, await Deno.readTextFile(new URL(`../web/${file}`, import.meta.url)), path);

    // Revalidation: the same ETag gets a 304 and no body.
    const etag = response.headers.get("etag")!;
    assert.match(etag, /^"[0-9a-f]{24}"$/);
    const again = await fetch(base + path, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, path);
    assert.equal(await again.text(), "");
  }
  const head = await fetch(`${base}/app.js`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const size = (await Deno.stat(new URL("../web/app.js", import.meta.url))).size;
  assert.equal(head.headers.get("content-length"), String(size));

  for (const path of ["/nope", "/web_files.ts", "/format_test.ts", "/../deno.json", "/app.js/"]) {
    const response = await fetch(base + path);
    await response.body?.cancel();
    assert.equal(response.status, 404, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
  }
  const post = await fetch(`${base}/`, { method: "POST", body: "x" });
  await post.body?.cancel();
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  const plainGet = await fetch(`${base}/ws`);
  await plainGet.body?.cancel();
  assert.equal(plainGet.status, 426, "/ws without an upgrade");
});

Deno.test("web client is welcomed into #lobby and chats with a line client", async () => {
  await using t = await startWebServer({ relay: true, maxLine: 4096, flood: 50 });
  await using line = await TestClient.connect(t.port);
  await using web = await WebClient.open(t.wsUrl);
  const welcome = await web.next(is("welcome"));
  assert.equal(welcome.server, "charla");
  assert.match(welcome.resume, /^[0-9a-f-]{36}$/, "a resume token");
  assert.deepEqual(welcome.limits, { maxLine: 4096, flood: 50, idleSeconds: 0 });
  const joined = await web.next(is("joined"));
  assert.equal(joined.room, "#lobby");
  assert.deepEqual(joined.members, [{ id: 1, name: line.name, transport: "line" }]);
  assert.equal(await line.lines.next(), `* ${web.name} joined`);

  line.send("hola, ¿quién está? 你好");
  const heard = await web.next(is("message"));
  assert.deepEqual(
    { ...heard, time: 0 },
    {
      type: "message",
      room: "#lobby",
      from: { id: 1, name: line.name },
      text: "hola, ¿quién está? 你好",
      time: 0,
    },
  );
  web.say("#lobby", "aquí, en el navegador 👋");
  web.say("#lobby", "/me saluda");
  assert.equal(await line.lines.next(), `<${web.name}> aquí, en el navegador 👋`);
  assert.equal(await line.lines.next(), `** ${web.name} saluda`);
  // Its own lines come back, in the room's order: the page's confirmation.
  const own = await web.next(is("message"));
  assert.equal(own.from.name, web.name);
  assert.equal(own.text, "aquí, en el navegador 👋");
  assert.equal((await web.next(is("action"))).text, "saluda");

  // Commands typed in the box work as for nc, aimed at the room shown.
  web.say("#lobby", "/nick ana");
  assert.equal((await web.next(is("renamed"))).you.name, "ana");
  assert.equal(await line.lines.next(), `* ${welcome.you.name} is now ana`);
  web.say("#lobby", "/who");
  const who = await web.next(is("who"));
  assert.deepEqual(who.members.map((m: Event) => [m.name, m.transport]), [
    [line.name, "line"],
    ["ana", "web"],
  ]);
  web.say("#lobby", "/msg " + line.name + " psst");
  assert.equal(await line.lines.next(), "*ana* psst");
  assert.equal((await web.next(is("private"))).echo, true);
  web.say("#lobby", "//etc/hosts is a file");
  assert.equal(await line.lines.next(), "<ana> /etc/hosts is a file");
});

Deno.test("web client gets an error for a bad frame and nothing else is lost", async () => {
  await using t = await startWebServer({ relay: true });
  await using line = await TestClient.connect(t.port);
  await using web = await WebClient.joined(t.wsUrl);
  await line.lines.next(); // the join
  web.say("#lobby", "uno");
  web.send("this is not JSON");
  web.send("[1, 2]");
  web.send({ room: "#lobby" });
  web.send({ type: "join", room: 7 });
  web.send({ type: "frobnicate" });
  web.socket.send(new Uint8Array([1, 2, 3]));
  web.say("#lobby", "/frobnicate");
  web.say("#dev", "not in that room");
  web.say("#lobby", "dos");
  const errors: Event[] = [];
  for (let i = 0; i < 8; i++) errors.push(await web.next(is("error")));
  assert.deepEqual(errors.map((e) => e.code), [
    "usage",
    "usage",
    "usage",
    "usage",
    "unknown_command",
    "usage",
    "unknown_command",
    "not_in_room",
  ]);
  assert.match(errors[0].text, /one JSON object/);
  assert.match(errors[3].text, /"join" needs "room" to be a string/);
  assert.match(errors[5].text, /binary frames/);
  assert.deepEqual(await line.lines.until(`<${web.name}> dos`), [
    `<${web.name}> uno`,
    `<${web.name}> dos`,
  ]);
  assert.equal(web.socket.readyState, WebSocket.OPEN);
});

Deno.test("web client that asks for batches gets events together as a JSON array", async () => {
  await using t = await startWebServer({ relay: true });
  await using line = await TestClient.connect(t.port);
  const text = async (raw: RawWebSocket) => {
    const frame = await raw.frame();
    assert.equal(frame?.opcode, 1);
    return JSON.parse(new TextDecoder().decode(frame!.payload));
  };
  using batched = await RawWebSocket.connect(t.webPort, { path: "/ws?batch=1" });
  // The welcome and the room, sent in one turn: one frame for the one that batches.
  assert.deepEqual((await text(batched)).map((e: Event) => e.type), ["welcome", "joined"]);
  using single = await RawWebSocket.connect(t.webPort);
  assert.equal((await text(single)).type, "welcome");
  assert.equal((await text(single)).type, "joined");
  await line.lines.until(/user3 joined/);
  while ((await text(batched)).type !== "join"); // user3, the single one, came in
  // Five lines in one read: one array frame, in order; five frames for the other.
  await line.send("uno", "dos", "tres", "cuatro", "cinco");
  const lines = ["uno", "dos", "tres", "cuatro", "cinco"];
  assert.deepEqual((await text(batched)).map((e: Event) => e.text), lines);
  for (const expected of lines) assert.equal((await text(single)).text, expected);
  // Alone in its turn, an event is sent as it is, not in an array.
  await line.send("seis");
  assert.equal((await text(batched)).text, "seis");
});

Deno.test("web frame over --max-line is dropped with too_long and the connection goes on", async () => {
  await using t = await startWebServer({ relay: true, maxLine: 1000 });
  await using line = await TestClient.connect(t.port);
  await using web = await WebClient.joined(t.wsUrl);
  await line.lines.next();
  // 990 bytes of text make a frame over 1,000 bytes; so do 400 three-byte characters.
  web.say("#lobby", "x".repeat(990));
  web.say("#lobby", "你".repeat(400));
  web.say("#lobby", "y".repeat(900));
  for (let i = 0; i < 2; i++) {
    const error = await web.next(is("error"));
    assert.equal(error.code, "too_long");
    assert.equal(error.text, "frame longer than 1000 bytes was dropped");
  }
  assert.equal(await line.lines.next(), `<${web.name}> ${"y".repeat(900)}`);
  assert.equal(t.log.of("error").filter((e) => /longer than 1000/.test(e.message)).length, 2);
});

Deno.test("web upgrade from a foreign Origin is refused unless --web-origin allows it", async () => {
  await using t = await startWebServer({
    relay: true,
    web: { origins: ["https://chat.example.org"] },
  });
  const own = `http://127.0.0.1:${t.webPort}`;
  for (
    const [origin, status] of [
      ["http://evil.example", 403],
      [`http://127.0.0.1:${t.webPort + 1}`, 403],
      [`https://127.0.0.1:${t.webPort}`, 403],
      [own, 101],
      ["https://chat.example.org", 101],
      ["HTTPS://Chat.Example.Org", 101],
    ] as const
  ) {
    using raw = await RawWebSocket.connect(t.webPort, { origin });
    assert.equal(raw.answer.status, status, origin);
  }
  // Without an Origin it is not a browser: let in.
  using bare = await RawWebSocket.connect(t.webPort);
  assert.equal(bare.answer.status, 101);
  assert.equal((await bare.event())?.type, "welcome");
  await assert.rejects(WebClient.open(t.wsUrl, { origin: "http://evil.example" }), /Cannot open/);
  await using good = await WebClient.open(t.wsUrl, { origin: own });
  await good.next(is("joined"));
  assert.deepEqual(
    t.log.of("refused").map((e) => e.reason),
    [
      "web: origin http://evil.example",
      `web: origin http://127.0.0.1:${t.webPort + 1}`,
      `web: origin https://127.0.0.1:${t.webPort}`,
      "web: origin http://evil.example",
    ],
  );
});

Deno.test("web clients count against --max-clients with line clients", async () => {
  await using t = await startWebServer({ relay: true, maxClients: 2 });
  await using line = await TestClient.connect(t.port);
  await using web = await WebClient.joined(t.wsUrl);
  {
    using refused = await RawWebSocket.connect(t.webPort);
    assert.equal(refused.answer.status, 503);
  }
  // The line port counts the web client too.
  await using third = await TestClient.raw(t.port);
  assert.deepEqual(await third.lines.rest(), ["* server full"]);
  assert.equal(t.log.of("refused").length, 2);
  const peer = t.server.clients().at(-1)!.peer as WebPeer;
  await web.close();
  await within(peer.closed, "the web client's socket to close");
  assert.equal(t.server.gate.active, 1);
  await using again = await WebClient.joined(t.wsUrl);
  assert.equal(again.events[0].type, "welcome");
  line.close();
});

Deno.test("web page and socket are refused with 403 for a denied address", async () => {
  await using t = await startWebServer({
    relay: true,
    access: new AccessList({ deny: ["127.0.0.0/8"] }),
  });
  const page = await fetch(`http://127.0.0.1:${t.webPort}/`);
  assert.equal(page.status, 403);
  assert.equal(await page.text(), "access denied\n");
  using raw = await RawWebSocket.connect(t.webPort);
  assert.equal(raw.answer.status, 403);
  assert.equal(t.server.clientCount, 0);
  assert.deepEqual(t.log.of("refused").map((e) => e.reason), [
    "web: denied by --deny 127.0.0.0/8",
    "web: denied by --deny 127.0.0.0/8",
  ]);
});

Deno.test("web client that stops reading is dropped as too slow and the room goes on", async () => {
  // The server runs as its own process, so the browser here that reads does
  // not share its event loop (nor its CPU) with it.
  await using srv = new Program("server.ts", [
    ...["--relay", "--port", "0", "--web", "0", "--send-queue", "64K", "--max-clients", "3"],
  ]);
  const port = Number((await srv.stdout.next())!.split(":").at(-1));
  const webPort = Number(/:(\d+)\/ \(web\)$/.exec((await srv.stdout.next())!)![1]);
  await using sender = await TestClient.connect(port);
  await using reader = await WebClient.joined(`ws://127.0.0.1:${webPort}/ws`);
  // The stalled one reads its welcome and room, then never again.
  using stalled = await RawWebSocket.connect(webPort);
  await stalled.until(is("joined"));
  await srv.stdout.until(/#3 user3 joined #lobby$/);
  // The operator's log is read to its end, or it would push back on the server.
  const left = Promise.withResolvers<string>();
  let dropped = false;
  const draining = (async () => {
    for (let line; (line = await srv.stdout.next()) !== null;) {
      if (/ left/.test(line)) {
        dropped = true;
        left.resolve(line);
      }
    }
  })().catch(() => {});
  // Lines of 1 KiB until it is dropped: the kernel takes a few MB for it first.
  // Bounded: 40 MB at most.
  const filler = "z".repeat(1000);
  let sent = 0;
  while (!dropped && sent < 40_000) {
    const batch = [];
    for (let k = sent; k < sent + 100; k++) batch.push(`${k} ${filler}`);
    await sender.send(...batch);
    sent += 100;
  }
  assert.match(await within(left.promise, "someone to leave"), /\* #3 user3 left \(too slow\)$/);
  // The reading browser got every line, in order.
  for (let i = 0; i < sent; i++) {
    const message = await reader.next(is("message"));
    assert.equal(message.text, `${i} ${filler}`);
  }
  // Deno cannot abort a server-side WebSocket: the dropped one's socket still
  // counts against --max-clients until the client goes.
  using fourth = await RawWebSocket.connect(webPort);
  assert.equal(fourth.answer.status, 503);
  stalled.close();
  sender.close();
  await reader.close();
  srv.child.kill();
  await draining;
});

Deno.test("web client must give the password first; a wrong one is refused", async () => {
  await using t = await startWebServer({ relay: true, password: "sésamo" });
  await using web = await WebClient.open(t.wsUrl);
  const asked = await web.next(is("error"));
  assert.equal(asked.code, "password");
  assert.match(asked.text, /needs a password/);
  web.say("#lobby", "hola");
  assert.match((await web.next(is("error"))).text, /send the password first/);
  web.send({ type: "pass", password: "abrete" });
  assert.equal((await web.next(is("error"))).text, "wrong password");
  assert.equal(t.server.clientCount, 0, "nobody is attached before the password");
  web.send({ type: "pass", password: "sésamo" });
  await web.next(is("welcome"));
  await web.next(is("joined"));
  assert.equal(t.server.clientCount, 1);

  // Three wrong ones close the connection.
  await using bad = await WebClient.open(t.wsUrl);
  for (const guess of ["a", "b", "c"]) bad.send({ type: "pass", password: guess });
  const closed = await bad.closed;
  assert.equal(closed.code, 4004);
  assert.equal(bad.events.filter((e) => e.code === "password").length, 4);
  assert.ok(t.log.of("refused").some((e) => e.reason === "wrong password"));
});

Deno.test("web client is held to the flood limit and the idle timeout", async () => {
  await using t = await startWebServer({ relay: true, flood: 2, idleTimeout: 400 });
  await using web = await WebClient.joined(t.wsUrl);
  for (let i = 0; i < 6; i++) web.say("#lobby", `línea ${i}`);
  const error = await web.next(is("error"));
  assert.equal(error.code, "flood");
  assert.ok(t.log.messages.length < 6, `only what the bucket allows: ${t.log.messages}`);
  // Then silence: the idle timeout closes it, saying why, with code 4002.
  const closing = await web.next(is("closing"));
  assert.equal(closing.reason, "timeout");
  const closed = await web.closed;
  assert.equal(closed.code, 4002);
  assert.match(closed.reason, /idle/);
  assert.deepEqual(t.log.of("leave").map((e) => [e.peer.name, e.reason]), [[
    web.name,
    "timed out",
  ]]);
});

Deno.test("web client past its share of server time has its next frames wait, in order", async () => {
  // A share so small that any command uses it up: the debt it leaves (at most
  // the burst) takes 1 s to repay. The default is 20 ms a second, 5 at once.
  await using t = await startWebServer({
    relay: true,
    web: { commandTime: { msPerSecond: 0.001, burstMs: 0.001 } },
  });
  await using web = await WebClient.joined(t.wsUrl);
  await using bea = await TestClient.connect(t.port);
  await t.log.until(() => t.log.of("join").length === 2, "both to be in");
  web.send({ type: "who" });
  web.say("#lobby", "tarde");
  await web.next(is("who"));
  // The line after the command waits for the debt; bea is not held meanwhile:
  // twenty of her lines go through, each logged before she sends the next
  // (without the wait, the web line is taken in the server's next task).
  for (let i = 0; i < 20; i++) {
    await bea.send(`hola ${i}`);
    await t.log.until(() => t.log.messages.includes(`${bea.name}: hola ${i}`), "bea's line");
  }
  assert.ok(!t.log.messages.includes(`${web.name}: tarde`), `${t.log.messages}`);
  // Then it goes.
  await bea.lines.until(`<${web.name}> tarde`);
});

Deno.test("web client: what a person says (say, action, msg frames, /me and /msg lines) is not charged server time", async () => {
  // A share that one charged command uses up for 100 s (0.001 ms of debt at
  // 0.00001 ms a second): charged, the second frame would wait that long.
  await using t = await startWebServer({
    relay: true,
    web: { commandTime: { msPerSecond: 0.00001, burstMs: 0.001 } },
  });
  await using web = await WebClient.joined(t.wsUrl);
  await using bea = await TestClient.connect(t.port);
  await t.log.until(() => t.log.of("join").length === 2, "both to be in");
  web.send({ type: "say", room: "#lobby", text: "uno" });
  web.send({ type: "action", room: "#lobby", text: "saluda" });
  web.send({ type: "msg", to: bea.name, text: "tres" });
  web.say("#lobby", "/me se sienta");
  web.say("#lobby", `/msg ${bea.name} cinco`);
  web.say("#lobby", "seis");
  const got = await bea.lines.until(`<${web.name}> seis`);
  assert.deepEqual(got.filter((l) => l.includes(web.name)), [
    `<${web.name}> uno`,
    `** ${web.name} saluda`,
    `*${web.name}* tres`,
    `** ${web.name} se sienta`,
    `*${web.name}* cinco`,
    `<${web.name}> seis`,
  ]);
  // Any other command is still charged: the frame after a /who waits.
  web.send({ type: "who" });
  web.say("#lobby", "siete");
  await web.next(is("who"));
  await bea.send("hola");
  await t.log.until(() => t.log.messages.includes(`${bea.name}: hola`), "bea's line");
  assert.ok(!t.log.messages.includes(`${web.name}: siete`), `${t.log.messages}`);
});

Deno.test("web client that is kicked is told so and closed with code 4001", async () => {
  await using t = await startWebServer({ relay: true });
  await using web = await WebClient.joined(t.wsUrl);
  t.server.kick(web.name, "spam");
  const closing = await web.next(is("closing"));
  assert.deepEqual(closing, { type: "closing", reason: "kicked", text: "you were kicked: spam" });
  const closed = await web.closed;
  assert.equal(closed.code, 4001);
  assert.equal(closed.reason, "you were kicked: spam");
});

Deno.test("web events say how newcomers are connected and which rooms a leaver was in", async () => {
  await using t = await startWebServer({ relay: true });
  await using ana = await WebClient.joined(t.wsUrl);
  await using line = await TestClient.connect(t.port);
  const join = await ana.next(is("join"));
  assert.equal(join.transport, "line");
  ana.send({ type: "join", room: "#dev" });
  await ana.next((e) => e.type === "joined" && e.room === "#dev");
  await line.send("/away comiendo", "/join #dev");
  const devJoin = await ana.next((e) => e.type === "join" && e.room === "#dev");
  assert.deepEqual([devJoin.transport, devJoin.away, devJoin.from], ["line", "comiendo", "#lobby"]);
  await line.send("/nick bea");
  const nick = await ana.next(is("nick"));
  assert.deepEqual(nick.rooms, ["#dev"]);
  await line.send("/quit");
  const quit = await ana.next(is("quit"));
  assert.deepEqual([quit.who.name, quit.rooms], ["bea", ["#dev"]]);
});

Deno.test("web client in several rooms: join adds one, part leaves the one named", async () => {
  await using t = await startWebServer({ relay: true });
  await using web = await WebClient.joined(t.wsUrl);
  await using dev = await TestClient.connect(t.port);
  await dev.send("/join #dev");
  await dev.lines.until(/^\* you are now in #dev/);
  web.say("#lobby", "/join #dev");
  const joined = await web.next((e) => e.type === "joined" && e.room === "#dev");
  assert.deepEqual(joined.members.map((m: Event) => m.name), [dev.name]);
  await dev.lines.until(`* ${web.name} joined`);
  web.say("#dev", "en dev");
  web.say("#lobby", "en el lobby");
  assert.equal(await dev.lines.next(), `<${web.name}> en dev`);
  // Still in #lobby: its line went there, not to #dev.
  web.say("#dev", "/part");
  assert.equal((await web.next(is("parted"))).room, "#dev");
  assert.equal(await dev.lines.next(), `* ${web.name} left #dev`);
  web.say("#dev", "ya no");
  assert.equal((await web.next(is("error"))).code, "not_in_room");
  web.say("#lobby", "/whois " + web.name);
  assert.deepEqual((await web.next(is("whois"))).rooms, ["#lobby"]);
});

Deno.test("web resume token ends the old connection at once and frees its name", async () => {
  await using t = await startWebServer({ relay: true });
  await using old = await WebClient.joined(t.wsUrl);
  old.say("#lobby", "/nick ana");
  await old.next(is("renamed"));
  const token = old.events[0].resume;
  await using line = await TestClient.connect(t.port);
  await using fresh = await WebClient.joined(t.wsUrl);
  // As the page does after a reconnect: resume, then ask for its name.
  fresh.send({ type: "resume", token });
  fresh.send({ type: "nick", name: "ana" });
  assert.equal((await fresh.next(is("renamed"))).you.name, "ana");
  const closed = await old.closed;
  assert.equal(closed.code, 4000);
  assert.deepEqual(await line.lines.until(/is now ana$/), [
    `* ${fresh.events[0].you.name} joined`,
    "* ana left (reconnected)",
    `* ${fresh.events[0].you.name} is now ana`,
  ]);
  // A token is good for its own connection only: the fresh one's own does nothing.
  fresh.send({ type: "resume", token: fresh.events[0].resume });
  fresh.send({ type: "resume", token: "not a token" });
  fresh.say("#lobby", "sigo aquí");
  assert.equal(await line.lines.next(), "<ana> sigo aquí");
});

Deno.test("web clients are told the server is shutting down and closed with 1001", async () => {
  const t = await startWebServer({ relay: true });
  const web = await WebClient.joined(t.wsUrl);
  const shutdown = t.server.shutdown("hasta mañana");
  const closing = await web.next(is("closing"));
  assert.deepEqual(closing, { type: "closing", reason: "shutdown", text: "hasta mañana" });
  assert.equal((await web.closed).code, 1001);
  await within(shutdown, "the shutdown");
  const refused = await fetch(`http://127.0.0.1:${t.webPort}/`).catch((e) => e);
  assert.ok(refused instanceof TypeError, "the web port is closed");
});

Deno.test("server.ts --web serves the page beside the line port and says where", async () => {
  await using srv = new Program("server.ts", ["--relay", "--port", "0", "--web", "0"]);
  assert.match((await srv.stdout.next())!, /^listening on 127\.0\.0\.1:\d+$/);
  const webLine = (await srv.stdout.next())!;
  const url = /^listening on (http:\/\/127\.0\.0\.1:\d+\/) \(web\)$/.exec(webLine)?.[1];
  assert.ok(url, webLine);
  const page = await fetch(url);
  assert.match(await page.text(), /<title>charla<\/title>/);
  await using web = await WebClient.joined(`${url.replace("http", "ws")}ws`);
  assert.match(
    (await srv.stdout.until(/connected from/)).at(-1)!,
    /\* #1 user1 connected from 127\.0\.0\.1:\d+ \(web\)$/,
  );
  web.say("#lobby", "hola desde el navegador");
  assert.match(
    (await srv.stdout.until(/hola desde/)).at(-1)!,
    /\[#lobby user1\] hola desde el navegador$/,
  );
});

Deno.test("server.ts --password-file makes the web page ask for the password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "charla-web-pass-" });
  try {
    await Deno.writeTextFile(`${dir}/password`, "sésamo\n");
    await using srv = new Program(
      "server.ts",
      ["-r", "-p", "0", "--web", "0", "--password-file", `${dir}/password`],
      ["--allow-read"],
    );
    await srv.stdout.next();
    const url = /(http:\S+) \(web\)$/.exec((await srv.stdout.next())!)![1];
    await using web = await WebClient.open(`${url.replace("http", "ws")}ws`);
    assert.equal((await web.next(is("error"))).code, "password");
    web.send({ type: "pass", password: "sésamo" });
    await web.next(is("joined"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts --web with --tls-cert serves the page over HTTPS and the socket over WSS", async () => {
  const set = await makeCertificates(["localhost", "127.0.0.1"], { days: 1 });
  const dir = await Deno.makeTempDir({ prefix: "charla-web-tls-" });
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, set.cert);
    await Deno.writeTextFile(`${dir}/key.pem`, set.key);
    await using srv = new Program(
      "server.ts",
      [
        "-r",
        "-p",
        "0",
        "--web",
        "0",
        "--tls-cert",
        `${dir}/cert.pem`,
        "--tls-key",
        `${dir}/key.pem`,
      ],
      ["--allow-read"],
    );
    await srv.stdout.next();
    const webLine = (await srv.stdout.next())!;
    const port = Number(/^listening on https:\/\/127\.0\.0\.1:(\d+)\/ \(web\)$/.exec(webLine)?.[1]);
    assert.ok(port > 0, webLine);
    using client = Deno.createHttpClient({ caCerts: [set.caCert] });
    const page = await fetch(`https://localhost:${port}/`, { client });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-security-policy"), PAGE_CSP);
    await page.body?.cancel();
    using wss = await RawWebSocket.connect(port, {
      tls: { caCerts: [set.caCert], hostname: "localhost" },
      origin: `https://localhost:${port}`,
    });
    assert.equal(wss.answer.status, 101);
    assert.equal((await wss.event())?.type, "welcome");
    assert.equal((await wss.event())?.type, "joined");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts refuses bad --web and --web-origin values, and a web port in use", async () => {
  for (
    const [args, message] of [
      [
        ["--web", "99999"],
        'charla server: invalid --web "99999": must be a number from 0 to 65535',
      ],
      [
        ["--web", "localhost:"],
        'charla server: invalid --web "": must be a number from 0 to 65535',
      ],
      [
        ["--web", "::1:8080"],
        /^charla server: invalid --web "::1:8080": write an IPv6 address in brackets/,
      ],
      [["--web-origin", "https://a.example"], "charla server: --web-origin needs --web"],
      [
        ["--web", "0", "--web-origin", "ftp://a.example"],
        /^charla server: invalid --web-origin "ftp:\/\/a\.example": .*http:\/\/ or https:\/\//,
      ],
    ] as [string[], string | RegExp][]
  ) {
    await using srv = new Program("server.ts", ["-p", "0", ...args]);
    assert.equal(await srv.exit(), 2, args.join(" "));
    const err = await srv.stderr.rest();
    if (typeof message === "string") assert.equal(err[0], message);
    else assert.match(err[0], message);
  }
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using srv = new Program("server.ts", ["-p", "0", "--web", String(taken.addr.port)]);
  assert.equal(await srv.exit(), 1);
  assert.deepEqual(await srv.stderr.rest(), [
    `charla server: cannot listen on "127.0.0.1:${taken.addr.port}" for the web page: the ` +
    "address is in use (is another server running there?); stop it or pick another --web",
  ]);
});
