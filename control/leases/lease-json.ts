// Lease values under `<prefix>/subnets/<key>`: flannel's lease.LeaseAttrs as json.Marshal writes it.
// We encode our own value byte for byte as flanneld would; peers' values are decoded the way
// flanneld's json.Unmarshal does, and every failure is a result, never an exception.
import { ControlError, oneLine } from "../control-error.ts";
import { decodeStruct, rawField, stringField, trimQuotes, uint16Field, unmarshalerField, valueTypeMessage } from "../go-decode.ts";
import { type GoJsonValue, parseGoJson } from "../go-json.ts";
import { formatIp4, parseIp4 } from "../../native-bindings/ip4.ts";
import { isIp6Text } from "../ip6.ts";
import { formatMac, isLongMacText, parseMac } from "../../native-bindings/mac-address.ts";

export type OwnBackendAttrs = { readonly type: "vxlan"; readonly vni: number; readonly vtepMac: string } | { readonly type: "host-gw" };

export interface OwnLeaseAttrs {
  readonly publicIp: number;
  readonly backend: OwnBackendAttrs;
}

export interface PeerLease {
  /** 0 when the value has no PublicIP (Go's zero value). */
  readonly publicIp: number;
  readonly publicIpv6: string | null;
  /** "" when absent: flannel's udp backend writes no BackendType. */
  readonly backendType: string;
  /** Set only when backendType is exactly "vxlan", as flanneld's VXLAN receiver requires. */
  readonly vxlan: { readonly vni: number; readonly vtepMac: string } | null;
}

export type LeaseDecodeCode = "LEASE_SYNTAX" | "LEASE_TYPE" | "LEASE_BAD_PUBLIC_IP" | "LEASE_BAD_BACKEND_DATA" | "LEASE_BAD_VTEP_MAC";

export type LeaseDecodeResult =
  | { readonly ok: true; readonly lease: PeerLease }
  | { readonly ok: false; readonly code: LeaseDecodeCode; readonly reason: string };

export function encodeLeaseValue(attrs: OwnLeaseAttrs): string {
  if (!Number.isInteger(attrs.publicIp) || attrs.publicIp < 0 || attrs.publicIp > 0xffffffff) {
    throw new ControlError("LEASE_BAD_PUBLIC_IP", `PublicIP must be a u32, got ${attrs.publicIp}`);
  }
  const head = `{"PublicIP":"${formatIp4(attrs.publicIp)}","PublicIPv6":null`;
  if (attrs.backend.type === "host-gw") return `${head},"BackendType":"host-gw"}`;
  const mac = parseMac(attrs.backend.vtepMac);
  if (mac === null) throw new ControlError("LEASE_BAD_VTEP_MAC", `VtepMAC is not a 48-bit MAC: ${attrs.backend.vtepMac}`);
  // flannel writes the VNI as uint16(cfg.VNI), so VNIs above 65535 wrap in the lease; peers ignore it.
  const vni = attrs.backend.vni & 0xffff;
  return `${head},"BackendType":"vxlan","BackendData":{"VNI":${vni},"VtepMAC":"${formatMac(mac)}"}}`;
}

type Failure = Extract<LeaseDecodeResult, { ok: false }>;

function fail(code: LeaseDecodeCode, reason: string): Failure {
  return { ok: false, code, reason: oneLine(reason) };
}

// The value exactly as flanneld (and we) write a vxlan lease, read with one match: the full decoder below is
// too costly per value for every listing of thousands (docs/performance.md, "5,000 leases").
const CANONICAL_VXLAN =
  /^\{"PublicIP":"([0-9.]{7,15})","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":(0|[1-9][0-9]{0,4}),"VtepMAC":"((?:[0-9a-f]{2}:){5}[0-9a-f]{2})"\}\}$/;

/** Decodes a lease value as flanneld's json.Unmarshal would. */
export function decodeLeaseValue(text: string): LeaseDecodeResult {
  const m = CANONICAL_VXLAN.exec(text);
  if (m !== null) {
    const publicIp = parseIp4(m[1]!);
    const vni = Number(m[2]);
    // Anything the match lets through that the full decoder would judge differently goes to it.
    if (publicIp !== null && vni <= 0xffff) {
      return { ok: true, lease: { publicIp, publicIpv6: null, backendType: "vxlan", vxlan: { vni, vtepMac: m[3]! } } };
    }
  }
  return decodeLeaseValueInFull(text);
}

