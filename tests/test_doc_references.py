"""Every document the sources cite is in the repository (issue 19): a ``name.md`` in a docstring
or comment of the packages, the C++/CUDA sources, the benchmarks or the tests resolves to a file
(from the repository root or the citing file's folder), and a cited section number ("docs/eg3d.md
section 7", "docs/algorithms.md 3.5", "sections 4-7") is a heading of that document."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("nerfgan_kernels", "inversion", "csrc", "benchmarks", "tests")
           for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".h", ".cpp", ".cu", ".cuh")]
# Names of files the programs write or take, not documents.
OUTPUTS = {"report.md", "FILE.md"}
CITATION = re.compile(r"(?<![\w/.{-])((?:[\w-]+/)*[\w-]+\.md)\b"
                      r"(?:,?\s+(?:sections?\s+)?(\d+(?:\.\d+)?)(?:\s*(?:-|and)\s*(\d+(?:\.\d+)?))?)?")


def citations(text: str):
    for m in CITATION.finditer(text):
        if Path(m.group(1)).name not in OUTPUTS:
            yield m.group(1), [s for s in m.groups()[1:] if s]


def resolve(name: str, source: Path) -> Path | None:
    for base in (ROOT, source.parent):
        if (base / name).is_file():
            return base / name
    return None


def has_section(doc: Path, number: str) -> bool:
    return re.search(rf"^#+\s+{re.escape(number)}[.\s]", doc.read_text(), re.M) is not None


def test_cited_documents_and_sections_exist():
    missing = []
    for source in SOURCES:
        if source.name == "test_doc_references.py":
            continue
        for name, sections in citations(source.read_text(errors="replace")):
            doc = resolve(name, source)
            if doc is None:
                missing.append(f"{source.relative_to(ROOT)}: {name}")
            else:
                missing += [f"{source.relative_to(ROOT)}: {name} section {s}" for s in sections
                            if not has_section(doc, s)]
    assert not missing, "\n".join(sorted(set(missing)))


def test_the_citation_pattern():
    text = ("see shared docs/x.md section 7 and docs/algorithms.md 3.5, sections 4-7 of docs/eg3d.md,"
            " write report.md")
    assert list(citations(text)) == [("docs/x.md", ["7"]), ("docs/algorithms.md", ["3.5"]),
                                     ("docs/eg3d.md", [])]
    assert list(citations("docs/eg3d.md sections 4-7")) == [("docs/eg3d.md", ["4", "7"])]
