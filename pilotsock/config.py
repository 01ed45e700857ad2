# SPDX-License-Identifier: Apache-2.0
"""All tunables in one place: frozen dataclasses, each default citing its source.

Where it sits: ring 0. Machines receive the part they need through their constructor; the
daemon's composition root builds :class:`DaemonConfig` from the command line and environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

KIB = 1024
MIB = 1024 * 1024
WINDOW_UNIT_BYTES = 4096  # wire.md §4: the window field counts 4096-byte units


@dataclass(frozen=True)
class TransportConfig:
    """Stream transport constants (transport.md §14, "Project default" column)."""

    mss: int = 1400  # D01 §13; fits a 1500-byte MTU with the 70-byte PILS overhead
    # Segments between daemons whose UDP path is the host's loopback (MTU 64 KiB, nothing
    # fragments) and within one node: per-segment costs dominate, so fewer, larger segments
    # (performance.md §2: 8192 gives ~+95% over 1400; measured here through two daemons, one-way
    # 256 MB: 1400 -> 119 MB/s, 8192 -> 329, 16384 -> 432, 32768 -> 503). 0 keeps ``mss`` everywhere.
    loopback_mss: int = 32768
    # Windows for long fat paths. At 100 ms RTT and 0.5 % loss through the link emulator
    # (bench --via-emulator) 8 MiB each carries 21-24 MB/s, 16 MiB receive with 8 MiB send
    # 20-21 MB/s, 16 MiB each 32-35 MB/s. Memory is used only while data actually waits (a slow
    # reader, a writer faster than the path, a window in flight).
    receive_buffer_bytes: int = 16 * MIB  # the advertised window, at most
    # ... and at first: the window grows to twice what the application read in the last RTT
    # (receive buffer autotuning, Linux's DRS), so a slow reader never makes the daemon hold
    # 16 MiB (bench: peak RSS); a fast one reaches the maximum in a few round trips.
    receive_buffer_initial_bytes: int = 512 * KIB
    autotune_min_interval: float = 0.0005  # ... judged once per smoothed RTT, but at least this long
    send_buffer_bytes: int = 16 * MIB  # unsent + unacknowledged bytes the daemon holds per stream, at most
    # ... and at least this much; in between, two congestion windows (send buffer autotuning).
    send_buffer_min_bytes: int = 256 * KIB
    initial_cwnd_segments: int = 10  # IW10
    max_cwnd_bytes: int = 16 * MIB  # Go caps at 1 MiB, about 10 MB/s on a 100 ms path
    # "auto": NewReno on paths whose handshake RTT is below ``auto_bbr_min_rtt`` (loopback, LAN:
    # no pacing timers, 20-30 % faster on loopback), BBR above it or when the handshake had to be
    # retransmitted (WAN: 100x NewReno's loss-bound rate at 0.5 % loss). Or a controller's name.
    congestion_control: str = "auto"
    auto_bbr_min_rtt: float = 0.005
    # An unpaced window must fit the receiver's UDP socket buffer: 2 MiB on 8 MiB was lossless,
    # 4 MiB was not (performance.md §2). Caps NewReno on the low-RTT paths "auto" gives it.
    low_rtt_max_cwnd_bytes: int = 2 * MIB
    rto_initial: float = 1.0  # RFC 6298
    rto_min: float = 0.2
    rto_max: float = 10.0
    clock_granularity: float = 0.010
    max_transmissions: int = 8  # first send counts; then RST and ETIMEDOUT
    syn_retry_schedule: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)  # Go: 7 SYNs
    delayed_ack_timeout: float = 0.040
    delayed_ack_segments: int = 2
    # A segment shorter than the peer's largest ends a write and is ACKed at once (a Nagle
    # sender's next small write must not stall), except on a connection that answers its peer
    # within this delay: there the ACK waits this long for the answer to carry it (no pure ACK
    # per request/response; each datagram on loopback costs both daemons a wake-up).
    short_segment_ack_delay: float = 0.002
    nagle_timeout: float = 0.040
    keepalive_interval: float = 30.0  # Go closes a connection idle for 120 s
    idle_timeout: float = 120.0
    time_wait_seconds: float = 10.0
    duplicate_ack_threshold: int = 3
    orphan_fin_wait_2_timeout: float = 60.0  # Linux tcp_fin_timeout: app gone, peer never FINs
    fin_gap_rto_multiplier: float = 2.0  # transport.md §6: EOF held at most 2 x RTO for a gap

    def __post_init__(self) -> None:
        if not 64 <= self.mss <= 65535 - 100:
            raise ValueError(f"mss {self.mss} out of range")
        if self.loopback_mss and not 64 <= self.loopback_mss <= 65535 - 100:
            raise ValueError(f"loopback_mss {self.loopback_mss} out of range")
        if min(self.receive_buffer_bytes, self.receive_buffer_initial_bytes) < WINDOW_UNIT_BYTES:
            raise ValueError("receive buffer must hold at least one window unit")


@dataclass(frozen=True)
class AdmissionConfig:
    """SYN limits, caps and backlog (transport.md §12)."""

    # Go uses 100/s global and 10/s per source (1.18: burst 64), which caps new-connection HTTP
    # between two daemons near 10 req/s. Our defaults must not throttle one well-behaved client.
    syn_rate_global: float = 5000.0
    syn_rate_per_source: float = 1000.0
    syn_burst_per_source: int = 1000
    syn_sources_max: int = 4096
    exempt_same_node: bool = True  # the stdlib suites make hundreds of local connects
    max_connections_per_port: int = 1024
    max_connections_total: int = 4096
    default_backlog: int = 64
    max_backlog: int = 4096
    # Handshakes in progress per listener: max(listen backlog, this). Established connections go
    # to the application at once, so the backlog does not bound them; a SYN beyond this limit is
    # dropped (the dialer retries), as Linux does, where the D01 draft's Go code answers RST.
    syn_queue_min: int = 256


@dataclass(frozen=True)
class TunnelConfig:
    """Tunnel sessions (wire.md §6–§8)."""

    encrypt: bool = True  # no plaintext ever unless explicitly switched off
    pending_packets_per_peer: int = 64
    pending_peers_max: int = 256
    replay_window: int = 256
    key_exchange_retry_interval: float = 1.0
    recovery_kx_interval: float = 60.0
    decrypt_failures_before_rekey: int = 5
    identity_cache_seconds: float = 300.0


def default_home() -> Path:
    """The per-user daemon home: ``$PILOTSOCK_HOME`` or ``~/.pilotsock``."""
    explicit = os.environ.get("PILOTSOCK_HOME")
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".pilotsock"


def local_registry_dir() -> Path:
    """Where the per-user local registry lives (shared by all of the user's daemons)."""
    explicit = os.environ.get("PILOTSOCK_LOCAL_REGISTRY_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".pilotsock-registry"


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon needs; built by ``pilotsock.daemon.__main__``."""

    home: Path = field(default_factory=default_home)
    registry: str | None = None  # "host:port"; None = the per-user local registry
    beacon: str | None = None  # "host:port"; None = ask the registry (beacon_list)
    listen: str = "127.0.0.1:0"  # UDP tunnel socket
    endpoint: str | None = None  # registered instead of the discovered address (Go -endpoint)
    public: bool = False
    hostname: str | None = None
    echo: bool = True  # built-in echo on port 7
    heartbeat_interval: float = 30.0  # wire.md §10.4
    heartbeat_failures_before_reregister: int = 3
    discovery_timeout: float = 2.0
    udp_buffer_bytes: int = 4 * MIB  # performance.md §2
    # After activity the event loop polls this long before sleeping (daemon/busy_poll.py): a
    # waiting daemon then needs no wake-up for the next packet of a conversation. Off by default:
    # on 2 cores, bench with 300 us gave 8-byte RTT p50 0.253 -> 0.185 ms but HTTP keep-alive
    # -6 % and connection setup +10 % (polling daemons take the CPU the applications need).
    busy_poll_seconds: float = 0.0
    isn_zero: bool = True  # transport.md §3: ISN 0 for Go interop
    transport: TransportConfig = field(default_factory=TransportConfig)
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    tunnel: TunnelConfig = field(default_factory=TunnelConfig)

    @property
    def control_socket_path(self) -> Path:
        return self.home / "daemon.sock"

    @property
    def identity_path(self) -> Path:
        return self.home / "identity.json"

    @property
    def state_path(self) -> Path:
        return self.home / "daemon.json"

    @property
    def lock_path(self) -> Path:
        return self.home / "daemon.lock"

    @property
    def log_path(self) -> Path:
        return self.home / "daemon.log"

    def replace(self, **changes: object) -> DaemonConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
