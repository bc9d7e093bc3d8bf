"""contrib/systemd: each unit passes `systemd-analyze --user verify`, and keeps our rules.

systemd-analyze comes with Debian's `systemd` package (scripts/deps.sh installs it). Without
it the verification is skipped, except under `make test` (MAILTIDE_REQUIRE_SERVERS=1), where
a missing tool fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
INSTALLED_AT = "%h/.local/bin/mailtide"
DAEMONS = ("mailtide.service", "mailtide@.service")
SERVICES = (*DAEMONS, "mailtide-oneshot@.service")
TIMER = "mailtide-oneshot@.timer"
# What verify is asked to load: an instance stands for each template.
INSTANCES = {
    "mailtide.service": "mailtide.service",
    "mailtide@.service": "mailtide@work.service",
    "mailtide-oneshot@.service": "mailtide-oneshot@work.service",
    TIMER: "mailtide-oneshot@work.timer",
}
# Debian 12 has systemd 252: nothing newer may be needed.
NEWER_THAN_252 = ("RestartSteps", "RestartMaxDelaySec", "ReloadSignal", "ImportCredential")

Settings = dict[str, list[tuple[str, str]]]


def settings_of(unit: str) -> Settings:
    """The unit's settings per section, in order, comments left out (keys may repeat)."""
    sections: Settings = {}
    current: list[tuple[str, str]] = []
    for line in (UNITS / unit).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def value(settings: Settings, section: str, key: str) -> str | None:
    """The value that counts (the last one), or None when the key is not set."""
    values = [v for k, v in settings.get(section, []) if k == key]
    return values[-1] if values else None


def test_every_unit_is_covered() -> None:
    on_disk = {p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer")}
    assert on_disk == set(INSTANCES)


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        message = "systemd-analyze is missing: apt-get install systemd (make deps does)"
        if os.environ.get("MAILTIDE_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return tool


@pytest.mark.parametrize("credential", [False, True], ids=["as-shipped", "with-credential"])
@pytest.mark.parametrize("unit", sorted(INSTANCES))
def test_systemd_analyze_verifies_the_unit(
    unit: str, systemd_analyze: str, tmp_path: Path, credential: bool
) -> None:
    """As shipped, and with the commented LoadCredential= line taken in."""
    # ExecStart must name an executable that exists: a stand-in for the installed mailtide.
    mailtide = tmp_path / "bin" / "mailtide"
    mailtide.parent.mkdir()
    mailtide.write_text("#!/bin/sh\nexit 0\n")
    mailtide.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for source in UNITS.iterdir():
        if source.name in INSTANCES:
            text = source.read_text().replace(INSTALLED_AT, str(mailtide))
            if credential:
                text = text.replace("\n#LoadCredential=", "\nLoadCredential=")
            (units / source.name).write_text(text)
    runtime = tmp_path / "runtime"  # a user manager needs one; CI has no login session
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [systemd_analyze, "--user", "--man=no", "verify", INSTANCES[unit]],
        cwd=units,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # A warning (an unknown key, a value that does not parse) is a failure too.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("unit", DAEMONS)
def test_daemon_units_notify_restart_and_reload(unit: str) -> None:
    unit_settings = settings_of(unit)
    service = dict(unit_settings["Service"])
    assert service["Type"] == "notify"
    assert service["WatchdogSec"] == "120"
    assert service["Restart"] == "on-failure"
    assert service["RestartSec"] == "30"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert 0 < int(service["TimeoutStopSec"]) <= 120
    assert value(unit_settings, "Install", "WantedBy") == "default.target"
    # No start limit that could leave the user without mail until the next login.
    assert value(unit_settings, "Unit", "StartLimitIntervalSec") == "0"


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("mailtide.service", "daemon"),
        ("mailtide@.service", "daemon -a %i"),
        ("mailtide-oneshot@.service", "sync -a %i"),
    ],
)
def test_exec_start_runs_the_user_installed_mailtide(unit: str, command: str) -> None:
    assert value(settings_of(unit), "Service", "ExecStart") == f"{INSTALLED_AT} {command}"


@pytest.mark.parametrize("unit", SERVICES)
def test_services_are_hardened_as_far_as_a_user_unit_allows(unit: str) -> None:
    unit_settings = settings_of(unit)
    service = dict(unit_settings["Service"])
    for key in ("NoNewPrivileges", "LockPersonality", "RestrictRealtime"):
        assert service[key] == "yes", key
    assert service["SystemCallFilter"] == "@system-service"
    # AF_UNIX: gpg-agent (pass), D-Bus, sd_notify; AF_NETLINK: getaddrinfo.
    assert set(service["RestrictAddressFamilies"].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    # password_command tools may need the real /tmp (ssh-agent, Kerberos).
    assert "PrivateTmp" not in service


@pytest.mark.parametrize("unit", SERVICES)
def test_services_show_the_password_as_a_systemd_credential(unit: str) -> None:
    """Each service shows, commented out, both ways systemd hands over a credential, under
    the name the config's password_credential reads."""
    text = (UNITS / unit).read_text()
    assert '#   password_credential = "mail-work"' in text
    assert "\n#LoadCredential=mail-work:" in text
    assert "\n#SetCredentialEncrypted=mail-work: " in text
    assert "systemd-creds encrypt --user --name=mail-work --pretty" in text
    assert "CREDENTIALS_DIRECTORY/" not in text, "the credential is read by mailtide itself"


@pytest.mark.parametrize("unit", [*SERVICES, TIMER])
def test_no_unit_needs_more_than_debian_12s_systemd(unit: str) -> None:
    unit_settings = settings_of(unit)
    keys = {key for section in unit_settings.values() for key, _ in section}
    assert keys.isdisjoint(NEWER_THAN_252)
    assert value(unit_settings, "Service", "Type") != "notify-reload"
    # A start limit (a burst in any section, old spellings too) with an interval other than 0
    # can stop the restarts for good.
    limits = {k: v for section in unit_settings.values() for k, v in section if "StartLimit" in k}
    if "StartLimitBurst" in limits:
        assert limits.get("StartLimitIntervalSec", limits.get("StartLimitInterval")) == "0"


def test_the_oneshot_has_time_for_a_first_sync() -> None:
    service = dict(settings_of("mailtide-oneshot@.service")["Service"])
    assert service["Type"] == "oneshot"
    # systemd's default of 90 s would kill every first sync of a large account.
    assert service["TimeoutStartSec"] == "2h"


def test_the_timer_fires_every_15_minutes_also_after_a_resume() -> None:
    timer = settings_of(TIMER)
    assert value(timer, "Timer", "OnCalendar") == "*:0/15"
    assert value(timer, "Timer", "Persistent") == "true"
    assert value(timer, "Install", "WantedBy") == "timers.target"
