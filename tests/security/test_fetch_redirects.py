"""fetchurl follows redirects only to http and https, and never from https down to http unless
asked (issue 8, 1.3). Real servers on 127.0.0.1: HTTP, HTTPS with a throw-away certificate, and a
plain TCP listener standing in for an FTP server that must never be contacted."""
import hashlib
import http.server
import socket
import ssl
import subprocess
import threading
from os.path import join

import pytest

from pylightnix import FetchError, fetchurl, instantiate, realize, rref2path, store_rrefs_

DATA = b"the real content\n"
SHA = hashlib.sha256(DATA).hexdigest()


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 answering /data with DATA and /go?<url> with a 302 to <url>."""

    def __init__(self, context=None):
        self.hits = []
        hits = self.hits

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                if self.path.startswith("/go?"):
                    self.send_response(302)
                    self.send_header("Location", self.path[4:])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(DATA)))
                    self.end_headers()
                    self.wfile.write(DATA)

            def log_message(self, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        if context is not None:
            self.srv.socket = context.wrap_socket(self.srv.socket, server_side=True)
        self.scheme = "https" if context else "http"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.srv.server_address[1]}{path}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def http_srv():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def https_srv(tmp_path, monkeypatch):
    """An HTTPS server whose self-signed certificate (for IP 127.0.0.1) the client is told to trust."""
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    s = Server(ctx)
    yield s
    s.close()


@pytest.fixture
def ftp_listener():
    """A TCP listener that records whether anybody connects (an FTP server fetchurl must not reach)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    sock.settimeout(0.2)
    connected = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                c, _ = sock.accept()
            except OSError:
                continue
            connected.append(1)
            c.sendall(b"220 hello\r\n")
            c.close()
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1], connected
    stop.set()
    t.join(2)
    sock.close()


def test_https_server_works_when_trusted(store, https_srv):
    r = realize(instantiate(fetchurl, url=https_srv.url("/data"), sha256=SHA, mode="as-is", name="ok",
                            filename="data"))
    assert open(join(rref2path(r), "data"), "rb").read() == DATA


def test_redirect_to_ftp_is_refused_without_connecting(store, http_srv, ftp_listener):
    port, connected = ftp_listener
    start = http_srv.url(f"/go?ftp://127.0.0.1:{port}/data")
    clo = instantiate(fetchurl, url=start, sha256=SHA, mode="as-is", name="ftp", filename="data")
    with pytest.raises(FetchError, match=r"only http and https") as e:
        realize(clo)
    assert start in str(e.value) and f"ftp://127.0.0.1:{port}/data" in str(e.value)
    assert connected == [] and store_rrefs_(clo.dref) == []


def test_redirect_to_file_is_refused(store, http_srv, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(DATA)
    clo = instantiate(fetchurl, url=http_srv.url(f"/go?file://{secret}"), sha256=SHA, mode="as-is", name="f",
                      filename="data")
    with pytest.raises(FetchError, match="redirect"):
        realize(clo)
    assert store_rrefs_(clo.dref) == []


def test_https_to_http_downgrade_needs_permission(store, https_srv, http_srv):
    target = http_srv.url("/data")
    start = https_srv.url(f"/go?{target}")
    clo = instantiate(fetchurl, url=start, sha256=SHA, mode="as-is", name="down", filename="data")
    with pytest.raises(FetchError, match="allow_downgrade=True") as e:
        realize(clo)
    assert start in str(e.value) and target in str(e.value)
    assert http_srv.hits == [] and store_rrefs_(clo.dref) == []
    r = realize(instantiate(fetchurl, url=start, sha256=SHA, mode="as-is", name="down", filename="data",
                            allow_downgrade=True))
    assert open(join(rref2path(r), "data"), "rb").read() == DATA and http_srv.hits == ["/data"]


def test_http_to_https_upgrade_and_http_to_http_are_followed(store, https_srv, http_srv):
    for name, start in [("up", http_srv.url("/go?" + https_srv.url("/data"))),
                        ("same", http_srv.url("/go?" + http_srv.url("/data")))]:
        r = realize(instantiate(fetchurl, url=start, sha256=SHA, mode="as-is", name=name, filename="data"))
        assert open(join(rref2path(r), "data"), "rb").read() == DATA
