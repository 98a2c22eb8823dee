// rtnetlink requests byte for byte (laid out from the uapi structs and checked against what `ip` sends under
// strace), records decoded from captured kernel dumps, and input validation. The text forms of addresses are
// tested in ip4.test.ts and mac-address.test.ts.

import { describe, expect, test } from "bun:test";
import { NetlinkParseError, NetlinkWriter, readMessages, type NetlinkHeader } from "../../../native-bindings/netlink-message.ts";
import { formatIp4 } from "../../../native-bindings/ip4.ts";
import { ip4 } from "../../../testbed/ipv4.ts";
import { decodeAddress, decodeLink, decodeNeighbor, decodeRoute } from "../../../native-bindings/rtnetlink-reply.ts";
import {
  describeOp,
  encodeOp,
  encodeQuery,
  validateOp,
  type RtnetlinkOp,
  type RtnetlinkQuery,
} from "../../../native-bindings/rtnetlink-request.ts";
import { CAPTURED_REPLIES } from "./captured-replies.ts";

const NET = 0x0af40700; // 10.244.7.0

function encode(write: (w: NetlinkWriter) => void): string {
  const w = new NetlinkWriter(new ArrayBuffer(256), 0, 256);
  write(w);
  return Buffer.from(w.view.buffer, 0, w.length).toString("hex");
}

