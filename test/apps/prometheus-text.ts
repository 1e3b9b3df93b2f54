/**
 * A strict little reader of the Prometheus text exposition format 0.0.4,
 * for the tests: it throws on the first line that is not well-formed, and on
 * a metric without both `# HELP` and `# TYPE` before its samples, on lines
 * of one metric that are not consecutive, on a duplicate series, on a
 * counter not named `*_total` or with a negative value, and on text that
 * does not end with a line feed.
 */

export interface ParsedSample {
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  help: string;
  type: string;
  samples: ParsedSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith('\n')) throw new Error('the text does not end with a line feed');
  const families = new Map<string, ParsedFamily>();
  const helps = new Map<string, string>();
  const types = new Map<string, string>();
  const finished = new Set<string>();
  const series = new Set<string>();
  let current: string | null = null;
  const enter = (name: string, lineNumber: number): void => {
    if (name === current) return;
    if (finished.has(name)) throw new Error(`line ${lineNumber}: lines of ${name} are not consecutive`);
    if (current !== null) finished.add(current);
    current = name;
  };

  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.startsWith('#')) {
      const help = /^# HELP (\S+) (.*)$/.exec(line);
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (help !== null) {
        const [, name, docstring] = help as unknown as [string, string, string];
        if (!METRIC_NAME.test(name)) throw new Error(`line ${lineNumber}: bad metric name ${name}`);
        if (helps.has(name)) throw new Error(`line ${lineNumber}: a second HELP for ${name}`);
        enter(name, lineNumber);
        helps.set(name, unescape(docstring, false, lineNumber));
      } else if (type !== null) {
        const [, name, kind] = type as unknown as [string, string, string];
        if (!METRIC_NAME.test(name)) throw new Error(`line ${lineNumber}: bad metric name ${name}`);
        if (!TYPES.has(kind)) throw new Error(`line ${lineNumber}: unknown type ${kind}`);
        if (types.has(name)) throw new Error(`line ${lineNumber}: a second TYPE for ${name}`);
        if (families.get(name)?.samples.length) throw new Error(`line ${lineNumber}: TYPE of ${name} after its samples`);
        enter(name, lineNumber);
        types.set(name, kind);
      } else if (/^# (HELP|TYPE)\b/.test(line)) {
        throw new Error(`line ${lineNumber}: malformed ${line}`);
      }
      return;
    }
    const { name, labels, value } = parseSampleLine(line, lineNumber);
    enter(name, lineNumber);
    const help = helps.get(name);
    const kind = types.get(name);
    if (help === undefined || kind === undefined) throw new Error(`line ${lineNumber}: ${name} has no HELP or no TYPE before its samples`);
    if (kind === 'counter') {
      if (!name.endsWith('_total')) throw new Error(`line ${lineNumber}: counter ${name} is not named *_total`);
      if (!(value >= 0)) throw new Error(`line ${lineNumber}: counter ${name} has the value ${value}`);
    }
    const key = `${name}{${Object.entries(labels)
      .sort()
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`;
    if (series.has(key)) throw new Error(`line ${lineNumber}: duplicate series ${key}`);
    series.add(key);
    let family = families.get(name);
    if (family === undefined) {
      family = { help, type: kind, samples: [] };
      families.set(name, family);
    }
    family.samples.push({ labels, value });
  });
  for (const name of new Set([...helps.keys(), ...types.keys()])) {
    if (!helps.has(name) || !types.has(name)) throw new Error(`${name} lacks its ${helps.has(name) ? 'TYPE' : 'HELP'} line`);
    if (!families.has(name)) families.set(name, { help: helps.get(name)!, type: types.get(name)!, samples: [] });
  }
  return families;
}

function parseSampleLine(line: string, lineNumber: number): { name: string; labels: Record<string, string>; value: number } {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) throw new Error(`line ${lineNumber}: no metric name in ${JSON.stringify(line)}`);
  const name = nameMatch[0];
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    while (line[at] !== '}') {
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at));
      if (labelMatch === null || !LABEL_NAME.test(labelMatch[0])) throw new Error(`line ${lineNumber}: bad label name at ${at}`);
      const label = labelMatch[0];
      at += label.length;
      if (line.slice(at, at + 2) !== '="') throw new Error(`line ${lineNumber}: expected =" after ${label}`);
      at += 2;
      let raw = '';
      for (;;) {
        const char = line[at];
        if (char === undefined) throw new Error(`line ${lineNumber}: unterminated value of ${label}`);
        if (char === '"') break;
        if (char === '\\') {
          raw += line.slice(at, at + 2);
          at += 2;
        } else {
          raw += char;
          at++;
        }
      }
      at++;
      if (Object.hasOwn(labels, label)) throw new Error(`line ${lineNumber}: label ${label} twice`);
      labels[label] = unescape(raw, true, lineNumber);
      if (line[at] === ',') at++;
      else if (line[at] !== '}') throw new Error(`line ${lineNumber}: expected , or } at ${at}`);
    }
    at++;
  }
  const rest = line.slice(at);
  const parts = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  if (parts === null || !FLOAT.test(parts[1]!)) throw new Error(`line ${lineNumber}: bad value part ${JSON.stringify(rest)}`);
  const text = parts[1]!;
  const value =
    text === 'NaN' ? NaN
    : /Inf$/.test(text) ?
      text.startsWith('-') ?
        -Infinity
      : Infinity
    : Number(text);
  return { name, labels, value };
}

/** HELP text escapes `\\` and `\n`; label values also `\"`. Any other escape is an error. */
function unescape(raw: string, labelValue: boolean, lineNumber: number): string {
  return raw.replace(/\\(.?)/g, (_match, char: string) => {
    if (char === '\\') return '\\';
    if (char === 'n') return '\n';
    if (char === '"' && labelValue) return '"';
    throw new Error(`line ${lineNumber}: bad escape \\${char}`);
  });
}
