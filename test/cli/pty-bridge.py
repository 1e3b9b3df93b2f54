"""Run a command on a pseudo-terminal and bridge it to plain pipes.

Usage: python3 pty-bridge.py COMMAND [ARGS...]

The command sees a terminal on standard input, output and error (isatty is
true, so it behaves as it would for a person); this script copies its own
standard input to the terminal (keystrokes) and the terminal's output to its
own standard output. It exits with the command's exit status, or 124 when
the command did not finish within 20 seconds.
"""

import os
import pty
import select
import sys
import time

LIMIT_SECONDS = 20


def main() -> int:
    pid, master = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execvp(sys.argv[1], sys.argv[1:])
    stdin = sys.stdin.fileno()
    stdin_open = True
    deadline = time.monotonic() + LIMIT_SECONDS
    while time.monotonic() < deadline:
        readable = [master] + ([stdin] if stdin_open else [])
        ready, _, _ = select.select(readable, [], [], 0.05)
        if stdin in ready:
            data = os.read(stdin, 4096)
            if data:
                os.write(master, data)
            else:
                stdin_open = False
        if master in ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                data = b""
            if not data:
                break
            os.write(sys.stdout.fileno(), data)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return 124
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
