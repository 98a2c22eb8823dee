import { describe, expect, test } from "bun:test";
import { describeOffloads } from "../../../dataplane/offload-summary.ts";

describe("describeOffloads", () => {
  test("everything granted", () => {
    expect(describeOffloads(true, true, 44, [true, true])).toBe("TSO4/TSO6/USO4/USO6/CSUM (at most 44 segments) with UDP GSO and GRO");
  });
  test("no USO, no segment limit", () => {
    expect(describeOffloads(true, false, 0, [true])).toBe("TSO4/TSO6/CSUM with UDP GSO and GRO");
  });
  test("UDP GRO refused by every socket", () => {
    expect(describeOffloads(true, true, 44, [false, false])).toEndWith("and no UDP GRO (datagrams one by one)");
  });
  test("UDP GRO refused by some sockets only is not reported as none", () => {
    expect(describeOffloads(true, true, 44, [true, false])).toEndWith(
      "and UDP GRO on 1 of 2 sockets (the others take datagrams one by one)",
    );
  });
  test("offloads off", () => {
    expect(describeOffloads(false, true, 44, [true])).toBe("off");
  });
});
