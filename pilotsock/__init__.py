# SPDX-License-Identifier: Apache-2.0
"""pilotsock: Pilot Protocol in pure Python, with a drop-in replacement for the stdlib ``socket``.

``import pilotsock.socket as socket`` gives a module that behaves like the stdlib one and adds
``AF_PILOT`` for virtual addresses such as ``('0:0000.0000.0005', 80)``.
"""

__version__ = "0.1.0"
