// placeholder replaced below
export const DEMO_USAGE = "flannelette demo";
export async function runDemoCommand(_argv: string[]): Promise<number> {
  throw new Error("demo: not built yet");
}
