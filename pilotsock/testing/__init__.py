# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests, usable by applications too: a fake clock and a seeded simulated link."""
