# SPDX-License-Identifier: Apache-2.0
"""CPython's own stdlib test suites, run over pilotsock's virtual stack (``python -m compat_tests``)."""
