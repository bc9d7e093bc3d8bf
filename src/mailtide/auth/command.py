"""``password_command`` (and the OAuth2 ``*_command`` keys): the first line a program prints.

The program runs without a shell, with stdin closed, for at most ``timeout`` seconds.  Its
stdout may hold the password and more, and its arguments a secret of their own
(``gpg --passphrase ...``): an error names the program only, with its exit status and the
first line of its stderr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mailtide.auth.source import COMMAND_TIMEOUT, PasswordError


@dataclass(frozen=True, slots=True)
class PasswordCommand:
    argv: tuple[str, ...] = field(repr=False)
    timeout: float = COMMAND_TIMEOUT
    key: str = "password_command"  # the config key that names it, for messages

    @property
    def shown(self) -> str:
        return self.key + " " + json.dumps(self.argv[0], ensure_ascii=False)

    @property
    def origin(self) -> str:
        return "printed by " + self.shown

    async def password(self) -> str:
        """The first line of the program's output; PasswordError when it fails or prints
        none (``what`` names the secret in the message)."""
        return self._first_line(await self._output())

    def password_now(self) -> str:
        """``password`` for a caller without an event loop (the quiet check, quiet/): the same
        program, limits and errors."""
        import subprocess

        try:
            done = subprocess.run(
                self.argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout
            )
        except OSError as e:
            raise self._not_started(e) from None
        except subprocess.TimeoutExpired:
            raise self._timed_out() from None
        return self._first_line(self._checked(done.returncode, done.stdout, done.stderr))

    def _first_line(self, stdout: bytes) -> str:
        line = stdout.partition(b"\n")[0].removesuffix(b"\r")
        try:
            password = line.decode("utf-8")
        except UnicodeDecodeError:
            raise PasswordError(f"{self.shown} printed a first line that is not UTF-8") from None
        if not password:
            raise PasswordError(f"{self.shown} printed an empty first line")
        return password

    async def _output(self) -> bytes:
        import asyncio  # here: password_now needs no event loop

        from mailtide.deadline import within

        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            raise self._not_started(e) from None
        try:
            stdout, stderr = await within(process.communicate(), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise self._timed_out() from None
        return self._checked(process.returncode, stdout, stderr)

    def _not_started(self, e: OSError) -> PasswordError:
        return PasswordError(f"{self.shown} could not be started: {e.strerror or e}")

    def _timed_out(self) -> PasswordError:
        return PasswordError(f"{self.shown} timed out after {self.timeout:g} s")

    def _checked(self, returncode: int | None, stdout: bytes, stderr: bytes) -> bytes:
        """``stdout`` of a program that exited with 0; else PasswordError saying how it ended."""
        if returncode != 0:
            first = stderr.decode("utf-8", "replace").strip().partition("\n")[0].strip()
            status = (
                f"was killed by signal {-returncode}"
                if returncode is not None and returncode < 0
                else f"failed with exit {returncode}"
            )
            raise PasswordError(f"{self.shown} {status}: {first or '(nothing on stderr)'}")
        return stdout
