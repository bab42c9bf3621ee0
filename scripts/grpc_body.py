#!/usr/bin/env python3
"""gRPC-framed protobuf request bodies for h2load, built without generated
code: `grpc_body.py OUT_DIR ACCOUNT` writes quote.bin, cost.bin (run
"bench-run"), usage.bin (by day and line item) and health.bin. The Quote has
the shape `billing load` sends: gpt-4o-mini 1,200 in / 300 out, slack x 1."""
import sys


def varint(n):
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def field(number, value):
    """A varint field for an int, else a length-delimited one."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def framed(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def main(out_dir, account):
    llm = field(1, "gpt-4o-mini") + field(2, 1200) + field(3, 300)
    tool = field(1, "slack") + field(2, 1)
    bodies = {
        "quote": field(1, account) + field(2, "w1") + field(3, "agent-3") + field(4, field(1, llm)) + field(4, field(2, tool)),
        "cost": field(1, account) + field(2, "bench-run"),
        "usage": field(1, account) + field(4, 1) + field(4, 3),  # group_by: day, line item
        "health": b"",
    }
    for name, message in bodies.items():
        with open(f"{out_dir}/{name}.bin", "wb") as out:
            out.write(framed(message))


if __name__ == "__main__":
    main(*sys.argv[1:3])
