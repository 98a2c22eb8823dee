// Netlink framing: the writer's bytes, the readers on captured kernel replies and on a corpus of malformed
// ones, and a seeded fuzz loop proving that no input makes the reply path throw.

import { describe, expect, test } from "bun:test";
import { NLMSG_ERROR } from "../../../native-bindings/linux/netlink.ts";
import { RTM_NEWROUTE } from "../../../native-bindings/linux/rtnetlink.ts";
import {
  NetlinkParseError,
  NetlinkWriter,
  readAck,
  readAttributes,
  readMessages,
  ReplyTracker,
  type NetlinkHeader,
} from "../../../native-bindings/netlink-message.ts";
import { decodeAddress, decodeLink, decodeNeighbor, decodeRoute } from "../../../native-bindings/rtnetlink-reply.ts";
import { isIp4 } from "../../../native-bindings/ip4.ts";
import { isMacAddress } from "../../../native-bindings/mac-address.ts";
import { seededRandom } from "../../../testbed/random.ts";
import { CAPTURED_REPLIES } from "./captured-replies.ts";

function viewOf(hex: string): DataView {
  return new DataView(Uint8Array.from(Buffer.from(hex, "hex")).buffer);
}

function hexOf(view: DataView, len: number): string {
  return Buffer.from(view.buffer, view.byteOffset, len).toString("hex");
}

/** Runs every captured datagram of a reply through a tracker expecting `count` requests from `seq`. */
function track(datagrams: readonly string[], seq: number, count = 1) {
  const tracker = new ReplyTracker(seq, count);
  const data: NetlinkHeader[] = [];
  for (const hex of datagrams) {
    const view = viewOf(hex);
    const bad = tracker.absorb(view, 0, view.byteLength, data);
    if (bad) return { tracker, bad, data };
  }
  return { tracker, bad: undefined, data };
}

describe("NetlinkWriter", () => {
  test("a message is a 16-byte header with its total length, then 4-byte aligned attributes", () => {
    const w = new NetlinkWriter(new ArrayBuffer(128), 32, 64);
    w.beginMessage(RTM_NEWROUTE, 0x0505, 0x01020304);
    w.attrString(3, "v0");
    w.attrU32(15, 254);
    w.attrIPv4(1, 0x0af40700);
    w.endMessage();
    expect(w.length).toBe(16 + 8 + 8 + 8);
    expect(hexOf(new DataView(w.view.buffer, 32), w.length)).toBe(
      "28000000" +
        "1800" +
        "0505" +
        "04030201" +
        "00000000" + // nlmsghdr, little-endian
        "0700" +
        "0300" +
        "763000" +
        "00" + // IFLA_IFNAME "v0\0", length 7, one byte of padding
        "0800" +
        "0f00" +
        "fe000000" + // RTA_TABLE 254, host order
        "0800" +
        "0100" +
        "0af40700", // RTA_DST 10.244.7.0, network order
    );
  });

  test("writing past the region throws RangeError instead of overrunning the buffer", () => {
    const w = new NetlinkWriter(new ArrayBuffer(64), 0, 24);
    w.beginMessage(RTM_NEWROUTE, 0, 1);
    expect(() => w.attrBytes(1, [1, 2, 3, 4, 5])).toThrow(RangeError);
  });

  test("reset rewinds to the start of the region and leaves no message open", () => {
    const w = new NetlinkWriter(new ArrayBuffer(64), 0, 64);
    w.beginMessage(RTM_NEWROUTE, 0, 1);
    w.reset();
    expect(w.length).toBe(0);
    expect(() => w.endMessage()).toThrow();
  });
});

