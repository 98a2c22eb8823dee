// Input mutation and corpora for the fuzz loops; their randomness is testbed/random.ts's `seededRandom`,
// so every failure names its seed.

const TOKENS = [
  '"',
  "{",
  "}",
  "[",
  "]",
  ":",
  ",",
  " ",
  "\n",
  "\\",
  "\\u00",
  "null",
  "true",
  "false",
  "-",
  "-1",
  "0",
  "1e99",
  "24.0",
  "99999999999999999999",
  ".",
  "/",
  "&",
  "::",
  "ſ",
  "\u212a",
  "é",
  "\u0000",
  "\ud800",
  "#",
  "=",
  "'",
  "0x1f",
];

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

export function mutate(input: string, random: () => number): string {
  let out = input;
  const rounds = 1 + Math.floor(random() * 4);
  for (let r = 0; r < rounds; r++) {
    const at = Math.floor(random() * (out.length + 1));
    switch (Math.floor(random() * 6)) {
      case 0:
        out = out.slice(0, at) + pick(TOKENS, random) + out.slice(at);
        break;
      case 1:
        out = out.slice(0, at) + out.slice(at + 1 + Math.floor(random() * 4));
        break;
      case 2:
        out = out.slice(0, at) + String.fromCharCode(Math.floor(random() * 128)) + out.slice(at + 1);
        break;
      case 3: {
        const len = Math.floor(random() * 8);
        out = out.slice(0, at) + out.slice(at, at + len) + out.slice(at);
        break;
      }
      case 4:
        out = out.slice(0, at);
        break;
      default:
        out = out.slice(0, at) + String(Math.floor(random() * 1000)) + out.slice(at);
    }
  }
  return out;
}

export async function loadCorpus(name: string): Promise<string[]> {
  const file = Bun.file(new URL(`./corpus/${name}.json`, import.meta.url));
  return (await file.json()) as string[];
}
