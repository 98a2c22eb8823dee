// flannel's net-conf JSON (`<prefix>/config`), decoded and checked as flanneld does it:
// subnet.ParseConfig, then subnet.CheckNetworkConfig, then the backend manager's type lookup,
// then the VXLAN backend's own options. Messages copy flannel's where flannel has one.
import { ControlError } from "../control-error.ts";
import {
  decodeStruct,
  type FieldHandler,
  boolField,
  intField,
  rawField,
  stringField,
  trimQuotes,
  uintField,
  unmarshalerField,
  valueTypeMessage,
} from "../go-decode.ts";
import { parseGoJson, type GoJsonValue } from "../go-json.ts";
import { cidrContainsIp, cidrSize, type Cidr4, formatIp4, maskOf, parseCidr4, parseIp4 } from "../../native-bindings/ip4.ts";
import { isIp6Text } from "../ip6.ts";

export type NetConfigErrorCode =
  | "NETCONF_SYNTAX"
  | "NETCONF_TYPE"
  | "NETCONF_BAD_CIDR"
  | "NETCONF_BAD_IP"
  | "NETCONF_MISSING_NETWORK"
  | "NETCONF_SUBNET_LEN"
  | "NETCONF_SUBNET_RANGE"
  | "NETCONF_SUBNET_ALIGNMENT"
  | "NETCONF_IPV4_DISABLED"
  | "NETCONF_IPV6_UNSUPPORTED"
  | "NETCONF_BACKEND_DECODE"
  | "NETCONF_UNSUPPORTED_BACKEND"
  | "NETCONF_UNKNOWN_BACKEND"
  | "NETCONF_VXLAN_OPTION";

export interface VxlanBackendConfig {
  readonly type: "vxlan";
  readonly vni: number;
  readonly port: number;
  /** Underlay MTU override; 0 means "use the external interface's MTU". */
  readonly mtu: number;
  readonly directRouting: boolean;
  readonly gbp: boolean;
  readonly learning: boolean;
}

export interface HostGwBackendConfig {
  readonly type: "host-gw";
}

export type BackendConfig = VxlanBackendConfig | HostGwBackendConfig;

export interface NetConfig {
  readonly network: Cidr4;
  readonly subnetLen: number;
  readonly subnetMin: number;
  readonly subnetMax: number;
  readonly enableNFTables: boolean;
  readonly backend: BackendConfig;
}

export type NetConfigResult =
  | { readonly ok: true; readonly config: NetConfig }
  | { readonly ok: false; readonly error: ControlError<NetConfigErrorCode> };

export const VXLAN_DEFAULT_VNI = 1;
export const VXLAN_DEFAULT_PORT = 8472; // Linux vxlan default (IANA's 4789 came later)
const VNI_MAX = 0xffffff; // 24-bit VNI, RFC 7348 §5
const MIN_DEVICE_MTU = 68; // RFC 791 minimum, enforced by the kernel on flannel.1
const VXLAN_OVERHEAD = 50; // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

// Backends flanneld registers; any other name is "unknown backend type" there too.
const FLANNEL_BACKENDS = new Set(["alloc", "extension", "host-gw", "ipip", "ipsec", "tencentvpc", "udp", "vxlan", "wireguard"]);

class Reject {
  constructor(
    readonly code: NetConfigErrorCode,
    readonly message: string,
  ) {}
}

interface RawConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  enableNFTables: boolean;
  network: Cidr4 | null;
  subnetLen: number;
  subnetMin: number;
  subnetMax: number;
  backend: GoJsonValue | undefined;
}

export function parseNetConfig(text: string): NetConfigResult {
  try {
    const raw = decodeConfig(text);
    const backendType = parseBackendType(raw.backend);
    const range = checkNetwork(raw);
    const backend = selectBackend(backendType, raw.backend);
    const config: NetConfig = { ...range, enableNFTables: raw.enableNFTables, backend };
    return { ok: true, config };
  } catch (err) {
    if (err instanceof Reject) return { ok: false, error: new ControlError(err.code, err.message) };
    throw err;
  }
}

// flannel's ip.IP4.UnmarshalJSON; it panics on an IPv6 address, so that case gets its own message.
function ip4Unmarshaler(field: string, set: (ip: number) => void): (raw: string) => string | null {
  return (raw) => {
    const text = trimQuotes(raw);
    const ip = parseIp4(text);
    if (ip !== null) {
      set(ip);
      return null;
    }
    return isIp6Text(text) ? `${field} is not an IPv4 address: ${text}` : "Invalid IP address format";
  };
}

