// One error class for the control plane; the condition lives in `code`, never in the class.
// Messages are kept to one line because they end up in logs and in test tables verbatim.
export class ControlError<C extends string = string> extends Error {
  override readonly name = "ControlError";
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.code = code;
  }
}

export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => {
    const escaped = JSON.stringify(c).slice(1, -1);
    return escaped.length > 1 ? escaped : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}
