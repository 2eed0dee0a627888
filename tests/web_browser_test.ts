/**
 * The web page in a real headless chromium (Debian's, driven over DevTools by
 * tests/_browser.ts), against a real server, with a real `nc` in the same
 * room: two people in browsers and one on a terminal see each other's lines in
 * order; `/join` works from the page; a hostile line stays text; a server
 * restart shows the page offline and then back, with what was typed meanwhile
 * sent once. Screenshots go to tests/screenshots/ (git-ignored).
 */

import assert from "node:assert/strict";
import { ChatServer } from "../lib/chat_server.ts";
import { WebServer } from "../lib/transports/web.ts";
import { Browser, type Page } from "./_browser.ts";
import { LineReader, MemoryLog, streamSource, within } from "./_helpers.ts";
import { shownLines } from "./_web.ts";

/** A chat server and its web port; `webPort` 0 picks one, a number reuses it after a restart. */
async function start(webPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const log = new MemoryLog();
  const server = new ChatServer(listener, { relay: true, log });
  const web = await WebServer.start(server, { port: webPort });
  return { server, web, log, port: listener.addr.port };
}

/** `nc` on the line port: what a terminal user runs. */
class Netcat implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: LineReader;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;

  constructor(port: number) {
    this.child = new Deno.Command("nc", {
      args: ["127.0.0.1", String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.lines = new LineReader(streamSource(this.child.stdout));
    this.#stdin = this.child.stdin.getWriter();
  }

  async send(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    try {
      this.child.kill();
    } catch {
      // Exited already (the server closed).
    }
    await this.child.status;
    await this.lines.rest().catch(() => {});
  }
}

/** What went wrong in a page, but the refused WebSocket while the server was down. */
function unexpected(page: Page): string[] {
  return page.errors().filter((e) =>
    !/^log: WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws(\?batch=1)?' failed/.test(e)
  );
}

Deno.test("web page in chromium chats with another page and nc, and survives a restart", async (t) => {
  let chat = await start(0);
  const webPort = chat.web.addr.port;
  const url = chat.web.url;
  await using browser = await Browser.launch();
  const ana = await browser.newPage();
  const bea = await browser.newPage();
  await ana.setViewport(960, 600);
  await bea.setViewport(375, 667, { mobile: true, deviceScaleFactor: 2 });
  let nc = new Netcat(chat.port);
  try {
    await t.step("web pages ask for a name, remember it and join #lobby", async () => {
      assert.match((await nc.lines.next())!, /^\* welcome, you are user1$/);
      await nc.send("/nick carlos");
      await nc.lines.until("* you are now carlos");
      for (const [page, name] of [[ana, "ana"], [bea, "bea"]] as const) {
        await page.goto(url);
        await page.waitFor("#name-dialog[open]");
        await page.type("#name", name);
        await page.waitFor("#status", { text: `connected as ${name}` });
        assert.equal(await page.evaluate("localStorage.getItem('charla.name')"), name);
      }
      await nc.lines.until("* user3 is now bea");
      await ana.waitFor("#people li", { text: "bea" });
      const people = await ana.evaluate<string[]>(
        `[...document.querySelectorAll("#people li")].map((li) => li.textContent)`,
      );
      // Each name, then how they are connected.
      assert.deepEqual(people, ["anaweb", "beaweb", "carlosline"]);
    });

    await t.step("web pages and nc see each other's lines in order", async () => {
      // Rounds: ana, then bea, then carlos, each line seen by the others before
      // the next is typed, so there is one order for everyone to agree on.
      const all: string[][] = [];
      const said = [
        ["¿Quién viene a #dev después?", "Yo me quedo aquí, mañana sí", "Voy, dame un minuto"],
        ["¿Se sabe algo del despliegue?", "Sale el viernes", "Perfecto, gracias"],
        ["Una pregunta más: ¿café?", "Siempre ☕ (o té)", "Café, claro"],
      ];
      for (const [a, b, c] of said) {
        await ana.type("#box", a);
        assert.equal(await nc.lines.next(), `<ana> ${a}`);
        await bea.type("#box", b);
        assert.equal(await nc.lines.next(), `<bea> ${b}`);
        await nc.send(c);
        for (const page of [ana, bea]) await page.waitFor(".log li.message", { text: c });
        all.push(["ana", a], ["bea", b], ["carlos", c]);
      }
      for (const page of [ana, bea]) {
        await page.waitFor(".log li.message", { text: said[2][2] });
        assert.deepEqual(await shownLines(page, "#lobby"), all);
        // Their own lines came back from the server: none is left pending.
        assert.equal(await page.evaluate("document.querySelectorAll('.log .pending').length"), 0);
      }
      await ana.screenshot("web-chat-desktop");
      await bea.screenshot("web-chat-phone");
    });

    await t.step("web page shows a hostile line as text, and any script's characters", async () => {
      const hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>";
      await nc.send(hostile);
      for (const page of [ana, bea]) await page.waitFor(".log li.message", { text: "onerror" });
      await bea.type("#box", "你好 👋🏽 مرحبا e\u0301");
      assert.equal(await nc.lines.next(), "<bea> 你好 👋🏽 مرحبا e\u0301");
      for (const page of [ana, bea]) {
        await page.waitFor(".log li.message", { text: "مرحبا" });
        assert.deepEqual((await shownLines(page, "#lobby")).slice(-2), [
          ["carlos", hostile],
          ["bea", "你好 👋🏽 مرحبا e\u0301"],
        ]);
        assert.equal(
          await page.evaluate("document.querySelectorAll('#logs img, #logs script').length"),
          0,
        );
      }
    });

    await t.step("web page joins #dev with /join, and the room follows", async () => {
      await ana.type("#box", "/join #dev");
      await ana.waitFor("#title", { text: "#dev" });
      // A page is in several rooms at once: ana is still in #lobby too.
      await nc.send("/join #dev");
      await nc.lines.until(/^\* you are now in #dev, with ana$/);
      await ana.waitFor(".log:not([hidden]) li.notice", { text: "carlos joined #dev" });
      await nc.send("solo en dev");
      await ana.waitFor(".log:not([hidden]) li.message", { text: "solo en dev" });
      await ana.type("#box", "/me saluda en dev");
      assert.equal(await nc.lines.next(), "** ana saluda en dev");
      assert.deepEqual(await shownLines(ana, "#dev"), [
        ["carlos", "solo en dev"],
        ["ana", "saluda en dev"],
      ]);
      // bea stayed in #lobby: nothing of #dev reached her.
      await bea.waitFor(".log li.notice", { text: "carlos left #lobby for #dev" });
      assert.ok(!(await shownLines(bea, "#lobby")).some(([, text]) => text.includes("en dev")));
      await ana.waitFor("#rooms li.joined", { text: "#dev" });
      await ana.screenshot("web-chat-two-rooms");
    });

    await t.step("web page shows offline during a restart, then comes back by itself", async () => {
      await chat.server.shutdown();
      for (const page of [ana, bea]) await page.waitFor("#status.offline");
      await ana.type("#box", "vuelvo enseguida");
      await ana.waitFor(".log .queued", { text: "vuelvo enseguida" });
      await ana.screenshot("web-offline");
      await nc[Symbol.asyncDispose]();

      chat = await start(webPort);
      nc = new Netcat(chat.port);
      for (const [page, name] of [[ana, "ana"], [bea, "bea"]] as const) {
        await page.waitFor("#status:not(.offline)", { text: `connected as ${name}` });
      }
      // What was typed offline went once, under ana's name, in the room it was typed in.
      await chat.log.until(
        () => chat.log.messages.includes("ana: vuelvo enseguida"),
        "the queued line to be said",
      );
      assert.equal(chat.log.messages.filter((m) => m === "ana: vuelvo enseguida").length, 1);
      assert.equal(chat.log.rooms[chat.log.messages.indexOf("ana: vuelvo enseguida")], "#dev");
      assert.equal(await ana.evaluate("document.querySelectorAll('.log .queued').length"), 0);
      // Back in both rooms it was in.
      const anaSession = chat.server.find("ana")!;
      await chat.log.until(() => anaSession.rooms.length === 2, "ana to be back in #dev");
      assert.deepEqual(anaSession.rooms.map((r) => r.name).sort(), ["#dev", "#lobby"]);
      for (const page of [ana, bea]) assert.deepEqual(unexpected(page), []);
    });
  } finally {
    await nc[Symbol.asyncDispose]();
    await within(chat.server.shutdown(), "the server to shut down");
  }
});
