import assert from "node:assert/strict";
import { AccessList, cidrContains, parseAddress, parseCidr } from "./cidr.ts";

/** 16 bytes from 8 groups, to write expected IPv6 addresses readably. */
function ipv6(...groups: number[]): Uint8Array {
  assert.equal(groups.length, 8);
  return Uint8Array.from(groups.flatMap((group) => [group >> 8, group & 0xff]));
}

Deno.test("parseAddress() reads IPv4 dotted quads into 4 bytes", () => {
  assert.deepEqual(parseAddress("0.0.0.0"), Uint8Array.of(0, 0, 0, 0));
  assert.deepEqual(parseAddress("255.255.255.255"), Uint8Array.of(255, 255, 255, 255));
  assert.deepEqual(parseAddress("192.168.1.7"), Uint8Array.of(192, 168, 1, 7));
  assert.deepEqual(parseAddress("10.0.0.10"), Uint8Array.of(10, 0, 0, 10));
});

Deno.test("parseAddress() reads every IPv6 text form into 16 bytes", () => {
  const cases: [string, Uint8Array][] = [
    ["::", ipv6(0, 0, 0, 0, 0, 0, 0, 0)],
    ["::1", ipv6(0, 0, 0, 0, 0, 0, 0, 1)],
    ["1::", ipv6(1, 0, 0, 0, 0, 0, 0, 0)],
    ["1:2:3:4:5:6:7:8", ipv6(1, 2, 3, 4, 5, 6, 7, 8)],
    ["2001:DB8::8:800:200C:417A", ipv6(0x2001, 0xdb8, 0, 0, 8, 0x800, 0x200c, 0x417a)],
    ["0001:0db8::00ff", ipv6(1, 0xdb8, 0, 0, 0, 0, 0, 0xff)],
    ["1:2:3:4:5:6:7::", ipv6(1, 2, 3, 4, 5, 6, 7, 0)],
    ["::2:3:4:5:6:7:8", ipv6(0, 2, 3, 4, 5, 6, 7, 8)],
    ["1:2::7:8", ipv6(1, 2, 0, 0, 0, 0, 7, 8)],
    ["::ffff:1.2.3.4", ipv6(0, 0, 0, 0, 0, 0xffff, 0x102, 0x304)],
    ["::ffff:7f00:1", ipv6(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1)],
    ["64:ff9b::192.0.2.33", ipv6(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221)],
    ["1:2:3:4:5:6:255.255.0.1", ipv6(1, 2, 3, 4, 5, 6, 0xffff, 1)],
    ["fe80::1%eth0", ipv6(0xfe80, 0, 0, 0, 0, 0, 0, 1)],
  ];
  for (const [text, bytes] of cases) assert.deepEqual(parseAddress(text), bytes, text);
});

Deno.test("parseAddress() returns null for text that is not an address", () => {
  const invalid = [
    "",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "1.2.3",
    "1.2.3.4.5",
    "1..3.4",
    "1.2.3.256",
    "1.2.3.-1",
    "01.2.3.4",
    "1.2.3.00",
    "0x1.2.3.4",
    "a.b.c.d",
    "localhost",
    "1.2.3.4/32",
    "1.2.3.4%eth0",
    ":",
    ":::",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1::2::3",
    ":1::",
    "::1:",
    "1:::2",
    ":1:2:3:4:5:6:7:8",
    "12345::",
    "g::",
    "::1.2.3",
    "::01.2.3.4",
    "1.2.3.4::",
    "::1.2.3.4:5",
    "1:2:3:4:5:6:7:1.2.3.4",
    "fe80::1%",
    ":: 1",
  ];
  for (const text of invalid) assert.equal(parseAddress(text), null, JSON.stringify(text));
});