describe("reading captured kernel replies", () => {
  const gatewayText = "Nexthop has invalid gateway";
  const cases: {
    name: string;
    reply: keyof typeof CAPTURED_REPLIES;
    errno: number;
    message: string | undefined;
    records: number;
  }[] = [
    { name: "a plain ack completes its request with errno 0", reply: "ack", errno: 0, message: undefined, records: 0 },
    {
      name: "a capped error carries the errno and the kernel's extended-ack text",
      reply: "error-extack-capped",
      errno: 101,
      message: gatewayText,
      records: 0,
    },
    {
      name: "an uncapped error skips the echoed request to reach the extended-ack text",
      reply: "error-extack-uncapped",
      errno: 101,
      message: gatewayText,
      records: 0,
    },
    {
      name: "a delete of an absent neighbor reports ENOENT without text",
      reply: "error-enoent",
      errno: 2,
      message: undefined,
      records: 0,
    },
    {
      name: "a route dump spanning two datagrams ends at NLMSG_DONE with every record kept",
      reply: "route-dump",
      errno: 0,
      message: undefined,
      records: 4,
    },
    {
      name: "a GET is answered by its record and then an ack",
      reply: "link-get",
      errno: 0,
      message: undefined,
      records: 1,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const captured = CAPTURED_REPLIES[c.reply];
      const { tracker, bad, data } = track(captured.datagrams, captured.seq);
      expect(bad).toBeUndefined();
      expect(tracker.complete).toBe(true);
      expect(tracker.outcomes[0]).toMatchObject({ errno: c.errno, message: c.message, interrupted: false });
      expect(data.length).toBe(c.records);
    });
  }

  test("replies to other sequence numbers are ignored, so leftovers of an abandoned exchange do no harm", () => {
    const { tracker, bad } = track(CAPTURED_REPLIES["ack"].datagrams, 7);
    expect(bad).toBeUndefined();
    expect(tracker.complete).toBe(false);
  });

  test("a batch completes only when the ack of every request is in, whatever their order", () => {
    const acks = [CAPTURED_REPLIES["error-extack-capped"], CAPTURED_REPLIES["ack"]];
    const { tracker } = track(
      acks.flatMap((r) => r.datagrams),
      101,
      2,
    );
    expect(tracker.complete).toBe(true);
    expect(tracker.outcomes.map((o) => o.errno)).toEqual([0, 101]);
  });

  test("NLM_F_DUMP_INTR on a dump part marks the outcome interrupted", () => {
    const view = viewOf(CAPTURED_REPLIES["address-dump"].datagrams[0]);
    view.setUint16(6, view.getUint16(6, true) | 0x10, true);
    const tracker = new ReplyTracker(106, 1);
    expect(tracker.absorb(view, 0, view.byteLength, [])).toBeUndefined();
    expect(tracker.outcomes[0].interrupted).toBe(true);
  });
});

// Saved corpus of malformed replies: each must come back as the named parse failure, never as an exception.
const MALFORMED: { name: string; hex: string; reason: string }[] = [
  { name: "a datagram shorter than a header", hex: "1000000002", reason: "short-message" },
  { name: "nlmsg_len below the header size", hex: "08000000020000006500000000000000", reason: "bad-length" },
  { name: "nlmsg_len past the end of the datagram", hex: "ff000000020000006500000000000000", reason: "bad-length" },
  {
    name: "an NLMSG_ERROR without room for struct nlmsgerr",
    hex: "1400000002000000650000000000000000000000",
    reason: "short-payload",
  },
  {
    name: "an extended-ack attribute whose length overruns the message",
    hex: "2c0000000200000365000000000000009bffffff24000000180005056500000000000000ff00010000000000",
    reason: "bad-attribute",
  },
  {
    name: "extended-ack flags on an uncapped error whose echoed length points past the message",
    hex: "280000000200000265000000000000009bffffff0001000018000505650000000000000000000000",
    reason: "short-payload",
  },
  { name: "a message followed by 3 stray bytes", hex: "10000000030002006500000000000000aabbcc", reason: "short-message" },
  { name: "NLMSG_OVERRUN from the kernel", hex: "10000000040000006500000000000000", reason: "overrun" },
];

describe("malformed replies", () => {
  for (const c of MALFORMED) {
    test(`${c.name} is reported as ${c.reason}`, () => {
      const view = viewOf(c.hex);
      const bad = new ReplyTracker(101, 1).absorb(view, 0, view.byteLength, []);
      expect(bad).toBeInstanceOf(NetlinkParseError);
      expect((bad as NetlinkParseError).reason).toBe(c.reason as NetlinkParseError["reason"]);
    });
  }

  test("an attribute list ending in fewer than 4 bytes of padding is accepted", () => {
    expect(readAttributes(viewOf("0500010007000000"), 0, 7)).toEqual([{ type: 1, off: 4, len: 1 }]);
  });
});

