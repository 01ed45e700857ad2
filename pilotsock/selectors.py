# SPDX-License-Identifier: Apache-2.0
"""A drop-in for the stdlib ``selectors`` module.

Every virtual socket owns a real fd (``socket-design.md`` §1), and a listener's or a connecting
socket's readiness is the kernel's readiness of that fd, so the stdlib selectors (epoll, poll,
select, ``DefaultSelector``) work unchanged: everything here is the stdlib's own object.
"""

from __future__ import annotations

import selectors as _stdlib
from selectors import *  # re-export every stdlib name as the same object

__implements__: list[str] = []
__imports__ = [name for name in dir(_stdlib) if not name.startswith("_") and name.isidentifier()
               and not isinstance(getattr(_stdlib, name), type(_stdlib))]
__extensions__: list[str] = []
__all__ = [*__implements__, *__imports__]
