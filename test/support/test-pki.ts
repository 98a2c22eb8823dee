// Throwaway TLS material for tests against TLS etcd, made with openssl in a fresh temp dir:
//   ca.crt               the CA that signs everything below
//   server.crt/.key      names every given IP and DNS name; serverAuth + clientAuth, because an etcd member
//                        also presents it to its peers and its own JSON gateway dials the member with it
//   mismatched.crt/.key  the same names but one, for "the certificate does not name the endpoint"
//   client.crt/.key      what the agent and etcdctl present (clientAuth)
//   wrong-ca.crt         an unrelated CA that signed none of them
// Certificates are valid for two days (a run takes minutes); keys are P-256.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireTool, runCommand } from "../../testbed/process.ts";

export interface CertPair {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestPkiOptions {
  /** IP subjectAltNames of the server certificate. */
  readonly ips: readonly string[];
  /** DNS subjectAltNames of the server certificate. */
  readonly dnsNames: readonly string[];
  /** One of `ips` or `dnsNames` that `mismatchedServer` leaves out. */
  readonly omitFromMismatched: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly server: CertPair;
  readonly mismatchedServer: CertPair;
  readonly client: CertPair;
  /** A CA that signed none of the certificates here. */
  readonly wrongCaFile: string;
  cleanup(): Promise<void>;
}

const DAYS = "2";
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

// A config of our own so that the CA's extensions do not depend on the host's openssl.cnf.
const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = flannelette test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

export async function createTestPki(options: TestPkiOptions): Promise<TestPki> {
  requireTool("openssl");
  const allNames = [...options.ips, ...options.dnsNames];
  if (!allNames.includes(options.omitFromMismatched)) {
    throw new Error(`omitFromMismatched ${options.omitFromMismatched} is not one of the server's names`);
  }
  const dir = await mkdtemp(join(tmpdir(), "fnl-pki-"));
  const file = (name: string) => join(dir, name);
  try {
    await makeCa(dir, "ca");
    await makeCa(dir, "wrong-ca");
    const keep = (name: string) => name !== options.omitFromMismatched;
    const sans = (ips: readonly string[], dns: readonly string[]) =>
      [...ips.map((ip) => `IP:${ip}`), ...dns.map((d) => `DNS:${d}`)].join(", ");
    const serverExt = (san: string) =>
      `basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = ${san}\n`;
    await issue(dir, "server", "etcd", serverExt(sans(options.ips, options.dnsNames)));
    await issue(dir, "mismatched", "etcd", serverExt(sans(options.ips.filter(keep), options.dnsNames.filter(keep))));
    await issue(
      dir,
      "client",
      "flannelette",
      "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n",
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const pair = (name: string): CertPair => ({ certFile: file(`${name}.crt`), keyFile: file(`${name}.key`) });
  return {
    dir,
    caFile: file("ca.crt"),
    server: pair("server"),
    mismatchedServer: pair("mismatched"),
    client: pair("client"),
    wrongCaFile: file("wrong-ca.crt"),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

async function makeCa(dir: string, name: string): Promise<void> {
  const config = join(dir, `${name}.cnf`);
  await writeFile(config, CA_CONFIG.replace("flannelette test CA", `flannelette test ${name}`));
  await runCommand([
    "openssl",
    "req",
    "-x509",
    "-config",
    config,
    "-extensions",
    "v3_ca",
    ...EC_KEY,
    "-days",
    DAYS,
    "-keyout",
    join(dir, `${name}.key`),
    "-out",
    join(dir, `${name}.crt`),
  ]);
}

/** A key and a certificate signed by `ca`, with the extensions in `ext` (openssl extfile syntax). */
async function issue(dir: string, name: string, cn: string, ext: string): Promise<void> {
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  await runCommand([
    "openssl",
    "req",
    "-new",
    ...EC_KEY,
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    join(dir, `${name}.key`),
    "-out",
    join(dir, `${name}.csr`),
  ]);
  await runCommand([
    "openssl",
    "x509",
    "-req",
    "-in",
    join(dir, `${name}.csr`),
    "-CA",
    join(dir, "ca.crt"),
    "-CAkey",
    join(dir, "ca.key"),
    "-CAcreateserial",
    "-days",
    DAYS,
    "-extfile",
    extFile,
    "-out",
    join(dir, `${name}.crt`),
  ]);
}
