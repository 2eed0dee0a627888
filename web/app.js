// @ts-check
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * charla's web page: one WebSocket to `/ws` on the page's own origin, JSON
 * frames both ways (the README's "WebSocket protocol"). Server -> page frames
 * are the core's ChatEvent values; page -> server frames are its Command
 * values, `line` (a line as typed, /commands included) and `pass`.
 *
 * Text from other people only ever reaches the page through textContent and
 * createElement, never as HTML, and the page runs under a strict CSP (no
 * inline script or style: names get their colour through CSS variables set
 * from script, which CSP allows).
 *
 * @module
 */

import {
  classifyTyped,
  describe,
  formatTime,
  mentions,
  NameColours,
  splitMentions,
} from "./format.js";

/** The room the server puts everyone in first. */
const LOBBY = "#lobby";
/** Where the chosen name is remembered between visits. */
const NAME_KEY = "charla.name";
/**
 * Where this tab keeps the server's resume token (sessionStorage: one per tab,
 * kept across a reload): sent first after a reconnect, it ends our previous
 * connection at once, so our name is free to take again.
 */
const RESUME_KEY = "charla.resume";
/**
 * Close codes after which the page stays offline until asked (web_protocol.ts):
 * replaced by a newer connection of ours, kicked, banned.
 */
const FINAL_CLOSE = new Map([
  [4000, "this chat was opened again elsewhere"],
  [4001, "you were kicked"],
  [4003, "you are banned"],
]);
/** Reconnect delays grow from the first to the last, then stay there. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 15_000;
/** A room's log keeps this many lines; older ones are removed from the page. */
const MAX_LINES = 2000;
/** Own lines waiting for the server's confirmation, per room (see confirmOwn). */
const MAX_PENDING = 50;
/** The remembered name may still be held by our own dropped connection: try again this often. */
const NICK_RETRIES = 3;
const NICK_RETRY_MS = 5_000;

/**
 * @typedef {{ id: number, name: string }} Who
 * @typedef {{ id: number, name: string, away?: string, transport: string }} Member
 * @typedef {{ room: string, count: number, topic: string }} RoomInfo
 * @typedef {{
 *   name: string,
 *   log: HTMLOListElement,
 *   stuck: boolean,
 *   scrollQueued: boolean,
 *   scrolledTo: number,
 *   topic: string,
 *   count: number,
 *   members: Map<number, Member>,
 *   unread: number,
 *   lastTime: number,
 *   pending: { kind: string, text: string, li: HTMLLIElement }[],
 * }} Room
 * @typedef {{ frame: Record<string, unknown>, li: HTMLLIElement | null }} Queued
 */

/** @param {string} id */
function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`The page has no #${id}`);
  return el;
}

const ui = {
  title: byId("title"),
  topic: byId("topic"),
  status: byId("status"),
  retry: /** @type {HTMLButtonElement} */ (byId("retry")),
  menu: /** @type {HTMLButtonElement} */ (byId("menu")),
  side: byId("side"),
  rooms: byId("rooms"),
  people: byId("people"),
  peopleCount: byId("people-count"),
  logs: byId("logs"),
  send: /** @type {HTMLFormElement} */ (byId("send")),
  box: /** @type {HTMLInputElement} */ (byId("box")),
  boxLabel: byId("box-label"),
  nameDialog: /** @type {HTMLDialogElement} */ (byId("name-dialog")),
  nameForm: /** @type {HTMLFormElement} */ (byId("name-form")),
  name: /** @type {HTMLInputElement} */ (byId("name")),
  nameProblem: byId("name-problem"),
  passDialog: /** @type {HTMLDialogElement} */ (byId("pass-dialog")),
  passForm: /** @type {HTMLFormElement} */ (byId("pass-form")),
  pass: /** @type {HTMLInputElement} */ (byId("pass")),
  passProblem: byId("pass-problem"),
};

