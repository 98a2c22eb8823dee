// flanneld's --ip-masq and forward rules (docs/flannel-notes.md §3) as iptables-save text, and the
// iptables-restore --noflush payloads that put them in place or take them away. Pure: ip-masq.ts runs
// iptables-save and iptables-restore around these functions.
//
// Each rule set is one chain we own (FLANNEL-POSTRTG in nat, FLANNEL-FWD in filter) plus one jump to it
// from a built-in chain. A rewrite declares our chain, which makes iptables-restore flush it even with
// --noflush, refills it in flannel's order, and deletes every copy of the jump before appending one, so
// the order is exact and rules for an old network or subnet cannot linger. Rule text is spelled exactly
// as iptables-save prints it, so the check is a plain string comparison.

import { type Cidr4, formatCidr4 } from "../../native-bindings/ip4.ts";

export type IptablesTable = "nat" | "filter";

export interface RuleSet {
  readonly table: IptablesTable;
  /** Our own chain. */
  readonly chain: string;
  /** The built-in chain that jumps to ours. */
  readonly parent: string;
  /** The jump rule in `parent`, as iptables-save prints it after `-A <parent> `. */
  readonly jump: string;
  /** Our chain's rules in order, printed the same way. */
  readonly rules: readonly string[];
}

/** One table as iptables-save printed it. */
export interface TableState {
  readonly chains: ReadonlySet<string>;
  readonly rules: readonly { readonly chain: string; readonly spec: string }[];
}

const MASQ = '-m comment --comment "flanneld masq"';
const FORWARD = '-m comment --comment "flanneld forward"';
// kube-proxy's KUBE-MARK-MASQ bit; packets carrying it are masqueraded by kube-proxy already.
const KUBE_PROXY_MARK = "0x4000/0x4000";
const IPV4_MULTICAST = "224.0.0.0/4";

export function flannelRuleSets(network: Cidr4, subnet: Cidr4, randomFully: boolean): RuleSet[] {
  const c = formatCidr4(network);
  const p = formatCidr4(subnet);
  const masquerade = randomFully ? "-j MASQUERADE --random-fully" : "-j MASQUERADE";
  return [
    {
      table: "nat",
      chain: "FLANNEL-POSTRTG",
      parent: "POSTROUTING",
      jump: `${MASQ} -j FLANNEL-POSTRTG`,
      rules: [
        `-m mark --mark ${KUBE_PROXY_MARK} ${MASQ} -j RETURN`,
        `-s ${p} -d ${c} ${MASQ} -j RETURN`,
        `-s ${c} -d ${p} ${MASQ} -j RETURN`,
        `! -s ${c} -d ${p} ${MASQ} -j RETURN`,
        `-s ${c} ! -d ${IPV4_MULTICAST} ${MASQ} ${masquerade}`,
        `! -s ${c} -d ${c} ${MASQ} ${masquerade}`,
      ],
    },
    {
      table: "filter",
      chain: "FLANNEL-FWD",
      parent: "FORWARD",
      jump: `${FORWARD} -j FLANNEL-FWD`,
      rules: [`-s ${c} ${FORWARD} -j ACCEPT`, `-d ${c} ${FORWARD} -j ACCEPT`],
    },
  ];
}

export function parseIptablesSave(text: string): TableState {
  const chains = new Set<string>();
  const rules: { chain: string; spec: string }[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) {
      chains.add(line.slice(1).split(" ")[0]);
    } else if (line.startsWith("-A ")) {
      const space = line.indexOf(" ", 3);
      if (space > 3) rules.push({ chain: line.slice(3, space), spec: line.slice(space + 1).trimEnd() });
    }
  }
  return { chains, rules };
}

/** True when our chain is missing, differs from `set.rules` in any way, or the jump is not there exactly once. */
export function needsRewrite(state: TableState, set: RuleSet): boolean {
  if (!state.chains.has(set.chain)) return true;
  const ours = state.rules.filter((r) => r.chain === set.chain).map((r) => r.spec);
  if (ours.length !== set.rules.length || ours.some((spec, i) => spec !== set.rules[i])) return true;
  return state.rules.filter((r) => r.chain === set.parent && r.spec === set.jump).length !== 1;
}

/** iptables-restore lines (inside the table block) that make the table hold exactly `set`. */
export function rewriteLines(state: TableState, set: RuleSet): string[] {
  const jumps = state.rules.filter((r) => r.chain === set.parent && r.spec === set.jump);
  return [
    `:${set.chain} - [0:0]`,
    ...jumps.map(() => `-D ${set.parent} ${set.jump}`),
    `-A ${set.parent} ${set.jump}`,
    ...set.rules.map((spec) => `-A ${set.chain} ${spec}`),
  ];
}

/** Lines that delete every rule jumping to our chain, then the chain; empty when there is nothing of ours. */
export function removeLines(state: TableState, set: RuleSet): string[] {
  const target = new RegExp(`(^| )-[jg] ${set.chain}( |$)`);
  const jumps = state.rules.filter((r) => r.chain !== set.chain && target.test(r.spec));
  if (jumps.length === 0 && !state.chains.has(set.chain)) return [];
  return [
    ...jumps.map((r) => `-D ${r.chain} ${r.spec}`),
    // Declaring the chain creates or flushes it, so -X works whether or not it existed a moment ago.
    `:${set.chain} - [0:0]`,
    `-X ${set.chain}`,
  ];
}

/** One iptables-restore input; tables without lines are left out. */
export function restorePayload(blocks: readonly { readonly table: IptablesTable; readonly lines: readonly string[] }[]): string {
  return blocks
    .filter((b) => b.lines.length > 0)
    .map((b) => [`*${b.table}`, ...b.lines, "COMMIT"].join("\n") + "\n")
    .join("");
}

export interface IptablesVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** From `iptables --version` (`iptables v1.8.9 (nf_tables)`); null when there is no vX.Y.Z. */
export function parseIptablesVersion(text: string): IptablesVersion | null {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m === null ? null : { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/**
 * iptables 1.6.2 added both MASQUERADE --random-fully and iptables-restore --wait; flannel (through
 * go-iptables) uses each exactly when the version is at least that.
 */
export function hasRandomFullyAndWait(version: IptablesVersion | null): boolean {
  if (version === null) return false;
  const { major, minor, patch } = version;
  return major > 1 || (major === 1 && (minor > 6 || (minor === 6 && patch >= 2)));
}
