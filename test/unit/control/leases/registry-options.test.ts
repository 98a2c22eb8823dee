import { describe, expect, test } from "bun:test";
import { ControlError } from "../../../../control/control-error.ts";
import { checkEndpoints, connectEtcdRegistry, type EtcdConnectOptions } from "../../../../control/leases/registry.ts";
import { createLogger } from "../../../../control/log.ts";

const BASE = { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"] };

function refusal(run: () => unknown): ControlError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ControlError);
    return error as ControlError;
  }
  throw new Error("expected checkEndpoints to refuse");
}

describe("checkEndpoints", () => {
  test.each<[string, Partial<EtcdConnectOptions>, string[]]>([
    [
      "IP endpoints over TLS with client certificate",
      { keyFile: "k", certFile: "c", caFile: "ca" },
      ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
    ],
    ["server-only TLS: a CA without a client certificate", { caFile: "ca" }, ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]],
    ["plain https with the system's roots", {}, ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]],
    [
      "host names and IPv6 literals, trailing slashes dropped",
      { endpoints: ["https://etcd-1.example:2379/", "https://[fd00::5]:2379"] },
      ["https://etcd-1.example:2379", "https://[fd00::5]:2379"],
    ],
    [
      "flanneld's default plain-HTTP endpoints",
      { endpoints: ["http://127.0.0.1:4001", "http://127.0.0.1:2379"] },
      ["http://127.0.0.1:4001", "http://127.0.0.1:2379"],
    ],
  ])("accepts %s", (_why, extra, expected) => {
    expect(checkEndpoints({ ...BASE, ...extra })).toEqual(expected);
  });

  test.each<[string, Partial<EtcdConnectOptions>, string]>([
    ["a certificate without its key", { certFile: "c" }, "--etcd-certfile and --etcd-keyfile go together (got only --etcd-certfile)"],
    ["a key without its certificate", { keyFile: "k" }, "--etcd-certfile and --etcd-keyfile go together (got only --etcd-keyfile)"],
    [
      "TLS files with a plain-HTTP endpoint (never a silent downgrade)",
      { endpoints: ["https://10.0.0.1:2379", "http://10.0.0.2:2379"], keyFile: "k", certFile: "c" },
      "etcd endpoint http://10.0.0.2:2379 is plain HTTP but TLS files are given (--etcd-cafile/--etcd-certfile/--etcd-keyfile); use https://",
    ],
    [
      "a CA file with a plain-HTTP endpoint",
      { endpoints: ["http://10.0.0.2:2379"], caFile: "ca" },
      "etcd endpoint http://10.0.0.2:2379 is plain HTTP but TLS files are given (--etcd-cafile/--etcd-certfile/--etcd-keyfile); use https://",
    ],
    [
      "a bare host:port",
      { endpoints: ["10.0.0.1:2379"] },
      "etcd endpoint 10.0.0.1:2379 has no scheme (expected http://host:port or https://host:port)",
    ],
    ["another scheme", { endpoints: ["unix:///run/etcd.sock"] }, "etcd endpoint unix:///run/etcd.sock: scheme must be http or https"],
    [
      "text that is no URL",
      { endpoints: ["https://not a url"] },
      'etcd endpoint "https://not a url" is not a URL (expected http://host:port or https://host:port)',
    ],
    [
      "a path",
      { endpoints: ["https://10.0.0.1:2379/v3"] },
      "etcd endpoint https://10.0.0.1:2379/v3: only scheme, host and port are allowed",
    ],
    [
      "credentials in the URL",
      { endpoints: ["https://user:pw@10.0.0.1:2379"] },
      "etcd endpoint https://user:pw@10.0.0.1:2379: only scheme, host and port are allowed",
    ],
  ])("refuses %s with one line", (_why, extra, message) => {
    const error = refusal(() => checkEndpoints({ ...BASE, ...extra }));
    expect(error.code).toBe("ETCD_ENDPOINT");
    expect(error.message).toBe(message);
  });
});

describe("connectEtcdRegistry", () => {
  test("fails with ETCD_TLS_FILES naming the file it cannot read", async () => {
    const options = {
      ...BASE,
      prefix: "/coreos.com/network",
      log: createLogger(() => {}),
      keyFile: "/nonexistent/k.pem",
      certFile: "/nonexistent/c.pem",
    };
    const error = await connectEtcdRegistry(options).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ControlError);
    expect((error as ControlError).code).toBe("ETCD_TLS_FILES");
    expect((error as ControlError).message).toStartWith("cannot read etcd TLS file /nonexistent/");
  });
});
