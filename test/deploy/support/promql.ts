/**
 * Just enough PromQL reading to check dashboards and rules against the metrics contract: which metric
 * selectors an expression uses (with their label matchers), which labels it groups by, and two rewrites
 * for running it against a live Prometheus (Grafana variables substituted; comparisons made `bool`).
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface Selector {
  metric: string;
  matchers: Matcher[];
}

export interface Analysis {
  selectors: Selector[];
  /** labels named in by / without / on / ignoring / group_left / group_right lists */
  groupingLabels: string[];
}

const AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio'];
const GROUPING = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'];
const KEYWORDS = new Set([...AGGREGATIONS, ...GROUPING, 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan', 'atan2']);

const IDENT = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const SPACE = /\s*/y;

function skipString(s: string, i: number): number {
  const quote = s[i];
  for (let j = i + 1; j < s.length; j++) {
    if (quote !== '`' && s[j] === '\\') j++;
    else if (s[j] === quote) return j + 1;
  }
  throw new Error(`unterminated string in: ${s}`);
}

function readString(s: string, i: number): { value: string; end: number } {
  const end = skipString(s, i);
  const raw = s.slice(i, end);
  // PromQL double- and single-quoted strings use Go escapes, which JSON covers for what appears here.
  const value = raw[0] === '`' ? raw.slice(1, -1) : raw[0] === '"' ? (JSON.parse(raw) as string) : raw.slice(1, -1).replace(/\\(.)/g, '$1');
  return { value, end };
}

function parseMatchers(s: string, start: number): { matchers: Matcher[]; end: number } {
  const matchers: Matcher[] = [];
  let i = start + 1;
  for (;;) {
    SPACE.lastIndex = i;
    SPACE.exec(s);
    i = SPACE.lastIndex;
    if (s[i] === '}') return { matchers, end: i + 1 };
    if (s[i] === ',') {
      i++;
      continue;
    }
    IDENT.lastIndex = i;
    const label = IDENT.exec(s);
    if (!label) throw new Error(`bad label matcher at ${i} in: ${s}`);
    i = IDENT.lastIndex;
    SPACE.lastIndex = i;
    SPACE.exec(s);
    i = SPACE.lastIndex;
    const op = (['=~', '!~', '!=', '='] as const).find((o) => s.startsWith(o, i));
    if (!op) throw new Error(`bad matcher operator at ${i} in: ${s}`);
    i += op.length;
    SPACE.lastIndex = i;
    SPACE.exec(s);
    i = SPACE.lastIndex;
    const str = readString(s, i);
    matchers.push({ label: label[0], op, value: str.value });
    i = str.end;
  }
}

/** Selectors and grouping labels of one expression (Grafana variables may still be in it). */
export function analyse(expr: string): Analysis {
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  const s = expr;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(s, i);
    } else if (c === '#') {
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? s.length : nl;
    } else if (c === '[') {
      i = s.indexOf(']', i) + 1; // range or subquery: durations only
    } else if (c === '{') {
      // A selector without a metric name before it.
      const { matchers, end } = parseMatchers(s, i);
      selectors.push({ metric: '', matchers });
      i = end;
    } else if (/[0-9.]/.test(c)) {
      const m = /[0-9.][0-9a-zA-Z_.+-]*/y;
      m.lastIndex = i;
      m.exec(s);
      i = m.lastIndex;
    } else if (c === '$') {
      // A Grafana variable ($__rate_interval, ${model}) outside a string: part of a range or a value.
      const m = /\$\{[^}]*\}|\$[a-zA-Z0-9_]+/y;
      m.lastIndex = i;
      m.exec(s);
      i = m.lastIndex;
    } else if (/[a-zA-Z_:]/.test(c)) {
      IDENT.lastIndex = i;
      const word = IDENT.exec(s)![0];
      i = IDENT.lastIndex;
      SPACE.lastIndex = i;
      SPACE.exec(s);
      const next = SPACE.lastIndex;
      if (GROUPING.includes(word) && s[next] === '(') {
        const close = s.indexOf(')', next);
        groupingLabels.push(...s.slice(next + 1, close).split(',').map((l) => l.trim()).filter(Boolean));
        i = close + 1;
      } else if (s[next] === '(' || KEYWORDS.has(word.toLowerCase())) {
        // a function or aggregation call, or a keyword
      } else if (s[next] === '{') {
        const { matchers, end } = parseMatchers(s, next);
        selectors.push({ metric: word, matchers });
        i = end;
      } else {
        selectors.push({ metric: word, matchers: [] });
      }
    } else {
      i++;
    }
  }
  return { selectors, groupingLabels };
}

/** The Grafana variables an expression refers to ($name, ${name}, ${name:format}, [[name]]), built-ins excluded. */
export function grafanaVariables(expr: string): string[] {
  const names = [...expr.matchAll(/\$\{([a-zA-Z0-9_]+)(?::[^}]*)?\}|\$([a-zA-Z0-9_]+)|\[\[([a-zA-Z0-9_]+)\]\]/g)].map((m) => m[1] ?? m[2] ?? m[3]);
  return [...new Set(names.filter((n) => !n.startsWith('__')))];
}

/**
 * What Grafana would send for "All": interval built-ins become a fixed window, every other variable the
 * regex `.*` (the dashboard uses variables only in =~ matchers, which the contract test checks).
 */
export function substituteGrafanaVariables(expr: string, window = '30s'): string {
  return expr
    .replace(/\$__rate_interval|\$__interval|\$__range|\$\{__rate_interval\}|\$\{__interval\}|\$\{__range\}/g, window)
    .replace(/\$\{[a-zA-Z0-9_]+(?::[^}]*)?\}|\$[a-zA-Z0-9_]+|\[\[[a-zA-Z0-9_]+\]\]/g, '.*');
}

/**
 * An alert expression with every comparison turned into a `bool` comparison: it then returns the series
 * the rule looks at (with 0 or 1) whether or not the threshold is crossed, so "returns data" means the
 * metrics behind the alert exist. Same intent as dropping the threshold, but also right for `A > x and B > y`.
 */
export function comparisonsAsBool(expr: string): string {
  let out = '';
  let depth = 0;
  let i = 0;
  while (i < expr.length) {
    const c = expr[i];
    if (c === '"' || c === "'" || c === '`') {
      const end = skipString(expr, i);
      out += expr.slice(i, end);
      i = end;
      continue;
    }
    if (c === '{') depth++;
    if (c === '}') depth--;
    const op = depth === 0 ? ['==', '!=', '>=', '<=', '>', '<'].find((o) => expr.startsWith(o, i)) : undefined;
    if (op) {
      out += op;
      i += op.length;
      if (!/^\s*bool\b/.test(expr.slice(i))) out += ' bool';
      continue;
    }
    out += c;
    i++;
  }
  return out;
}
