# SPDX-License-Identifier: Apache-2.0
"""The node stack: routes packets between the tunnel, stream machines, datagram ports and apps.

Where it sits: ring 3 (driver). Data path::

    UDP -> tunnel PeerTable.open -> decode_packet -> on_packet -> StreamConnection.on_segment
    app channel -> StreamConnection.write;  flush(): segments_to_send -> encode -> seal -> UDP

Same-node traffic takes a loopback queue inside the stack (no tunnel), so the daemon stays in
the data path for local connections (socket-design.md G7). Work is batched: inputs mark
endpoints dirty, and one ``flush`` per event-loop wake-up sends their segments (one ACK per batch).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import Counter, deque
from typing import Callable, Hashable
from typing import Protocol as TypingProtocol

from pilotsock.addresses import Addr
from pilotsock.config import DaemonConfig
from pilotsock.endpoints import is_loopback_host
from pilotsock.errors import ErrorCode, MalformedFrame
from pilotsock.transport.admission import Admission, Verdict
from pilotsock.transport.connection import ConnEvent, OutSegment, State, StreamConnection
from pilotsock.transport.ports import PortTable
from pilotsock.transport.time_wait import ConnKey, Remnant, TimeWaitTable
from pilotsock.tunnel.peers import PeerPath, PeerTable
from pilotsock.wire.header import VERSION, Flag, Packet, Protocol, decode_packet, encode_packet

log = logging.getLogger("pilotsock.daemon.stack")

STREAM = int(Protocol.STREAM)
DATAGRAM = int(Protocol.DATAGRAM)
CONTROL = int(Protocol.CONTROL)
SYN, ACK, FIN, RST = int(Flag.SYN), int(Flag.ACK), int(Flag.FIN), int(Flag.RST)
_FLUSH_ROUNDS = 64


class StreamApp(TypingProtocol):
    """What sits on the application side of a stream (a Unix socket channel, or a built-in)."""

    def deliver(self, now: float) -> None: ...
    def on_peer_eof(self, now: float) -> None: ...
    def on_failed(self, code: ErrorCode, now: float) -> None: ...
    def on_closed(self) -> None: ...
    def update_interest(self) -> None: ...


class StreamEndpoint:
    """A stream machine plus its addressing and what it is attached to."""

    __slots__ = ("id", "conn", "local_port", "remote", "remote_port", "key", "app", "listener",
                 "on_dial_result", "established", "reuse", "live")

    def __init__(self, id_: int, conn: StreamConnection, local_port: int, remote: Addr, remote_port: int) -> None:
        self.id = id_
        self.conn = conn
        self.local_port = local_port
        self.remote = remote
        self.remote_port = remote_port
        self.key = (local_port, remote.network, remote.node, remote_port)
        self.app: StreamApp | None = None
        self.listener: Listener | None = None
        self.on_dial_result: Callable[[StreamEndpoint, ErrorCode], None] | None = None
        self.established = False
        self.reuse = False  # made with SO_REUSEADDR (its port may be bound again meanwhile)
        self.live = False  # counted in the stack's live connections (not TIME_WAIT or CLOSED)

    def __repr__(self) -> str:
        return f"<stream {self.id} :{self.local_port} <-> {self.remote}:{self.remote_port} {self.conn.state.value}>"


class Listener:
    """A listening port; ``on_accept`` hands each established connection to the application."""

    def __init__(self, port: int, backlog: int, on_accept: Callable[[StreamEndpoint], bool]) -> None:
        self.port = port
        self.backlog = backlog
        self.on_accept = on_accept
        self.half_open = 0
        self.closed = False
        self.reuse = False  # SO_REUSEADDR, inherited by accepted connections


class DatagramPort:
    """A bound datagram port; ``deliver(source, source_port, payload)`` passes datagrams up."""

    def __init__(self, port: int, deliver: Callable[[Addr, int, bytes], None]) -> None:
        self.port = port
        self.deliver = deliver


class NodeStack:
    def __init__(self, loop: asyncio.AbstractEventLoop, config: DaemonConfig, *, own: Addr,
                 peers: PeerTable, send_frame: Callable[[bytes, PeerPath], None],
                 schedule: Callable[[Hashable, float | None], None]) -> None:
        self.loop = loop
        self.config = config
        self.own = own
        self.peers = peers
        self.ports = PortTable()
        self.admission = Admission(config.admission, own_node=own.node)
        self._send_frame = send_frame
        self._schedule = schedule
        self.streams: dict[tuple[int, int, int, int], StreamEndpoint] = {}
        # Streams in TIME_WAIT leave ``streams`` for a small remnant each (a dial loop makes thousands).
        self.time_wait = TimeWaitTable(config.transport.time_wait_seconds)
        # Live (not TIME_WAIT/CLOSED) connections, kept as the stack sees states change: each SYN
        # asks, and a dial loop leaves thousands of TIME_WAIT streams to step over otherwise.
        self._live_total = 0
        self._live_on_port: Counter[int] = Counter()
        self.listeners: dict[int, Listener] = {}
        self.datagram_ports: dict[int, DatagramPort] = {}
        self._dirty: dict[StreamEndpoint, None] = {}
        self._loopback: deque[Packet] = deque()
        self._ids = itertools.count(1)
        self._flush_scheduled = False
        self.on_tunnel_activity: Callable[[float], None] = lambda now: None
        # The driver may hold the frames a flush produces and send them together (GSO).
        self.hold_frames: Callable[[], None] = lambda: None
        self.release_frames: Callable[[], None] = lambda: None
        self.counters: dict[str, int] = {}

    def count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _new_iss(self) -> int:
        if self.config.isn_zero:
            return 0
        return int.from_bytes(os.urandom(4), "big")

    def _new_connection(self) -> StreamConnection:
        return StreamConnection(self.config.transport, iss=self._new_iss())

    @property
    def active_connections(self) -> int:
        return self._active_counts(-1)[1]

    def _active_counts(self, port: int) -> tuple[int, int]:
        """Live (not TIME_WAIT/CLOSED) connections on ``port`` and in total."""
        return self._live_on_port[port], self._live_total

    def _track_live(self, endpoint: StreamEndpoint, live: bool) -> None:
        if live != endpoint.live:
            endpoint.live = live
            step = 1 if live else -1
            self._live_total += step
            self._live_on_port[endpoint.local_port] += step
            if not self._live_on_port[endpoint.local_port]:
                del self._live_on_port[endpoint.local_port]

    # -- inputs from the network ------------------------------------------------------------

    def on_tunnel_packet(self, plaintext: bytes | memoryview, tunnel_sender: int, now: float) -> None:
        try:
            packet = decode_packet(plaintext)
        except MalformedFrame as exc:
            self.count(exc.reason)
            return
        self.on_packet(packet, tunnel_sender, now)

    def on_packet(self, packet: Packet, tunnel_sender: int | None, now: float) -> None:
        if packet.version != VERSION:
            self.count("packet.version")
            if packet.protocol == STREAM and packet.flags & SYN and not packet.flags & ACK:
                self._send_reset(packet, now)
            return
        if packet.dst_node != self.own.node:
            self.count("packet.not_ours")
            return
        if tunnel_sender is not None and packet.src_node != tunnel_sender:
            self.count("packet.spoofed_source")
            return
        protocol = packet.protocol
        if protocol == STREAM:
            self._on_stream_packet(packet, now)
        elif protocol == DATAGRAM:
            self._on_datagram_packet(packet)
        elif protocol == CONTROL:
            self._on_control_packet(packet, now)
        else:
            self.count("packet.protocol")

    def _on_stream_packet(self, packet: Packet, now: float) -> None:
        key = (packet.dst_port, packet.src_network, packet.src_node, packet.src_port)
        endpoint = self.streams.get(key)
        flags = packet.flags
        if endpoint is not None:
            if endpoint.conn.state is State.TIME_WAIT and flags & SYN and not flags & ACK:
                self._forget(endpoint)  # a new incarnation of the same 4-tuple
            else:
                endpoint.conn.on_segment(flags, packet.seq, packet.ack, packet.window_units,
                                         packet.payload, now)
                self._dirty[endpoint] = None
                return
        else:
            remnant = self.time_wait.get(key)
            if remnant is not None and not self._on_time_wait_packet(key, remnant, flags, now):
                return
        if flags & SYN and not flags & ACK:
            self._on_syn(packet, now)
        else:
            self.count("stream.no_connection")

    def _on_time_wait_packet(self, key: ConnKey, remnant: Remnant, flags: int, now: float) -> bool:
        """A segment for a connection in TIME_WAIT; True if it opens a new incarnation (a SYN)."""
        if flags & SYN and not flags & ACK or flags & RST:
            self._end_time_wait(key)
            return not flags & RST
        if flags & FIN:  # our last ACK was lost: acknowledge again
            self.count("stream.time_wait_acks")
            self._emit(key, remnant.ack(), now)
        return False

    def _on_syn(self, packet: Packet, now: float) -> None:
        listener = self.listeners.get(packet.dst_port)
        if listener is None or listener.closed:
            self.count("stream.refused")
            self._send_reset(packet, now)
            return
        on_port, total = self._active_counts(packet.dst_port)
        verdict = self.admission.admit_syn(packet.src_node, connections_on_port=on_port,
                                           connections_total=total, now=now)
        if verdict is Verdict.DROP:
            self.count("stream.syn_rate_limited")
            return
        if verdict is Verdict.RESET:
            self.count("stream.syn_over_cap")
            self._send_reset(packet, now)
            return
        if listener.half_open >= max(listener.backlog, self.config.admission.syn_queue_min):
            # Like Linux with a full SYN queue: no answer; the dialer's SYN retransmission retries.
            self.count("stream.syn_queue_full")
            return
        remote = Addr(packet.src_network, packet.src_node)
        endpoint = StreamEndpoint(next(self._ids), self._new_connection(), packet.dst_port, remote, packet.src_port)
        endpoint.listener = listener
        endpoint.reuse = listener.reuse
        listener.half_open += 1
        endpoint.conn.open_passive(packet.seq, packet.window_units, now)
        self.streams[endpoint.key] = endpoint
        self._track_live(endpoint, True)
        self.ports.connection_opened(STREAM, endpoint.local_port, reuse=endpoint.reuse)
        self._dirty[endpoint] = None

    def _on_datagram_packet(self, packet: Packet) -> None:
        port = self.datagram_ports.get(packet.dst_port)
        if port is None or not len(packet.payload):
            self.count("datagram.no_port" if port is None else "datagram.empty")
            return
        port.deliver(Addr(packet.src_network, packet.src_node), packet.src_port, bytes(packet.payload))

    def _on_control_packet(self, packet: Packet, now: float) -> None:
        if packet.dst_port != 0:
            self.count("control.port")
            return
        if packet.flags & ACK:
            return  # a ping reply: nothing in the daemon waits for one yet
        # Ping (wire.md §12): reply with the payload echoed.
        reply = Packet(ACK, CONTROL, self.own.network, self.own.node, packet.src_network, packet.src_node,
                       0, packet.src_port, packet.seq, (packet.seq + 1) & 0xFFFFFFFF, 0, bytes(packet.payload))
        self._route(reply, now)

    # -- inputs from applications -----------------------------------------------------------

    def dial(self, remote: Addr, remote_port: int, local_port: int, now: float, *,
             nodelay: bool = False, reuse: bool = False,
             on_result: Callable[[StreamEndpoint, ErrorCode], None]) -> StreamEndpoint:
        """Start an active open from ``local_port`` (0 = ephemeral). ``on_result`` runs once."""
        if local_port == 0:
            local_port = self.ports.allocate_ephemeral(STREAM)
        endpoint = StreamEndpoint(next(self._ids), self._new_connection(), local_port, remote, remote_port)
        if endpoint.key in self.streams or endpoint.key in self.time_wait:
            raise FileExistsError(endpoint.key)
        endpoint.conn.nodelay = nodelay
        endpoint.reuse = reuse
        endpoint.on_dial_result = on_result
        endpoint.conn.open_active(now)
        self.streams[endpoint.key] = endpoint
        self._track_live(endpoint, True)
        self.ports.connection_opened(STREAM, local_port, reuse=reuse)
        self._dirty[endpoint] = None
        self.request_flush()
        return endpoint

    def listen(self, port: int, backlog: int, on_accept: Callable[[StreamEndpoint], bool]) -> Listener:
        listener = Listener(port, backlog, on_accept)
        self.listeners[port] = listener
        return listener

    def close_listener(self, listener: Listener, now: float) -> None:
        listener.closed = True
        if self.listeners.get(listener.port) is listener:
            del self.listeners[listener.port]
        for endpoint in list(self.streams.values()):
            if endpoint.listener is listener and not endpoint.established:
                endpoint.conn.abort(now)
                self._dirty[endpoint] = None
        self.request_flush()

    def bind_datagram(self, port: DatagramPort) -> None:
        self.datagram_ports[port.port] = port

    def unbind_datagram(self, port: DatagramPort) -> None:
        if self.datagram_ports.get(port.port) is port:
            del self.datagram_ports[port.port]

    def send_datagram(self, local_port: int, remote: Addr, remote_port: int, payload: bytes, now: float) -> None:
        packet = Packet(0, DATAGRAM, self.own.network, self.own.node, remote.network, remote.node,
                        local_port, remote_port, 0, 0, 0, payload)
        self._route(packet, now)
        self.request_flush()

    def stream_by_id(self, conn_id: int) -> StreamEndpoint | None:
        """The stream with this id (a linear scan: only option changes ask)."""
        return next((endpoint for endpoint in self.streams.values() if endpoint.id == conn_id), None)

    def mark_dirty(self, endpoint: StreamEndpoint) -> None:
        self._dirty[endpoint] = None

    # -- output -----------------------------------------------------------------------------

    def request_flush(self) -> None:
        """Flush once at the end of this event-loop iteration (batches many inputs)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush(self.loop.time())

    def flush(self, now: float) -> None:
        self.hold_frames()
        try:
            self._flush(now)
        finally:
            self.release_frames()

    def _flush(self, now: float) -> None:
        for _ in range(_FLUSH_ROUNDS):
            while self._loopback:
                self.on_packet(self._loopback.popleft(), None, now)
            if not self._dirty:
                break
            dirty, self._dirty = self._dirty, {}
            for endpoint in dirty:
                self._flush_endpoint(endpoint, now)
        else:
            self.request_flush()  # still busy: continue on the next loop iteration
        self.on_tunnel_activity(now)

    def _flush_endpoint(self, endpoint: StreamEndpoint, now: float) -> None:
        conn = endpoint.conn
        app = endpoint.app
        if app is not None and conn.readable_bytes:
            app.deliver(now)
        # Local events first: a dialer's reply or an accept wakes its application before our
        # datagrams wake the peer daemon (which, on a busy 2-core host, may preempt us).
        events = conn.pop_events()
        for event in events:
            self._on_event(endpoint, event, now)
        for segment in conn.segments_to_send(now):
            self._emit(endpoint.key, segment, now)
        if events and not conn.is_closed:
            # Handlers may have queued output (e.g. the echo's FIN after the peer's): flush again
            # in the next round. Loop-free: a second pass produces no new events.
            self._dirty[endpoint] = None
        if conn.state is State.TIME_WAIT:
            # Nothing more can reach the application, and the machine is done: release the pair
            # (and fd) and keep a remnant, not the whole stream (a dial loop leaves thousands).
            self._enter_time_wait(endpoint, now)
            return
        if endpoint.app is not None and not conn.is_closed:
            endpoint.app.update_interest()
        if conn.is_closed:
            self._forget(endpoint)
        else:
            self._track_live(endpoint, True)
            self._schedule(endpoint, conn.next_deadline())

    def _enter_time_wait(self, endpoint: StreamEndpoint, now: float) -> None:
        conn = endpoint.conn
        queue = conn.receive_queue
        self._forget(endpoint, keep_port=True)
        had_remnants = len(self.time_wait) > 0
        self.time_wait.add(endpoint.key, snd_nxt=conn.snd_nxt, rcv_nxt=queue.rcv_nxt,
                           window_units=queue.advertised_units(), reuse=endpoint.reuse, now=now)
        if not had_remnants:
            self._schedule(self.time_wait, self.time_wait.next_deadline())

    def _end_time_wait(self, key: ConnKey) -> None:
        remnant = self.time_wait.remove(key)
        if remnant is not None:
            self.ports.connection_closed(STREAM, key[0], reuse=remnant.reuse)

    def _path_mss(self, node: int) -> int:
        """Larger segments within this node and to peers reached over the host's loopback."""
        transport = self.config.transport
        if not transport.loopback_mss:
            return transport.mss
        if node == self.own.node:
            return transport.loopback_mss
        path = self.peers.path_of(node)
        if path is None or path.relayed:
            return transport.mss
        return transport.loopback_mss if is_loopback_host(path.address[0]) else transport.mss

    def _on_event(self, endpoint: StreamEndpoint, event: ConnEvent, now: float) -> None:
        if event is ConnEvent.ESTABLISHED:
            endpoint.established = True
            mss = self._path_mss(endpoint.remote.node)
            if mss != endpoint.conn.mss:
                endpoint.conn.use_mss(mss)
            if endpoint.on_dial_result is not None:
                callback, endpoint.on_dial_result = endpoint.on_dial_result, None
                callback(endpoint, ErrorCode.OK)
            elif endpoint.listener is not None:
                listener = endpoint.listener
                listener.half_open -= 1
                if listener.closed or not listener.on_accept(endpoint):
                    endpoint.conn.abort(now)
                    self._dirty[endpoint] = None
        elif event is ConnEvent.PEER_EOF or event is ConnEvent.PEER_GONE:
            if endpoint.app is not None:
                endpoint.app.on_peer_eof(now)
        elif event in (ConnEvent.REFUSED, ConnEvent.RESET, ConnEvent.TIMED_OUT):
            code = {ConnEvent.REFUSED: ErrorCode.REFUSED, ConnEvent.RESET: ErrorCode.RESET,
                    ConnEvent.TIMED_OUT: ErrorCode.TIMED_OUT}[event]
            self._fail(endpoint, code, now)

    def _fail(self, endpoint: StreamEndpoint, code: ErrorCode, now: float) -> None:
        if endpoint.on_dial_result is not None:
            callback, endpoint.on_dial_result = endpoint.on_dial_result, None
            callback(endpoint, code)
        elif endpoint.app is not None:
            endpoint.app.on_failed(code, now)

    def fail_dials_to(self, node: int, code: ErrorCode, now: float) -> None:
        """The tunnel cannot reach ``node``: fail dials in progress at once."""
        for endpoint in list(self.streams.values()):
            if endpoint.remote.node == node and endpoint.on_dial_result is not None:
                self._fail(endpoint, code, now)
                endpoint.conn.abort(now)
                self._dirty[endpoint] = None
        self.request_flush()

    def _forget(self, endpoint: StreamEndpoint, *, keep_port: bool = False) -> None:
        if self.streams.get(endpoint.key) is endpoint:
            del self.streams[endpoint.key]
            endpoint.conn.stats.add_to(self.counters)
            if not keep_port:
                self.ports.connection_closed(STREAM, endpoint.local_port, reuse=endpoint.reuse)
        self._track_live(endpoint, False)
        if endpoint.listener is not None and not endpoint.established:
            endpoint.listener.half_open -= 1
            endpoint.established = True  # count the half-open slot once
        if endpoint.on_dial_result is not None:
            callback, endpoint.on_dial_result = endpoint.on_dial_result, None
            callback(endpoint, ErrorCode.RESET)
        self._schedule(endpoint, None)
        self._dirty.pop(endpoint, None)
        if endpoint.app is not None:  # detach the application and let it close (or drain)
            app, endpoint.app = endpoint.app, None
            app.on_closed()

    def _emit(self, key: ConnKey, segment: OutSegment, now: float) -> None:
        """Send ``segment`` on the connection ``key`` (a stream's, or a TIME_WAIT remnant's)."""
        local_port, network, node, remote_port = key
        packet = Packet(segment.flags, STREAM, self.own.network, self.own.node, network, node,
                        local_port, remote_port, segment.seq, segment.ack, segment.window_units, segment.payload)
        self._route(packet, now)

    def _send_reset(self, packet: Packet, now: float) -> None:
        reply = Packet(RST, STREAM, self.own.network, self.own.node, packet.src_network, packet.src_node,
                       packet.dst_port, packet.src_port, 0, 0, 0, b"")
        self._route(reply, now)

    def _route(self, packet: Packet, now: float) -> None:
        if packet.dst_node == self.own.node:
            self._loopback.append(packet)
            return
        sealed = self.peers.seal(packet.dst_node, encode_packet(packet), now)
        if sealed is not None:
            self._send_frame(*sealed)

    # -- timers -----------------------------------------------------------------------------

    def on_timer(self, key: Hashable, now: float) -> None:
        if key is self.time_wait:
            for ended, remnant in self.time_wait.expire(now):
                self.ports.connection_closed(STREAM, ended[0], reuse=remnant.reuse)
            self._schedule(self.time_wait, self.time_wait.next_deadline())
            return
        endpoint = key
        if not isinstance(endpoint, StreamEndpoint) or self.streams.get(endpoint.key) is not endpoint:
            return
        conn = endpoint.conn
        was_handshaking = conn.state is State.SYN_SENT
        conn.on_timer(now)
        if was_handshaking and conn.state is State.SYN_SENT:
            self.peers.retry_key_exchange(endpoint.remote.node, now)
        self._dirty[endpoint] = None
        self.flush(now)

    def shutdown(self, now: float) -> None:
        """Daemon exit: FIN where possible (RST for half-open), then flush once."""
        for endpoint in list(self.streams.values()):
            state = endpoint.conn.state
            if state in (State.ESTABLISHED, State.CLOSE_WAIT):
                endpoint.conn.shutdown_write(now)
            elif state in (State.SYN_SENT, State.SYN_RECEIVED):
                endpoint.conn.abort(now)
            self._dirty[endpoint] = None
        self.flush(now)
