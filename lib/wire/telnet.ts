/**
 * Just enough Telnet for `telnet` users: strip Telnet commands out of what a
 * client sends, and answer option requests so the client never waits.
 *
 * A telnet client sends commands in-band, introduced by the byte IAC (0xFF). The
 * one that matters: Ctrl-C sends `IAC IP IAC DO TIMING-MARK`, and the client
 * then hides all output until the server answers the TIMING-MARK, so a server
 * that ignores it leaves that user staring at a frozen screen. 0xFF never occurs
 * in UTF-8 text, so removing commands can never eat a character.
 *
 * @module
 */

/** Interpret As Command: starts every Telnet command. */
export const IAC = 0xff;
const SE = 0xf0;
const SB = 0xfa;
const WILL = 0xfb;
const WONT = 0xfc;
const DO = 0xfd;
const DONT = 0xfe;
const TIMING_MARK = 0x06;

/**
 * Longest subnegotiation body kept out of the data. Every option is refused,
 * so a telnet client has no reason to send one at all; a stray `IAC SB` (from
 * a peer that is not telnet, or on purpose) must not swallow the sender's
 * lines until an `IAC SE` that never comes.
 */
export const MAX_SUBNEGOTIATION = 256;

/** Where the filter is inside a command that may span chunks. */
const enum State {
  Data,
  /** After IAC. */
  Command,
  /** After IAC WILL/WONT/DO/DONT: the option byte comes next. */
  Option,
  /** Inside IAC SB ... IAC SE: skipped whole. */
  Sub,
  /** After IAC inside a subnegotiation. */
  SubCommand,
}

/**
 * Removes Telnet commands from a byte stream, chunk by chunk, and says what to
 * answer: every option is refused (`DO x` gets `WONT x`, `WILL x` gets `DONT x`),
 * except TIMING-MARK, which is confirmed because the client waits for it.
 *
 * @example Ctrl-C in telnet
 * ```ts
 * import { TelnetFilter } from "./telnet.ts";
 * import assert from "node:assert/strict";
 *
 * const filter = new TelnetFilter();
 * const chunk = new Uint8Array([0xff, 0xf4, 0xff, 0xfd, 0x06, 0x68, 0x69, 0x0a]);
 * const { data, reply } = filter.strip(chunk);
 * assert.deepEqual([...data], [0x68, 0x69, 0x0a]); // "hi\n"
 * assert.deepEqual(reply, [0xff, 0xfb, 0x06]); // IAC WILL TIMING-MARK
 * ```
 */
export class TelnetFilter {
  #state = State.Data;
  /** The verb (WILL/WONT/DO/DONT) while waiting for its option byte. */
  #verb = 0;
  /** Bytes of the current subnegotiation so far. */
  #sub = 0;
  /**
   * Bytes dropped by subnegotiations cut at {@linkcode MAX_SUBNEGOTIATION}
   * since the caller last set this back to 0: report them, then reset it.
   */
  overlong = 0;

  /** True while in the middle of a command: the next chunk must be filtered even without IAC. */
  get pending(): boolean {
    return this.#state !== State.Data;
  }

  /**
   * Removes commands from `chunk`, in place when it can. Returns the data left
   * (a view of `chunk`, or a new array when a 0xFF held over from the previous
   * chunk turned out to be data), and the bytes to send back, or null.
   */
  strip(chunk: Uint8Array): { data: Uint8Array; reply: number[] | null } {
    if (this.#state === State.Command && chunk.length > 0 && chunk[0] < SE) {
      // The last chunk ended in 0xFF, which is data after all: put it back.
      const joined = new Uint8Array(chunk.length + 1);
      joined[0] = IAC;
      joined.set(chunk, 1);
      this.#state = State.Data;
      return this.strip(joined);
    }
    const length = chunk.length;
    let out = 0;
    let reply: number[] | null = null;
    for (let i = 0; i < length; i++) {
      const b = chunk[i];
      switch (this.#state) {
        case State.Data:
          if (b === IAC) this.#state = State.Command;
          else chunk[out++] = b;
          break;
        case State.Command:
          if (b === IAC) {
            chunk[out++] = b; // IAC IAC is a literal 0xFF
            this.#state = State.Data;
          } else if (b < SE) {
            // Not a command: invalid UTF-8 from a peer that is not telnet. Keep
            // both bytes, so the 0xFF shows as U+FFFD and no character is lost.
            // (Writing two bytes is safe: the IAC before was not written.)
            chunk[out++] = IAC;
            chunk[out++] = b;
            this.#state = State.Data;
          } else if (b >= WILL && b <= DONT) {
            this.#verb = b;
            this.#state = State.Option;
          } else {
            // Two-byte commands (IP, AO, AYT, NOP, ...) and a stray SE: dropped.
            this.#state = b === SB ? State.Sub : State.Data;
            this.#sub = 0;
          }
          break;
        case State.Option:
          if (this.#verb === DO) (reply ??= []).push(IAC, b === TIMING_MARK ? WILL : WONT, b);
          else if (this.#verb === WILL) (reply ??= []).push(IAC, DONT, b);
          this.#state = State.Data;
          break;
        case State.Sub:
          if (b === IAC) this.#state = State.SubCommand;
          else if (++this.#sub > MAX_SUBNEGOTIATION) {
            // No end in sight: what was skipped is reported, and this byte is data.
            this.overlong += this.#sub - 1;
            this.#state = State.Data;
            chunk[out++] = b;
          }
          break;
        case State.SubCommand:
          this.#state = b === SE ? State.Data : State.Sub;
          this.#sub++;
          break;
      }
    }
    return { data: out === length ? chunk : chunk.subarray(0, out), reply };
  }
}
