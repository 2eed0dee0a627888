/**
 * The web page (web/) in a real chromium, served as charla will serve it (the
 * same files, under the same Content-Security-Policy) but with no chat server
 * behind `/ws`: everything here is what the page does on its own, before and
 * without a connection, or with a scripted socket where the test needs the
 * server's events in an order a real server gives only by chance. Chatting
 * through the real server is tested with the server's web transport.
 */

import assert from "node:assert/strict";
import { PAGE_CSP } from "../lib/transports/web.ts";
import { Browser, type Page } from "./_browser.ts";
import { shownLines } from "./_web.ts";

/** The policy charla sends with the page: nothing inline, nothing from elsewhere. */
const CSP = PAGE_CSP;

const WEB = new URL("../web/", import.meta.url);
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/**
 * Serves web/ on loopback. `/ws` is handed to `script` when there is one;
 * otherwise it is refused, as by a server that is down.
 */
function serveWeb(script?: (socket: WebSocket) => void): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/ws" && script !== undefined) {
      const { socket, response } = Deno.upgradeWebSocket(request);
      script(socket);
      return response;
    }
    const name = path === "/" ? "index.html" : path.slice(1);
    const type = TYPES[name.slice(name.lastIndexOf("."))];
    if (!/^[a-z_]+\.[a-z]+$/.test(name) || type === undefined) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(new URL(name, WEB));
      return new Response(body, {
        headers: { "content-type": type, "content-security-policy": CSP },
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return new Response("not found", { status: 404 });
      throw error;
    }
  });
}

/** What went wrong in the page, apart from the refused WebSocket (no server here). */
function unexpected(page: Page): string[] {
  return page.errors().filter((e) =>
    !/^log: WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws(\?batch=1)?' failed/.test(e)
  );
}

Deno.test("web page without a chat server", async (t) => {
  await using server = serveWeb();
  await using browser = await Browser.launch();
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const page = await browser.newPage();
  await page.setViewport(1000, 700);

  await t.step("web page loads under the strict CSP and asks for a name", async () => {
    await page.goto(url);
    await page.waitFor("#name-dialog[open]");
    assert.equal(await page.evaluate("document.activeElement.id"), "name");
    assert.deepEqual(unexpected(page), []);
    // The page did try: the refused WebSocket is the only thing reported.
    await page.waitFor("#status.offline", { text: "offline" });
    assert.ok(
      page.errors().some((e) => e.includes("/ws?batch=1' failed")),
      page.errors().join("\n"),
    );
  });

  await t.step("web page refuses a bad name in the dialog and keeps asking", async () => {
    await page.type("#name", "ana maría");
    await page.waitFor("#name-problem", { text: "no spaces" });
    assert.equal(await page.evaluate("document.getElementById('name-dialog').open"), true);
  });

  await t.step("web page remembers the name across a reload", async () => {
    await page.evaluate("document.getElementById('name').value = ''");
    await page.type("#name", "ana");
    assert.equal(await page.evaluate("document.getElementById('name-dialog').open"), false);
    assert.equal(await page.evaluate("localStorage.getItem('charla.name')"), "ana");
    await page.reload();
    await page.waitFor("#status.offline");
    assert.equal(await page.evaluate("document.getElementById('name-dialog').open"), false);
    assert.equal(await page.evaluate("document.activeElement.id"), "box");
  });

  await t.step("web page queues lines typed offline, shown as text and marked queued", async () => {
    const hostile = "<img src=x onerror=alert(1)>";
    await page.type("#box", hostile);
    await page.type("#box", "/me waits");
    const queued = await page.waitFor(".log .queued", { text: "waits" });
    assert.match(queued, /ana waits\s*queued$/);
    const first = await page.evaluate<string>("document.querySelector('.log .queued').textContent");
    assert.ok(first.includes(`ana: ${hostile}`), first);
    assert.equal(await page.evaluate("document.querySelectorAll('.log .queued').length"), 2);
    assert.equal(await page.evaluate("document.querySelectorAll('#logs img').length"), 0);
    assert.equal(await page.evaluate("document.getElementById('retry').hidden"), false);
    assert.equal(await page.evaluate("document.getElementById('box').value"), "");
    // Up brings back the last line sent, as in the terminal client.
    await page.press("ArrowUp");
    assert.equal(await page.evaluate("document.getElementById('box').value"), "/me waits");
    await page.screenshot("page-offline-desktop");
    assert.deepEqual(unexpected(page), []);
  });

  await t.step("web page labels its fields and gives the log to screen readers", async () => {
    const unlabelled = await page.evaluate<string[]>(
      `[...document.querySelectorAll("input, button")]
        .filter((el) => (el.labels?.length ?? 0) === 0 && el.textContent.trim() === "")
        .map((el) => el.id)`,
    );
    assert.deepEqual(unlabelled, []);
    const log = await page.evaluate<string[]>(
      `[...document.querySelectorAll(".log:not([hidden])")]
        .map((l) => [l.getAttribute("role"), l.getAttribute("aria-live"), l.getAttribute("aria-label")].join(" "))`,
    );
    assert.deepEqual(log, ["log polite Messages in #lobby"]);
    // Tab from the box reaches the Send button next.
    await page.focus("#box");
    await page.press("Tab");
    assert.equal(await page.evaluate("document.activeElement.textContent"), "Send");
  });

  await t.step("web page follows the system's dark scheme", async () => {
    const background = "getComputedStyle(document.body).backgroundColor";
    assert.equal(await page.evaluate(background), "rgb(255, 255, 255)");
    await page.setColorScheme("dark");
    assert.equal(await page.evaluate(background), "rgb(22, 24, 29)");
    await page.screenshot("page-offline-dark");
    await page.setColorScheme("light");
  });

  await t.step("web page fits a phone screen, with rooms and people behind a button", async () => {
    await page.setViewport(375, 667, { mobile: true, deviceScaleFactor: 2 });
    await page.reload();
    await page.waitFor("#status.offline");
    assert.equal(await page.evaluate("innerWidth"), 375);
    assert.ok(
      await page.evaluate<number>("document.documentElement.scrollWidth") <= 375,
      "nothing sticks out sideways",
    );
    const inView = await page.evaluate<string[]>(
      `["#menu", "#title", "#box", "#send button"].filter((s) => {
        const r = document.querySelector(s).getBoundingClientRect();
        return !(r.width > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight);
      })`,
    );
    assert.deepEqual(inView, [], "these are not wholly on screen");
    assert.equal(
      await page.evaluate("getComputedStyle(document.getElementById('side')).display"),
      "none",
    );
    await page.screenshot("page-phone");
    await page.focus("#menu");
    await page.press("Enter");
    await page.waitFor("#side.open");
    assert.equal(
      await page.evaluate("document.getElementById('menu').getAttribute('aria-expanded')"),
      "true",
    );
    assert.notEqual(
      await page.evaluate("getComputedStyle(document.getElementById('side')).display"),
      "none",
    );
    await page.screenshot("page-phone-menu");
    await page.press("Escape");
    assert.equal(
      await page.evaluate("document.getElementById('side').classList.contains('open')"),
      false,
    );
    assert.equal(await page.evaluate("document.activeElement.id"), "menu");
    assert.deepEqual(unexpected(page), []);
  });
});

