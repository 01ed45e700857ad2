# SPDX-License-Identifier: Apache-2.0
"""Ring 2, tunnel machines: key exchange, AEAD sessions, replay windows and peer paths."""