const state = {
  /** @type {WebSocket | null} */
  socket: null,
  /** True between `welcome` and the socket's close: frames can be sent. */
  online: false,
  /** @type {Who | null} who the server says we are */
  me: null,
  /** @type {string | null} the name we want (remembered), sent after `welcome` */
  wanted: readName(),
  /** True while our `nick` is unanswered, so a name error goes to the name dialog. */
  nickAsked: false,
  /** The unanswered `nick` is the name just typed in the dialog (not the remembered one). */
  nickTyped: false,
  /** `wanted` was typed in the dialog on this visit and no server has accepted it yet. */
  wantedTyped: false,
  /** How many times the remembered name was refused as taken since the last welcome. */
  nickRefusals: 0,
  /** @type {string | null} kept in memory only, to answer again after a reconnect */
  password: null,
  /** True once we sent `pass` on this connection, so a second `password` error is a wrong one. */
  passSent: false,
  /** @type {Map<string, Room>} the rooms we are in (kept across a reconnect) */
  rooms: new Map(),
  /** @type {RoomInfo[]} the last `rooms` reply (the server sends the first 200) */
  directory: [],
  /** How many rooms the server has in all. */
  directoryTotal: 0,
  current: LOBBY,
  /** @type {Set<string>} rooms rejoined after a reconnect: their `joined` must not move the view */
  rejoining: new Set(),
  /** @type {Queued[]} what was typed while offline, sent in order once back */
  queue: [],
  /** Consecutive failed connections, for the backoff. */
  failures: 0,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  retryTimer: undefined,
  /** The person typed /quit, or the server said not to come back: stay offline until they ask. */
  quitting: false,
  /** @type {string | null} why we stay offline, for the status line */
  stopped: null,
  /** @type {string | null} the token of our current connection (see RESUME_KEY) */
  resume: readResume(),
  /** Replies the person asked for by typing /who or /rooms: show them in the log too. */
  asked: { who: 0, rooms: 0 },
  /** @type {string[]} lines sent, for Up and Down in the box */
  typed: [],
  typedAt: 0,
};

function readName() {
  try {
    return localStorage.getItem(NAME_KEY);
  } catch {
    return null; // storage disabled: ask every visit
  }
}

/** @param {string} name */
function rememberName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // storage disabled or full: the name still holds for this visit
  }
}

function readResume() {
  try {
    return sessionStorage.getItem(RESUME_KEY);
  } catch {
    return null; // storage disabled: the token lives in memory only
  }
}

/** @param {string} token */
function rememberResume(token) {
  try {
    sessionStorage.setItem(RESUME_KEY, token);
  } catch {
    // storage disabled: kept in memory, enough for a reconnect without a reload
  }
}

function forgetName() {
  try {
    localStorage.removeItem(NAME_KEY);
  } catch {
    // storage disabled: nothing was remembered
  }
}

// ---------------------------------------------------------------- rendering

/**
 * An element with a class and text (text only: never HTML).
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Names' colours: the terminal's palette, and rarely shared among people present. */
const colours = new NameColours();

/** A name in its colour. @param {string} name */
function nameSpan(name, className = "from") {
  const span = el("span", `${className} n`, name);
  const colour = colours.colour(name);
  span.style.setProperty("--n-light", colour.light);
  span.style.setProperty("--n-dark", colour.dark);
  return span;
}

/** @param {number} time */
function timeElement(time) {
  const t = el("time", undefined, formatTime(time));
  t.dateTime = new Date(time).toISOString();
  t.title = new Date(time).toLocaleString();
  return t;
}

/**
 * One line of the log.
 *
 * @param {string} kind message | action | notice | error | private | broadcast | command
 * @param {{ time?: number, from?: string | null, text: string, prefix?: string, history?: boolean, mine?: boolean, mark?: string }} line
 *   `mark`: a name whose mentions in the text are marked
 */
function lineElement(kind, line) {
  const li = el("li", kind);
  if (line.history) li.classList.add("history");
  if (line.mine) li.classList.add("mine");
  li.append(timeElement(line.time ?? Date.now()));
  if (kind === "message" || kind === "broadcast") {
    if (line.from) li.append(nameSpan(line.from), el("span", "sr-only", ":"), " ");
  } else if (kind === "action") {
    li.append("* ");
    if (line.from) li.append(nameSpan(line.from), " ");
  } else if (kind === "private") {
    li.append(line.prefix ?? "");
    if (line.from) li.append("*", nameSpan(line.from), "* ");
  } else if (kind === "notice" || kind === "error") {
    li.append("— ");
  }
  const text = el("span", "text");
  // Mentions go in <mark> elements, the rest as text nodes: still never HTML.
  splitMentions(line.text, line.mark ?? "").forEach((part, i) => {
    if (part !== "") text.append(i % 2 === 1 ? el("mark", undefined, part) : part);
  });
  li.append(text);
  return li;
}