// flannel's ip.IP4Net.UnmarshalJSON (net.ParseCIDR, host bits masked); it panics on IPv6 too.
function cidr4Unmarshaler(field: string, set: (cidr: Cidr4) => void): (raw: string) => string | null {
  return (raw) => {
    const text = trimQuotes(raw);
    const cidr = parseCidr4(text);
    if (cidr !== null) {
      set(cidr);
      return null;
    }
    const slash = text.indexOf("/");
    if (slash > 0 && isIp6Text(text.slice(0, slash))) return `${field} is not an IPv4 CIDR: ${text}`;
    return `invalid CIDR address: ${text}`;
  };
}

function failingWith(
  code: NetConfigErrorCode,
  onCode: (code: NetConfigErrorCode) => void,
  unmarshal: (raw: string) => string | null,
): FieldHandler {
  return unmarshalerField((raw) => {
    const error = unmarshal(raw);
    if (error !== null) onCode(code);
    return error;
  });
}

function decodeConfig(text: string): RawConfig {
  const parsed = parseGoJson(text);
  if (!parsed.ok) throw new Reject("NETCONF_SYNTAX", parsed.message);
  const raw: RawConfig = {
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    network: null,
    subnetLen: 0,
    subnetMin: 0,
    subnetMax: 0,
    backend: undefined,
  };
  const top = parsed.value;
  if (top.kind === "null") return raw;
  if (top.kind !== "object") throw new Reject("NETCONF_TYPE", valueTypeMessage(top, "subnet.Config"));
  // Type mismatches are NETCONF_TYPE; an UnmarshalJSON failure ends decoding with its own code.
  let code: NetConfigErrorCode = "NETCONF_TYPE";
  const setCode = (c: NetConfigErrorCode) => (code = c);
  const error = decodeStruct(top, "Config", {
    EnableIPv4: boolField((b) => (raw.enableIPv4 = b)),
    EnableIPv6: boolField((b) => (raw.enableIPv6 = b)),
    EnableNFTables: boolField((b) => (raw.enableNFTables = b)),
    Network: failingWith(
      "NETCONF_BAD_CIDR",
      setCode,
      cidr4Unmarshaler("Network", (c) => (raw.network = c)),
    ),
    SubnetLen: uintField((n) => (raw.subnetLen = n)),
    SubnetMin: failingWith(
      "NETCONF_BAD_IP",
      setCode,
      ip4Unmarshaler("SubnetMin", (ip) => (raw.subnetMin = ip)),
    ),
    SubnetMax: failingWith(
      "NETCONF_BAD_IP",
      setCode,
      ip4Unmarshaler("SubnetMax", (ip) => (raw.subnetMax = ip)),
    ),
    // Unused while IPv6 is unsupported, but Go still fails the whole config on a mistyped value.
    IPv6SubnetLen: uintField(() => {}),
    Backend: rawField((value) => (raw.backend = value)),
  });
  if (error !== null) throw new Reject(code, error);
  return raw;
}

// An absent Backend makes flanneld pick "udp"; a JSON null gives an empty type.
function parseBackendType(backend: GoJsonValue | undefined): string | null {
  if (backend === undefined) return null;
  if (backend.kind === "null") return "";
  if (backend.kind !== "object") {
    throw new Reject(
      "NETCONF_BACKEND_DECODE",
      `error decoding Backend property of config: ${valueTypeMessage(backend, "struct { Type string }")}`,
    );
  }
  let type = "";
  const error = decodeStruct(backend, "", { Type: stringField((s) => (type = s)) });
  if (error !== null) throw new Reject("NETCONF_BACKEND_DECODE", `error decoding Backend property of config: ${error}`);
  return type;
}

