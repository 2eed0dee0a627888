/**
 * A small driver for Debian's headless `chromium`, for tests of the web page: it
 * speaks the Chrome DevTools Protocol over Deno's own `WebSocket`, so no npm
 * package and no browser download is needed.
 *
 * What it does: launch (each browser in its own temporary profile), open pages
 * (each in its own browser context, so two pages are two people with their own
 * `localStorage`), navigate and wait for `load`, evaluate code in the page, type
 * into a field and press Enter, wait for an element or a text to appear (a
 * MutationObserver in the page, bounded by a deadline), emulate a phone screen,
 * take screenshots into `tests/screenshots/` (git-ignored), and collect what the
 * page reported as a problem: console errors, uncaught exceptions, and Content
 * Security Policy violations.
 *
 * Nothing here sleeps: each wait is for an event from the browser or the page,
 * bounded by a deadline that fails the test. `close()` ends the browser process,
 * the socket and the temporary profile, so the test sanitizers stay green.
 *
 * @example
 * ```ts ignore
 * await using browser = await Browser.launch();
 * const page = await browser.newPage();
 * await page.goto("data:text/html,<p>hola</p>");
 * assertEquals(await page.evaluate("document.querySelector('p').textContent"), "hola");
 * ```
 *
 * @module
 */

/** How long one wait (a launch, a load, an element) may take before it fails. */
export const BROWSER_DEADLINE_MS = 15_000;

/** Where screenshots go; git-ignored. */
export const SCREENSHOT_DIR = new URL("./screenshots/", import.meta.url);

/** Options for {@linkcode Browser.launch}. */
export interface LaunchOptions {
  /**
   * The program to run.
   * @default {"chromium"}
   */
  executable?: string;
  /** More command-line flags, after the ones the driver always passes. */
  args?: string[];
  /**
   * How long chromium may take to start listening for DevTools.
   * @default {30_000}
   */
  deadlineMs?: number;
}

/** Something a page reported that a test will usually want to be absent. */
export interface Problem {
  /**
   * Where it came from: `console` (console.error / console.assert), `exception`
   * (uncaught), `log` (the browser's own log: failed loads, blocked requests), or
   * `csp` (a Content Security Policy violation, from the page's
   * `securitypolicyviolation` event).
   */
  readonly kind: "console" | "exception" | "log" | "csp";
  /** `error` or `warning`. */
  readonly level: string;
  readonly text: string;
  /** The URL involved, when the browser gave one. */
  readonly url?: string;
}

/** One DevTools message as it arrives: a reply (with `id`) or an event (with `method`). */
interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
  sessionId?: string;
}

/** Races `promise` against a deadline that rejects naming `what`; clears its timer either way. */
async function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A DevTools connection: requests matched to replies by id, events to listeners. */
class Cdp {
  readonly #ws: WebSocket;
  #nextId = 1;
  /** Requests sent and not yet answered; all rejected if the socket closes. */
  readonly #pending = new Map<number, {
    resolve: (result: Record<string, unknown>) => void;
    reject: (error: Error) => void;
  }>();
  readonly #listeners = new Set<(message: CdpMessage) => void>();
  /** Resolves when the socket has closed, for whatever reason. */
  readonly closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", () => {
        for (const { reject } of this.#pending.values()) {
          reject(new Error("The DevTools connection closed before the browser answered"));
        }
        this.#pending.clear();
        resolve();
      });
    });
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(event.data as string) as CdpMessage;
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) {
          waiter?.reject(new Error(`DevTools: ${message.error.message} (${message.error.code})`));
        } else waiter?.resolve(message.result ?? {});
        return;
      }
      for (const listener of this.#listeners) listener(message);
    });
  }

  /** Opens the browser's DevTools socket at `url`. */
  static async connect(url: string, deadlineMs: number): Promise<Cdp> {
    const ws = new WebSocket(url);
    const opened = new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener(
        "error",
        () => reject(new Error(`Cannot open the DevTools socket at ${url}`)),
        { once: true },
      );
    });
    try {
      await within(opened, `the DevTools socket at ${url}`, deadlineMs);
    } catch (error) {
      ws.close();
      throw error;
    }
    return new Cdp(ws);
  }

  /** Sends `method` (to the page `sessionId`, or the browser) and resolves with its result. */
  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`Cannot send ${method}: the DevTools connection is closed`));
    }
    const id = this.#nextId++;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    return reply;
  }

  /** Calls `listener` for every event until the returned function is called. */
  on(listener: (message: CdpMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves with the params of the first event `method` of `sessionId` that
   * `accept` takes. Call it before the action that causes the event.
   */
  waitForEvent(
    method: string,
    sessionId: string | undefined,
    deadlineMs: number,
    accept: (params: Record<string, unknown>) => boolean = () => true,
  ): Promise<Record<string, unknown>> {
    let stop = () => {};
    const seen = new Promise<Record<string, unknown>>((resolve) => {
      stop = this.on((message) => {
        if (message.method === method && message.sessionId === sessionId) {
          const params = message.params ?? {};
          if (accept(params)) resolve(params);
        }
      });
    });
    return within(seen, `the browser event ${method}`, deadlineMs).finally(() => stop());
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CONNECTING || this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close();
    }
    await this.closed;
  }
}

