"""The README's Layout: data flows one way, so each folder imports only from the folders above it."""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "ecomrec_tf"
BASE = {"ecomrec_tf", "compat", "errors", "defaults", "serialization", "progress"}  # everything may use these
FLOORS = [
    "preprocessing",
    "encoders",
    "data",
    "heads",
    "models",
    "evaluation",
    "training",
    "export",
    "serving",
    "cli",
]
# The generated shop: only data/ itself, the evaluation's oracle, training's "embedded" bank and the CLI.
SHOP = ("shop", "lexicon", "intent_data", "intent_templates", "reply_bank", "noise")
SHOP_USERS = {"data", "evaluation", "training", "cli"}


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ecomrec_tf"):
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("ecomrec_tf")]
    return found


def floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ecomrec_tf"


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        if source not in FLOORS:
            continue  # the base modules, and keras_objects.py (the registry of every layer, for loading)
        for module in imports(path):
            target = floor(module)
            if target in FLOORS and FLOORS.index(target) > FLOORS.index(source):
                found.append(f"{relative} imports {module}: {target}/ is below {source}/")
            if target == "data" and module.split(".")[2:3] and module.split(".")[2] in SHOP:
                if source not in SHOP_USERS:
                    found.append(f"{relative} imports the generated shop ({module})")
    return found


def test_every_folder_imports_only_from_the_folders_above_it():
    assert not violations(), "\n".join(violations())
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    for folder in [*FLOORS, "compat.py", "defaults.py"]:
        assert f"  {folder}" in layout, folder  # the README names every folder


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "ecomrec_tf"
    (fake / "heads").mkdir(parents=True)
    (fake / "heads" / "bad.py").write_text(
        "from ecomrec_tf.training.fit import fit\nfrom ecomrec_tf.data.shop import x\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert violations() == [
        "heads/bad.py imports ecomrec_tf.training.fit: training/ is below heads/",
        "heads/bad.py imports ecomrec_tf.training.fit.fit: training/ is below heads/",
        "heads/bad.py imports the generated shop (ecomrec_tf.data.shop)",
        "heads/bad.py imports the generated shop (ecomrec_tf.data.shop.x)",
    ]