/**
 * Adds `items` to `room`'s log, keeping the view at the bottom if it was there.
 *
 * @param {Room} room
 * @param {Node[]} items
 */
function append(room, items) {
  const log = room.log;
  log.append(...items);
  while (log.childElementCount > MAX_LINES) log.firstElementChild?.remove();
  // Reading the scroll position here would lay the page out for every line
  // (measured: 16 ms a line, 300 lines in 7 s); instead the scroll handler
  // keeps `stuck`, and the log is scrolled once per frame.
  if (room.stuck && !room.scrollQueued) {
    room.scrollQueued = true;
    requestAnimationFrame(() => scrollToEnd(room));
  }
  if (room.name !== state.current && items.some((i) => isTalk(i))) {
    room.unread += 1;
    renderRooms();
  }
}

/** @param {Room} room */
function scrollToEnd(room) {
  room.scrollQueued = false;
  room.log.scrollTop = room.log.scrollHeight;
  room.scrolledTo = room.log.scrollTop;
}

/** @param {Node} node */
function isTalk(node) {
  return node instanceof HTMLLIElement &&
    (node.classList.contains("message") || node.classList.contains("action"));
}

/** @param {string} name */
function roomFor(name) {
  let room = state.rooms.get(name);
  if (room !== undefined) return room;
  const log = el("ol", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", `Messages in ${name}`);
  log.tabIndex = 0; // so the log can be scrolled with the keyboard
  log.hidden = name !== state.current;
  ui.logs.append(log);
  room = {
    name,
    log,
    stuck: true,
    scrollQueued: false,
    scrolledTo: 0,
    topic: "",
    count: 0,
    members: new Map(),
    unread: 0,
    lastTime: 0,
    pending: [],
  };
  const self = room;
  log.addEventListener("scroll", () => {
    // Our own scrolling keeps the log at the end; the person scrolling up
    // unsticks it, and back to the end sticks it again.
    if (Math.abs(log.scrollTop - self.scrolledTo) < 2) return;
    self.stuck = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }, { passive: true });
  state.rooms.set(name, room);
  return room;
}

function currentRoom() {
  return roomFor(state.current);
}

/** A notice in one room (or the current one). @param {string} text @param {string} [room] */
function notice(text, room, kind = "notice") {
  const target = room !== undefined && state.rooms.has(room) ? roomFor(room) : currentRoom();
  append(target, [lineElement(kind, { text })]);
}

/** @param {string} name */
function switchTo(name) {
  const room = roomFor(name);
  state.current = name;
  for (const r of state.rooms.values()) r.log.hidden = r !== room;
  room.unread = 0;
  room.stuck = true;
  scrollToEnd(room);
  ui.title.textContent = name;
  document.title = `${name} · charla`;
  ui.topic.textContent = room.topic;
  ui.topic.title = room.topic;
  ui.boxLabel.textContent = `Message ${name}`;
  ui.box.placeholder = `Message ${name} (/help for commands)`;
  renderRooms();
  renderPeople();
  if (state.online) send({ type: "who", room: name });
}

function renderRooms() {
  /** @type {Map<string, RoomInfo>} */
  const all = new Map(state.directory.map((r) => [r.room, r]));
  for (const room of state.rooms.values()) {
    all.set(room.name, { room: room.name, count: room.count, topic: room.topic });
  }
  const items = [...all.values()].sort((a, b) =>
    a.room === LOBBY ? -1 : b.room === LOBBY ? 1 : a.room.localeCompare(b.room)
  ).map((info) => {
    const joined = state.rooms.get(info.room);
    const button = el("button");
    button.type = "button";
    button.dataset.room = info.room;
    button.append(el("span", "room-name", info.room));
    const count = el("span", "count", info.count > 0 ? String(info.count) : "");
    if (joined !== undefined && joined.unread > 0) {
      count.textContent = `${joined.unread} new · ${info.count}`;
      count.classList.add("unread");
    }
    // Read as "#dev 2 new · 3 here" rather than a bare number.
    if (info.count > 0) count.append(el("span", "sr-only", " here"));
    button.append(count);
    if (info.room === state.current) button.setAttribute("aria-current", "true");
    if (info.topic) button.title = info.topic;
    const li = el("li", joined !== undefined ? "joined" : "other");
    li.append(button);
    return li;
  });
  ui.rooms.replaceChildren(...items);
  const more = state.directoryTotal - state.directory.length;
  if (more > 0) ui.rooms.append(el("li", "more", `and ${more} more: /join #name`));
}

function renderPeople() {
  const room = currentRoom();
  const members = [...room.members.values()].sort((a, b) => a.name.localeCompare(b.name));
  ui.people.replaceChildren(...members.map((m) => {
    const li = el("li");
    li.append(nameSpan(m.name, "who"));
    if (m.transport) li.append(el("span", "how", m.transport));
    if (m.away !== undefined) li.append(el("span", "away", `away: ${m.away}`));
    return li;
  }));
  const more = room.count - members.length;
  if (more > 0) ui.people.append(el("li", "more", `and ${more} more`));
  // Zero means not told yet (offline from the start): say nothing rather than "0".
  ui.peopleCount.textContent = room.count > 0 ? `(${room.count})` : "";
}

/** @param {string} text @param {boolean} offline */
function setStatus(text, offline) {
  ui.status.textContent = text;
  ui.status.classList.toggle("offline", offline);
  ui.retry.hidden = !offline;
}

// ---------------------------------------------------------------- your own lines

/**
 * Shows a line you sent at once. It stays "pending" until the server sends it
 * back in the room's order (a web peer gets its own lines back), and
 * confirmOwn() then gives it the server's time and its place in that order
 * instead of showing it twice.
 *
 * @param {Room} room
 * @param {"say" | "action" | "private" | "command" | "quit"} kind
 * @param {string} text what will be said (for say/action), else the typed line
 * @param {string} typed the line as typed
 * @param {boolean} queued typed while offline
 */
function showOwn(room, kind, text, typed, queued) {
  const name = state.me?.name ?? state.wanted ?? "you";
  /** @type {HTMLLIElement} */
  let li;
  if (kind === "say") li = lineElement("message", { from: name, text, mine: true });
  else if (kind === "action") li = lineElement("action", { from: name, text, mine: true });
  else if (queued) li = lineElement("command", { text: typed, mine: true });
  else if (kind === "private") return null; // the server's echo shows it
  else li = lineElement("command", { text: typed, mine: true });
  if (queued) {
    li.classList.add("queued");
    const tag = el("span", "tag", "queued");
    tag.title = "Will be sent when the connection is back";
    li.append(tag);
  } else if (kind === "say" || kind === "action") {
    markPending(room, kind, text, li);
  }
  append(room, [li]);
  return li;
}

/** @param {Room} room @param {string} kind @param {string} text @param {HTMLLIElement} li */
function markPending(room, kind, text, li) {
  li.classList.add("pending");
  room.pending.push({ kind: kind === "say" ? "message" : "action", text, li });
  if (room.pending.length > MAX_PENDING) room.pending.shift()?.li.classList.remove("pending");
}

/**
 * The hook for a confirmation: when the server sends our own line back (as a
 * `message`/`action` from us), the pending copy is confirmed instead of shown
 * twice. Returns whether the event was ours and handled.
 *
 * @param {Record<string, any>} event
 */
function confirmOwn(event) {
  if (state.me === null || event.from?.id !== state.me.id) return false;
  const room = state.rooms.get(event.room);
  if (room === undefined) return false;
  const i = room.pending.findIndex((p) => p.kind === event.type && p.text === event.text);
  if (i < 0) return false;
  const [own] = room.pending.splice(i, 1);
  own.li.classList.remove("pending");
  placeInOrder(own.li);
  const time = own.li.querySelector("time");
  if (time !== null) time.replaceWith(timeElement(event.time));
  room.lastTime = Math.max(room.lastTime, event.time);
  return true;
}

/**
 * Puts a line the server just confirmed where the server put it. The server
 * sends everything in its order, so what was shown below the line while it
 * waited, and is not ours (a line someone else said meanwhile), came before
 * it: those move above it. Ours below it (typed later) stay below, in the
 * order they were typed, which is the server's too. Everyone in the room then
 * sees the same order.
 *
 * @param {HTMLLIElement} li
 */
function placeInOrder(li) {
  for (let next = li.nextElementSibling; next !== null;) {
    const after = next.nextElementSibling;
    if (!next.classList.contains("mine")) li.before(next);
    next = after;
  }
}

// ---------------------------------------------------------------- the connection

/** @param {Record<string, unknown>} frame */
function send(frame) {
  if (state.socket === null || state.socket.readyState !== WebSocket.OPEN) return false;
  state.socket.send(JSON.stringify(frame));
  return true;
}

function connect() {
  clearTimeout(state.retryTimer);
  if (state.socket !== null) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // batch=1: under load the server may send several events in one frame, as
  // a JSON array, which costs it (and us) far less than a frame per event.
  const socket = new WebSocket(`${scheme}//${location.host}/ws?batch=1`);
  state.socket = socket;
  state.passSent = false;
  setStatus("connecting…", false);
  socket.addEventListener("message", (message) => {
    /** @type {unknown} */
    let value;
    try {
      value = JSON.parse(String(message.data));
    } catch {
      return; // not ours to show; the server never sends this
    }
    for (const event of Array.isArray(value) ? value : [value]) {
      if (event !== null && typeof event === "object" && typeof event.type === "string") {
        handle(event);
      }
    }
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    const wasOnline = state.online;
    state.online = false;
    const final = FINAL_CLOSE.get(event.code);
    if (final !== undefined && !state.quitting) stop(event.reason || final);
    if (state.quitting) {
      setStatus(state.stopped ?? "you left", true);
      return;
    }
    if (wasOnline) notice("Connection lost: what you type waits until it is back");
    else state.failures += 1;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** state.failures);
    // Jitter, so a restarted server is not met by every page at the same instant.
    const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
    setStatus(`offline, trying again in ${Math.ceil(wait / 1000)} s`, true);
    state.retryTimer = setTimeout(connect, wait);
  });
}