/** A headless chromium, its DevTools connection, and its temporary profile. */
export class Browser implements AsyncDisposable {
  readonly #process: Deno.ChildProcess;
  readonly #cdp: Cdp;
  readonly #profile: string;
  /** Resolves when chromium's stderr has been read to its end (the process is gone). */
  readonly #stderrDrained: Promise<void>;
  /**
   * The tab chromium opened at start, in the default context, which no other
   * page uses: the first page takes it, saving a renderer start (~1 s here).
   */
  #spareTab: string | undefined;
  #closing: Promise<void> | undefined;
  /** Kills chromium if the test process exits (Deno.exit) without closing it. */
  readonly #onUnload = () => {
    try {
      this.#process.kill("SIGKILL");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already gone
    }
  };

  private constructor(
    process: Deno.ChildProcess,
    cdp: Cdp,
    profile: string,
    stderrDrained: Promise<void>,
    spareTab: string | undefined,
  ) {
    this.#spareTab = spareTab;
    this.#process = process;
    this.#cdp = cdp;
    this.#profile = profile;
    this.#stderrDrained = stderrDrained;
    globalThis.addEventListener("unload", this.#onUnload);
  }

  /**
   * Starts chromium and connects to it. Fails with a message saying how to
   * install chromium when it is not there, and with chromium's last words when
   * it does not start.
   */
  static async launch(options: LaunchOptions = {}): Promise<Browser> {
    const executable = options.executable ?? "chromium";
    const deadlineMs = options.deadlineMs ?? 30_000;
    const profile = await Deno.makeTempDir({ prefix: "charla-chromium-" });
    let process: Deno.ChildProcess;
    try {
      process = new Deno.Command(executable, {
        args: [
          "--headless",
          "--no-sandbox", // needed as root; the page is our own, on loopback
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          `--user-data-dir=${profile}`,
          "--remote-debugging-port=0", // chromium picks a free port and says which
          ...(options.args ?? []),
          "about:blank",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      await Deno.remove(profile, { recursive: true });
      if (error instanceof Deno.errors.NotFound) {
        throw new Error(
          `Cannot start "${executable}": not found. Install Debian's chromium ` +
            `(sudo apt-get install chromium, or run bash tests/deps.sh as root)`,
          { cause: error },
        );
      }
      throw error;
    }

    // chromium prints "DevTools listening on ws://…" on stderr once it accepts
    // connections: the event to wait for, rather than polling DevToolsActivePort.
    // The rest of stderr is read to its end too (kept as a short tail for error
    // messages), so a chatty chromium never blocks on a full pipe.
    let tail = "";
    let announce: (url: string) => void = () => {};
    const announced = new Promise<string>((resolve) => announce = resolve);
    const stderrDrained = (async () => {
      let pending = "";
      for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) {
        tail = (tail + chunk).slice(-4000);
        pending += chunk;
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(pending);
        if (match !== null) {
          announce(match[1]);
          pending = "";
        } else pending = pending.slice(-200);
      }
    })();
    const exited = process.status.then((status) => {
      throw new Error(
        `chromium exited with code ${status.code} before it listened for DevTools; ` +
          `it said:\n${tail.trim()}\nIs Debian's chromium installed and working ` +
          `(sudo apt-get install chromium)?`,
      );
    });
    exited.catch(() => {}); // only read by the race below

    let cdp: Cdp | undefined;
    let spareTab: string | undefined;
    try {
      const url = await within(
        Promise.race([announced, exited]),
        `chromium to listen for DevTools`,
        deadlineMs,
      );
      cdp = await Cdp.connect(url, deadlineMs);
      const { targetInfos } = await cdp.send("Target.getTargets");
      spareTab = (targetInfos as { targetId: string; type: string }[])
        .find((t) => t.type === "page")?.targetId;
    } catch (error) {
      await cdp?.close();
      try {
        process.kill("SIGKILL");
      } catch (killError) {
        if (!(killError instanceof TypeError)) throw killError; // already exited
      }
      await process.status;
      await stderrDrained;
      await Deno.remove(profile, { recursive: true });
      throw error;
    }
    return new Browser(process, cdp, profile, stderrDrained, spareTab);
  }

  /**
   * Opens a blank page in a browser context of its own: its storage, cookies
   * and cache are not shared with other pages.
   */
  async newPage(): Promise<Page> {
    let targetId: unknown = this.#spareTab;
    let browserContextId: unknown = null;
    this.#spareTab = undefined;
    if (targetId === undefined) {
      ({ browserContextId } = await this.#cdp.send("Target.createBrowserContext"));
      ({ targetId } = await this.#cdp.send("Target.createTarget", {
        url: "about:blank",
        browserContextId,
      }));
    }
    const { sessionId } = await this.#cdp.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new Page(
      this.#cdp,
      sessionId as string,
      targetId as string,
      browserContextId as string | null,
    );
    await page.start();
    return page;
  }

  /** Ends chromium (politely, then by force), the socket and the profile. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    globalThis.removeEventListener("unload", this.#onUnload);
    // Browser.close makes chromium exit; its reply may never come, as the
    // socket goes with the process, so the process exit is what is awaited.
    this.#cdp.send("Browser.close").catch(() => {});
    try {
      await within(this.#process.status, "chromium to exit", BROWSER_DEADLINE_MS);
    } catch {
      try {
        this.#process.kill("SIGKILL");
      } catch (error) {
        if (!(error instanceof TypeError)) throw error; // it exited meanwhile
      }
      await this.#process.status;
    }
    await this.#cdp.close();
    await this.#stderrDrained;
    await Deno.remove(this.#profile, { recursive: true });
  }

  /** Same as {@linkcode Browser.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Options for {@linkcode Page.waitFor}. */
export interface WaitOptions {
  /** Only an element whose text contains this counts. */
  text?: string;
  /**
   * How long to wait.
   * @default {BROWSER_DEADLINE_MS}
   */
  deadlineMs?: number;
}

/** One page (a tab) of the browser. */
export class Page {
  readonly #cdp: Cdp;
  readonly #sessionId: string;
  readonly #targetId: string;
  /** Null for the default context, which is not ours to dispose of. */
  readonly #contextId: string | null;
  #stopListening: () => void = () => {};
  #markClosed: () => void = () => {};
  /** Resolves when {@linkcode Page.close} is done. */
  readonly closed: Promise<void> = new Promise((resolve) => this.#markClosed = resolve);
  /** Everything the page reported as wrong so far, oldest first. */
  readonly problems: Problem[] = [];

  /** Use {@linkcode Browser.newPage}. */
  constructor(cdp: Cdp, sessionId: string, targetId: string, contextId: string | null) {
    this.#cdp = cdp;
    this.#sessionId = sessionId;
    this.#targetId = targetId;
    this.#contextId = contextId;
  }

  /** Turns on the events the page reports problems with. */
  async start(): Promise<void> {
    this.#stopListening = this.#cdp.on((message) => {
      if (message.sessionId !== this.#sessionId) return;
      this.#record(message.method ?? "", message.params ?? {});
    });
    await Promise.all([
      this.#send("Page.enable"),
      this.#send("Runtime.enable"),
      this.#send("Log.enable"),
      // A CSP violation is also a console message, but the page's own
      // securitypolicyviolation event says exactly which directive and URL.
      this.#send("Runtime.addBinding", { name: "__charlaReportViolation" }),
      this.#send("Page.addScriptToEvaluateOnNewDocument", {
        source: `document.addEventListener("securitypolicyviolation", (e) =>
          globalThis.__charlaReportViolation(JSON.stringify({
            directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile,
            line: e.lineNumber, sample: e.sample })));`,
      }),
    ]);
  }

  #record(method: string, params: Record<string, unknown>): void {
    if (method === "Runtime.consoleAPICalled") {
      const type = params.type as string;
      if (type !== "error" && type !== "assert" && type !== "warning") return;
      const args = (params.args as { value?: unknown; description?: string }[]) ?? [];
      const text = args.map((a) => a.description ?? String(a.value)).join(" ");
      this.problems.push({
        kind: "console",
        level: type === "warning" ? "warning" : "error",
        text,
      });
    } else if (method === "Runtime.exceptionThrown") {
      const details = params.exceptionDetails as {
        text: string;
        url?: string;
        exception?: { description?: string };
      };
      this.problems.push({
        kind: "exception",
        level: "error",
        text: details.exception?.description ?? details.text,
        url: details.url,
      });
    } else if (method === "Log.entryAdded") {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level !== "error" && entry.level !== "warning") return;
      this.problems.push({ kind: "log", level: entry.level, text: entry.text, url: entry.url });
    } else if (method === "Runtime.bindingCalled" && params.name === "__charlaReportViolation") {
      const v = JSON.parse(params.payload as string);
      this.problems.push({
        kind: "csp",
        level: "error",
        text: `${v.directive} blocked ${v.blocked || "(inline)"} at ${v.source}:${v.line}` +
          (v.sample ? ` (${v.sample})` : ""),
        url: v.blocked,
      });
    }
  }

  /** The problems at level `error`, as one string per problem (handy in assertions). */
  errors(): string[] {
    return this.problems.filter((p) => p.level === "error").map((p) => `${p.kind}: ${p.text}`);
  }

  #send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#cdp.send(method, params, this.#sessionId);
  }

  /**
   * Sends any DevTools method to this page (an escape hatch for what the
   * driver has no method for, such as `Profiler.start`).
   */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#send(method, params);
  }

  /** Navigates to `url` and waits for its `load` event. */
  async goto(url: string, deadlineMs = BROWSER_DEADLINE_MS): Promise<void> {
    const loaded = this.#cdp.waitForEvent("Page.loadEventFired", this.#sessionId, deadlineMs);
    loaded.catch(() => {}); // awaited below, unless navigation fails first
    const result = await this.#send("Page.navigate", { url });
    if (typeof result.errorText === "string" && result.errorText !== "") {
      throw new Error(`Cannot load ${url}: ${result.errorText}`);
    }
    await loaded;
  }

  /** Reloads the page and waits for its `load` event. */
  async reload(deadlineMs = BROWSER_DEADLINE_MS): Promise<void> {
    const loaded = this.#cdp.waitForEvent("Page.loadEventFired", this.#sessionId, deadlineMs);
    await this.#send("Page.reload");
    await loaded;
  }

  /**
   * Evaluates `expression` in the page, awaits it if it is a promise, and
   * resolves with its value (JSON-like values only). A thrown error in the page
   * rejects here with the page's message.
   */
  async evaluate<T = unknown>(expression: string, deadlineMs = BROWSER_DEADLINE_MS): Promise<T> {
    const reply = await within(
      this.#send("Runtime.evaluate", {
        expression,
        awaitPromise: true,
        returnByValue: true,
        userGesture: true,
      }),
      `the page to evaluate ${JSON.stringify(expression.slice(0, 80))}`,
      deadlineMs,
    );
    const details = reply.exceptionDetails as
      | { text: string; exception?: { description?: string; value?: unknown } }
      | undefined;
    if (details !== undefined) {
      const what = details.exception?.description ?? String(details.exception?.value ?? "");
      throw new Error(`In the page: ${what || details.text}`);
    }
    return (reply.result as { value?: T }).value as T;
  }

  /**
   * Calls `fn` in the page with `args` (JSON values) and resolves with its
   * (awaited) result. `fn` is sent as source text: it cannot use anything from
   * the test's scope.
   */
  call<T = unknown>(fn: (...args: never[]) => unknown, ...args: unknown[]): Promise<T> {
    const list = args.map((a) => JSON.stringify(a)).join(", ");
    return this.evaluate<T>(`(${fn.toString()})(${list})`);
  }

  /**
   * Waits until an element matching `selector` (with `text` in it, if given)
   * is in the page, and resolves with its text. The page watches itself with a
   * MutationObserver, so this resolves as soon as the change happens.
   */
  waitFor(selector: string, options: WaitOptions = {}): Promise<string> {
    const ms = options.deadlineMs ?? BROWSER_DEADLINE_MS;
    return this.evaluate<string>(
      `(${WAIT_IN_PAGE})(${JSON.stringify(selector)}, ${
        JSON.stringify(options.text ?? null)
      }, ${ms})`,
      ms + 5_000, // the page's own deadline says more; this one covers a page that died
    );
  }

  /**
   * Focuses the element matching `selector`; fails if there is none or if it
   * cannot take the focus (hidden, disabled, behind a modal dialog), so that
   * typed text never lands somewhere else.
   */
  async focus(selector: string): Promise<void> {
    const s = JSON.stringify(selector);
    await this.evaluate(`{
      const el = document.querySelector(${s});
      if (el === null) throw new Error("No element matches " + ${s});
      el.focus();
      if (document.activeElement !== el) {
        throw new Error(${s} + " cannot take the focus (it is on " +
          (document.activeElement?.id || document.activeElement?.tagName) + ")");
      }
    }`);
  }

  /** Types `text` into the focused element, as a paste or an input method would. */
  async insertText(text: string): Promise<void> {
    await this.#send("Input.insertText", { text });
  }

  /**
   * Presses and releases a key on the focused element: `Enter` (submits its
   * form), `Tab`, `Escape`, `ArrowUp` or `ArrowDown`. `shift` holds Shift.
   */
  async press(key: keyof typeof KEYS, options: { shift?: boolean } = {}): Promise<void> {
    const { code, keyCode, text } = KEYS[key];
    const event = {
      key,
      code,
      windowsVirtualKeyCode: keyCode,
      nativeVirtualKeyCode: keyCode,
      modifiers: options.shift ? 8 : 0,
    };
    const typed = text === undefined ? {} : { text, unmodifiedText: text };
    await this.#send("Input.dispatchKeyEvent", { type: "keyDown", ...event, ...typed });
    await this.#send("Input.dispatchKeyEvent", { type: "keyUp", ...event });
  }

  /** Focuses `selector`, types `text` into it and presses Enter. */
  async type(selector: string, text: string): Promise<void> {
    await this.focus(selector);
    await this.insertText(text);
    await this.press("Enter");
  }

  /**
   * Makes the page a screen of `width` x `height` CSS pixels: a phone when
   * `mobile` (375 x 667 is an iPhone SE).
   */
  async setViewport(
    width: number,
    height: number,
    options: { mobile?: boolean; deviceScaleFactor?: number } = {},
  ): Promise<void> {
    await this.#send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: options.deviceScaleFactor ?? 1,
      mobile: options.mobile ?? false,
    });
  }

  /** Makes the page see `prefers-color-scheme: dark` (or light). */
  async setColorScheme(scheme: "light" | "dark"): Promise<void> {
    await this.#send("Emulation.setEmulatedMedia", {
      features: [{ name: "prefers-color-scheme", value: scheme }],
    });
  }

  /** Takes a PNG of what the page shows and saves it as `tests/screenshots/<name>.png`. */
  async screenshot(name: string): Promise<{ path: string; png: Uint8Array }> {
    if (!/^[\w.-]+$/.test(name)) throw new TypeError(`Bad screenshot name "${name}"`);
    const { data } = await this.#send("Page.captureScreenshot", { format: "png" });
    const png = Uint8Array.from(atob(data as string), (c) => c.charCodeAt(0));
    await Deno.mkdir(SCREENSHOT_DIR, { recursive: true });
    const url = new URL(`${name}.png`, SCREENSHOT_DIR);
    await Deno.writeFile(url, png);
    return { path: url.pathname, png };
  }

  /** Closes the tab and its browser context. */
  async close(): Promise<void> {
    this.#stopListening();
    try {
      await this.#cdp.send("Target.closeTarget", { targetId: this.#targetId });
      if (this.#contextId !== null) {
        await this.#cdp.send("Target.disposeBrowserContext", {
          browserContextId: this.#contextId,
        });
      }
    } finally {
      this.#markClosed();
    }
  }
}

