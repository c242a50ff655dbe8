"""Declared training configs: every key a config section may hold, what it accepts, its default.

A schema is data — a :class:`Section` maps key names to :class:`Key` (a leaf) or to a nested
:class:`Section` — so checking a config is one walk over a table, not code per key. The engine declares
its own sections (``tasks/engine/config.py``); each trainable task declares the sections it reads
(``model``, ``data``, ``loss``, ``augment``) as ``Task.config_schema``, next to its ``task.py``.

:func:`resolve` checks a config against a schema and fills the defaults: an unknown key fails with its
full dotted name and the nearest valid one (difflib), a wrong type or range names the key, what it takes
and what it got. Keys declared with ``changes_training=False`` (progress bars, thread counts, where the
originals lie) may differ when a run is resumed; every other key must match the checkpoint's.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: default of a key that is optional and left out of the resolved config when not given
UNSET: Any = _Unset()


# -- kinds: what one key accepts ---------------------------------------------------------------------
class Kind:
    """What values a key takes: :meth:`check` returns the value (normalised) or raises ``ValueError``."""

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def _fail(self, value: Any) -> ValueError:
        return ValueError(f"must be {self.describe()}, got {_show(value)}")


def _show(value: Any) -> str:
    return "null" if value is None else f"{value!r} ({type(value).__name__})"


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '≥'} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '≤'} {hi:g}"
    return ""


@dataclass(frozen=True)
class Num(Kind):
    """A finite number (ints become floats; YAML strings such as ``1e-3`` are read as numbers)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        return "a number" + _range_text(self.lo, self.hi, self.lo_open, self.hi_open)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self._fail(value)
        try:
            x = float(value)
        except ValueError:
            raise self._fail(value) from None
        if not math.isfinite(x) or not _in_range(x, self.lo, self.hi, self.lo_open, self.hi_open):
            raise self._fail(value)
        return x


@dataclass(frozen=True)
class Int(Kind):
    lo: int | None = None
    hi: int | None = None

    def describe(self) -> str:
        return "an integer" + _range_text(self.lo, self.hi, False, False)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not _in_range(value, self.lo, self.hi):
            raise self._fail(value)
        return int(value)


def _in_range(x: float, lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> bool:
    if lo is not None and (x < lo or (lo_open and x == lo)):
        return False
    return not (hi is not None and (x > hi or (hi_open and x == hi)))


@dataclass(frozen=True)
class Bool(Kind):
    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._fail(value)
        return value


@dataclass(frozen=True)
class Str(Kind):
    """A string (a path, a name); a number given on the command line (``output.dir=2024``) becomes one."""

    def describe(self) -> str:
        return "a string"

    def check(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self._fail(value)
        return str(value)


@dataclass(frozen=True)
class OneOf(Kind):
    """One of fixed choices; ``aliases`` maps other spellings onto them (YAML reads ``off`` as false)."""

    choices: tuple[Any, ...]
    aliases: tuple[tuple[Any, Any], ...] = ()

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))

    def check(self, value: Any) -> Any:
        for alias, target in self.aliases:
            if value is alias or (type(value) is type(alias) and value == alias):
                return target
        if isinstance(value, bool) or value not in self.choices:
            raise self._fail(value)
        return value


@dataclass(frozen=True)
class ListOf(Kind):
    item: Kind
    length: int | None = None

    def describe(self) -> str:
        n = f"{self.length} " if self.length else ""
        return f"a list of {n}items, each {self.item.describe()}"

    def check(self, value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)) or (self.length is not None and len(value) != self.length):
            raise self._fail(value)
        try:
            return [self.item.check(v) for v in value]
        except ValueError:
            raise self._fail(value) from None


@dataclass(frozen=True)
class AnyOf(Kind):
    kinds: tuple[Kind, ...]

    def describe(self) -> str:
        return " or ".join(k.describe() for k in self.kinds)

    def check(self, value: Any) -> Any:
        for kind in self.kinds:
            try:
                return kind.check(value)
            except ValueError:
                continue
        raise self._fail(value)


