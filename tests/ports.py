"""A free TCP port on 127.0.0.1, for the servers and launchers the tests start."""

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; a race with another process is possible
    but harmless in tests: the server then fails to start with a clear error)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