describe("requests", () => {
  const cases: { name: string; op: RtnetlinkOp; hex: string[] }[] = [
    {
      name: "a route replace is NEWROUTE with CREATE|REPLACE, main table, proto boot, scope universe and the onlink flag",
      op: { kind: "routeReplace", route: { dst: NET, prefixLen: 24, gateway: NET, ifindex: 3, onlink: true } },
      hex: [
        "3c000000 1800 0505 01000000 00000000", // nlmsghdr: 60 bytes, RTM_NEWROUTE, REQUEST|ACK|REPLACE|CREATE, seq 1
        "02 18 00 00 fe 03 00 01 04000000", // rtmsg: AF_INET /24, main, boot, universe, unicast, RTNH_F_ONLINK
        "0800 0f00 fe000000", // RTA_TABLE 254
        "0800 0100 0af40700", // RTA_DST
        "0800 0500 0af40700", // RTA_GATEWAY
        "0800 0400 03000000", // RTA_OIF 3
      ],
    },
    {
      name: "a route delete leaves protocol and type as wildcards and asks for scope NOWHERE",
      op: { kind: "routeDelete", route: { dst: NET, prefixLen: 24, gateway: NET, ifindex: 3 } },
      hex: [
        "3c000000 1900 0500 01000000 00000000",
        "02 18 00 00 fe 00 ff 00 00000000",
        "0800 0f00 fe000000",
        "0800 0100 0af40700",
        "0800 0500 0af40700",
        "0800 0400 03000000",
      ],
    },
    {
      name: "a route without a gateway gets scope link, like `ip route replace <net> dev <if>`",
      op: { kind: "routeReplace", route: { dst: NET, prefixLen: 24, ifindex: 3 } },
      hex: [
        "34000000 1800 0505 01000000 00000000",
        "02 18 00 00 fe 03 fd 01 00000000",
        "0800 0f00 fe000000",
        "0800 0100 0af40700",
        "0800 0400 03000000",
      ],
    },
    {
      name: "a neighbor replace is NEWNEIGH, NUD_PERMANENT, with the IP and the 6-byte lladdr",
      op: { kind: "neighborReplace", neighbor: { ifindex: 3, ip: NET, mac: "0E:2A:00:00:00:07" } },
      hex: [
        "30000000 1c00 0505 01000000 00000000",
        "02 00 0000 03000000 8000 00 01", // ndmsg: AF_INET, ifindex 3, NUD_PERMANENT, no flags, RTN_UNICAST
        "0800 0100 0af40700", // NDA_DST
        "0a00 0200 0e2a00000007 0000", // NDA_LLADDR, lowercased, padded to 4
      ],
    },
    {
      name: "a neighbor delete carries only the device and the IP",
      op: { kind: "neighborDelete", neighbor: { ifindex: 3, ip: NET } },
      hex: ["24000000 1d00 0500 01000000 00000000", "02 00 0000 03000000 0000 00 00", "0800 0100 0af40700"],
    },
    {
      name: "a /32 address replace sends IFA_LOCAL and IFA_ADDRESS and no broadcast",
      op: { kind: "addressReplace", address: { ifindex: 3, ip: 0x0af40100, prefixLen: 32 } },
      hex: ["28000000 1400 0505 01000000 00000000", "02 20 00 00 03000000", "0800 0200 0af40100", "0800 0100 0af40100"],
    },
    {
      name: "a /24 address replace also sends the broadcast address, as flannel's netlink library does",
      op: { kind: "addressReplace", address: { ifindex: 3, ip: 0x0af40101, prefixLen: 24 } },
      hex: [
        "30000000 1400 0505 01000000 00000000",
        "02 18 00 00 03000000",
        "0800 0200 0af40101",
        "0800 0100 0af40101",
        "0800 0400 0af401ff", // LOCAL, ADDRESS, BROADCAST .255
      ],
    },
    {
      name: "a link change sets IFF_UP in both flags and change mask, and the MTU as IFLA_MTU",
      op: { kind: "linkSet", ifindex: 3, change: { up: true, mtu: 1450 } },
      hex: ["28000000 1000 0500 01000000 00000000", "00 00 0000 03000000 01000000 01000000", "0800 0400 aa050000"],
    },
    {
      name: "gso_max_segs is IFLA_GSO_MAX_SEGS (40), a u32",
      op: { kind: "linkSet", ifindex: 3, change: { gsoMaxSegments: 44 } },
      hex: ["28000000 1000 0500 01000000 00000000", "00 00 0000 03000000 00000000 00000000", "0800 2800 2c000000"],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      validateOp(c.op);
      expect(encode((w) => encodeOp(w, 1, c.op))).toBe(c.hex.join("").replaceAll(" ", ""));
    });
  }

  const queries: { name: string; query: RtnetlinkQuery; hex: string[] }[] = [
    {
      name: "a link lookup by name is an acked GETLINK with IFLA_IFNAME and the VF|SKIP_STATS mask",
      query: { kind: "link", name: "v0" },
      hex: ["30000000 1200 0500 01000000 00000000", "00".repeat(16), "0700 0300 763000 00", "0800 1d00 09000000"],
    },
    {
      name: "a route dump is GETROUTE with NLM_F_DUMP for AF_INET",
      query: { kind: "routes" },
      hex: ["1c000000 1a00 0103 01000000 00000000", "02" + "00".repeat(11)],
    },
  ];
  for (const c of queries) {
    test(c.name, () => expect(encode((w) => encodeQuery(w, 1, c.query))).toBe(c.hex.join("").replaceAll(" ", "")));
  }

  const invalid: { name: string; op: RtnetlinkOp }[] = [
    {
      name: "a gateway given as a dotted string",
      op: { kind: "routeReplace", route: { dst: NET, prefixLen: 24, gateway: "10.244.7.0" as unknown as number } },
    },
    { name: "a prefix length of 33", op: { kind: "routeReplace", route: { dst: NET, prefixLen: 33, ifindex: 3 } } },
    { name: "a route with neither gateway nor device", op: { kind: "routeReplace", route: { dst: NET, prefixLen: 24 } } },
    {
      name: "a MAC with five bytes",
      op: { kind: "neighborReplace", neighbor: { ifindex: 3, ip: NET, mac: "0e:2a:00:00:07" as never } },
    },
    { name: "ifindex 0", op: { kind: "neighborDelete", neighbor: { ifindex: 0, ip: NET } } },
    { name: "an address above 2^32", op: { kind: "addressReplace", address: { ifindex: 3, ip: 2 ** 32, prefixLen: 32 } } },
    { name: "an MTU of 0", op: { kind: "linkSet", ifindex: 3, change: { mtu: 0 } } },
    { name: "a gso_max_segs of 0", op: { kind: "linkSet", ifindex: 3, change: { gsoMaxSegments: 0 } } },
    { name: "a gso_max_segs above 65535", op: { kind: "linkSet", ifindex: 3, change: { gsoMaxSegments: 65536 } } },
  ];
  for (const c of invalid) {
    test(`${c.name} is refused before anything is encoded`, () => expect(() => validateOp(c.op)).toThrow());
  }

  test("errors name the object the way `ip` prints it", () => {
    const peer = 0x0af40200;
    const route: RtnetlinkOp = { kind: "routeReplace", route: { dst: peer, prefixLen: 24, gateway: peer, ifindex: 5, onlink: true } };
    const neighbor: RtnetlinkOp = { kind: "neighborReplace", neighbor: { ifindex: 5, ip: 0x0af40200, mac: "0e:2a:00:00:00:02" } };
    const name = (i: number) => (i === 5 ? "flannel.1" : "?");
    expect(describeOp(route, name)).toBe("10.244.2.0/24 via 10.244.2.0 dev flannel.1");
    expect(describeOp(neighbor, name)).toBe("10.244.2.0 lladdr 0e:2a:00:00:00:02 dev flannel.1");
    expect(describeOp({ kind: "linkSet", ifindex: 5, change: { mtu: 1450, gsoMaxSegments: 44 } }, name)).toBe(
      "dev flannel.1 mtu 1450 gso_max_segs 44",
    );
  });
});

