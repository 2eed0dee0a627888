import assert from "node:assert/strict";
import {
  WARM_UP_CLIENTS,
  WARM_UP_LINES,
  WARM_UP_PACED_CLIENTS,
  WARM_UP_PACED_LINES,
  WARM_UP_PACED_SENDERS,
  WARM_UP_SENDERS,
  warmUp,
} from "./warm_up.ts";

/** Lines relayed when `senders` of `clients` send `lines` each: everyone hears every sender but itself. */
function relayed(clients: number, senders: number, lines: number): number {
  return senders * (senders - 1) * lines + (clients - senders) * senders * lines;
}

Deno.test("warmUp relays every line of both servers to every other client, and leaves nothing open", async () => {
  const expected = relayed(WARM_UP_CLIENTS, WARM_UP_SENDERS, WARM_UP_LINES) +
    relayed(WARM_UP_PACED_CLIENTS, WARM_UP_PACED_SENDERS, WARM_UP_PACED_LINES);
  assert.equal(await warmUp(), expected);
  // The test's resource and op sanitizers check that its servers, sockets and timer are gone.
});
