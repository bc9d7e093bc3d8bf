"""The TOML configuration: ``load_config(path)`` returns a checked ``Config``."""

from mailtide.config.load import ConfigError, default_config_path, default_state_dir, load_config
from mailtide.config.model import (
    Account,
    Config,
    DaemonSettings,
    General,
    Hooks,
    ImapRepository,
    MaildirRepository,
    Repository,
)

__all__ = [
    "Account",
    "Config",
    "ConfigError",
    "DaemonSettings",
    "General",
    "Hooks",
    "ImapRepository",
    "MaildirRepository",
    "Repository",
    "default_config_path",
    "default_state_dir",
    "load_config",
]
