# SPDX-License-Identifier: Apache-2.0
"""Ring 1, codecs: pure bytes <-> values. Nothing here keeps state across calls or touches the OS.

``decode_*`` functions raise only ``pilotsock.errors.MalformedFrame``.
"""