/** Stays offline after this connection, saying why, until the person asks. @param {string} why */
function stop(why) {
  state.quitting = true;
  state.stopped = why;
}

/** Reconnects at once (the button, the browser coming back online). */
function reconnectNow() {
  state.quitting = false;
  state.stopped = null;
  state.failures = 0;
  connect();
}

function onWelcome() {
  state.online = true;
  state.failures = 0;
  state.nickRefusals = 0;
  setStatus(`connected as ${state.me?.name}`, false);
  if (state.wanted !== null && state.wanted !== state.me?.name) {
    askNick(state.wanted, state.wantedTyped);
  } else if (state.wanted === null) openNameDialog("");
  // Back in the rooms we were in before a drop, without moving the view; the
  // server handles frames in order, so queued lines land after these joins.
  for (const name of state.rooms.keys()) {
    if (name !== LOBBY) {
      state.rejoining.add(name);
      send({ type: "join", room: name });
    }
  }
  roomFor(LOBBY);
  const queued = state.queue.splice(0);
  for (const { frame, li } of queued) {
    send(frame);
    if (li !== null) {
      li.classList.remove("queued");
      li.querySelector(".tag")?.remove();
      const room = state.rooms.get(String(frame.room));
      const typed = classifyTyped(String(frame.text));
      if (room !== undefined && (typed.kind === "say" || typed.kind === "action")) {
        markPending(room, typed.kind, typed.text, li);
      }
    }
  }
  send({ type: "rooms" });
  send({ type: "who", room: state.current });
}

