# SPDX-License-Identifier: Apache-2.0
"""Native mode: CPython's ``test_socket`` TCP and UDP classes (and ``test_selectors``) on AF_PILOT sockets.

``python -m compat_tests.native_socket OUTPUT.json [--module test_socket_udp|test_selectors]`` (a client of
``$PILOTSOCK_HOME``'s daemon). For ``test_selectors`` the seam is its module-level ``socketpair``,
which now returns a connected pair of virtual streams. For ``test_socket`` it
imports the installed ``test.test_socket`` and re-points its seams without touching its source
(``socket-design.md`` §7.3): the module's ``HOST`` and ``InetTestBase.host`` become this node's
virtual address, ``socket_helper.bind_port`` binds there by default, and the fixtures that create
the server and client sockets create ``AF_PILOT`` ones (streams, or datagram sockets for the UDP classes). The stdlib resolver and socket class are
patched too, so ``socket.create_connection((HOST, port))`` in the tests reaches Pilot. Writes
``{test id: outcome}`` and the socket counters to OUTPUT.json.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import unittest
from pathlib import Path
from typing import Any

CLASSES = [
    "BasicTCPTest", "BasicTCPTest2", "FileObjectClassTestCase", "UnbufferedFileObjectClassTestCase",
    "LineBufferedFileObjectClassTestCase", "SmallBufferedFileObjectClassTestCase",
    "UnicodeReadFileObjectClassTestCase", "UnicodeWriteFileObjectClassTestCase",
    "UnicodeReadWriteFileObjectClassTestCase", "BufferIOTest", "NonBlockingTCPTests",
    "NetworkConnectionAttributesTest", "NetworkConnectionNoServer", "NetworkConnectionBehaviourTest",
    "TCPTimeoutTest", "TCPCloserTest", "ContextManagersTest", "SendmsgTCPTest", "RecvmsgTCPTest",
    "RecvmsgIntoTCPTest", "SendfileUsingSendTest", "SendfileUsingSendfileTest", "InterruptedSendTimeoutTest",
    "CreateServerTest", "CreateServerFunctionalTest",
]
UDP_CLASSES = ["BasicUDPTest", "SendmsgUDPTest", "RecvmsgUDPTest", "RecvmsgIntoUDPTest", "UDPTimeoutTest"]


class RecordingResult(unittest.TestResult):
    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self.outcomes[test.id()] = "passed"

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self.outcomes[test.id()] = "failed"
        print(f"FAIL: {test.id()}\n{self.failures[-1][1]}", file=sys.stderr)

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self.outcomes[getattr(test, "id", lambda: str(test))()] = "error"
        print(f"ERROR: {test}\n{self.errors[-1][1]}", file=sys.stderr)

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skipped"

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "skipped"

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "failed"


def repoint(module: Any, vaddr: str) -> None:
    """The seams of test_socket, re-pointed at ``vaddr`` and AF_PILOT."""
    from test.support import socket_helper  # type: ignore[import-not-found]

    import pilotsock.socket as psocket
    from pilotsock.client.stdlib import StdSocket

    module.HOST = vaddr
    module.InetTestBase.host = vaddr
    socket_helper.bind_port.__defaults__ = (vaddr,)
    find_virtual_port = socket_helper.find_unused_port

    def find_unused_port(*args: Any, **kwargs: Any) -> int:
        """A port free on this node that is also free on the kernel: CreateServerFunctionalTest
        binds kernel IPv6 sockets on the port it is given."""
        for _ in range(50):
            port = int(find_virtual_port(*args, **kwargs))
            try:
                for family in (socket.AF_INET, socket.AF_INET6):
                    with StdSocket(family, socket.SOCK_STREAM) as probe:
                        probe.bind(("", port))
            except OSError:
                continue
            return port
        raise OSError("no port free on both Pilot and the kernel")

    socket_helper.find_unused_port = find_unused_port
    module.socket_helper.find_unused_port = find_unused_port

    def pilot_stream() -> psocket.socket:
        return psocket.socket(psocket.AF_PILOT, socket.SOCK_STREAM)

    def pilot_datagram() -> psocket.socket:
        return psocket.socket(psocket.AF_PILOT, socket.SOCK_DGRAM)

    def server_setup(self: Any) -> None:
        self.serv = pilot_stream()
        self.port = socket_helper.bind_port(self.serv)
        self.serv.listen()

    def client_setup(self: Any) -> None:
        self.cli = pilot_stream()

    def datagram_server_setup(self: Any) -> None:
        self.serv = pilot_datagram()
        self.port = socket_helper.bind_port(self.serv)

    def datagram_client_setup(self: Any) -> None:
        self.cli = pilot_datagram()

    module.SocketTCPTest.setUp = server_setup
    module.ThreadedTCPSocketTest.clientSetUp = client_setup
    module.TCPTestBase.newSocket = lambda self: pilot_stream()
    module.SocketUDPTest.setUp = datagram_server_setup
    module.ThreadedUDPSocketTest.clientSetUp = datagram_client_setup
    module.UDPTestBase.newSocket = lambda self: pilot_datagram()


def virtual_socketpair(family: Any = None, type: int = socket.SOCK_STREAM, proto: int = 0) -> tuple[Any, Any]:
    """A connected pair of AF_PILOT streams through the daemon (test_selectors' seam)."""
    import pilotsock.socket as psocket

    with psocket.create_server(("", 0), family=psocket.AF_PILOT) as listener:
        client = psocket.create_connection(listener.getsockname(), timeout=10)
        server, _ = listener.accept()
    client.settimeout(None)
    return server, client


def repoint_selectors(module: Any, vaddr: str) -> None:
    module.socketpair = virtual_socketpair


# name -> (the stdlib test module, its test classes or None for all its TestCase classes, the re-pointing)
MODULES: dict[str, tuple[str, list[str] | None, Any]] = {
    "test_socket": ("test_socket", CLASSES, repoint),
    "test_socket_udp": ("test_socket", UDP_CLASSES, repoint),
    "test_selectors": ("test_selectors", None, repoint_selectors),
}


def main(argv: list[str]) -> int:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="python -m compat_tests.native_socket")
    parser.add_argument("output", type=Path)
    parser.add_argument("--module", choices=sorted(MODULES), default="test_socket")
    parser.add_argument("--kernel", action="store_true", help="the same classes on kernel sockets (baseline)")
    parser.add_argument("--exclude", action="append", default=[],
                        help="a test id (or id prefix) not to run (repeatable)")
    args = parser.parse_args(argv)
    module_name, classes, repoint_module = MODULES[args.module]
    module = importlib.import_module(f"test.{module_name}")
    if classes is None:
        classes = [name for name, value in vars(module).items()
                   if isinstance(value, type) and issubclass(value, unittest.TestCase)]

    from pilotsock.client.socket_base import SocketBase

    if not args.kernel:
        from pilotsock import patch
        from pilotsock.client.names import own_address

        patch.patch_socket()
        repoint_module(module, str(own_address()))
    loader = unittest.TestLoader()
    excluded = set(args.exclude)
    suite = unittest.TestSuite(test for name in classes if hasattr(module, name)
                               for test in loader.loadTestsFromTestCase(getattr(module, name))
                               if not any(test.id().startswith(x) for x in excluded))  # type: ignore[union-attr]
    result = RecordingResult()
    suite.run(result)
    args.output.write_text(json.dumps({"outcomes": result.outcomes, "pid": os.getpid(),
                                       "counters": dict(SocketBase.counters)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
