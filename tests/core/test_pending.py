"""pylightnix.wire.pending: the one request/response matcher of the side channel, the adapter's
debugpy connection and the test DAP client."""
import threading

import pytest

from pylightnix.wire.pending import Pending


def test_callback_gets_the_answer_once_and_unknown_answers_are_dropped():
    got = []
    p = Pending()
    p.expect(1, got.append)
    assert p.resolve(1, "a") and not p.resolve(1, "again") and not p.resolve(2, "stranger")
    p.close()
    assert got == ["a"]


def test_wait_times_out_then_gets_the_answer_and_keeps_it_until_discarded():
    p = Pending()
    p.expect(7)
    with pytest.raises(TimeoutError):
        p.wait(7, 0.05)
    threading.Timer(0.05, p.resolve, (7, {"ok": 1})).start()
    assert p.wait(7, 5) == {"ok": 1} and p.wait(7, 0) == {"ok": 1}
    p.discard(7)
    with pytest.raises(KeyError):
        p.wait(7, 0)


def test_close_fails_open_requests_and_later_ones_with_gone():
    failed = []
    p = Pending(gone=lambda rid: f"gone {rid}")
    p.expect(1, failed.append)
    p.expect(2)
    p.expect(3)
    p.resolve(3, "answered")
    waiter = threading.Thread(target=lambda: failed.append(p.wait(2, 10)))
    waiter.start()
    p.close()
    waiter.join(5)
    assert sorted(failed) == ["gone 1", "gone 2"] and p.wait(3, 0) == "answered"
    p.expect(4, failed.append)  # registered after the peer left: failed at once
    assert failed[-1] == "gone 4" and p.wait(5, 0) == "gone 5"


def test_an_answer_racing_the_close_is_delivered_exactly_once():
    for _ in range(200):
        calls = []
        p = Pending(gone=lambda rid: "gone")
        p.expect(1, calls.append)
        t = threading.Thread(target=p.resolve, args=(1, "answer"))
        t.start()
        p.close()
        t.join()
        assert len(calls) == 1, calls


def test_new_ids_are_distinct_across_threads():
    p = Pending()
    ids = []
    threads = [threading.Thread(target=lambda: ids.extend(p.new_id() for _ in range(500))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == list(range(1, 2001))