/** @param {string} name @param {boolean} typed */
function askNick(name, typed) {
  state.nickAsked = true;
  state.nickTyped = typed;
  send({ type: "nick", name });
}

// ---------------------------------------------------------------- events

/** @param {Record<string, any>} event a ChatEvent */
function handle(event) {
  switch (event.type) {
    case "welcome":
      state.me = event.you;
      // Our previous connection may still hold our name: end it before asking.
      if (state.resume !== null) send({ type: "resume", token: state.resume });
      if (typeof event.resume === "string") {
        state.resume = event.resume;
        rememberResume(event.resume);
      }
      onWelcome();
      notice(/** @type {string} */ (describe(event)), LOBBY);
      return;
    case "renamed":
      colours.rename(event.from, event.you.name);
      state.me = event.you;
      state.nickAsked = false;
      state.wanted = event.you.name;
      state.wantedTyped = false;
      rememberName(event.you.name);
      for (const room of state.rooms.values()) {
        const me = room.members.get(event.you.id);
        if (me !== undefined) room.members.set(me.id, { ...me, name: event.you.name });
      }
      renderPeople();
      setStatus(`connected as ${event.you.name}`, false);
      notice(/** @type {string} */ (describe(event)));
      return;
    case "message":
    case "action": {
      if (confirmOwn(event)) return;
      const room = roomFor(event.room);
      room.lastTime = Math.max(room.lastTime, event.time);
      const mentioned = state.me !== null && mentions(event.text, state.me.name);
      const li = lineElement(event.type, {
        time: event.time,
        from: event.from.name,
        text: event.text,
        mark: mentioned ? state.me?.name : undefined,
      });
      if (mentioned) li.classList.add("mention");
      append(room, [li]);
      return;
    }
    case "broadcast": {
      const targets = event.room === null ? [...state.rooms.values()] : [roomFor(event.room)];
      for (const room of targets) {
        append(room, [lineElement("broadcast", { from: "server", text: event.text })]);
      }
      return;
    }
    case "private": {
      const other = event.echo ? event.to : event.from;
      const li = lineElement("private", {
        time: event.time,
        from: other?.name ?? "server",
        text: event.action ? `(action) ${event.text}` : event.text,
        prefix: event.echo ? "-> " : "",
        mine: event.echo,
      });
      append(currentRoom(), [li]);
      return;
    }
    case "history":
      showHistory(event);
      return;
    case "join": {
      if (event.who.id === state.me?.id) return; // our own: `joined` says it
      const room = roomFor(event.room);
      colours.index(event.who.name);
      room.members.set(event.who.id, {
        id: event.who.id,
        name: event.who.name,
        transport: event.transport ?? "",
        ...(typeof event.away === "string" ? { away: event.away } : {}),
      });
      room.count += 1;
      roomChanged(room);
      notice(/** @type {string} */ (describe(event)), event.room);
      return;
    }
    case "part": {
      if (event.who.id === state.me?.id) return; // `parted` says it
      const room = roomFor(event.room);
      room.members.delete(event.who.id);
      room.count = Math.max(0, room.count - 1);
      // Out of sight: free the colour for the next to come.
      if (![...state.rooms.values()].some((r) => r.members.has(event.who.id))) {
        colours.leave(event.who.name);
      }
      roomChanged(room);
      notice(/** @type {string} */ (describe(event)), event.room);
      return;
    }
    case "quit":
    case "nick":
      personChanged(event);
      return;
    case "topic": {
      const room = roomFor(event.room);
      room.topic = event.topic;
      roomChanged(room);
      notice(/** @type {string} */ (describe(event)), event.room);
      return;
    }
    case "joined": {
      const room = roomFor(event.room);
      room.topic = event.topic;
      room.count = event.count;
      room.members = new Map(event.members.map((/** @type {Member} */ m) => [m.id, m]));
      for (const m of event.members) colours.index(m.name);
      const quiet = state.rejoining.delete(event.room);
      if (!quiet) notice(/** @type {string} */ (describe(event)), event.room);
      if (!quiet && event.room !== LOBBY) switchTo(event.room);
      else roomChanged(room);
      send({ type: "rooms" });
      return;
    }
    case "parted": {
      const room = state.rooms.get(event.room);
      if (room !== undefined && event.room !== LOBBY) {
        room.log.remove();
        state.rooms.delete(event.room);
      }
      if (state.current === event.room) switchTo(state.rooms.keys().next().value ?? LOBBY);
      notice(/** @type {string} */ (describe(event)));
      send({ type: "rooms" });
      return;
    }
    case "who": {
      const room = state.rooms.get(event.room);
      if (state.asked.who > 0) {
        state.asked.who -= 1;
        notice(/** @type {string} */ (describe(event)));
      }
      if (room !== undefined) {
        room.count = event.count;
        room.members = new Map(event.members.map((/** @type {Member} */ m) => [m.id, m]));
        roomChanged(room);
      }
      return;
    }
    case "rooms":
      if (state.asked.rooms > 0) {
        state.asked.rooms -= 1;
        notice(/** @type {string} */ (describe(event)));
      }
      state.directory = event.rooms;
      state.directoryTotal = typeof event.total === "number" ? event.total : event.rooms.length;
      for (const info of event.rooms) {
        const room = state.rooms.get(info.room);
        if (room !== undefined) {
          room.count = info.count;
          room.topic = info.topic;
        }
      }
      renderRooms();
      return;
    case "topic_is": {
      const room = state.rooms.get(event.room);
      if (room !== undefined) {
        room.topic = event.topic;
        roomChanged(room);
      }
      notice(/** @type {string} */ (describe(event)), event.room);
      return;
    }
    case "error":
      onError(event);
      return;
    case "closing":
      // The server is about to close: after a kick or a ban, do not come back.
      if (event.reason === "kicked" || event.reason === "banned") stop(event.text);
      notice(event.text);
      return;
    default: {
      // whois, away_is, away, ignoring, info, and whatever a newer server adds.
      const text = describe(event);
      if (text !== null) notice(text);
    }
  }
}

