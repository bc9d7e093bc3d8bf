"""OfflineIMAP's ``folderfilter`` and ``nametrans`` are Python lambdas; mailtide's folder rules
are data.  This turns the common simple forms (those README's "Folder rules" table shows) into
``folders.include`` / ``folders.exclude`` patterns and ``folders.rename`` rules.

The source is parsed with ``ast``, never run.  Anything else gives None, and the caller keeps
the original text in a comment: a rule half-translated would sync the wrong folders.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

from mailtide.config.import_toml import REGEX_SPECIAL, braces, glob_literal, regex_literal

# What a server's namespace prefix looks like to OfflineIMAP; mailtide takes it off itself.
_NAMESPACE_PREFIXES = ("INBOX.", "INBOX/")


@dataclass(frozen=True, slots=True)
class Filter:
    """A folderfilter as patterns: selected when it matches an include (none: any) and no
    exclude."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Renames:
    """A nametrans as ``folders.rename`` rules; ``namespace``: it (also) took the server's
    ``INBOX.`` prefix off, which mailtide does without a rule."""

    rules: tuple[dict[str, str], ...]
    namespace: bool = False


def _expression(text: str) -> ast.expr | None:
    """The Python expression ``text`` as a tree, or None when it is not one."""
    try:
        with warnings.catch_warnings():
            # '^INBOX\.' in a plain string: Python warns; the text is read, never run.
            warnings.simplefilter("ignore")
            # In brackets: OfflineIMAP joins a value's continuation lines with newlines.
            return ast.parse("(" + text.strip() + "\n)", mode="eval").body
    except SyntaxError:
        return None


def _lambda(text: str) -> tuple[str, ast.expr] | None:
    tree = _expression(text)
    if not isinstance(tree, ast.Lambda) or len(tree.args.args) != 1:
        return None
    return tree.args.args[0].arg, tree.body


def _is_arg(node: ast.expr, arg: str) -> bool:
    return isinstance(node, ast.Name) and node.id == arg


def _strings(node: ast.expr) -> list[str] | None:
    if not isinstance(node, ast.List | ast.Tuple | ast.Set):
        return None
    items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
    if len(items) != len(node.elts) or not all(isinstance(i, str) for i in items):
        return None
    return [str(i) for i in items]


def _re_call(node: ast.expr, arg: str) -> tuple[str, list[ast.expr]] | None:
    """``re.NAME(args...)`` with the folder as its last argument: (NAME, the other args)."""
    if not isinstance(node, ast.Call) or node.keywords or not node.args:
        return None
    func = node.func
    if not (isinstance(func, ast.Attribute) and _is_arg(func.value, "re")):
        return None
    if not _is_arg(node.args[-1], arg):
        return None
    return func.attr, node.args[:-1]


def _constant(node: ast.expr) -> str | None:
    """A string literal, or literals joined with ``+``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant(node.left), _constant(node.right)
        return None if left is None or right is None else left + right
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _selection(node: ast.expr, arg: str) -> tuple[bool, list[str]] | None:
    """One condition on the folder: (True: it selects / False: it leaves out, the patterns)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _selection(node.operand, arg)
        return None if inner is None else (not inner[0], inner[1])
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and _is_arg(node.left, arg):
        op, right = node.ops[0], node.comparators[0]
        names = _strings(right) if isinstance(op, ast.In | ast.NotIn) else None
        if names is None and isinstance(op, ast.Eq | ast.NotEq):
            single = _constant(right)
            names = None if single is None else [single]
        if names is None:
            return None
        return isinstance(op, ast.In | ast.Eq), [glob_literal(n) for n in names]
    call = _re_call(node, arg)
    if call is not None and call[0] in ("search", "match", "fullmatch") and len(call[1]) == 1:
        pattern = _constant(call[1][0])
        if pattern is None:
            return None
        whole = {"search": ".*(?:{}).*", "match": "(?:{}).*", "fullmatch": "(?:{})"}[call[0]]
        return True, ["re:" + whole.format(pattern)]
    return None


def folder_filter(text: str) -> Filter | None:
    """The patterns of a ``folderfilter`` lambda, or None when its form is not a simple one:
    ``f in [...]``, ``f not in [...]``, ``f == '...'``, ``[not] re.search|match(P, f)``, and
    several of these joined by ``and`` of which at most one selects."""
    parsed = _lambda(text)
    if parsed is None:
        return None
    arg, body = parsed
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    include: list[str] = []
    exclude: list[str] = []
    selecting = 0
    for part in parts:
        found = _selection(part, arg)
        if found is None:
            return None
        selecting += found[0]
        (include if found[0] else exclude).extend(found[1])
    if selecting > 1:  # two includes joined by "and" is an intersection, not a list
        return None
    return Filter(tuple(include), tuple(exclude))