Deno.test("parseCidr() returns family, masked network, prefix and canonical text", () => {
  const cidr = parseCidr("10.1.2.3/8");
  assert.equal(cidr.family, 4);
  assert.equal(cidr.prefix, 8);
  assert.deepEqual(cidr.network, Uint8Array.of(10, 0, 0, 0));
  assert.equal(cidr.text, "10.0.0.0/8");

  const v6 = parseCidr("2001:db8::1/32");
  assert.equal(v6.family, 6);
  assert.equal(v6.prefix, 32);
  assert.deepEqual(v6.network, ipv6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
  assert.equal(v6.text, "2001:db8::/32");
});

Deno.test("parseCidr() reads a bare address as a single host", () => {
  assert.equal(parseCidr("192.168.1.7").text, "192.168.1.7/32");
  assert.equal(parseCidr("192.168.1.7").prefix, 32);
  assert.equal(parseCidr("::1").text, "::1/128");
  assert.equal(parseCidr("::1").prefix, 128);
});

Deno.test("parseCidr() masks host bits at odd and extreme prefixes", () => {
  const cases: [string, string][] = [
    ["10.255.255.255/13", "10.248.0.0/13"],
    ["200.1.2.3/1", "128.0.0.0/1"],
    ["127.255.255.255/1", "0.0.0.0/1"],
    ["1.2.3.4/0", "0.0.0.0/0"],
    ["1.2.3.4/32", "1.2.3.4/32"],
    ["10.0.0.1/31", "10.0.0.0/31"],
    ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/97", "2001:db8:ffff:ffff:ffff:ffff:8000:0/97"],
    ["ffff::1/0", "::/0"],
    ["ffff::1/1", "8000::/1"],
    ["fe80::1234/10", "fe80::/10"],
    ["::ffff:10.1.2.3/104", "::ffff:10.0.0.0/104"],
    ["1:2:3:4:5:6:7:8/128", "1:2:3:4:5:6:7:8/128"],
  ];
  for (const [text, canonical] of cases) assert.equal(parseCidr(text).text, canonical, text);
});

Deno.test("parseCidr() writes IPv6 text the RFC 5952 way", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:0", "::/128"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128"],
    // A single zero group stays "0"; of two equal runs the first is compressed.
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1/128"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1/128"],
    // The longest run wins even when it comes second.
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1/128"],
    ["1:0:0:0:0:0:0:0", "1::/128"],
    ["0:0:0:0:0:0:0:1", "::1/128"],
    ["0:0:0:0:0:ffff:0102:0304", "::ffff:1.2.3.4/128"],
    ["::1.2.3.4", "::102:304/128"],
  ];
  for (const [text, canonical] of cases) assert.equal(parseCidr(text).text, canonical, text);
});

Deno.test("parseCidr() throws a TypeError naming the value and the problem", () => {
  const cases: [string, string][] = [
    ["", "value is empty"],
    [" 10.0.0.0/8", "contains whitespace"],
    ["10.0.0.0/8 ", "contains whitespace"],
    ["10.0.0.0/ 8", "contains whitespace"],
    ["/8", "address is empty"],
    ["10.0.0.0/", "prefix is empty"],
    ["10.0.0.0/-1", 'prefix "-1" is not a number'],
    ["10.0.0.0/8/8", 'prefix "8/8" is not a number'],
    ["10.0.0.0/08", 'prefix "08" has a leading zero'],
    ["10.0.0.0/33", "prefix must be 0-32 for IPv4"],
    ["::/129", "prefix must be 0-128 for IPv6"],
    ["10.0.0.300/8", "octet 300 is out of range"],
    ["10.0.0/8", "expected 4 dot-separated octets, found 3"],
    ["10.0.0.0.0/8", "expected 4 dot-separated octets, found 5"],
    ["10..0.0/8", "empty octet"],
    ["010.0.0.0/8", 'octet "010" has a leading zero'],
    ["10.0.0.x/8", 'octet "x" is not a decimal number'],
    ["1::2::3/64", '"::" appears more than once'],
    ["1:2:3:4:5:6:7:8:9/64", "too many groups (9, at most 8)"],
    ["1:2:3:4:5:6:7:8::/64", 'too many groups (8) to leave room for "::"'],
    ["1:2:3/48", 'too few groups (3 of 8) and no "::"'],
    [":1::/16", 'empty group (a stray ":")'],
    ["12345::/16", 'group "12345" has more than 4 hex digits'],
    ["gg::/16", 'group "gg" is not hexadecimal'],
    ["1.2.3.4::/96", 'embedded IPv4 address "1.2.3.4" must come last'],
    ["::ffff:1.2.3.400/128", "octet 400 is out of range"],
    ["fe80::1%eth0/64", 'zone id "%eth0" is not allowed in a network'],
  ];
  for (const [text, reason] of cases) {
    assert.throws(() => parseCidr(text), {
      name: "TypeError",
      message: `Invalid CIDR ${JSON.stringify(text)}: ${reason}`,
    });
  }
});

