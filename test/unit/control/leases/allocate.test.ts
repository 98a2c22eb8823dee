import { describe, expect, test } from "bun:test";
import { type Cidr4, formatCidr4, parseCidr4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import {
  type AcquireResult,
  type KnownLease,
  type SubnetRange,
  fitsRange,
  freeSubnets,
  nextCandidate,
  planAcquire,
} from "../../../../control/leases/allocate.ts";
import { seededRandom } from "../../../../testbed/random.ts";

const ip = (text: string) => parseIp4(text)!;
const cidr = (text: string) => parseCidr4(text)!;
// 10.244.0.0/16 with flannel's defaults.
const RANGE: SubnetRange = { subnetLen: 24, subnetMin: ip("10.244.1.0"), subnetMax: ip("10.244.255.0") };
const OUR_IP = ip("192.168.1.10");
const first = () => 0;

function lease(subnet: string, publicIp: string | null, hasIpv6 = false): KnownLease {
  return { subnet: cidr(subnet), publicIp: publicIp === null ? null : ip(publicIp), hasIpv6 };
}

function describePlan(result: AcquireResult): string {
  if (!result.ok) return `error ${result.error.code}: ${result.error.message}`;
  const p = result.plan;
  if (p.kind === "reuse") return `reuse ${formatCidr4(p.subnet)}`;
  return `create ${formatCidr4(p.subnet)} from ${p.source}${p.staleOwn ? `, delete ${formatCidr4(p.staleOwn)} first` : ""}`;
}

describe("planAcquire", () => {
  test.each<[string, KnownLease[], string | null, string]>([
    ["reuses the lease that carries our public IP", [lease("10.244.7.0/24", "192.168.1.10")], null, "reuse 10.244.7.0/24"],
    [
      "prefers our existing lease over the subnet.env subnet",
      [lease("10.244.7.0/24", "192.168.1.10")],
      "10.244.9.0/24",
      "reuse 10.244.7.0/24",
    ],
    [
      "reuses only the first lease carrying our IP, in listing order",
      [lease("10.244.7.0/24", "192.168.1.10"), lease("10.244.8.0/24", "192.168.1.10")],
      null,
      "reuse 10.244.7.0/24",
    ],
    [
      "deletes our lease when its length no longer fits, then takes the subnet.env subnet",
      [lease("10.244.7.0/25", "192.168.1.10")],
      "10.244.9.0/24",
      "create 10.244.9.0/24 from previous, delete 10.244.7.0/25 first",
    ],
    [
      "deletes our lease when it lies below SubnetMin",
      [lease("10.244.0.0/24", "192.168.1.10")],
      null,
      "create 10.244.1.0/24 from free, delete 10.244.0.0/24 first",
    ],
    [
      "deletes our dual-stack lease, since we run IPv4 only",
      [lease("10.244.7.0/24", "192.168.1.10", true)],
      null,
      "create 10.244.1.0/24 from free, delete 10.244.7.0/24 first",
    ],
    [
      "takes the subnet.env subnet when nobody holds it",
      [lease("10.244.1.0/24", "10.0.0.2")],
      "10.244.9.0/24",
      "create 10.244.9.0/24 from previous",
    ],
    [
      "skips the subnet.env subnet when another node holds it",
      [lease("10.244.9.0/24", "10.0.0.2")],
      "10.244.9.0/24",
      "create 10.244.1.0/24 from free",
    ],
    [
      "compares the subnet.env subnet by equality only, as flannel does",
      [lease("10.244.9.0/25", "10.0.0.2")],
      "10.244.9.0/24",
      "create 10.244.9.0/24 from previous",
    ],
    ["skips a subnet.env subnet outside the range", [], "10.244.0.0/24", "create 10.244.1.0/24 from free"],
    ["skips a subnet.env subnet of another length", [], "10.244.9.0/23", "create 10.244.1.0/24 from free"],
    [
      "counts leases whose value was unreadable as taken",
      [lease("10.244.1.0/24", null), lease("10.244.2.0/24", null)],
      null,
      "create 10.244.3.0/24 from free",
    ],
    [
      "treats any overlapping lease as taken, whatever its length",
      [lease("10.244.0.0/22", "10.0.0.2")],
      null,
      "create 10.244.4.0/24 from free",
    ],
  ])("%s", (_name, leases, previous, expected) => {
    const result = planAcquire({
      range: RANGE,
      leases,
      publicIp: OUR_IP,
      previous: previous === null ? null : cidr(previous),
      random: first,
    });
    expect(describePlan(result)).toBe(expected);
  });

  test("reports out of subnets when every subnet is leased", () => {
    const range: SubnetRange = { subnetLen: 30, subnetMin: ip("192.168.0.4"), subnetMax: ip("192.168.0.12") };
    const leases = ["192.168.0.4/30", "192.168.0.8/30", "192.168.0.12/30"].map((s) => lease(s, "10.0.0.2"));
    expect(describePlan(planAcquire({ range, leases, publicIp: OUR_IP, previous: null, random: first }))).toBe(
      "error OUT_OF_SUBNETS: out of subnets",
    );
  });

  test("picks uniformly among the first 100 free subnets and never beyond them", () => {
    const random = seededRandom(7);
    const seen = new Map<number, number>();
    for (let i = 0; i < 20000; i++) {
      const result = planAcquire({ range: RANGE, leases: [], publicIp: OUR_IP, previous: null, random });
      if (!result.ok) throw new Error("unexpected error");
      const index = (result.plan.subnet.ip - RANGE.subnetMin) / 256;
      seen.set(index, (seen.get(index) ?? 0) + 1);
    }
    expect(Math.min(...seen.keys())).toBe(0);
    expect(Math.max(...seen.keys())).toBe(99);
    expect(seen.size).toBe(100);
    // 200 expected per subnet; a fair source stays well inside these bounds.
    expect(Math.min(...seen.values())).toBeGreaterThan(120);
    expect(Math.max(...seen.values())).toBeLessThan(290);
  });

  test("a random source returning exactly 1 still picks the last candidate", () => {
    const result = planAcquire({ range: RANGE, leases: [], publicIp: OUR_IP, previous: null, random: () => 1 });
    expect(describePlan(result)).toBe("create 10.244.100.0/24 from free");
  });
});

describe("freeSubnets", () => {
  test("scans up from SubnetMin, skipping leased subnets, and stops at the limit", () => {
    const leases = [lease("10.244.2.0/24", "10.0.0.2"), lease("10.244.4.0/23", "10.0.0.3")];
    expect(freeSubnets(RANGE, leases, [], 4).map(formatCidr4)).toEqual([
      "10.244.1.0/24",
      "10.244.3.0/24",
      "10.244.6.0/24",
      "10.244.7.0/24",
    ]);
  });

  test("stops at SubnetMax", () => {
    const range: SubnetRange = { subnetLen: 24, subnetMin: ip("10.244.254.0"), subnetMax: ip("10.244.255.0") };
    expect(freeSubnets(range, [], []).map(formatCidr4)).toEqual(["10.244.254.0/24", "10.244.255.0/24"]);
  });

  test("finds nothing when SubnetMin is above SubnetMax, which flannel does not reject", () => {
    const range: SubnetRange = { subnetLen: 24, subnetMin: ip("10.244.9.0"), subnetMax: ip("10.244.8.0") };
    expect(freeSubnets(range, [], [])).toEqual([]);
  });

  test("ends at the top of the address space without wrapping", () => {
    const range: SubnetRange = { subnetLen: 24, subnetMin: ip("255.255.254.0"), subnetMax: ip("255.255.255.0") };
    expect(freeSubnets(range, [], []).map(formatCidr4)).toEqual(["255.255.254.0/24", "255.255.255.0/24"]);
  });
});

describe("nextCandidate after a lost create race", () => {
  test("never offers a subnet already tried", () => {
    const tried: Cidr4[] = [cidr("10.244.1.0/24"), cidr("10.244.2.0/24")];
    const next = nextCandidate(RANGE, [], tried, first);
    expect(next.ok && formatCidr4(next.subnet)).toBe("10.244.3.0/24");
  });

  test("takes the winner's lease into account once the caller re-lists", () => {
    const next = nextCandidate(RANGE, [lease("10.244.3.0/24", "10.0.0.9")], [cidr("10.244.1.0/24"), cidr("10.244.2.0/24")], first);
    expect(next.ok && formatCidr4(next.subnet)).toBe("10.244.4.0/24");
  });

  test("runs out when every free subnet has been tried", () => {
    const range: SubnetRange = { subnetLen: 30, subnetMin: ip("192.168.0.4"), subnetMax: ip("192.168.0.8") };
    const next = nextCandidate(range, [], [cidr("192.168.0.4/30"), cidr("192.168.0.8/30")], first);
    expect(next.ok ? "ok" : next.error.message).toBe("out of subnets");
  });
});

describe("fitsRange", () => {
  test.each([
    ["10.244.1.0/24", true],
    ["10.244.255.0/24", true],
    ["10.244.0.0/24", false],
    ["10.245.0.0/24", false],
    ["10.244.5.0/25", false],
  ])("%s fits 10.244.1.0..10.244.255.0 /24: %p", (subnet, expected) => {
    expect(fitsRange(RANGE, cidr(subnet))).toBe(expected);
  });
});