/** @param {Room} room */
function roomChanged(room) {
  renderRooms();
  if (room.name === state.current) {
    ui.topic.textContent = room.topic;
    ui.topic.title = room.topic;
    renderPeople();
  }
}

/** Someone left the server or took a new name: every room they are in hears it. @param {Record<string, any>} event */
function personChanged(event) {
  if (event.who.id === state.me?.id) return; // ours: `renamed` / the close say it
  const text = /** @type {string} */ (describe(event));
  if (event.type === "quit") colours.leave(event.who.name);
  else colours.rename(event.from, event.who.name);
  // The server names every room they were in; older servers do not, and then
  // the member lists we were sent tell.
  const rooms = Array.isArray(event.rooms)
    ? event.rooms.filter((/** @type {string} */ r) => state.rooms.has(r)).map(roomFor)
    : [...state.rooms.values()].filter((r) => r.members.has(event.who.id));
  for (const room of rooms) {
    const m = room.members.get(event.who.id);
    if (event.type === "quit") {
      room.members.delete(event.who.id);
      room.count = Math.max(0, room.count - 1);
    } else if (m !== undefined) {
      room.members.set(m.id, { ...m, name: event.who.name });
    }
    append(room, [lineElement("notice", { text })]);
  }
  if (rooms.length === 0) notice(text); // a member beyond the lists we were sent
  renderRooms();
  renderPeople();
}

