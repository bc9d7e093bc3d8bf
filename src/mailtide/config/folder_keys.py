"""The ``folders`` keys: which folders take part and what they are called locally.

``[repository.NAME] folders.include / .exclude``: patterns (globs or ``re:``) on that
repository's own folder names.  ``[account.NAME] folders.include / .exclude``: patterns
on the **server** names (the remote repository's), as OfflineIMAP's folderfilter;
``folders.rename``: ordered ``{ from = "re", to = "template" }`` rules from server name
to local name; ``folders.map_special``: special-use folders get the names Sent, Drafts,
Trash, Junk, Archive locally.

They combine by one rule: a folder is synced when every filter selects it, the account's
and the remote repository's on its server name, the local repository's on its local name
(``core.folder_rules``).
"""

from __future__ import annotations

from collections.abc import Iterator

from mailtide.config.show import kind_of, show_value
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.folder_rules import FolderRules
from mailtide.core.rename_rule import BadRename, RenameRule

FILTER_KEYS = ("include", "exclude")
ACCOUNT_ONLY_KEYS = ("rename", "map_special")
ACCOUNT_KEYS = (*FILTER_KEYS, *ACCOUNT_ONLY_KEYS)
_RULE_KEYS = ("from", "to")
_RULE = '{ from = "...", to = "..." }'


def rename_problems(value: object) -> Iterator[str]:
    """Each mistake in a ``folders.rename`` value, one line each (``rule 2: ...``)."""
    if not isinstance(value, list):
        yield f"must be a list of {_RULE} tables, not {kind_of(value)}"
        return
    for number, rule in enumerate(value, 1):
        if not isinstance(rule, dict):
            yield f"rule {number} must be a table {_RULE}, not {kind_of(rule)}"
            continue
        for key in sorted(set(rule) - set(_RULE_KEYS)):
            yield f"rule {number}: unknown key {show_value(key)} (a rule has from and to)"
        wrong = [key for key in _RULE_KEYS if not isinstance(rule.get(key), str)]
        for key in wrong:
            got = "missing" if key not in rule else f"{kind_of(rule[key])}, not a string"
            yield f"rule {number}: {key} is {got}"
        if wrong:
            continue
        try:
            RenameRule(rule["from"], rule["to"])
        except BadRename as e:
            yield f"rule {number}: {e}"


def rename_rules(value: list[dict[str, str]]) -> tuple[RenameRule, ...]:
    """The rules of a ``folders.rename`` value that ``rename_problems`` found no fault in."""
    return tuple(RenameRule(rule["from"], rule["to"]) for rule in value)


def account_rules(
    account: FolderFilter,
    remote: FolderFilter,
    local: FolderFilter,
    renames: tuple[RenameRule, ...],
    map_special: bool,
) -> FolderRules:
    """The account's folder rules from its own keys and its two repositories' filters."""
    return FolderRules(
        server_filters=tuple(f for f in (account, remote) if not f.is_default),
        local_filters=(local,) if not local.is_default else (),
        renames=renames,
        map_special=map_special,
    )