@dataclass(frozen=True)
class Anything(Kind):
    def describe(self) -> str:
        return "any value"

    def check(self, value: Any) -> Any:
        return copy.deepcopy(value)


# -- keys and sections -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """One leaf of a config: what it takes, its default (``UNSET``: left out when not given), whether
    null is allowed, whether it must be given (``required``: null is an error naming the key), and
    whether a resumed run may change it (``changes_training=False``)."""

    kind: Kind
    default: Any = UNSET
    null: bool = False
    required: bool = False
    changes_training: bool = True
    doc: str = ""

    def check(self, value: Any, name: str) -> Any:
        if value is None:
            if self.required:
                raise ConfigError(f"config key {name!r} is required: set {name}=VALUE")
            if self.null:
                return None
            raise ConfigError(f"config key {name!r} {self.kind._fail(value)}")
        try:
            return self.kind.check(value)
        except ValueError as e:
            suffix = " (or null)" if self.null else ""
            raise ConfigError(f"config key {name!r} {e}{suffix}") from None

    def with_default(self, default: Any, **changes: Any) -> Key:
        from dataclasses import replace

        return replace(self, default=default, **changes)


@dataclass(frozen=True)
class Section:
    """A mapping of key names to :class:`Key` or nested :class:`Section`. An ``open`` section also
    keeps keys it does not declare (a task without a schema owns them)."""

    keys: Mapping[str, Key | Section] = field(default_factory=dict)
    open: bool = False
    doc: str = ""


def merge(base: Section, over: Section) -> Section:
    """``over``'s keys on top of ``base``'s (nested sections merged); openness is ``over``'s."""
    keys: dict[str, Key | Section] = dict(base.keys)
    for name, spec in over.keys.items():
        old = keys.get(name)
        keys[name] = merge(old, spec) if isinstance(old, Section) and isinstance(spec, Section) else spec
    return Section(keys, open=over.open, doc=over.doc or base.doc)