/** Decodes every data message of a captured reply with `decode`, skipping records it does not apply to. */
function decodeAll<T>(
  reply: keyof typeof CAPTURED_REPLIES,
  decode: (v: DataView, m: NetlinkHeader) => T | undefined | NetlinkParseError,
): T[] {
  const out: T[] = [];
  for (const hex of CAPTURED_REPLIES[reply].datagrams) {
    const view = new DataView(Uint8Array.from(Buffer.from(hex, "hex")).buffer);
    for (const msg of readMessages(view, 0, view.byteLength) as NetlinkHeader[]) {
      const record = decode(view, msg);
      if (record instanceof NetlinkParseError) throw new Error(String(record));
      if (record !== undefined) out.push(record);
    }
  }
  return out;
}

describe("records from captured kernel replies", () => {
  test("the route dump holds the three onlink routes of the main table and the kernel's local route", () => {
    const routes = decodeAll("route-dump", decodeRoute).map((r) => ({
      ...r,
      dst: formatIp4(r.dst),
      gateway: r.gateway && formatIp4(r.gateway),
    }));
    expect(routes.filter((r) => r.table === 254)).toEqual(
      ["10.244.2.0", "10.244.5.0", "10.244.7.0"].map((net) => ({
        dst: net,
        prefixLen: 24,
        gateway: net,
        ifindex: 3,
        onlink: true,
        table: 254,
        protocol: 3,
        scope: 0,
        type: 1,
        priority: undefined,
        prefsrc: undefined,
      })),
    );
    expect(routes.filter((r) => r.table === 255)).toMatchObject([
      { dst: "10.244.1.0", prefixLen: 32, type: 2, scope: 254, prefsrc: ip4("10.244.1.0") },
    ]);
  });

  test("the neighbor dump holds both permanent entries with their MACs", () => {
    expect(decodeAll("neighbor-dump", decodeNeighbor)).toEqual([
      { ifindex: 3, ip: ip4("10.244.2.0"), mac: "aa:bb:cc:dd:ee:ff", state: 0x80, flags: 0 },
      { ifindex: 3, ip: ip4("10.244.7.0"), mac: "0e:2a:00:00:00:07", state: 0x80, flags: 0 },
    ]);
  });

  test("the address dump holds 10.244.1.0/32 on v0, permanent and global", () => {
    expect(decodeAll("address-dump", decodeAddress)).toEqual([
      { ifindex: 3, ip: ip4("10.244.1.0"), prefixLen: 32, broadcast: undefined, label: "v0", flags: 0x80, scope: 0 },
    ]);
  });

  test("the link reply gives index, name, MTU, MAC and the up flag", () => {
    expect(decodeAll("link-get", decodeLink)).toMatchObject([{ index: 3, name: "v0", mtu: 1450, mac: "0e:2a:00:00:00:01", up: true }]);
  });

  test("a request decodes as the record it creates, since both share the kernel layout", () => {
    const op: RtnetlinkOp = { kind: "routeReplace", route: { dst: NET, prefixLen: 24, gateway: NET, ifindex: 3, onlink: true } };
    const view = new DataView(
      Buffer.from(
        encode((w) => encodeOp(w, 1, op)),
        "hex",
      ).buffer.slice(0),
    );
    const [msg] = readMessages(view, 0, view.byteLength) as NetlinkHeader[];
    expect(decodeRoute(view, msg)).toMatchObject(op.route);
  });
});
