"""The adapter stays up under hostile or broken DAP input, on stdio and on TCP: each bad
message gets an error response or an ``output`` event, and the next request is answered."""
import threading
import time

import pytest

from adapter_probes import INIT_ARGS
from dap_adapter.common.messaging import MAX_HEADER, BadMessage, MessageReader, encode
from dap_testlib import SchemaChecker, spawn_pipes, spawn_tcp

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["pipes", "tcp"])
def adapter(request):
    c = spawn_pipes(SchemaChecker()) if request.param == "pipes" else spawn_tcp(SchemaChecker())
    yield c
    c.close()


def _body(data: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def _still_serving(c) -> None:
    assert c.proc.poll() is None, "the adapter died"
    assert c.request("initialize", INIT_ARGS, timeout=20)["body"]["supportsFunctionBreakpoints"] is True


def _said(c, text: str, timeout: float = 20) -> None:
    c.event("output", timeout=timeout, pred=lambda m: text in m["body"]["output"])


@pytest.mark.parametrize("seq", ['"7"', "1.5", "null", "[1]", "{}", "true"])
def test_request_whose_seq_is_not_an_integer(adapter, seq):
    adapter.send_raw(_body(b'{"seq": %s, "type": "request", "command": "threads"}' % seq.encode()))
    _said(adapter, "seq must be an integer")
    _still_serving(adapter)


def test_response_with_a_bad_request_seq(adapter):
    adapter.send_raw(_body(b'{"seq": 3, "type": "response", "request_seq": [1], "success": true, '
                           b'"command": "runInTerminal"}'))
    _said(adapter, "request_seq")
    _still_serving(adapter)


def test_deeply_nested_json(adapter):
    adapter.send_raw(_body(b"[" * 200_000))
    _said(adapter, "invalid JSON body")
    adapter.send_raw(_body(b'{"seq": 4, "type": "request", "command": "threads", "arguments": '
                           + b"[" * 200_000 + b"]" * 200_000 + b"}"))
    _said(adapter, "invalid input (json)")
    _still_serving(adapter)


def test_huge_header_without_terminator(adapter):
    """80 MB of header and no blank line: refused once, in linear time, then business as usual."""
    chunk = b"9" * (1 << 20)
    errors = []

    def flood():
        try:
            adapter.send_raw(b"Content-Length: ")
            for _ in range(80):
                adapter.send_raw(chunk)
        except OSError as e:
            errors.append(e)

    t0 = time.monotonic()
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the adapter stopped reading (80 MB not consumed in 60 s)"
    assert not errors, errors
    _said(adapter, f"header longer than {MAX_HEADER} bytes")
    adapter.send_raw(b"\r\n\r\n")  # the end of that "header": garbage, reported once
    _still_serving(adapter)
    elapsed = time.monotonic() - t0
    print(f"80 MB header consumed and next request answered in {elapsed:.2f}s")
    assert elapsed < 30
    # one report for the header and one for the garbage after it, not one per chunk
    reports = [m for m in adapter.events("output") if "invalid input" in m["body"]["output"]]
    assert len(reports) <= 3, [m["body"]["output"] for m in reports]


def test_reader_is_linear_on_garbage():
    """Unit level: 64 MB of garbage without any header is skipped in bounded memory and time."""
    block = b"x" * 65536
    left = [1024]

    def chunk():
        if left[0] == 0:
            return b""
        left[0] -= 1
        return block if left[0] else block + encode({"seq": 1, "type": "request", "command": "threads"})

    r = MessageReader(chunk)
    t0 = time.monotonic()
    first = r.read()
    assert isinstance(first, BadMessage) and "67108864 bytes skipped" in first.detail
    assert r.read()["command"] == "threads"
    assert len(r._buf) == 0
    assert time.monotonic() - t0 < 10