/** A room line as the server sends it, said now. */
function said(id: number, name: string, text: string) {
  return { type: "message", room: "#lobby", from: { id, name }, text, time: Date.now() };
}

/**
 * The page served with a `/ws` that welcomes bea and answers each line she
 * sends with the events `reply` gives for the lines sent so far (`lines`).
 */
function scriptedRoom(reply: (lines: string[]) => unknown[]) {
  const lines: string[] = [];
  const server = serveWeb((socket) => {
    const send = (events: unknown) => socket.send(JSON.stringify(events));
    socket.onopen = () => send({ type: "welcome", you: { id: 2, name: "bea" }, server: "charla" });
    socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data));
      if (frame.type !== "line") return;
      lines.push(frame.text);
      send(reply(lines));
    };
  });
  return { server, lines };
}

/** A page of `server`, connected as bea. */
async function pageAsBea(browser: Browser, server: Deno.HttpServer<Deno.NetAddr>): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.addr.port}/`);
  await page.waitFor("#name-dialog[open]");
  await page.type("#name", "bea");
  await page.waitFor("#status", { text: "connected as bea" });
  return page;
}

Deno.test("web page shows its own line where the server put it, not where it was typed", async () => {
  // The line the page sends is relayed after one someone else said just
  // before: the page showed its own line first (pending), then gets the other
  // line, then its own back. Everyone in the room must see one order.
  const room = scriptedRoom((lines) => [said(1, "ana", "¿café?"), said(2, "bea", lines.at(-1)!)]);
  await using server = room.server;
  await using browser = await Browser.launch();
  const page = await pageAsBea(browser, server);
  await page.type("#box", "sí, vamos");
  await page.waitFor(".log li.message", { text: "¿café?" });
  assert.deepEqual(room.lines, ["sí, vamos"]);
  assert.equal(await page.evaluate("document.querySelectorAll('.log .pending').length"), 0);
  assert.deepEqual(await shownLines(page, "#lobby"), [["ana", "¿café?"], ["bea", "sí, vamos"]]);
  assert.deepEqual(page.errors(), []);
});

Deno.test("web page keeps its own lines in the order it sent them when others' lines come between", async () => {
  // bea says "uno"; ana's "a1" comes while it is pending; bea says "dos"; then
  // ana's "a2" and both of bea's lines come back. The server's order is a1,
  // a2, uno, dos: bea's two lines must not swap places on the way.
  const room = scriptedRoom((lines) =>
    lines.length === 1
      ? [said(1, "ana", "a1")]
      : [said(1, "ana", "a2"), ...lines.map((text) => said(2, "bea", text))]
  );
  await using server = room.server;
  await using browser = await Browser.launch();
  const page = await pageAsBea(browser, server);
  await page.type("#box", "uno");
  await page.waitFor(".log li.message", { text: "a1" });
  await page.type("#box", "dos");
  await page.waitFor(".log li.message", { text: "a2" });
  assert.deepEqual(room.lines, ["uno", "dos"]);
  assert.equal(await page.evaluate("document.querySelectorAll('.log .pending').length"), 0);
  assert.deepEqual(await shownLines(page, "#lobby"), [
    ["ana", "a1"],
    ["ana", "a2"],
    ["bea", "uno"],
    ["bea", "dos"],
  ]);
  assert.deepEqual(page.errors(), []);
});
