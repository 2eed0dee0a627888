/**
 * The browser driver itself (tests/_browser.ts), on pages that need no charla:
 * `data:` URLs. If these fail, a failing web page test says nothing about the page.
 */

import assert from "node:assert/strict";
import { Browser } from "./_browser.ts";

/** A page with a form that adds what was typed to a list, as text. */
const FORM_PAGE = "data:text/html;charset=utf-8," + encodeURIComponent(`<!doctype html>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>driver</title>
<form id="f"><label>Say <input id="box" autocomplete="off"></label></form>
<ul id="log"></ul>
<script>
  document.getElementById("f").addEventListener("submit", (event) => {
    event.preventDefault();
    const box = document.getElementById("box");
    const li = document.createElement("li");
    li.textContent = box.value;
    // Later than the submit, so only an observer (not a first look) can see it.
    setTimeout(() => document.getElementById("log").append(li), 50);
    box.value = "";
  });
</script>`);

Deno.test("Browser driver on data: and loopback pages", async (t) => {
  await using browser = await Browser.launch();

  await t.step(
    "Browser types into a field, presses Enter, and waits for the text to appear",
    async () => {
      const page = await browser.newPage();
      await page.goto(FORM_PAGE);
      assert.equal(await page.evaluate("document.title"), "driver");

      const hostile = "<img src=x onerror=alert(1)> 你好 👋";
      await page.type("#box", hostile);
      assert.equal(await page.waitFor("#log li", { text: "你好" }), hostile);
      assert.equal(await page.evaluate("document.querySelectorAll('#log img').length"), 0);
      assert.equal(await page.evaluate("document.getElementById('box').value"), "");

      // A promise in the page is awaited; an error in the page becomes a rejection here.
      assert.equal(await page.evaluate("new Promise((r) => setTimeout(() => r(42), 10))"), 42);
      await assert.rejects(page.evaluate("null.x"), /In the page: TypeError/);
      const called = await page.call((a: number, b: string) => [a + 1, b.toUpperCase()], 1, "b");
      assert.deepEqual(called, [2, "B"]);
      assert.deepEqual(page.errors(), []);
    },
  );

  await t.step("Browser.waitFor fails with the selector when nothing appears in time", async () => {
    const page = await browser.newPage();
    await page.goto(FORM_PAGE);
    await assert.rejects(
      page.waitFor("#log li", { text: "never", deadlineMs: 200 }),
      /No #log li containing "never" after 200 ms/,
    );
  });

  await t.step("Browser emulates a phone screen and saves a PNG screenshot", async () => {
    const page = await browser.newPage();
    await page.setViewport(375, 667, { mobile: true, deviceScaleFactor: 2 });
    await page.goto(FORM_PAGE);
    assert.deepEqual(await page.evaluate("[innerWidth, innerHeight, devicePixelRatio]"), [
      375,
      667,
      2,
    ]);
    const { path, png } = await page.screenshot("driver-phone");
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // The PNG header's width and height: the phone's, at twice the pixels.
    const view = new DataView(png.buffer, png.byteOffset);
    assert.deepEqual([view.getUint32(16), view.getUint32(20)], [750, 1334]);
    assert.deepEqual(await Deno.readFile(path), png);
  });

  await t.step(
    "Browser reports console errors, uncaught exceptions and CSP violations",
    async () => {
      const page = await browser.newPage();
      // The meta policy forbids inline scripts: the second script must not run,
      // and the attempt must be reported.
      await page.goto(
        "data:text/html;charset=utf-8," + encodeURIComponent(`<!doctype html>
  <meta http-equiv="Content-Security-Policy" content="script-src 'unsafe-eval'">
  <p id="p">blocked</p>`),
      );
      await page.evaluate(`{
      const s = document.createElement("script");
      s.textContent = "document.getElementById('p').textContent = 'ran'";
      document.body.append(s);
    }`);
      await page.evaluate(
        "console.error('something broke'); setTimeout(() => { throw new Error('uncaught one'); })",
      );
      await page.waitFor("body"); // a round trip, so the reports above have arrived
      await page.evaluate("new Promise((r) => setTimeout(r, 0))");
      assert.equal(await page.evaluate("document.getElementById('p').textContent"), "blocked");
      const kinds = new Set(page.problems.map((p) => p.kind));
      assert.ok(kinds.has("csp"), JSON.stringify(page.problems));
      assert.ok(kinds.has("console"), JSON.stringify(page.problems));
      assert.ok(kinds.has("exception"), JSON.stringify(page.problems));
      const csp = page.problems.find((p) => p.kind === "csp")!;
      assert.match(csp.text, /script-src/);
      assert.ok(page.errors().some((e) => e.includes("something broke")));
      assert.ok(page.errors().some((e) => e.includes("uncaught one")));
    },
  );

  await t.step("Browser pages are separate people: their storage is not shared", async () => {
    const ana = await browser.newPage();
    const bea = await browser.newPage();
    // about:blank has no storage; a page served from loopback has an origin.
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response("<!doctype html><title>s</title>", {
          headers: { "content-type": "text/html" },
        }),
    );
    const url = `http://127.0.0.1:${server.addr.port}/`;
    await ana.goto(url);
    await bea.goto(url);
    await ana.evaluate("localStorage.setItem('name', 'ana')");
    assert.equal(await bea.evaluate("localStorage.getItem('name')"), null);
    await ana.reload();
    assert.equal(await ana.evaluate("localStorage.getItem('name')"), "ana");
    await bea.close();
    await ana.close();
  });
});

Deno.test("Browser.launch says how to install chromium when it is missing", async () => {
  await assert.rejects(
    Browser.launch({ executable: "chromium-that-is-not-installed" }),
    /not found\. Install Debian's chromium \(sudo apt-get install chromium/,
  );
});
