"""The daemon's side of its control socket (the protocol: control.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import structlog

from mailtide.daemon.control import MAX_REQUEST, private_dir, runtime_dir
from mailtide.engine.account import AccountReport

log = structlog.get_logger(__name__)


def report_json(report: AccountReport) -> dict[str, Any]:
    return {
        "account": report.name,
        "result": report.result,
        "usage": report.usage,
        "failures": report.failures(),
        "stranded": report.stranded_lines(),
        "counts": report.totals(),
    }


Handler = Callable[[dict[str, Any]], Any]  # returns the answer (a dict), or an awaitable of it


class ControlServer:
    """Serves ``handler`` on this daemon's socket until ``close``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.path = private_dir(runtime_dir()) / f"daemon-{os.getpid()}.sock"
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if len(line) > MAX_REQUEST:
                answer: Any = {"ok": False, "error": "request too long"}
            else:
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    answer = {"ok": False, "error": f"not a JSON request: {exc}"}
                else:
                    answer = self.handler(request)
                    if asyncio.iscoroutine(answer):
                        answer = await answer
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # a bad request must not take the daemon down
            log.error("control.failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
