"""The architecture of the README ("one domain, three doors") holds in the code.

`signalements/` is the domain; `signalements/api/` (REST), `signalements/open311/` and
`signalements/admin/` are three doors onto it. Imports go one way, from a door to the
domain: the domain imports no door (nor the machinery that only doors use: DRF's views,
Django's admin, the OpenAPI generator), and no door imports another. Every import is
read from the source, those inside functions included, relative ones resolved.
"""

import ast
from pathlib import Path

import pytest

import signalements

PACKAGE = "signalements"
ROOT = Path(signalements.__file__).parent
DOORS = ("signalements.api", "signalements.open311", "signalements.admin")
# What only a door may use: the request/response layer of DRF, the admin, the schema.
DOOR_MACHINERY = (
    "rest_framework.views",
    "rest_framework.viewsets",
    "rest_framework.generics",
    "rest_framework.mixins",
    "rest_framework.routers",
    "rest_framework.decorators",
    "rest_framework.response",
    "rest_framework.renderers",
    "rest_framework.parsers",
    "rest_framework.permissions",
    "rest_framework.throttling",
    "rest_framework.pagination",
    "django.contrib.admin",
    "drf_spectacular",
    "drf_standardized_errors",
    "django_filters",
)


def module_name(path: Path) -> tuple[str, bool]:
    """The dotted name of a source file, and whether it is a package's `__init__`."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module that `source` (the module `module`) imports, anywhere in it. For
    `from x import y`, both `x` and `x.y` (y may be a module: `from signalements import
    api`)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                # `.` is the module's own package: itself for a package's __init__.
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def room_of(module: str) -> str | None:
    """The door a module of ours belongs to, "domain" for the others, None if not ours."""
    for door in DOORS:
        if module == door or module.startswith(door + "."):
            return door
    if module == PACKAGE or module.startswith(PACKAGE + "."):
        return "domain"
    return None


def within(name: str, prefixes) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def violations(module: str, names: set[str]) -> list[str]:
    """What `module` imports against the direction of the architecture."""
    room = room_of(module)
    found = []
    for name in sorted(names):
        target = room_of(name)
        if room == "domain" and target not in (None, "domain"):
            found.append(f"{module} (domain) imports {name} ({target})")
        elif room == "domain" and within(name, DOOR_MACHINERY):
            found.append(f"{module} (domain) imports {name} (which only doors use)")
        elif room in DOORS and target in DOORS and target != room:
            found.append(f"{module} ({room}) imports {name} ({target})")
    return found


def our_modules():
    for path in sorted(ROOT.rglob("*.py")):
        module, is_package = module_name(path)
        if ".migrations" in module:
            continue
        yield module, imported_names(path.read_text(), module, is_package=is_package)


def test_the_three_doors_exist():
    for door in DOORS:
        assert (ROOT.parent / door.replace(".", "/") / "__init__.py").is_file(), door


def test_imports_go_from_the_doors_to_the_domain_only():
    found = [problem for module, names in our_modules() for problem in violations(module, names)]
    assert found == []


def test_every_module_is_checked():
    modules = {module for module, _ in our_modules()}
    assert {"signalements.models.reports", "signalements.services", "signalements.validation"} <= (
        modules
    )
    assert {"signalements.api.views.reports", "signalements.open311.views"} <= modules
    assert {"signalements.admin.reports"} <= modules
    assert len(modules) > 50


@pytest.mark.parametrize(
    ("module", "is_package", "source", "flagged"),
    [
        # The domain's models reaching into the REST API, relatively or absolutely.
        (
            "signalements.models.reports",
            False,
            "from ..api.serializers import SignalementSerializer",
            {"signalements.api.serializers", "signalements.api.serializers.SignalementSerializer"},
        ),
        (
            "signalements.models.reports",
            False,
            "from signalements.api import serializers",
            {"signalements.api", "signalements.api.serializers"},
        ),
        # An import inside a function counts as much as one at the top.
        (
            "signalements.services",
            False,
            "def notify():\n    import signalements.open311.views\n",
            {"signalements.open311.views"},
        ),
        # `from . import admin` in the package's own __init__ is the admin door.
        ("signalements", True, "from . import admin, geo", {"signalements.admin"}),
        (
            "signalements.stats",
            False,
            "from rest_framework.viewsets import ModelViewSet",
            {"rest_framework.viewsets", "rest_framework.viewsets.ModelViewSet"},
        ),
        # A door into another door.
        (
            "signalements.open311.views",
            False,
            "from ..api import serializers",
            {"signalements.api", "signalements.api.serializers"},
        ),
        (
            "signalements.admin.reports",
            False,
            "from signalements.api.views.export import export_csv_view",
            {"signalements.api.views.export", "signalements.api.views.export.export_csv_view"},
        ),
        # The allowed directions.
        ("signalements.api.views.reports", False, "from signalements import services", set()),
        ("signalements.api.views.reports", False, "from ..serializers import X", set()),
        ("signalements.open311.views", False, "from ..models import Signalement", set()),
        ("signalements.validation", False, "from rest_framework import serializers", set()),
    ],
)
def test_the_check_catches_imports_against_the_direction(module, is_package, source, flagged):
    names = imported_names(source, module, is_package=is_package)
    found = violations(module, names)
    assert {name for name in names if any(f" imports {name} " in p for p in found)} == flagged
    assert len(found) == len(flagged)


def readme_architecture() -> str:
    readme = (ROOT.parent / "README.md").read_text()
    section = readme.split("\n## Architecture\n", 1)[1]
    return section.split("\n## ", 1)[0]


def test_the_readme_architecture_names_every_room_and_module():
    """The README's picture cannot drift from the tree: each package and module of the
    domain and of the REST door is named there (a new one is placed in the picture)."""
    section = readme_architecture()
    missing = []
    for path in sorted(ROOT.iterdir()):
        if path.name in ("__init__.py", "__pycache__", "migrations"):
            continue
        if path.is_dir():
            if f"`{path.name}/" not in section and f"`signalements/{path.name}/`" not in section:
                missing.append(f"{path.name}/")
        elif path.suffix == ".py" and f"`{path.name}`" not in section:
            missing.append(path.name)
    for folder in ("api", "api/views", "api/serializers", "admin"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name == "__init__.py":
                continue
            if f"`{path.name}`" not in section and f"`{path.stem}`" not in section:
                missing.append(f"{folder}/{path.name}")
    assert missing == []
