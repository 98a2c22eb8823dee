// The local checks that need no privilege: the port and the subnet file's directory. (The TAP check needs
// CAP_NET_ADMIN; the netns tests run it.)

import { afterAll, describe, expect, test } from "bun:test";
import { createSocket, type Socket } from "node:dgram";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkPortFree, checkSubnetFileWritable } from "../../../../control/agent/local-checks.ts";
import { loadLibc } from "../../../../native-bindings/index.ts";

const libc = await loadLibc();
const root = await mkdtemp(join(tmpdir(), "fnl-local-checks-"));
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.close();
  await rm(root, { recursive: true, force: true });
});

function bindLoopback(): Promise<number> {
  const socket = createSocket("udp4");
  sockets.push(socket);
  return new Promise((resolve) => socket.bind(0, "127.0.0.1", () => resolve(socket.address().port)));
}

describe("local checks", () => {
  test("a UDP port someone holds is refused with the bind error; the check itself leaves the port free", async () => {
    const taken = await bindLoopback();
    expect(() => checkPortFree(libc, taken)).toThrow(
      `VXLAN port ${taken} is not free: EADDRINUSE: bind 0.0.0.0:${taken}: Address already in use`,
    );
    const port = await bindLoopback();
    sockets.pop()!.close();
    checkPortFree(libc, port);
    checkPortFree(libc, port); // the first check released it
  });

  test("the subnet file's directory is made (0755) and probed, leaving only the directories", async () => {
    const file = join(root, "run", "flannel", "subnet.env");
    await checkSubnetFileWritable(file);
    expect((await stat(join(root, "run"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(root, "run", "flannel"))).mode & 0o777).toBe(0o755);
    expect(await readdir(join(root, "run", "flannel"))).toEqual([]);
  });

  test("a directory that cannot be written fails naming --subnet-file", async () => {
    const notDir = join(root, "plain-file");
    await writeFile(notDir, "x");
    const file = join(notDir, "subnet.env");
    await expect(checkSubnetFileWritable(file)).rejects.toThrow(`--subnet-file ${file}: cannot write in ${notDir}: `);
  });
});
