/**
 * Buffers that many connections write, reused once every one of them is done:
 * a relayed batch is encoded once (see `LINE_FORMAT.encodeLines`) and queued to
 * every member of the room, and a fresh buffer per batch cost more than the
 * encoding itself on the VM this was measured on (V8 zero-fills it, and its
 * first-touch page faults take about 14 µs per 4 KiB page).
 *
 * A leased buffer counts its holders. The one who leases it holds it; whoever
 * keeps it past the call that handed it over (a connection's send queue, a
 * history replay holding live lines back) takes a hold with {@linkcode retain}
 * and gives it up with {@linkcode release} once it no longer reads it; when
 * the last hold goes, the buffer is free for the next lease. A release that
 * never comes (a connection closed with the buffer queued) only leaves the
 * buffer to the garbage collector; a release without its hold would let the
 * buffer be overwritten while still queued, so every release pairs with a
 * hold. Values that were not leased (strings, other bytes) are ignored.
 *
 * @example
 * ```ts
 * import { leaseBytes, release, retain } from "./shared_bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = leaseBytes(10_000); // held by its maker
 * retain(bytes); // a queue keeps it too
 * release(bytes); // the maker is done
 * assert.notEqual(leaseBytes(10_000).buffer, bytes.buffer); // still queued: not reused
 * release(bytes); // written
 * assert.equal(leaseBytes(10_000).buffer, bytes.buffer);
 * ```
 *
 * @module
 */

/** Smaller buffers are cheap to make (no fresh page to touch) and are not leased. */
export const LEASE_MIN = 8 * 1024;
/** Larger ones (never a relayed batch of chat lines) are made fresh each time. */
const LEASE_MAX = 256 * 1024;
/** Bytes of free buffers kept for the next leases; more go to the garbage collector. */
const FREE_BYTES = 8 * 1024 * 1024;

/** A leased buffer: the whole buffer, and how many hold the view given out. */
interface Lease {
  readonly buffer: Uint8Array;
  holders: number;
}

/** By the view given out, so a value that was never leased is simply not found. */
const leases = new WeakMap<Uint8Array, Lease>();
/** Free buffers by size class (a power of two), most recently freed last. */
const free = new Map<number, Uint8Array[]>();
let freeBytes = 0;

/**
 * `size` bytes (their content undefined) to fill once and share, held by the
 * caller; past {@linkcode LEASE_MAX} or under {@linkcode LEASE_MIN}, a plain
 * new buffer.
 */
export function leaseBytes(size: number): Uint8Array {
  if (size < LEASE_MIN || size > LEASE_MAX) return new Uint8Array(size);
  const capacity = sizeClass(size);
  let buffer = free.get(capacity)?.pop();
  if (buffer === undefined) buffer = new Uint8Array(capacity);
  else freeBytes -= capacity;
  const view = buffer.subarray(0, size);
  leases.set(view, { buffer, holders: 1 });
  return view;
}

/** Takes a hold on `value` if it is a leased buffer; see the module doc. */
export function retain(value: unknown): void {
  if (!(value instanceof Uint8Array) || value.length < LEASE_MIN) return;
  const lease = leases.get(value);
  if (lease !== undefined) lease.holders++;
}

/** Gives up a hold taken on `value`; the last one frees the buffer. */
export function release(value: unknown): void {
  if (!(value instanceof Uint8Array) || value.length < LEASE_MIN) return;
  const lease = leases.get(value);
  if (lease === undefined || --lease.holders > 0) return;
  leases.delete(value); // a stray release later finds nothing
  const capacity = lease.buffer.length;
  if (freeBytes + capacity > FREE_BYTES) return;
  let list = free.get(capacity);
  if (list === undefined) free.set(capacity, list = []);
  list.push(lease.buffer);
  freeBytes += capacity;
}

/** The power of two at least `size`. */
function sizeClass(size: number): number {
  let capacity = LEASE_MIN;
  while (capacity < size) capacity *= 2;
  return capacity;
}