def dotted_keys(section: Section, prefix: str = "") -> Iterator[tuple[str, Key]]:
    """Every leaf of ``section`` as (dotted name, key)."""
    for name, spec in section.keys.items():
        if isinstance(spec, Section):
            yield from dotted_keys(spec, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", spec


def lookup(section: Section, dotted: str) -> Key | Section | None:
    """The key or section at ``dotted`` (None when undeclared or under an open section)."""
    node: Key | Section = section
    for part in dotted.split("."):
        if not isinstance(node, Section) or part not in node.keys:
            return None
        node = node.keys[part]
    return node


def defaults(section: Section) -> dict[str, Any]:
    """The defaults of every key that has one (nested)."""
    out: dict[str, Any] = {}
    for name, spec in section.keys.items():
        if isinstance(spec, Section):
            out[name] = defaults(spec)
        elif spec.default is not UNSET:
            out[name] = copy.deepcopy(spec.default)
    return out


def _unknown(name: str, section: Section, root: Section, value: Any) -> ConfigError:
    parent, _, leaf = name.rpartition(".")
    shown = name
    if isinstance(value, Mapping) and value:  # name the full key the user wrote: optm.lr, not optm
        first = next(iter(value))
        shown = f"{name}.{first}"
    near = difflib.get_close_matches(leaf, [str(k) for k in section.keys], n=1, cutoff=0.6)
    if near:
        guess = f"{parent}.{near[0]}" if parent else near[0]
        if shown != name:
            guess += shown[len(name) :]
    else:  # a key put in the wrong section: look among the declared keys of the other sections
        elsewhere = [k for k, _ in dotted_keys(root) if k.rpartition(".")[0] != parent]
        near = difflib.get_close_matches(shown, elsewhere, n=1, cutoff=0.6)
        guess = near[0] if near else ""
    if guess:
        return ConfigError(f"unknown config key {shown!r}; did you mean {guess!r}?")
    where = f"section {parent!r}" if parent else "the top level"
    known = ", ".join(sorted(map(str, section.keys))) or "no keys"
    return ConfigError(f"unknown config key {shown!r}; {where} takes: {known}")


def resolve(cfg: Mapping[str, Any] | None, section: Section, *, root: Section | None = None, prefix: str = "") -> dict:
    """``cfg`` checked against ``section`` with defaults filled in (a new dict, in declaration order).

    Raises :class:`ConfigError` naming the full dotted key: unknown keys (with the nearest valid one),
    values of the wrong type or range, required keys left null.
    """
    root = root or section
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, Mapping):
        name = prefix.rstrip(".") or "config"
        raise ConfigError(f"config key {name!r} must be a section (key: value mapping), got {_show(cfg)}")
    given = {str(k): v for k, v in cfg.items()}
    out: dict[str, Any] = {}
    for name, value in given.items():  # unknown keys first: a typo explains a "required" key left unset
        if name not in section.keys and not section.open:
            raise _unknown(prefix + name, section, root, value)
    for name, spec in section.keys.items():
        full = prefix + name
        if isinstance(spec, Section):
            out[name] = resolve(given.get(name), spec, root=root, prefix=full + ".")
        elif name in given:
            out[name] = spec.check(given[name], full)
        elif spec.default is not UNSET:
            out[name] = spec.check(copy.deepcopy(spec.default), full) if spec.required else copy.deepcopy(spec.default)
    for name, value in given.items():
        if name not in section.keys:
            out[name] = copy.deepcopy(value)
    return out


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'optim': {'lr': 0.1}}`` → ``{'optim.lr': 0.1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# -- sections generated from dataclasses (e.g. detection's SSDConfig) ------------------------------------
def _kind_of(value: Any) -> Kind:
    if isinstance(value, bool):
        return Bool()
    if isinstance(value, int):
        return Int()
    if isinstance(value, float):
        return Num()
    if isinstance(value, str):
        return Str()
    if isinstance(value, (tuple, list)):
        return ListOf(_kind_of(value[0]) if value else Anything())
    return Anything()


def section_from_dataclass(cls: type, *, exclude: Sequence[str] = (), doc: str = "") -> Section:
    """A section whose keys are ``cls``'s fields, each optional and not filled in (the dataclass keeps
    its own defaults); nested dataclass fields become nested sections."""
    keys: dict[str, Key | Section] = {}
    for f in fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if is_dataclass(default):
            keys[f.name] = section_from_dataclass(type(default))
        else:
            keys[f.name] = Key(_kind_of(default), null=default is None)
    return Section(keys, doc=doc)


# -- keys several tasks share ----------------------------------------------------------------------------
ALPHA = Key(
    Num(0, 1.5, lo_open=True),
    None,
    null=True,
    doc="width multiplier α; null: the pretrained weights' α (1.0 without weights)",
)
RESOLUTION = Key(Int(32), 224, doc="input resolution ρ")
WEIGHTS = Key(Str(), None, null=True, doc="pretrained weights: a registry entry or a .safetensors file")
WEIGHTS_SOURCE = Key(
    Str(), None, null=True, changes_training=False, doc="a local copy of the original weights files (file or folder)"
)
DROPOUT = Key(Num(0, 1, hi_open=True), 0.0, doc="dropout before the classifier")
DATA_ROOT = Key(Str(), None, required=True, doc="the dataset folder in its official layout")
SPLIT = Key(Str(), "train", doc="training split")
VAL_SPLIT = Key(Str(), "val", null=True, doc="validation split (null: no validation)")
ON_BAD_IMAGE = Key(OneOf(("error", "skip")), "error", doc="an unreadable image: stop naming it, or skip and count it")
SCALE = Key(ListOf(Num(0, 1, lo_open=True), 2), [0.08, 1.0], doc="random-resized-crop area range")
HFLIP = Key(Num(0, 1), 0.5, doc="horizontal flip probability")
COLOR_JITTER = Key(Num(0), 0.4, doc="brightness/contrast/saturation jitter strength")
LABEL_SMOOTHING = Key(Num(0, 1, hi_open=True), 0.0, doc="label smoothing of the cross-entropy")
