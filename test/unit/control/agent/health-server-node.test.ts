// The health server answers the same under Node.js (node:http) as under Bun (Bun.serve): one fixture run by
// both runtimes. Skipped where node is not installed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { bundleForNode, NODE, runJson, type NodeBundle } from "../../../support/node-bundle.ts";

const CHILD = resolve(import.meta.dir, "../fixtures/health-server-child.ts");

describe.skipIf(NODE === null)("the health server under Node.js", () => {
  let bundle: NodeBundle;

  beforeAll(async () => {
    bundle = await bundleForNode(CHILD);
  });

  afterAll(async () => {
    await bundle?.cleanup();
  });

  test("answers every path and method as under Bun, and refuses a taken port with the same error", async () => {
    const [onBun, onNode] = await Promise.all([runJson([process.execPath, CHILD]), runJson([NODE!, bundle.file])]);
    expect(onNode).toEqual(onBun);
    expect(onNode).toMatchObject({
      answers: [
        ["GET", "/healthz", 200, "text/plain; charset=utf-8", "flannelette is running\n"],
        ["GET", "/readyz", 503, "text/plain; charset=utf-8", "waiting for: lease\n"],
        ["HEAD", "/readyz", 503, "text/plain; charset=utf-8", ""],
        ["POST", "/healthz", 404, "text/plain; charset=utf-8", "404 page not found\n"],
        ["GET", "/elsewhere", 404, "text/plain; charset=utf-8", "404 page not found\n"],
        ["GET", "/metrics", 200, ["flannelette_peers 0"]],
      ],
      second: ["HEALTHZ_LISTEN", "cannot listen on 127.0.0.1:PORT for --healthz-port: address already in use"],
    });
  });
});