/** @param {Record<string, any>} event */
function showHistory(event) {
  const room = roomFor(event.room);
  // After a reconnect the server replays lines the page already shows.
  const lines = event.lines.filter((/** @type {{ time: number }} */ l) => l.time > room.lastTime);
  if (lines.length === 0) return;
  room.log.setAttribute("aria-busy", "true");
  const items = [el("li", "history-mark", `Earlier in ${event.room}`)];
  for (const line of lines) {
    const kind = line.kind === "action" || line.kind === "notice" ? line.kind : "message";
    items.push(
      lineElement(kind, { time: line.time, from: line.from, text: line.text, history: true }),
    );
    room.lastTime = Math.max(room.lastTime, line.time);
  }
  items.push(el("li", "history-mark", "Now"));
  append(room, items);
  room.log.removeAttribute("aria-busy");
}

/** @param {Record<string, any>} event */
function onError(event) {
  if (event.code === "password") {
    // The password comes first: the name is asked again after the welcome.
    if (ui.nameDialog.open) ui.nameDialog.close();
    if (state.password !== null && !state.passSent) {
      state.passSent = true;
      send({ type: "pass", password: state.password });
      return;
    }
    ui.passProblem.textContent = state.passSent ? event.text : "";
    state.password = null;
    if (!ui.passDialog.open) ui.passDialog.showModal();
    return;
  }
  if (state.nickAsked && (event.code === "name_taken" || event.code === "bad_name")) {
    state.nickAsked = false;
    if (!state.nickTyped && event.code === "name_taken" && state.nickRefusals < NICK_RETRIES) {
      // Most often our own dropped connection still holds the name for a while.
      state.nickRefusals += 1;
      notice(`${event.text}; trying again in ${NICK_RETRY_MS / 1000} s`);
      const wanted = state.wanted;
      setTimeout(() => {
        if (state.online && wanted !== null && state.me?.name !== wanted) askNick(wanted, false);
      }, NICK_RETRY_MS);
      return;
    }
    // A refused name is not worth remembering: the next visit asks again.
    if (state.nickTyped) forgetName();
    openNameDialog(event.text);
    return;
  }
  notice(/** @type {string} */ (describe(event)), undefined, "error");
}

