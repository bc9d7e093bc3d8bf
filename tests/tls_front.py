"""A TLS 1.3 front on 127.0.0.1 that requires a client certificate, before a plain IMAP port.

Dovecot checks a client certificate only at login (``auth_ssl_require_client_cert``): its
handshake takes any certificate, or none.  Servers that refuse in TLS itself (OpenSSL's
``SSL_VERIFY_FAIL_IF_NO_PEER_CERT``, as TLS-terminating proxies do) do it, with TLS 1.3,
*after* the client's side of the handshake has completed: the alert (certificate required,
unknown CA) reaches the client on its first read.  ``TlsFront`` does exactly that, then
relays the accepted connections to the real Dovecot's plain port, so a good certificate
syncs for real.

- ``starttls=False``: TLS from the first byte (the client's first read is the greeting);
- ``starttls=True``: a plain greeting offering STARTTLS, ``tag OK`` to STARTTLS, then the
  handshake; Dovecot's own greeting is swallowed (the client asks CAPABILITY after
  STARTTLS anyway, and that command is the first read that meets the alert).

``connections`` counts the TCP connections accepted, ``refused`` holds the server side's
reason for each handshake it failed.

Blocking sockets in threads, on purpose: an asyncio server aborts its transport on a failed
handshake without sending the alert OpenSSL wrote, so its clients see only an end of stream.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
from pathlib import Path

HOST = "127.0.0.1"
_CAPABILITIES = b"IMAP4rev1 STARTTLS LOGINDISABLED"


class TlsFront:
    """Listen on 127.0.0.1 (``port``), require a client certificate of ``client_ca``,
    forward to the plain IMAP port ``target_port``."""

    def __init__(
        self,
        target_port: int,
        certificate: tuple[Path, Path],
        client_ca: Path,
        starttls: bool = False,
    ) -> None:
        self.target = (HOST, target_port)
        self.starttls = starttls
        self.connections = 0
        self.refused: list[str] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_3
        self._context.load_cert_chain(*certificate)
        self._context.load_verify_locations(client_ca)
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def __enter__(self) -> TlsFront:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)  # a hang guard: no test waits this long
        try:
            if self.starttls and not _plain_part(raw):
                raw.close()
                return
            # The handshake; on failure OpenSSL has written the alert to the socket already.
            tls = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self._lock:
                self.refused.append(getattr(e, "reason", None) or str(e))
            raw.close()
            return
        try:
            plain = socket.create_connection(self.target, timeout=10)
            if self.starttls:
                _read_line(plain)  # Dovecot's greeting: the client had the front's
        except OSError:
            tls.close()
            return
        _relay(tls, plain)


def _plain_part(raw: socket.socket) -> bool:
    """The greeting and the commands before STARTTLS; True once STARTTLS is answered."""
    raw.sendall(b"* OK [CAPABILITY " + _CAPABILITIES + b"] front ready\r\n")
    while line := _read_line(raw):
        tag, _, command = line.strip().partition(b" ")
        verb = command.upper()
        if verb == b"STARTTLS":
            raw.sendall(tag + b" OK begin TLS\r\n")
            return True
        if verb == b"CAPABILITY":
            raw.sendall(b"* CAPABILITY " + _CAPABILITIES + b"\r\n" + tag + b" OK done\r\n")
        else:
            raw.sendall(tag + b" BAD STARTTLS first\r\n")
    return False


def _read_line(s: socket.socket) -> bytes:
    """One line, byte by byte (nothing after it may be read: it may be a TLS ClientHello)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = s.recv(1)
        if not byte:
            return b""
        line += byte
    return line


def _relay(tls: ssl.SSLSocket, plain: socket.socket) -> None:
    """Both ways until either side ends.  One thread reads and writes the TLS socket (an
    OpenSSL connection must not be read and written from two threads at once)."""
    tls.settimeout(None)
    plain.settimeout(None)
    with tls, plain, selectors.DefaultSelector() as selector:
        selector.register(tls, selectors.EVENT_READ, plain)
        selector.register(plain, selectors.EVENT_READ, tls)
        while True:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                if not _forward(source, key.data):
                    return


def _forward(source: socket.socket, sink: socket.socket) -> bool:
    """What ``source`` has (for TLS, also what OpenSSL holds decrypted); False at its end."""
    while True:
        try:
            data = source.recv(65536)
            if not data:
                return False
            sink.sendall(data)
        except OSError:
            return False
        if not (isinstance(source, ssl.SSLSocket) and source.pending()):
            return True
