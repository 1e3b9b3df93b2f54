/**
 * The request-target of an upgrade request (RFC 9112 §3.2): its path, and
 * whether that path can be used as is. Pure string work, no I/O.
 */

/**
 * The path of a request-target: everything before the query (RFC 3986 §3.4
 * starts the query at the first "?"). The head parser allows no fragment.
 */
export function pathOf(target: string): string {
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
}

/**
 * @internal A path the WHATWG URL parser would return unchanged: it starts with "/"
 * and holds no percent-escape, dot (dot-segments), backslash, or character
 * of the path percent-encode set (" < > ` { }). The head parser already
 * limits targets to visible ASCII. The server skips building a URL for such
 * a path, so the two answers must agree (pinned by a property test).
 */
export function isPlainPath(path: string): boolean {
  // "//x" would be read as a network-path reference, with x as the host.
  if (path.charCodeAt(0) !== 0x2f || path.charCodeAt(1) === 0x2f) return false;
  for (let i = 1; i < path.length; i++) {
    switch (path.charCodeAt(i)) {
      case 0x25: // %
      case 0x2e: // .
      case 0x5c: // \
      case 0x22: // "
      case 0x3c: // <
      case 0x3e: // >
      case 0x60: // `
      case 0x7b: // {
      case 0x7d: // }
      case 0x23: // #
        return false;
    }
  }
  return true;
}