/** The full decoder: Go's JSON rules (case-insensitive keys, duplicates, escapes, types). */
export function decodeLeaseValueInFull(text: string): LeaseDecodeResult {
  const parsed = parseGoJson(text);
  if (!parsed.ok) return fail("LEASE_SYNTAX", parsed.message);
  const top = parsed.value;
  if (top.kind !== "object" && top.kind !== "null") return fail("LEASE_TYPE", valueTypeMessage(top, "lease.LeaseAttrs"));
  const attrs = { publicIp: 0, publicIpv6: null as string | null, backendType: "", backendData: undefined as GoJsonValue | undefined };
  if (top.kind === "object") {
    let abortCode: LeaseDecodeCode = "LEASE_TYPE";
    const error = decodeStruct(top, "LeaseAttrs", {
      // ip.IP4.UnmarshalJSON: quotes trimmed from the raw bytes, so even null is a parse error.
      PublicIP: unmarshalerField((raw) => {
        const ip = parseIp4(trimQuotes(raw));
        if (ip !== null) {
          attrs.publicIp = ip;
          return null;
        }
        abortCode = "LEASE_BAD_PUBLIC_IP";
        return `invalid PublicIP: ${raw}`;
      }),
      PublicIPv6: (value) => {
        if (value.kind === "null") return undefined;
        if (value.kind === "string" && isIp6Text(value.value)) {
          attrs.publicIpv6 = value.value;
          return undefined;
        }
        abortCode = "LEASE_BAD_PUBLIC_IP";
        return { abort: true, message: `invalid PublicIPv6: ${value.raw}` };
      },
      BackendType: stringField((s) => (attrs.backendType = s)),
      BackendData: rawField((value) => (attrs.backendData = value)),
    });
    if (error !== null) return fail(abortCode, error);
  }
  let vxlan: PeerLease["vxlan"] = null;
  if (attrs.backendType === "vxlan") {
    const decoded = decodeVxlanData(attrs.backendData);
    if (!decoded.ok) return decoded;
    vxlan = decoded.vxlan;
  }
  return { ok: true, lease: { publicIp: attrs.publicIp, publicIpv6: attrs.publicIpv6, backendType: attrs.backendType, vxlan } };
}

// flannel's vxlanLeaseAttrs {VNI uint16; VtepMAC hardwareAddr}.
function decodeVxlanData(data: GoJsonValue | undefined): { ok: true; vxlan: { vni: number; vtepMac: string } } | Failure {
  if (data === undefined) return fail("LEASE_BAD_BACKEND_DATA", "vxlan lease has no BackendData");
  if (data.kind !== "object" && data.kind !== "null") {
    return fail("LEASE_BAD_BACKEND_DATA", valueTypeMessage(data, "vxlan.vxlanLeaseAttrs"));
  }
  const found = { vni: 0, mac: null as Uint8Array | null };
  let abortCode: LeaseDecodeCode = "LEASE_BAD_BACKEND_DATA";
  if (data.kind === "object") {
    const error = decodeStruct(data, "vxlanLeaseAttrs", {
      VNI: uint16Field((n) => (found.vni = n)),
      // hardwareAddr.UnmarshalJSON parses the raw bytes between the quotes; escapes are not decoded.
      VtepMAC: unmarshalerField((raw) => {
        const text = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : null;
        found.mac = text === null ? null : parseMac(text);
        if (found.mac !== null) return null;
        abortCode = "LEASE_BAD_VTEP_MAC";
        if (text === null) return "error parsing hardware addr";
        return isLongMacText(text) ? `VtepMAC is not a 48-bit MAC: ${text}` : `address ${text}: invalid MAC address`;
      }),
    });
    if (error !== null) return fail(abortCode, error);
  }
  if (found.mac === null) return fail("LEASE_BAD_VTEP_MAC", "vxlan lease has no VtepMAC");
  return { ok: true, vxlan: { vni: found.vni, vtepMac: formatMac(found.mac) } };
}