Deno.test("cidrContains() matches IPv4 addresses at the edges of a network", () => {
  const cases: [string, string[], string[]][] = [
    ["10.0.0.0/8", ["10.0.0.0", "10.255.255.255"], ["9.255.255.255", "11.0.0.0"]],
    ["192.168.1.7/32", ["192.168.1.7"], ["192.168.1.6", "192.168.1.8"]],
    ["128.0.0.0/1", ["128.0.0.0", "255.255.255.255"], ["127.255.255.255", "0.0.0.0"]],
    ["10.248.0.0/13", ["10.248.0.0", "10.255.255.255"], ["10.247.255.255", "11.0.0.0"]],
    ["0.0.0.0/0", ["0.0.0.0", "255.255.255.255"], ["::1", "2001:db8::1"]],
    ["10.0.0.1/8", ["10.200.0.1"], ["11.0.0.1"]],
  ];
  for (const [network, inside, outside] of cases) {
    const cidr = parseCidr(network);
    for (const address of inside) {
      assert.equal(cidrContains(cidr, address), true, `${address} in ${network}`);
    }
    for (const address of outside) {
      assert.equal(cidrContains(cidr, address), false, `${address} in ${network}`);
    }
  }
});

Deno.test("cidrContains() matches IPv6 addresses at the edges of a network", () => {
  const cases: [string, string[], string[]][] = [
    ["::1/128", ["::1", "0:0:0:0:0:0:0:1"], ["::", "::2", "1::1"]],
    ["2001:db8::/32", ["2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"], [
      "2001:db9::",
      "2001:db7:ffff::",
    ]],
    ["2001:db8::/97", ["2001:db8::7fff:ffff", "2001:db8::"], [
      "2001:db8::8000:0",
      "2001:db8::1:0:0",
    ]],
    ["8000::/1", ["8000::", "ffff::1"], ["7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::"]],
    ["fe80::/10", ["fe80::1%eth0", "febf::1"], ["fec0::1", "fe7f::1"]],
    ["::/0", ["::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"], []],
  ];
  for (const [network, inside, outside] of cases) {
    const cidr = parseCidr(network);
    for (const address of inside) {
      assert.equal(cidrContains(cidr, address), true, `${address} in ${network}`);
    }
    for (const address of outside) {
      assert.equal(cidrContains(cidr, address), false, `${address} in ${network}`);
    }
  }
});

Deno.test("cidrContains() matches IPv4-mapped IPv6 addresses against IPv4 networks", () => {
  const loopback = parseCidr("127.0.0.0/8");
  assert.equal(cidrContains(loopback, "::ffff:127.0.0.1"), true);
  assert.equal(cidrContains(loopback, "::ffff:7f00:1"), true);
  assert.equal(cidrContains(loopback, "::FFFF:127.255.255.255"), true);
  assert.equal(cidrContains(loopback, "::ffff:128.0.0.1"), false);
  // "::127.0.0.1" is IPv4-compatible (deprecated), not mapped: it is an IPv6 address.
  assert.equal(cidrContains(loopback, "::127.0.0.1"), false);
  assert.equal(cidrContains(loopback, "::1"), false);
});

Deno.test("cidrContains() matches IPv4 addresses against networks inside ::ffff:0:0/96", () => {
  const allMapped = parseCidr("::ffff:0:0/96");
  assert.equal(cidrContains(allMapped, "1.2.3.4"), true);
  assert.equal(cidrContains(allMapped, "::ffff:1.2.3.4"), true);
  assert.equal(cidrContains(allMapped, "::1"), false);

  const ten = parseCidr("::ffff:10.0.0.0/104");
  assert.equal(cidrContains(ten, "10.9.9.9"), true);
  assert.equal(cidrContains(ten, "::ffff:10.9.9.9"), true);
  assert.equal(cidrContains(ten, "11.0.0.0"), false);
  assert.equal(cidrContains(ten, "9.255.255.255"), false);

  const host = parseCidr("::ffff:192.0.2.1");
  assert.equal(cidrContains(host, "192.0.2.1"), true);
  assert.equal(cidrContains(host, "192.0.2.2"), false);
});

Deno.test("cidrContains() keeps IPv4 clients out of other IPv6 networks, even ::/0", () => {
  assert.equal(cidrContains(parseCidr("::/0"), "1.2.3.4"), false);
  assert.equal(cidrContains(parseCidr("::/0"), "::ffff:1.2.3.4"), false);
  assert.equal(cidrContains(parseCidr("2001:db8::/32"), "32.1.13.184"), false);
  // Covers ::ffff:0:0/96 but is shorter than /96, so it is an IPv6 network.
  assert.equal(cidrContains(parseCidr("::ffff:0:0/95"), "1.2.3.4"), false);
});

Deno.test("cidrContains() throws a TypeError for text that is not an address", () => {
  assert.throws(() => cidrContains(parseCidr("0.0.0.0/0"), "localhost"), {
    name: "TypeError",
    message: 'Invalid address "localhost": expected 4 dot-separated octets, found 1',
  });
  assert.throws(() => cidrContains(parseCidr("::/0"), ""), {
    name: "TypeError",
    message: 'Invalid address "": address is empty',
  });
});

