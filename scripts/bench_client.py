"""Shared by the Python benchmarks (scripts/bench-*.sh): stubs generated
from schema/ into a work directory, and an authorized channel to a server."""
import os
import sys
from pathlib import Path

import grpc
import grpc_tools
from grpc_tools import protoc


def stubs(work: Path) -> None:
    """Generates the billing.v1 stubs into `work` and puts it on sys.path."""
    schema = Path("schema")
    protos = [str(p.relative_to(schema)) for p in schema.glob("billing/**/*.proto")]
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    assert protoc.main(["protoc", f"-I{schema}", f"-I{well_known}", f"--python_out={work}",
                        f"--grpc_python_out={work}", *protos]) == 0
    sys.path.insert(0, str(work))


def channel(port: str):
    """A ready channel to 127.0.0.1:port and the metadata carrying $BILLING_KEY."""
    opened = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)])
    grpc.channel_ready_future(opened).result(timeout=10)
    return opened, [("authorization", f"Bearer {os.environ['BILLING_KEY']}")]
