// One-line usages of the subcommands, shared by the top-level help (which must not load the commands).
export const RUN_USAGE = "flannelette run [--etcd-endpoints <urls>] [--iface <name|ip>] [flags]";
export const DATAPLANE_USAGE = "flannelette dataplane --local-ip <ip> [--peer <mac>=<ip> ...] [flags]";
export const DEMO_USAGE = "flannelette demo [--nodes <n>] [--kernel-node=false] [--seconds <n>]";
export const STATUS_USAGE = "flannelette status [--json] [--socket <path>]";
export const CNI_USAGE = "CNI_COMMAND=<ADD|DEL|CHECK|VERSION> CNI_...=... flannelette cni < <network config>";
