/**
 * What the kernel tells about a process: resident memory and CPU time, read from
 * `/proc`, so the figures cover every thread of the measured process (V8 and
 * Tokio worker threads included) and the generator needs no help from the server.
 *
 * @module
 */

import process from "node:process";

/**
 * `/proc/<pid>/stat` counts CPU time in clock ticks of USER_HZ, which Linux fixes
 * at 100 on every architecture it exports to user space (`getconf CLK_TCK`).
 */
const TICKS_PER_SECOND = 100;

/**
 * Reads files under `/proc` through `cat`: Deno 2.9 refuses every read below
 * `/proc` without `--allow-all` (NotCapable, even with `--allow-read`), and the
 * bench task grants `--allow-run` instead. One spawn costs a few milliseconds of
 * the generator's CPU, so it is done only around measured windows and while
 * waiting for the server to settle.
 */
async function readProc(...paths: string[]): Promise<string> {
  const out = await new Deno.Command("cat", { args: paths, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`Cannot read ${paths.join(", ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Memory and CPU of process `pid`, read together. */
export interface ProcessUsage {
  /** Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`). */
  rssKiB: number;
  /** CPU time (user + system) used so far, in milliseconds; 10 ms resolution. */
  cpuMs: number;
}

/** Reads the resident memory and CPU time of `pid`. */
export async function processUsage(pid: number): Promise<ProcessUsage> {
  // `stat` is one line; `status` follows it.
  const text = await readProc(`/proc/${pid}/stat`, `/proc/${pid}/status`);
  const stat = text.slice(0, text.indexOf("\n"));
  const status = text.slice(stat.length);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`No VmRSS in "/proc/${pid}/status"`);
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after the name.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssKiB: Number(match[1]), cpuMs: ticks * 1000 / TICKS_PER_SECOND };
}

/** CPU time (user + system) of this generator process so far, in milliseconds. */
export function selfCpuMs(): number {
  // getrusage() behind process.cpuUsage() has microsecond resolution, and needs no /proc.
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** The CPU model (`model name` of /proc/cpuinfo) and how many logical CPUs it lists. */
export async function cpuInfo(): Promise<{ model: string; cpus: number }> {
  const text = await readProc("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1].trim() ?? "unknown";
  const cpus = text.match(/^processor\s*:/gm)?.length ?? navigator.hardwareConcurrency;
  return { model, cpus };
}

/** The command name of `pid` (`/proc/<pid>/comm`), e.g. "deno". */
export async function commandOf(pid: number): Promise<string> {
  return (await readProc(`/proc/${pid}/comm`)).trim();
}

/**
 * Waits until `pid` has used no CPU for `quietMs`, or `timeoutMs` has passed:
 * after clients connect, a server may still be busy (join notices to everyone,
 * freeing memory), and a figure read before it settles would measure that work.
 * Returns how long it waited, in milliseconds.
 */
export async function settle(
  pid: number,
  options: { quietMs?: number; timeoutMs?: number } = {},
): Promise<number> {
  const quietMs = options.quietMs ?? 300;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const start = performance.now();
  let last = (await processUsage(pid)).cpuMs;
  let quietSince = performance.now();
  while (performance.now() - start < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = (await processUsage(pid)).cpuMs;
    if (now !== last) {
      last = now;
      quietSince = performance.now();
    } else if (performance.now() - quietSince >= quietMs) {
      break;
    }
  }
  return performance.now() - start;
}