function checkNetwork(raw: RawConfig): { network: Cidr4; subnetLen: number; subnetMin: number; subnetMax: number } {
  if (!raw.enableIPv4) {
    throw new Reject("NETCONF_IPV4_DISABLED", "EnableIPv4=false is not supported: flannelette runs IPv4 only");
  }
  const network = raw.network;
  if (network === null || (network.ip === 0 && network.prefixLen === 0)) {
    throw new Reject("NETCONF_MISSING_NETWORK", "please define a correct Network parameter in the flannel config");
  }
  let subnetLen = raw.subnetLen;
  if (subnetLen > 0) {
    if (subnetLen > 30) throw new Reject("NETCONF_SUBNET_LEN", "SubnetLen must be less than /31");
    if (subnetLen < network.prefixLen + 2) {
      throw new Reject("NETCONF_SUBNET_LEN", "network must be able to accommodate at least four subnets");
    }
  } else if (network.prefixLen > 28) {
    throw new Reject("NETCONF_SUBNET_LEN", "network is too small. Minimum useful network prefix is /28");
  } else {
    subnetLen = network.prefixLen <= 22 ? 24 : network.prefixLen + 2;
  }

  const size = cidrSize(subnetLen);
  // The first subnet is skipped: its .0 would be the Network address itself.
  let subnetMin = raw.subnetMin;
  if (subnetMin === 0) subnetMin = network.ip + size;
  else if (!cidrContainsIp(network, subnetMin)) throw new Reject("NETCONF_SUBNET_RANGE", "SubnetMin is not in the range of the Network");
  let subnetMax = raw.subnetMax;
  if (subnetMax === 0) subnetMax = (network.ip + cidrSize(network.prefixLen) - size) >>> 0;
  else if (!cidrContainsIp(network, subnetMax)) throw new Reject("NETCONF_SUBNET_RANGE", "SubnetMax is not in the range of the Network");

  const mask = maskOf(subnetLen);
  if ((subnetMin & mask) >>> 0 !== subnetMin) {
    throw new Reject("NETCONF_SUBNET_ALIGNMENT", `SubnetMin is not on a SubnetLen boundary: ${formatIp4(subnetMin)}`);
  }
  if ((subnetMax & mask) >>> 0 !== subnetMax) {
    throw new Reject("NETCONF_SUBNET_ALIGNMENT", `SubnetMax is not on a SubnetLen boundary: ${formatIp4(subnetMax)}`);
  }
  if (raw.enableIPv6) {
    throw new Reject("NETCONF_IPV6_UNSUPPORTED", "EnableIPv6 is not supported yet: flannelette runs IPv4 only");
  }
  return { network, subnetLen, subnetMin, subnetMax };
}

function selectBackend(type: string | null, backend: GoJsonValue | undefined): BackendConfig {
  if (type === null) {
    throw new Reject(
      "NETCONF_UNSUPPORTED_BACKEND",
      'Backend is missing, so flannel would use "udp", which flannelette does not support: set "Backend": {"Type": "vxlan"}',
    );
  }
  // flanneld's backend manager lowercases the type before looking it up.
  const name = type.toLowerCase();
  if (name === "vxlan") return decodeVxlan(backend!);
  if (name === "host-gw") return { type: "host-gw" };
  if (FLANNEL_BACKENDS.has(name)) {
    throw new Reject("NETCONF_UNSUPPORTED_BACKEND", `unsupported backend type: ${name} (flannelette supports vxlan and host-gw)`);
  }
  throw new Reject("NETCONF_UNKNOWN_BACKEND", `unknown backend type: ${name}`);
}

function decodeVxlan(backend: GoJsonValue): VxlanBackendConfig {
  const opts = { vni: VXLAN_DEFAULT_VNI, port: 0, mtu: 0, gbp: false, learning: false, directRouting: false };
  if (backend.kind === "object") {
    const error = decodeStruct(backend, "", {
      VNI: intField((n) => (opts.vni = n)),
      Port: intField((n) => (opts.port = n)),
      MTU: intField((n) => (opts.mtu = n)),
      GBP: boolField((b) => (opts.gbp = b)),
      Learning: boolField((b) => (opts.learning = b)),
      DirectRouting: boolField((b) => (opts.directRouting = b)),
    });
    if (error !== null) throw new Reject("NETCONF_BACKEND_DECODE", `error decoding VXLAN backend config: ${error}`);
  }
  // flannel passes these to netlink unchecked, where they wrap or fail late; fail here instead.
  if (opts.vni < 0 || opts.vni > VNI_MAX) {
    throw new Reject("NETCONF_VXLAN_OPTION", `Backend.VNI must be between 0 and ${VNI_MAX}, got ${opts.vni}`);
  }
  if (opts.port < 0 || opts.port > 0xffff) {
    throw new Reject("NETCONF_VXLAN_OPTION", `Backend.Port must be between 0 and 65535, got ${opts.port}`);
  }
  const minMtu = MIN_DEVICE_MTU + VXLAN_OVERHEAD;
  if (opts.mtu !== 0 && (opts.mtu < minMtu || opts.mtu > 0xffff)) {
    throw new Reject("NETCONF_VXLAN_OPTION", `Backend.MTU must be 0 (interface MTU) or between ${minMtu} and 65535, got ${opts.mtu}`);
  }
  return {
    type: "vxlan",
    vni: opts.vni,
    port: opts.port === 0 ? VXLAN_DEFAULT_PORT : opts.port,
    mtu: opts.mtu,
    directRouting: opts.directRouting,
    gbp: opts.gbp,
    learning: opts.learning,
  };
}