function mutate(seed: Uint8Array, rand: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  let bytes = Uint8Array.from(seed);
  for (let k = 1 + int(4); k > 0; k--) {
    const at = int(Math.max(bytes.length, 1));
    const mode = int(5);
    if (mode === 0 && bytes.length > 0) bytes[at] = int(256);
    else if (mode === 1)
      bytes = bytes.slice(0, at); // truncate
    else if (mode === 2 && at + 2 <= bytes.length) new DataView(bytes.buffer).setUint16(at, [0, 3, 4, 16, 0xffff][int(5)], true);
    else if (mode === 3 && at + 4 <= bytes.length) new DataView(bytes.buffer).setUint32(at, int(2 ** 32), true);
    else if (mode === 4) bytes = Uint8Array.from([...bytes, ...Array.from({ length: int(24) }, () => int(256))]);
  }
  return bytes;
}

/** Everything a received datagram goes through; returns a description of any broken invariant. */
function consume(bytes: Uint8Array, seq: number): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data: NetlinkHeader[] = [];
  const bad = new ReplyTracker(seq, 3).absorb(view, 0, bytes.length, data);
  if (bad !== undefined && !(bad instanceof NetlinkParseError)) return "absorb returned a non-error";
  const messages = readMessages(view, 0, bytes.length);
  for (const msg of messages instanceof NetlinkParseError ? [] : messages) {
    if (msg.payloadOff + msg.payloadLen > bytes.length) return "message payload outside the datagram";
    if (msg.type === NLMSG_ERROR) {
      const ack = readAck(view, msg);
      if (!(ack instanceof NetlinkParseError) && !(ack.errno >= 0)) return "negative errno";
    }
    const route = decodeRoute(view, msg);
    if (route && !(route instanceof NetlinkParseError) && (!isIp4(route.dst) || route.prefixLen > 32)) return "bad route";
    const neighbor = decodeNeighbor(view, msg);
    if (neighbor && !(neighbor instanceof NetlinkParseError)) {
      if (!isIp4(neighbor.ip) || (neighbor.mac && !isMacAddress(neighbor.mac))) return "bad neighbor";
    }
    const address = decodeAddress(view, msg);
    if (address && !(address instanceof NetlinkParseError) && !isIp4(address.ip)) return "bad address";
    const link = decodeLink(view, msg);
    if (link && !(link instanceof NetlinkParseError) && typeof link.name !== "string") return "bad link";
  }
  return undefined;
}

describe("fuzzing the reply path", () => {
  const seeds = Object.values(CAPTURED_REPLIES).flatMap((r) => r.datagrams.map((hex) => ({ seq: r.seq, bytes: Buffer.from(hex, "hex") })));
  for (const seed of [0x5eed, 0xf1a77e1, 20261127]) {
    test(`20000 mutated and random datagrams never throw and never decode out-of-range values (seed ${seed})`, () => {
      const rand = seededRandom(seed);
      const failures: string[] = [];
      for (let i = 0; i < 20000 && failures.length < 5; i++) {
        const base = seeds[Math.floor(rand() * seeds.length)];
        const noise = () => Uint8Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256));
        const bytes = rand() < 0.1 ? noise() : mutate(base.bytes, rand);
        try {
          const broken = consume(bytes, base.seq);
          if (broken) failures.push(`${broken}: ${Buffer.from(bytes).toString("hex")}`);
        } catch (error) {
          failures.push(`threw ${error}: ${Buffer.from(bytes).toString("hex")}`);
        }
      }
      expect(failures).toEqual([]);
    });
  }

  test("the mutations reach past the framing: some inputs still parse into records", () => {
    const rand = seededRandom(1);
    let records = 0;
    for (let i = 0; i < 2000; i++) {
      const view = new DataView(mutate(Buffer.from(CAPTURED_REPLIES["route-dump"].datagrams[0], "hex"), rand).buffer);
      const messages = readMessages(view, 0, view.byteLength);
      if (messages instanceof NetlinkParseError) continue;
      records += messages.filter((m) => m.type === RTM_NEWROUTE && !(decodeRoute(view, m) instanceof NetlinkParseError)).length;
    }
    expect(records).toBeGreaterThan(100);
  });
});