Deno.test("AccessList with no rules is empty and allows everyone", () => {
  for (const rules of [{}, { allow: [], deny: [] }]) {
    const access = new AccessList(rules);
    assert.equal(access.empty, true);
    assert.deepEqual(access.check("203.0.113.1"), { allowed: true, rule: "no rules" });
    assert.deepEqual(access.check("::1"), { allowed: true, rule: "no rules" });
  }
  assert.equal(new AccessList({ allow: ["::1"] }).empty, false);
  assert.equal(new AccessList({ deny: ["::1"] }).empty, false);
});

Deno.test("AccessList with only deny rules allows everything not denied", () => {
  const access = new AccessList({ deny: ["10.0.0.0/8", "2001:db8::/32"] });
  assert.deepEqual(access.check("10.1.2.3"), { allowed: false, rule: "--deny 10.0.0.0/8" });
  assert.deepEqual(access.check("::ffff:10.1.2.3"), { allowed: false, rule: "--deny 10.0.0.0/8" });
  assert.deepEqual(access.check("2001:db8::5"), { allowed: false, rule: "--deny 2001:db8::/32" });
  assert.deepEqual(access.check("11.0.0.1"), { allowed: true, rule: "not in any --deny" });
  assert.deepEqual(access.check("::1"), { allowed: true, rule: "not in any --deny" });
});

Deno.test("AccessList with allow rules refuses addresses outside all of them", () => {
  const access = new AccessList({ allow: ["127.0.0.0/8", "::1"] });
  assert.deepEqual(access.check("127.0.0.1"), { allowed: true, rule: "--allow 127.0.0.0/8" });
  assert.deepEqual(access.check("::ffff:127.0.0.1"), {
    allowed: true,
    rule: "--allow 127.0.0.0/8",
  });
  assert.deepEqual(access.check("::1"), { allowed: true, rule: "--allow ::1/128" });
  assert.deepEqual(access.check("10.0.0.1"), { allowed: false, rule: "not in any --allow" });
  assert.deepEqual(access.check("::2"), { allowed: false, rule: "not in any --allow" });
});

Deno.test("AccessList lets deny win over a matching allow", () => {
  const access = new AccessList({
    allow: ["10.0.0.0/8", "10.1.0.0/16"],
    deny: ["10.1.2.0/24"],
  });
  assert.deepEqual(access.check("10.1.2.3"), { allowed: false, rule: "--deny 10.1.2.0/24" });
  assert.deepEqual(access.check("10.1.3.3"), { allowed: true, rule: "--allow 10.0.0.0/8" });
  const same = new AccessList({ allow: ["::1"], deny: ["::1"] });
  assert.deepEqual(same.check("::1"), { allowed: false, rule: "--deny ::1/128" });
});

Deno.test("AccessList names rules in canonical form, the first match in the order given", () => {
  const access = new AccessList({ deny: ["10.9.9.9/8", "10.0.0.0/16", "0:0::FFFF:10.0.0.0/104"] });
  assert.deepEqual(access.check("10.0.0.1"), { allowed: false, rule: "--deny 10.0.0.0/8" });
  const mapped = new AccessList({ allow: ["::ffff:10.0.0.0/104"] });
  assert.deepEqual(mapped.check("10.0.0.1"), {
    allowed: true,
    rule: "--allow ::ffff:10.0.0.0/104",
  });
});

Deno.test("AccessList throws a TypeError naming the flag of a bad rule", () => {
  assert.throws(() => new AccessList({ deny: ["x"] }), {
    name: "TypeError",
    message: 'Invalid --deny "x": expected 4 dot-separated octets, found 1',
  });
  assert.throws(() => new AccessList({ allow: ["10.0.0.0/8", "10.0.0.0/33"] }), {
    name: "TypeError",
    message: 'Invalid --allow "10.0.0.0/33": prefix must be 0-32 for IPv4',
  });
  assert.throws(() => new AccessList({ allow: ["::1"], deny: [""] }), {
    name: "TypeError",
    message: 'Invalid --deny "": value is empty',
  });
});

Deno.test("AccessList.check() throws a TypeError for text that is not an address", () => {
  assert.throws(() => new AccessList({ deny: ["10.0.0.0/8"] }).check("10.0.0"), {
    name: "TypeError",
    message: 'Invalid address "10.0.0": expected 4 dot-separated octets, found 3',
  });
});
