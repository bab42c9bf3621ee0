"""A raw HTTP/2 peer over a socket: frames written byte by byte as a test
wants them (valid or not), frames read back and parsed. Every read has a
deadline and every loop is bounded, so a misbehaving server fails a test
instead of hanging it.

Outgoing header blocks use HPACK literals without indexing (stateless, so a
frame can be repeated or dropped freely); incoming header blocks are decoded
with the `hpack` package (the server may use its dynamic table).
"""

import select
import socket
import struct
import time
from dataclasses import dataclass

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
               "WINDOW_UPDATE", "CONTINUATION"]

# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB

MAX_FRAME_SIZE = 16384  # the server does not raise SETTINGS_MAX_FRAME_SIZE


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame; the length field is the payload's real length."""
    return raw_frame(len(payload), ftype, flags, stream_id, payload)


def raw_frame(length: int, ftype: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """One frame with any length field, for malformed frames."""
    return struct.pack(">I", length)[1:] + struct.pack(">BBI", ftype, flags, stream_id & 0x7FFFFFFF) + payload


def settings(*pairs: tuple[int, int], ack: bool = False) -> bytes:
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def ping(data: bytes = b"\0" * 8, ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, data)


def rst_stream(stream_id: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def _hpack_int(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(headers: list[tuple[str, str | bytes]]) -> bytes:
    """HPACK: every field a literal without indexing, new name, no Huffman."""
    out = bytearray()
    for name, value in headers:
        n = name.encode()
        v = value if isinstance(value, bytes) else value.encode()
        out += b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v
    return bytes(out)


def headers_frames(stream_id: int, headers, end_stream: bool = False) -> bytes:
    """HEADERS (+ CONTINUATION frames when the block exceeds a frame)."""
    block = encode_headers(headers)
    chunks = [block[i:i + MAX_FRAME_SIZE] for i in range(0, len(block), MAX_FRAME_SIZE)] or [b""]
    out = bytearray()
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        flags = (END_HEADERS if last else 0)
        if index == 0:
            flags |= END_STREAM if end_stream else 0
            out += frame(HEADERS, flags, stream_id, chunk)
        else:
            out += frame(CONTINUATION, flags, stream_id, chunk)
    return bytes(out)


def grpc_request_headers(path: str, extra=()) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra]


def grpc_message(body: bytes, compressed: bool = False) -> bytes:
    return struct.pack(">BI", 1 if compressed else 0, len(body)) + body


def data_frame(stream_id: int, body: bytes, end_stream: bool = True) -> bytes:
    return frame(DATA, END_STREAM if end_stream else 0, stream_id, body)


def grpc_call(stream_id: int, path: str, body: bytes, extra_headers=(), compressed: bool = False) -> bytes:
    """A whole unary gRPC request: HEADERS, then one DATA frame with END_STREAM."""
    return (headers_frames(stream_id, grpc_request_headers(path, extra_headers))
            + data_frame(stream_id, grpc_message(body, compressed)))


@dataclass
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes
    headers: list | None = None  # decoded, for HEADERS (with CONTINUATIONs folded in)

    @property
    def name(self) -> str:
        return FRAME_NAMES[self.type] if self.type < len(FRAME_NAMES) else f"type{self.type}"

    @property
    def error_code(self) -> int:
        """For RST_STREAM and GOAWAY."""
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        raise ValueError(f"{self.name} has no error code")

    @property
    def last_stream_id(self) -> int:
        assert self.type == GOAWAY
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    def __repr__(self):
        extra = ""
        if self.type in (RST_STREAM, GOAWAY):
            extra = f" code=0x{self.error_code:x}"
        if self.type == GOAWAY:
            extra += f" last={self.last_stream_id} debug={self.payload[8:]!r}"
        if self.headers is not None:
            extra = f" {self.headers}"
        return f"<{self.name} stream={self.stream_id} flags=0x{self.flags:x} len={len(self.payload)}{extra}>"


class RawPeer:
    """One cleartext (h2c) client connection to the server. `frames`
    accumulates everything the server sent; `closed` turns true once the
    server closed (EOF or reset). The server's SETTINGS are acknowledged."""

    def __init__(self, address, *, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.frames: list[Frame] = []
        self.closed = False
        self.reset_by_peer = False
        self.send_failed = False
        self.send_timed_out = False
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self._pending_headers: Frame | None = None

    # -- sending

    def send(self, data: bytes) -> bool:
        """Writes all of `data`; False when the server had closed the
        connection or stopped reading for `timeout` seconds."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True
            return False
        except socket.timeout:
            self.send_timed_out = True
            return False

    def start(self) -> None:
        """A valid client start: preface and an empty SETTINGS frame."""
        assert self.send(PREFACE + settings())

    # -- receiving

    def _read_some(self, wait: float) -> bool:
        """Reads what is available within `wait` seconds. False when nothing came."""
        if self.closed:
            return False
        if not select.select([self.sock], [], [], max(wait, 0))[0]:
            return False
        try:
            data = self.sock.recv(1 << 16)  # readable, so this does not block
        except socket.timeout:
            return False
        except OSError as error:
            self.reset_by_peer = isinstance(error, ConnectionResetError)
            self.closed = True
            return True
        if not data:
            self.closed = True
            return True
        self.buffer += data
        self._parse()
        return True

    def _parse(self) -> None:
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                return
            ftype, flags, stream_id = struct.unpack(">BBI", self.buffer[3:9])
            payload = bytes(self.buffer[9:9 + length])
            del self.buffer[:9 + length]
            f = Frame(ftype, flags, stream_id & 0x7FFFFFFF, payload)
            if ftype in (HEADERS, CONTINUATION):
                self._header_fragment(f)
                continue
            if ftype == SETTINGS and not flags & ACK:
                self.send(settings(ack=True))
            self.frames.append(f)

    def _header_fragment(self, f: Frame) -> None:
        if f.type == HEADERS:
            block = f.payload
            if f.flags & 0x8:  # PADDED
                pad = block[0]
                block = block[1:len(block) - pad]
            if f.flags & 0x20:  # PRIORITY
                block = block[5:]
            self._pending_headers = Frame(HEADERS, f.flags, f.stream_id, block)
        else:
            assert self._pending_headers is not None, "CONTINUATION without HEADERS"
            self._pending_headers.payload += f.payload
            self._pending_headers.flags |= f.flags & END_HEADERS
        if self._pending_headers.flags & END_HEADERS:
            done = self._pending_headers
            self._pending_headers = None
            done.headers = [(n.decode() if isinstance(n, bytes) else n, v.decode() if isinstance(v, bytes) else v)
                            for n, v in self.decoder.decode(done.payload, raw=True)]
            self.frames.append(done)

    def pump(self) -> None:
        """Reads whatever is already available, without waiting."""
        for _ in range(1000):  # bounded: at most 64 MiB per call
            if not self._read_some(0):
                return

    def read_until(self, predicate, timeout: float) -> bool:
        """Reads until predicate(self) holds, the server closes, or `timeout`
        passes. Returns whether the predicate held."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                return predicate(self)
            self._read_some(min(remaining, 0.2))
        return True

    def wait_closed(self, timeout: float) -> bool:
        return self.read_until(lambda p: p.closed, timeout)

    # -- what the server sent

    def goaway(self) -> Frame | None:
        return next((f for f in self.frames if f.type == GOAWAY), None)

    def stream_frames(self, stream_id: int) -> list[Frame]:
        return [f for f in self.frames if f.stream_id == stream_id]

    def stream_done(self, stream_id: int) -> bool:
        """The server ended the stream (END_STREAM or RST_STREAM)."""
        return any(f.stream_id == stream_id and (f.type == RST_STREAM or
                                                 (f.type in (HEADERS, DATA) and f.flags & END_STREAM))
                   for f in self.frames)

    def response_headers(self, stream_id: int) -> dict[str, str]:
        """All header fields the server sent on a stream (headers and trailers)."""
        fields = {}
        for f in self.stream_frames(stream_id):
            if f.headers is not None:
                fields.update(dict(f.headers))
        return fields

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        shown = self.frames[:20]
        more = f" (+{len(self.frames) - 20} more)" if len(self.frames) > 20 else ""
        return (f"closed={self.closed} reset={self.reset_by_peer} send_timed_out={self.send_timed_out} "
                f"frames={shown}{more}")


def flood(peer: RawPeer, unit, count: int, *, batch: int = 200, time_limit: float = 20.0) -> int:
    """Sends `unit(i)` for i in range(count) in batches, reading between
    batches so the server's replies never fill our receive buffer. Stops early
    when the server sent GOAWAY or closed. Returns how many units were sent."""
    deadline = time.monotonic() + time_limit
    sent = 0
    while sent < count and time.monotonic() < deadline:
        n = min(batch, count - sent)
        if not peer.send(b"".join(unit(i) for i in range(sent, sent + n))):
            break
        sent += n
        peer.pump()
        if peer.closed or peer.goaway() is not None:
            break
    return sent