// ---------------------------------------------------------------- dialogs and input

/** @param {string} problem */
function openNameDialog(problem) {
  ui.nameProblem.textContent = problem;
  if (ui.nameDialog.open) return; // keep what is being typed in it
  if (ui.name.value === "") ui.name.value = state.wanted ?? "";
  ui.nameDialog.showModal();
  ui.name.focus();
}

ui.nameForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) {
    ui.nameProblem.textContent = "Use 1 to 32 letters, digits, _ or -, with no spaces.";
    ui.name.focus();
    return;
  }
  state.wanted = name;
  state.wantedTyped = true;
  rememberName(name);
  ui.nameDialog.close();
  if (state.online && state.me?.name !== name) askNick(name, true);
  ui.box.focus();
});

ui.nameDialog.addEventListener("cancel", (event) => {
  // Escape keeps the name the server gave (user7); the dialog comes back next visit.
  if (state.me === null) event.preventDefault();
});

ui.passForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (ui.pass.value === "") return;
  state.password = ui.pass.value;
  ui.pass.value = "";
  ui.passDialog.close();
  if (send({ type: "pass", password: state.password })) state.passSent = true;
  else reconnectNow(); // the server closed on the wrong one: try again with this
});

ui.send.addEventListener("submit", (event) => {
  event.preventDefault();
  const line = ui.box.value;
  if (line.trim() === "") return;
  ui.box.value = "";
  state.typed.push(line);
  if (state.typed.length > 100) state.typed.shift();
  state.typedAt = state.typed.length;
  const typed = classifyTyped(line);
  const room = currentRoom();
  const frame = { type: "line", room: room.name, text: line };
  if (typed.kind === "quit") state.quitting = true;
  const command = /^\/(who|rooms)\b/i.exec(line)?.[1].toLowerCase();
  if (command === "who" || command === "rooms") state.asked[command] += 1;
  if (state.online && send(frame)) {
    showOwn(room, typed.kind, typed.text, line, false);
  } else {
    state.queue.push({ frame, li: showOwn(room, typed.kind, typed.text, line, true) });
  }
});

ui.box.addEventListener("keydown", (event) => {
  // Up and Down walk through the lines sent, as in the terminal client.
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  if (state.typed.length === 0 || event.altKey || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  const step = event.key === "ArrowUp" ? -1 : 1;
  state.typedAt = Math.max(0, Math.min(state.typed.length, state.typedAt + step));
  ui.box.value = state.typed[state.typedAt] ?? "";
});

ui.rooms.addEventListener("click", (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  const button = target.closest("button");
  const name = button?.dataset.room;
  if (name === undefined) return;
  if (state.rooms.has(name)) switchTo(name);
  else if (state.online) send({ type: "join", room: name });
  else notice(`offline: cannot join ${name} now`);
  closeMenu();
  ui.box.focus();
});

function closeMenu() {
  ui.side.classList.remove("open");
  ui.menu.setAttribute("aria-expanded", "false");
}

ui.menu.addEventListener("click", () => {
  const open = !ui.side.classList.contains("open");
  ui.side.classList.toggle("open", open);
  ui.menu.setAttribute("aria-expanded", String(open));
  if (open) {
    if (state.online) send({ type: "rooms" });
    ui.rooms.querySelector("button")?.focus();
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.side.classList.contains("open")) {
    closeMenu();
    ui.menu.focus();
  }
});

ui.retry.addEventListener("click", reconnectNow);
addEventListener("online", () => {
  if (state.socket === null && !state.quitting) reconnectNow();
});

// ---------------------------------------------------------------- start

switchTo(LOBBY);
if (state.wanted === null) openNameDialog("");
else ui.box.focus();
connect();
