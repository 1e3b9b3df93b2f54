import { UsageError } from '../protocol/errors.js';

/**
 * Route paths with parameters and prefixes:
 * - `/room/:id` matches `/room/42` (one whole, non-empty segment per
 *   parameter) and gives `{ id: '42' }`;
 * - `/files/*` matches every path under `/files/` (`/files/` itself
 *   included, `/files` not) and gives the rest as `{ '*': 'a/b.txt' }`.
 * Values are percent-decoded (a segment that does not decode is kept as
 * it came). Paths without `:` segments or a final `*` are exact paths,
 * which the server looks up in a map instead.
 */

export type RouteParams = Readonly<Record<string, string>>;

export interface RoutePattern {
  /** The path as mounted. */
  readonly source: string;
  /** The parameters if `path` (a URL pathname) matches, else null. */
  match(path: string): RouteParams | null;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `path` needs a pattern (a segment that is `*` or starts with `:`) rather than an exact lookup. */
export function isRoutePattern(path: string): boolean {
  return path.includes('/:') || path.endsWith('/*') || path.includes('/*/');
}

/** Compile a pattern; throws a UsageError for a malformed one. */
export function compileRoutePattern(source: string): RoutePattern {
  const segments = source.split('/').slice(1);
  const prefix = segments[segments.length - 1] === '*';
  if (prefix) segments.pop();
  const names = new Set<string>();
  const parts = segments.map((segment) => {
    if (segment === '*') throw invalid(source, '"*" may only be the last segment');
    if (!segment.startsWith(':')) return { literal: segment, name: null };
    const name = segment.slice(1);
    if (!NAME.test(name)) throw invalid(source, `"${segment}" is not a parameter name (letters, digits, _)`);
    if (names.has(name)) throw invalid(source, `the parameter "${name}" appears twice`);
    names.add(name);
    return { literal: null, name };
  });
  return {
    source,
    match(path: string): RouteParams | null {
      const given = path.split('/');
      // given[0] is the empty string before the leading "/".
      if (prefix ? given.length < parts.length + 2 : given.length !== parts.length + 1) return null;
      const params: Record<string, string> = {};
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        const segment = given[i + 1]!;
        if (part.name === null) {
          if (segment !== part.literal) return null;
        } else {
          if (segment === '') return null;
          params[part.name] = decode(segment);
        }
      }
      if (prefix)
        params['*'] = given
          .slice(parts.length + 1)
          .map(decode)
          .join('/');
      return params;
    },
  };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function invalid(source: string, why: string): UsageError {
  return new UsageError('WS_ERR_INVALID_ARGUMENT', `invalid route "${source}": ${why}`);
}
