// Label matchers as the alerting API takes them (`name="value"`, `!=`,
// `=~`, `!~`), read from what people type in the alert forms.

/** Splits `a="x", b=~"y.*"` (commas or new lines) into matcher strings; errors start with `what`. */
export function parseMatchers(text, what = 'scope') {
  const out = [];
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|\n|$)/y;
  let s = text.trim();
  while (s.length) {
    re.lastIndex = 0;
    const m = re.exec(s);
    if (!m) throw new Error(`${what}: cannot read a matcher at ${JSON.stringify(s.slice(0, 30))} (write label="value")`);
    out.push(`${m[1]}${m[2]}"${m[3]}"`);
    s = s.slice(re.lastIndex).trim();
  }
  return out;
}
