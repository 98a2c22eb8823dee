// A small standalone SVG of one end-to-end run (no dependencies, the SVG text is written by hand):
//   panel 1: TCP Gbit/s per direction, 1 stream and N streams, each next to kernel↔kernel of the same run
//            (ours in blue, the userspace overlays of the run, tinc and OpenVPN, in orange);
//   panel 2: ping avg and p99 RTT per direction, the same way;
//   below:   machine CPU-seconds per Gbit, the data planes' share of it, and their max RSS.
// Written next to the JSON (e2e-<stamp>.svg) and as latest.svg in the same folder.
//
//   bun bench/e2e/chart.ts [bench/results/e2e-<stamp>.json]     default: the newest e2e-*.json there

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Figures } from "./measure.ts";
import type { DirectionResult, E2eReport } from "./report.ts";

const W = 960;
const MARGIN_L = 64;
const MARGIN_R = 24;
const PLOT_W = W - MARGIN_L - MARGIN_R;
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

const COLORS = {
  kernelA: "#c4c4c4",
  oursA: "#4a90d9",
  kernelB: "#7d7d7d",
  oursB: "#1f4e89",
  peerA: "#f0a04b",
  peerB: "#b35f0c",
  grid: "#e4e4e4",
  axis: "#555555",
  text: "#222222",
  muted: "#666666",
};

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function text(x: number, y: number, s: string, attrs: Record<string, string | number> = {}): string {
  const a = Object.entries({ "font-size": 11, fill: COLORS.text, ...attrs })
    .map(([k, v]) => `${k}="${v}"`)
    .join(" ");
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${a}>${esc(s)}</text>`;
}

function rect(x: number, y: number, w: number, h: number, fill: string): string {
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${fill}"/>`;
}

/** A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks up to `max`. */
function niceStep(max: number, target = 5): number {
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

interface Series {
  readonly label: string;
  readonly color: string;
  /** One value per group; null draws no bar. */
  readonly values: ReadonlyArray<number | null>;
  /** Ratio to the kernel per group, printed above the value. */
  readonly ratios?: ReadonlyArray<number | undefined>;
}

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly groups: ReadonlyArray<{ readonly lines: readonly string[] }>;
  readonly series: readonly Series[];
}

const PLOT_H = 190;
const GROUP_LABEL_LINES = 2;
const LEGEND_H = 20;

/**
 * Draws one bar panel with its top at `top`; returns the SVG and the height used. A series with no value in a
 * group takes no room there: each group's bars are centred, so groups of different kinds share one panel.
 */