/** The keys {@linkcode Page.press} knows, as DevTools wants them described. */
const KEYS = {
  Enter: { code: "Enter", keyCode: 13, text: "\r" },
  Tab: { code: "Tab", keyCode: 9, text: undefined },
  Escape: { code: "Escape", keyCode: 27, text: undefined },
  ArrowUp: { code: "ArrowUp", keyCode: 38, text: undefined },
  ArrowDown: { code: "ArrowDown", keyCode: 40, text: undefined },
} as const;

/**
 * Runs in the page: resolves with the text of the first element matching
 * `selector` that contains `text`, as soon as one exists. A string, because
 * Deno's type checker knows no `document`.
 */
const WAIT_IN_PAGE = `(selector, text, ms) => new Promise((resolve, reject) => {
  const find = () => {
    for (const el of document.querySelectorAll(selector)) {
      if (text === null || (el.textContent ?? "").includes(text)) return el;
    }
    return null;
  };
  const found = find();
  if (found !== null) return resolve(found.textContent ?? "");
  // A burst of changes is looked at once, not once per change: a page taking
  // thousands of lines would otherwise be scanned thousands of times.
  let queued = false;
  const check = () => {
    queued = false;
    const el = find();
    if (el === null) return;
    observer.disconnect();
    clearTimeout(timer);
    resolve(el.textContent ?? "");
  };
  const observer = new MutationObserver(() => {
    if (!queued) queued = setTimeout(check, 0) !== undefined;
  });
  observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  const timer = setTimeout(() => {
    observer.disconnect();
    const what = text === null ? selector : selector + " containing " + JSON.stringify(text);
    reject(new Error("No " + what + " after " + ms + " ms"));
  }, ms);
})`;
