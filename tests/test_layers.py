"""The package layers import only downward (issue 19; README "Layout"): every import of the
package's modules, including imports inside functions, read from the source with ``ast``.

    0 nerfgan_kernels (ops, library, build)   1 nerfgan_kernels.render   2 nerfgan_kernels.models
    3 inversion core (targets, losses, methods, results, report)   4 inversion.data
    5 inversion.align   6 the command-line programs (inversion.cli, inversion.batch,
    inversion.demo, inversion.align.cli)

A module may import its own layer and those below it; benchmarks and tests may import anything.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIS = ("inversion.cli", "inversion.batch", "inversion.demo", "inversion.align.cli")
LAYERS = ("nerfgan_kernels", "nerfgan_kernels.render", "nerfgan_kernels.models", "inversion",
          "inversion.data", "inversion.align", "cli")


def layer(module: str):
    """The layer index of a module of the two packages, None for anything else."""
    if module in CLIS:
        return 6
    for index in (5, 4, 3, 2, 1, 0):
        name = LAYERS[index]
        if module == name or module.startswith(name + "."):
            return index
    return None


def package_modules() -> dict:
    mods = {}
    for pkg in ("nerfgan_kernels", "inversion"):
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def imports(module: str, path: Path):
    """(imported module, line) of every import statement in the file."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else [])), node.lineno
            else:
                yield node.module, node.lineno


def test_layers_import_only_downward():
    mods = package_modules()
    assert len(mods) > 40 and layer("inversion.data.heads") == 4 and layer("inversion.cli") == 6
    upward = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)}) at line {line}"
              for m, f in sorted(mods.items()) for t, line in imports(m, f)
              if layer(t) is not None and layer(t) > layer(m)]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The checker itself: a function-local relative import of a higher layer is found."""
    f = tmp_path / "evaluation.py"
    f.write_text("def f():\n    from .data.heads import render_head\n")
    found = [(t, layer(t)) for t, _ in imports("inversion.evaluation", f)]
    assert found == [("inversion.data.heads", 4)] and layer("inversion.evaluation") == 3
