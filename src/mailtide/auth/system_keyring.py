"""``keyring = true``: the password in the system keyring (the ``keyring`` package).

The item is service ``mailtide``, username ``USER@HOST``; ``mailtide password set ACCOUNT``
stores it.  ``keyring`` is an optional extra (``pip install 'mailtide[keyring]'``), imported
only when used.  Its backends block (D-Bus, a file, an unlock prompt), so every call runs in
a thread, off the event loop where the daemon's other accounts live.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from mailtide.auth.source import PasswordError

SERVICE = "mailtide"
NOT_INSTALLED = (
    "keyring = true needs the keyring package, which is not installed:"
    " pip install 'mailtide[keyring]'"
)


def item_name(user: str, host: str) -> str:
    """The keyring username of ``user`` at ``host``."""
    return f"{user}@{host}"


def keyring_module() -> ModuleType:
    try:
        import keyring
    except ImportError:
        raise PasswordError(NOT_INSTALLED) from None
    return keyring


def keyring_failure(what: str, e: Exception) -> PasswordError:
    # Backend errors are one line of the backend's words; none of them holds the password.
    detail = str(e).strip().partition("\n")[0] or type(e).__name__
    return PasswordError(f"{what}: {detail}")


def backend_name() -> str:
    """Which keyring backend is in use, and its file when it has one, for the user."""
    backend = keyring_module().get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    path = getattr(backend, "file_path", None)
    return f"{name} ({path})" if path else name


def store_password(user: str, host: str, password: str) -> None:
    """Store ``password`` for ``user`` at ``host`` (blocking: call from a thread or a CLI)."""
    keyring = keyring_module()
    try:
        keyring.set_password(SERVICE, item_name(user, host), password)
    except Exception as e:  # keyring.errors.KeyringError and the backends' own
        what = f"the system keyring could not store {item_name(user, host)}"
        raise keyring_failure(what, e) from None


@dataclass(frozen=True, slots=True)
class KeyringPassword:
    user: str
    host: str

    @property
    def origin(self) -> str:
        return f'from the system keyring (service "{SERVICE}", {item_name(self.user, self.host)})'

    async def password(self) -> str:
        import asyncio  # here: password_now needs no event loop

        return await asyncio.to_thread(self.password_now)

    def password_now(self) -> str:
        """``password`` for a caller without an event loop (the quiet check, quiet/), which
        may block: the same lookup and errors."""
        keyring = keyring_module()
        name = item_name(self.user, self.host)
        try:
            password = keyring.get_password(SERVICE, name)
        except Exception as e:  # keyring.errors.KeyringError and the backends' own
            what = f"the system keyring could not give the password of {name}"
            raise keyring_failure(what, e) from None
        if not password:
            raise PasswordError(
                f'the system keyring holds no password for service "{SERVICE}", username'
                f" {name}: store one with mailtide password set ACCOUNT"
            )
        return str(password)
