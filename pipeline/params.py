"""params.yaml -> frozen typed sections.

    python -m pipeline.params [FILE]     # prints "ok", or one line naming the dotted key (exit 2)

Every section is a frozen dataclass, owned by its pipeline's package (``pipeline/<name>/params.py``,
listed in ``pipeline.domains``). ``load_params`` validates the whole file before any work: an unknown
key, a missing section or a wrong type raises PipelineError naming the dotted key, e.g.
``crop.size: expected int > 0, got '128px'``. FILE defaults to params.yaml; any other FILE is read as a
profile overlay and merged onto params.yaml first, as ``python -m pipeline.profile`` applies it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.domains import DOMAINS
from pipeline.errors import PipelineError, cli
from pipeline.fields import parse_section

PARAMS_FILE = Path("params.yaml")


def pipeline_sections(pipeline: str) -> list[str]:
    """The params sections one pipeline reads (from the registry, ``pipeline.domains``)."""
    return list(DOMAINS[pipeline].sections)


def all_sections() -> dict[str, type]:
    """Every params section of every pipeline, in registry order."""
    return {name: cls for d in DOMAINS.values() for name, cls in d.sections.items()}


@dataclass(frozen=True)
class Params:
    sections: dict[str, Any]
    raw: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(name) from None

    def digest(self, pipeline: str | None = None) -> str:
        """Stable hash of the params file, or of a registered pipeline's sections only (the MLflow tag
        ``params_hash``: a sensor knob does not change the detection runs' hash)."""
        raw = self.raw if pipeline not in DOMAINS else {k: v for k, v in self.raw.items()
                                                         if k in pipeline_sections(pipeline)}
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validate every section of a params mapping, then each pipeline's cross-section checks."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    known = all_sections()
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise PipelineError(f"{unknown[0]}: unknown params section in {source} (known: {', '.join(known)})")
    sections = {name: parse_section(cls, raw.get(name), name) for name, cls in known.items()}
    for domain in DOMAINS.values():
        domain.check(sections)
    return Params(sections=sections, raw=raw)


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml``; raises PipelineError on any problem. The file must hold every
    section (an empty or partial file would otherwise run on built-in defaults that nobody chose)."""
    path = Path(path)
    raw = read_yaml(path)
    if raw is None:
        raise PipelineError(f"{path}: empty params file (start from the repository's params.yaml)")
    if isinstance(raw, dict):
        missing = [name for name in all_sections() if name not in raw]
        if missing:
            raise PipelineError(f"{path}: missing params section{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)}")
    return parse_params(raw, str(path))


def as_flat_dict(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a params section to dotted keys (for MLflow)."""
    out: dict[str, Any] = {}
    items = dataclasses.asdict(obj).items() if dataclasses.is_dataclass(obj) else obj.items()
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(as_flat_dict(v, key + "."))
        else:
            out[key] = v
    return out


def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of every non-mapping value (lists are values, as DVC sets them whole)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into ``base`` mapping by mapping (a profile over params.yaml)."""
    out = dict(base)
    for k, v in overlay.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key repeated in one mapping (PyYAML keeps the last; DVC refuses it)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, mark: Any) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.problem_mark = key, mark


def read_yaml(path: Path, what: str = "params file") -> Any:
    """A YAML file's content; a missing file, bad YAML or a duplicate key is one PipelineError line naming
    the file (and the line)."""
    try:
        return yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise PipelineError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise PipelineError(f"{path}: unreadable {what} ({exc.strerror or type(exc).__name__})") from None
    except _DuplicateKey as exc:
        raise PipelineError(f"{path} line {exc.problem_mark.line + 1}: duplicate key {exc.key!r}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}:{where} is not valid YAML") from None


def load_profile(profile: Path, base: Path = PARAMS_FILE) -> tuple[dict[str, Any], dict[str, Any]]:
    """A profile overlay and the base params it applies to, after validating their merge (errors name the
    profile file and the dotted key)."""
    overlay = read_yaml(profile, "profile") or {}
    if not isinstance(overlay, dict):
        raise PipelineError(f"{profile}: expected a mapping of params sections")
    base_tree = read_yaml(base) or {}
    parse_params(merge(base_tree, overlay), str(profile))
    return overlay, base_tree


@cli
def main() -> None:
    args = sys.argv[1:]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        raise PipelineError("usage: python -m pipeline.params [FILE]  (FILE: params.yaml, or a profile overlay)")
    path = Path(args[0]) if args else PARAMS_FILE
    if path.resolve() == PARAMS_FILE.resolve():
        load_params(path)
    else:
        load_profile(path)
    print("ok")


if __name__ == "__main__":
    main()
