/**
 * The exit statuses of `sockeye connect`, as its help documents them, so a
 * script can tell a server that is down from one that said no.
 */
export const ExitStatus = {
  /** A clean close: ours, or the server's with 1000 or no code. */
  Ok: 0,
  /** The connection could not be opened, failed, timed out, or was closed with another code. */
  Failure: 1,
  /** Invalid arguments, an unparsable or non-WebSocket URL among them. */
  Usage: 2,
  /** The server answered the upgrade with an HTTP status instead of 101 (404, 403, 503...). */
  Refused: 3,
  /** Interrupted twice (Ctrl-C) and given up at once. */
  Interrupted: 130,
} as const;
