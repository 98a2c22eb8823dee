import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateVtepMac, macFilePath, saveVtepMac } from "../../../../control/agent/vtep-mac-store.ts";
import { formatMac, macToBytes } from "../../../../native-bindings/mac-address.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function stateDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "fnl-vtep-mac-"));
  dirs.push(d);
  return join(d, "state");
}

describe("vtep-mac-store", () => {
  test("a MAC saved over the kept one is what the next start loads", async () => {
    const dir = await stateDir();
    const first = await loadOrCreateVtepMac(dir, "flannel.1", () => undefined);
    expect(first.created).toBe(true);
    await saveVtepMac(dir, "flannel.1", macToBytes("0a:58:0a:f4:09:09"));
    expect(await readFile(macFilePath(dir, "flannel.1"), "utf8")).toBe("0a:58:0a:f4:09:09\n");
    const again = await loadOrCreateVtepMac(dir, "flannel.1", () => undefined);
    expect({ mac: formatMac(again.mac), created: again.created }).toEqual({ mac: "0a:58:0a:f4:09:09", created: false });
  });

  test("a copied MAC file is reused as is (the clone check happens against etcd, not here)", async () => {
    const dir = await stateDir();
    await saveVtepMac(dir, "flannel.1", macToBytes("0a:58:0a:f4:aa:01"));
    const other = await stateDir();
    await saveVtepMac(other, "flannel.1", macToBytes("0a:58:0a:f4:00:00"));
    await writeFile(macFilePath(other, "flannel.1"), await readFile(macFilePath(dir, "flannel.1")));
    expect(formatMac((await loadOrCreateVtepMac(other, "flannel.1", () => undefined)).mac)).toBe("0a:58:0a:f4:aa:01");
  });
});
