"""Exit 2 with one line on stderr when `qrverify serve ARGS` could not bind its port.

    python3 scripts/_port_free.py PROGRAM [serve options...]

Reads --host/--port (also --opt=value) and QRVERIFY_HOST / QRVERIFY_PORT as `serve` does,
with its defaults (127.0.0.1:8000), and tries the bind the server would make. Standard
library only: it runs before the build.
"""

from __future__ import annotations

import errno
import os
import socket
import sys


def option(args: list[str], name: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def main(argv: list[str]) -> int:
    program, args = argv[0], argv[1:]
    if "-h" in args or "--help" in args:
        return 0
    host = option(args, "--host") or os.environ.get("QRVERIFY_HOST") or "127.0.0.1"
    port_text = option(args, "--port") or os.environ.get("QRVERIFY_PORT") or "8000"
    try:
        port = int(port_text)
    except ValueError:
        return 0  # `serve` reports a malformed port itself
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return 0  # an unknown host: `serve` says so
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            reason = (
                "is in use"
                if exc.errno == errno.EADDRINUSE
                else f"cannot be bound ({exc.strerror})"
            )
            print(
                f"{program}: port {port} on {host} {reason}; choose another with --port N",
                file=sys.stderr,
            )
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
