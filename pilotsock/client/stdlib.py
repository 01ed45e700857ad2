# SPDX-License-Identifier: Apache-2.0
"""The stdlib ``socket`` objects pilotsock builds on, captured when pilotsock is first imported.

Where it sits: ring 3 (client side). ``pilotsock.patch`` replaces ``socket.socket``,
``socket.getaddrinfo`` and friends in the stdlib module; pilotsock's own code must keep reaching
the originals (a patched ``getaddrinfo`` calling ``socket.getaddrinfo`` would call itself), so it
uses these names instead of looking them up on the module at call time.
"""

from __future__ import annotations

import socket as _module

StdSocket = _module.socket
create_connection = _module.create_connection
create_server = _module.create_server
getaddrinfo = _module.getaddrinfo
getfqdn = _module.getfqdn
gethostbyaddr = _module.gethostbyaddr
gethostbyname = _module.gethostbyname
gethostbyname_ex = _module.gethostbyname_ex
getnameinfo = _module.getnameinfo
