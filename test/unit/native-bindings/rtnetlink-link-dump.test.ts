// The link dump request behind Rtnetlink.linkList, byte for byte (laid out from the uapi structs).

import { describe, expect, test } from "bun:test";
import { NetlinkWriter } from "../../../native-bindings/netlink-message.ts";
import { encodeQuery } from "../../../native-bindings/rtnetlink-request.ts";

function encode(write: (w: NetlinkWriter) => void): string {
  const w = new NetlinkWriter(new ArrayBuffer(256), 0, 256);
  write(w);
  return Buffer.from(w.view.buffer, 0, w.length).toString("hex");
}

describe("link dump request", () => {
  test("is GETLINK with REQUEST|DUMP, a zeroed ifinfomsg (AF_UNSPEC: every link) and the SKIP_STATS mask", () => {
    const hex = [
      "28000000 1200 0103 07000000 00000000", // nlmsghdr: 40 bytes, RTM_GETLINK, NLM_F_REQUEST|NLM_F_DUMP, seq 7
      "00".repeat(16), // ifinfomsg
      "0800 1d00 08000000", // IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS
    ];
    expect(encode((w) => encodeQuery(w, 7, { kind: "links" }))).toBe(hex.join("").replaceAll(" ", ""));
  });
});