function drawPanel(p: Panel, top: number): { svg: string; height: number } {
  const out: string[] = [];
  out.push(text(MARGIN_L, top + 14, p.title, { "font-size": 13, "font-weight": "bold" }));
  // Legend under the title, on as many lines as it takes; only series with a bar somewhere.
  const shown = p.series.filter((s) => s.values.some((v) => v !== null && Number.isFinite(v)));
  let lx = MARGIN_L;
  let ly = top + 23;
  for (const s of shown) {
    const w = s.label.length * 6.3 + 40;
    if (lx > MARGIN_L && lx + w - 25 > W - MARGIN_R) {
      lx = MARGIN_L;
      ly += LEGEND_H - 4;
    }
    out.push(rect(lx, ly, 11, 11, s.color));
    out.push(text(lx + 15, ly + 9, s.label, { "font-size": 10.5, fill: COLORS.muted }));
    lx += w;
  }
  const legendExtra = ly - (top + 23);
  top += legendExtra;
  const plotTop = top + 34 + LEGEND_H;
  const plotBottom = plotTop + PLOT_H;
  const all = p.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const max = Math.max(...all, 1e-9);
  const step = niceStep(max);
  // Headroom for the value and ratio printed above the tallest bar.
  const yMax = Math.ceil((max * 1.2) / step) * step;
  const y = (v: number): number => plotBottom - (v / yMax) * PLOT_H;
  const tickDigits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));

  for (let t = 0; t <= yMax + step / 2; t += step) {
    out.push(
      `<line x1="${MARGIN_L}" x2="${W - MARGIN_R}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" ` +
        `stroke="${COLORS.grid}" stroke-width="1"/>`,
    );
    out.push(text(MARGIN_L - 6, y(t) + 3.5, t.toFixed(tickDigits), { "text-anchor": "end", "font-size": 10, fill: COLORS.muted }));
  }
  out.push(
    text(16, (plotTop + plotBottom) / 2, p.unit, {
      "text-anchor": "middle",
      "font-size": 10.5,
      fill: COLORS.muted,
      transform: `rotate(-90 16 ${((plotTop + plotBottom) / 2).toFixed(1)})`,
    }),
  );

  const n = p.groups.length;
  const groupW = PLOT_W / Math.max(n, 1);
  const hasBar = (s: Series, gi: number): boolean => {
    const v = s.values[gi];
    return v !== null && v !== undefined && Number.isFinite(v);
  };
  const nb = Math.max(1, ...p.groups.map((_, gi) => p.series.filter((s) => hasBar(s, gi)).length));
  const barW = Math.min(34, (groupW * 0.8) / nb);
  const gap = Math.min(7, barW * 0.2);
  p.groups.forEach((g, gi) => {
    const cx = MARGIN_L + groupW * (gi + 0.5);
    const bars = p.series.filter((s) => hasBar(s, gi));
    const totalW = bars.length * barW + (bars.length - 1) * gap;
    bars.forEach((s, si) => {
      const v = s.values[gi] as number;
      const x = cx - totalW / 2 + si * (barW + gap);
      out.push(rect(x, y(v), barW, plotBottom - y(v), s.color));
      out.push(text(x + barW / 2, y(v) - 3, fmt(v), { "text-anchor": "middle", "font-size": 9.5 }));
      const r = s.ratios?.[gi];
      if (r !== undefined && Number.isFinite(r)) {
        out.push(
          text(x + barW / 2, y(v) - 15, `${r.toFixed(2)}×`, {
            "text-anchor": "middle",
            "font-size": 9.5,
            "font-weight": "bold",
            fill: s.color,
          }),
        );
      }
    });
    g.lines.slice(0, GROUP_LABEL_LINES).forEach((line, li) => {
      out.push(
        text(
          cx,
          plotBottom + 15 + li * 13,
          line,
          li === 0 ? { "text-anchor": "middle", "font-size": 11 } : { "text-anchor": "middle", "font-size": 10, fill: COLORS.muted },
        ),
      );
    });
  });
  out.push(
    `<line x1="${MARGIN_L}" x2="${W - MARGIN_R}" y1="${plotBottom}" y2="${plotBottom}" ` + `stroke="${COLORS.axis}" stroke-width="1"/>`,
  );
  return { svg: out.join("\n"), height: legendExtra + 34 + LEGEND_H + PLOT_H + 15 + GROUP_LABEL_LINES * 13 + 6 };
}

/**
 * "flannelette→flannelette --workers 2" → ["flannelette→flannelette", "workers = 2"]: some SVG renderers turn
 * "--" into a dash, so the flag is spelled out instead.
 */
function splitLabel(label: string): string[] {
  const i = label.indexOf(" --");
  if (i < 0) return [label];
  const [flag, ...value] = label.slice(i + 3).split(" ");
  return [label.slice(0, i), `${flag} = ${value.join(" ")}`];
}

const ratio = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? "–" : `${v.toFixed(2)}×`);