def _literal(pattern: str) -> str | None:
    """The text a regular expression without operators matches, or None."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            if char.isalnum():
                return None  # \d, \w ...: a class, not a character
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in REGEX_SPECIAL:
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


def _sub_rule(pattern: str, replacement: str) -> dict[str, str] | None:
    """``re.sub(pattern, replacement, f)`` as one rename rule, for a whole name (``^X$``) or a
    prefix (``^X``) written as literal text."""
    if not pattern.startswith("^") or "\\" in replacement:
        return None
    whole = pattern.endswith("$") and not pattern.endswith("\\$")
    text = _literal(pattern[1:-1] if whole else pattern[1:])
    if text is None or not text:
        return None
    if whole:
        return {"from": regex_literal(text), "to": braces(replacement)}
    return {"from": regex_literal(text) + "(.*)", "to": braces(replacement) + "{1}"}


def _sliced(node: ast.expr, arg: str) -> list[dict[str, str]] | None:
    """``f[N:] if f.startswith('P') else f`` with N the length of P: P taken off."""
    if not isinstance(node, ast.IfExp) or not _is_arg(node.orelse, arg):
        return None
    test, body = node.test, node.body
    if not (isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute)):
        return None
    prefix = _constant(test.args[0]) if len(test.args) == 1 else None
    if test.func.attr != "startswith" or not _is_arg(test.func.value, arg) or not prefix:
        return None
    if not (isinstance(body, ast.Subscript) and _is_arg(body.value, arg)):
        return None
    cut = body.slice
    if not (isinstance(cut, ast.Slice) and cut.upper is None and cut.step is None):
        return None
    if not (isinstance(cut.lower, ast.Constant) and cut.lower.value == len(prefix)):
        return None
    return [{"from": regex_literal(prefix) + "(.*)", "to": "{1}"}]


def _rules(node: ast.expr, arg: str) -> list[dict[str, str]] | None:
    if _is_arg(node, arg):
        return []
    if isinstance(node, ast.IfExp):
        return _sliced(node, arg)
    call = _re_call(node, arg)
    if call is None and isinstance(node, ast.Call) and len(node.args) == 3:
        # re.sub(P, R, re.sub(...)): the inner call renames first; the rules are exclusive
        # only when each matches a whole name or a distinct prefix, which _sub_rule checks.
        inner = _rules(node.args[2], arg)
        outer = _rules(ast.Call(node.func, [*node.args[:2], ast.Name(arg)], []), arg)
        return None if inner is None or outer is None else outer + inner
    if call is None:
        return _mapping(node, arg)
    name, args = call
    if name != "sub" or len(args) != 2:
        return None
    pattern, replacement = _constant(args[0]), _constant(args[1])
    if pattern is None or replacement is None:
        return None
    rule = _sub_rule(pattern, replacement)
    return None if rule is None else [rule]


def _mapping(node: ast.expr, arg: str) -> list[dict[str, str]] | None:
    """``{'[Gmail]/Sent Mail': 'sent', ...}.get(f, f)`` (the ArchWiki's Gmail example)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    table, method = node.func.value, node.func.attr
    if method != "get" or len(node.args) != 2 or not all(_is_arg(a, arg) for a in node.args):
        return None
    if not isinstance(table, ast.Dict):
        return None
    rules = []
    for key, value in zip(table.keys, table.values, strict=True):
        old, new = (None if k is None else _constant(k) for k in (key, value))
        if old is None or new is None:
            return None
        rules.append({"from": regex_literal(old), "to": braces(new)})
    return rules


def name_translation(text: str) -> Renames | None:
    """The rename rules of a remote repository's ``nametrans`` lambda, or None when its form
    is not one of: ``re.sub('^X$', 'Y', f)``, ``re.sub('^X', 'Y', f)`` (nested too),
    ``{...}.get(f, f)``, or ``f[N:] if f.startswith('X') else f``."""
    parsed = _lambda(text)
    if parsed is None:
        return None
    rules = _rules(parsed[1], parsed[0])
    if rules is None:
        return None
    namespace = [r for r in rules if _is_namespace(r)]
    kept = tuple(r for r in rules if not _is_namespace(r))
    return Renames(kept, namespace=bool(namespace))


def _is_namespace(rule: dict[str, str]) -> bool:
    return rule["to"] == "{1}" and any(
        rule["from"] == regex_literal(prefix) + "(.*)" for prefix in _NAMESPACE_PREFIXES
    )


def hook_command(text: str) -> str | None:
    """The shell command of OfflineIMAP's ``newmail_hook = lambda: os.system('...')``."""
    tree = _expression(text)
    if not isinstance(tree, ast.Lambda) or tree.args.args:
        return None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
        return None
    func = call.func
    if not (_is_arg(func.value, "os") and func.attr == "system" and len(call.args) == 1):
        return None
    return _constant(call.args[0])
