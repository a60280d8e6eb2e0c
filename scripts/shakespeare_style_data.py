"""Training pairs of the `shakespeare-style` recipe: the aligned modern -> original pairs of
`shakespeare_modern/train` (NLTK-tokenised) and the eNotes pairs of `shakespeare_plays` brought to the same form
(typographic quotes and dashes to ASCII, punctuation split off as the recorded text form does it).

    python scripts/shakespeare_style_data.py OUT [--shared ../shared/data]

writes OUT/train.modern and OUT/train.original (line i of each is one pair). The test pairs never enter: the eNotes
files were filtered against them upstream (shakespeare_plays/PROVENANCE.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from textdiffusion.data.textform import detect_form, normalise

ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "—": " -- ", "–": "-", "…": "..."})


def read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument(
        "--shared", default=str(Path(__file__).resolve().parents[1] / "../shared/data")
    )
    args = parser.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    modern = read(shared / "shakespeare_modern/train.modern.nltktok")
    original = read(shared / "shakespeare_modern/train.original.nltktok")
    form = detect_form(original[:5000])
    extra = 0
    for m, o in zip(
        read(shared / "shakespeare_plays/enotes.modern"),
        read(shared / "shakespeare_plays/enotes.original"),
    ):
        m, o = (normalise(" ".join(x.translate(ASCII).split()), form)[0] for x in (m, o))
        if m and o:
            modern.append(m)
            original.append(o)
            extra += 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.modern").write_text("\n".join(modern) + "\n", encoding="utf-8")
    (out / "train.original").write_text("\n".join(original) + "\n", encoding="utf-8")
    print(f"{len(modern)} pairs ({extra} from eNotes) in {out}")


if __name__ == "__main__":
    main()