export function renderSvg(report: E2eReport): string {
  const dirs: DirectionResult[] = report.scenarios.flatMap((s) => s.directions);
  if (dirs.some((d) => (d.figures as Partial<Figures>).tcp === undefined)) {
    throw new Error("this JSON predates CPU, RSS and parallel-stream figures: rerun npm run bench:e2e");
  }
  const kernelDir = report.scenarios.find((s) => s.id === "kernel")?.directions[0];
  const kernel = kernelDir?.figures ?? null;
  const ours = dirs.filter((d) => d !== kernelDir);
  const streams = report.params.parallel;
  const kernelOnly = (v: number | undefined): Array<number | null> => ours.map(() => v ?? null);
  // The userspace overlays (tinc, OpenVPN) are told from ours by the software they name; their version is the
  // second line under their bars.
  const softwareOf = new Map(report.scenarios.flatMap((s) => s.directions.map((d) => [d, s.software] as const)));
  const isPeer = (d: DirectionResult): boolean => softwareOf.get(d) !== undefined;
  const peers = [...new Set(ours.filter(isPeer).map((d) => (softwareOf.get(d) ?? "").split(" ")[0]))];
  const peerLabel = peers.join(" / ");
  const groups = ours.map((d) => ({ lines: isPeer(d) ? [d.label, `${softwareOf.get(d)}, no crypto`] : splitLabel(d.label) }));
  /** Ours and the peers as two series each, every direction in exactly one of them. */
  const split = (
    label: string,
    colors: readonly [string, string],
    value: (f: Figures) => number,
    ratio: (d: DirectionResult) => number | undefined,
  ): Series[] => [
    {
      label: `flannelette${label}`,
      color: colors[0],
      values: ours.map((d) => (isPeer(d) ? null : value(d.figures))),
      ratios: ours.map((d) => (isPeer(d) ? undefined : ratio(d))),
    },
    {
      label: `${peerLabel}${label}`,
      color: colors[1],
      values: ours.map((d) => (isPeer(d) ? value(d.figures) : null)),
      ratios: ours.map((d) => (isPeer(d) ? ratio(d) : undefined)),
    },
  ];

  const tcpPanel: Panel = {
    title: "TCP throughput, pod to pod (higher is better; N× = ratio to kernel↔kernel)",
    unit: "Gbit/s",
    groups,
    series: [
      { label: "kernel↔kernel, 1 stream", color: COLORS.kernelA, values: kernelOnly(kernel?.tcp.gbps) },
      ...split(
        ", 1 stream",
        [COLORS.oursA, COLORS.peerA],
        (f) => f.tcp.gbps,
        (d) => d.ratiosToKernel?.tcpGbps,
      ),
      { label: `kernel↔kernel, ${streams} streams`, color: COLORS.kernelB, values: kernelOnly(kernel?.tcpParallel.gbps) },
      ...split(
        `, ${streams} streams`,
        [COLORS.oursB, COLORS.peerB],
        (f) => f.tcpParallel.gbps,
        (d) => d.ratiosToKernel?.tcpParallelGbps,
      ),
    ],
  };
  const pingPanel: Panel = {
    title: "Ping round-trip time, pod to pod (lower is better; N× = ratio to kernel↔kernel)",
    unit: "ms",
    groups,
    series: [
      { label: "kernel↔kernel avg", color: COLORS.kernelA, values: kernelOnly(kernel?.pingAvgMs) },
      ...split(
        " avg",
        [COLORS.oursA, COLORS.peerA],
        (f) => f.pingAvgMs,
        (d) => d.ratiosToKernel?.pingAvgMs,
      ),
      { label: "kernel↔kernel p99", color: COLORS.kernelB, values: kernelOnly(kernel?.pingP99Ms) },
      ...split(
        " p99",
        [COLORS.oursB, COLORS.peerB],
        (f) => f.pingP99Ms,
        (d) => d.ratiosToKernel?.pingP99Ms,
      ),
    ],
  };

  const h = report.host;
  const date = report.date.replace("T", " ").replace(/:\d\d\.\d+Z$/, " UTC");
  const parts: string[] = [];
  let top = 0;
  const who = [...(ours.some((d) => !isPeer(d)) ? ["flannelette"] : []), ...peers].join(", ") || "kernel VXLAN alone";
  parts.push(text(MARGIN_L - 44, 26, `${who} vs kernel VXLAN, end to end — ${date}`, { "font-size": 17, "font-weight": "bold" }));
  // Uncommitted changes to the benchmark or docs themselves do not change what was measured.
  const measuredDirty = (report.uncommitted ?? []).some((p) => !p.startsWith("bench/") && !p.endsWith(".md"));
  const commit = report.commit ? ` · commit ${report.commit.slice(0, 7)}${measuredDirty ? " + uncommitted changes" : ""}` : "";
  parts.push(
    text(
      MARGIN_L - 44,
      45,
      `${h.cpus} cores · ${h.cpuModel} · Linux ${h.kernel} · Bun ${h.bun}` +
        `${h.tcpCongestionControl ? ` · TCP ${h.tcpCongestionControl}` : ""}${commit}`,
      { "font-size": 11.5, fill: COLORS.muted },
    ),
  );
  const p = report.params;
  parts.push(
    text(
      MARGIN_L - 44,
      61,
      `two network namespaces on one machine; medians of ${p.rounds} round${p.rounds === 1 ? "" : "s"} ` +
        `(TCP ${p.tcpSeconds} s each, ${p.pings} pings every ${p.pingIntervalMs} ms); load average ` +
        `${report.loadavg.start} at start`,
      { "font-size": 11, fill: COLORS.muted },
    ),
  );
  top = 76;
  for (const panel of [tcpPanel, pingPanel]) {
    const d = drawPanel(panel, top);
    parts.push(d.svg);
    top += d.height + 10;
  }

  // The cost table: machine CPU-s per Gbit for every direction, kernel included, and our processes' part.
  parts.push(text(MARGIN_L - 44, top + 12, "Cost under TCP load (both ends on this machine)", { "font-size": 13, "font-weight": "bold" }));
  const cols = [MARGIN_L - 44, 300, 465, 630, 800];
  const head = [
    "direction",
    "CPU-s per Gbit, 1 stream",
    `CPU-s per Gbit, ${streams} streams`,
    `data planes' share (1 / ${streams})`,
    "RSS max / peak (target ≤ 64 MiB)",
  ];
  top += 32;
  head.forEach((c, i) => parts.push(text(cols[i], top, c, { "font-size": 10.5, fill: COLORS.muted })));
  for (const d of dirs) {
    top += 15;
    const f = d.figures;
    const r = d.ratiosToKernel;
    const rss = Object.values(f.dataplaneMaxRssMiB);
    const peak = Object.values(f.dataplanePeakRssMiB ?? {}); // absent from runs before VmHWM was recorded
    const share =
      f.tcp.dataplaneShare === null
        ? "–"
        : `${(100 * f.tcp.dataplaneShare).toFixed(0)}% / ${(100 * (f.tcpParallel.dataplaneShare ?? 0)).toFixed(0)}%`;
    const cells = [
      splitLabel(d.label).join(", "),
      `${fmt(f.tcp.machineCpuSPerGbit)}${r ? ` (${ratio(r.tcpCpuSPerGbit)})` : ""}`,
      `${fmt(f.tcpParallel.machineCpuSPerGbit)}${r ? ` (${ratio(r.tcpParallelCpuSPerGbit)})` : ""}`,
      share,
      rss.length === 0 ? "–" : `${Math.max(...rss).toFixed(1)}${peak.length === 0 ? "" : ` / ${Math.max(...peak).toFixed(1)}`} MiB`,
    ];
    cells.forEach((c, i) => parts.push(text(cols[i], top, c, { "font-size": 11 })));
  }
  top += 20;
  parts.push(
    text(
      MARGIN_L - 44,
      top,
      "CPU-s per Gbit = busy CPU-seconds of the whole machine (user+nice+system+irq+" +
        "softirq+steal) per Gbit received, i.e. cores per Gbit/s; share = the data plane processes' utime+stime.",
      { "font-size": 9.5, fill: COLORS.muted },
    ),
  );
  const height = Math.ceil(top + 14);

  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="${FONT}">
<rect width="100%" height="100%" fill="#ffffff"/>
${parts.join("\n")}
</svg>
`;
}

/** Writes `<json minus .json>.svg` and `latest.svg` beside the JSON; returns both paths. */
export function writeCharts(jsonPath: string, report?: E2eReport): string[] {
  const data = report ?? (JSON.parse(readFileSync(jsonPath, "utf8")) as E2eReport);
  const svg = renderSvg(data);
  const own = resolve(dirname(jsonPath), basename(jsonPath).replace(/\.json$/, "") + ".svg");
  const latest = resolve(dirname(jsonPath), "latest.svg");
  writeFileSync(own, svg);
  writeFileSync(latest, svg);
  return [own, latest];
}

if (import.meta.main) {
  let path = process.argv[2];
  if (!path) {
    const dir = resolve(import.meta.dir, "../results");
    const newest = readdirSync(dir)
      .filter((f) => /^e2e-.*\.json$/.test(f))
      .sort()
      .at(-1);
    if (!newest) {
      console.error(`no e2e-*.json in ${dir}: run npm run bench:e2e first`);
      process.exit(2);
    }
    path = resolve(dir, newest);
  }
  try {
    for (const p of writeCharts(path)) console.log(`wrote ${p}`);
  } catch (err) {
    console.error(`chart: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
