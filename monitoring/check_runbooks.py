#!/usr/bin/env python3
"""Every alert of the rule file has a runbook_url into docs/operations.md, and the section
it names exists there (GitHub's heading anchors)."""
import re
import sys


def anchor(title):
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


rules = open(sys.argv[1], encoding="utf-8").read()
doc = open(sys.argv[2], encoding="utf-8").read()
anchors = {anchor(t) for t in re.findall(r"^#+\s+(.*)$", doc, re.M)}
bad = 0
blocks = re.split(r"\n\s*- alert:\s*", rules)[1:]
for block in blocks:
    name = block.split()[0]
    m = re.search(r'runbook_url:\s*"docs/operations\.md#([^"]+)"', block)
    if not m:
        print(f"  {name}: no runbook_url into docs/operations.md", file=sys.stderr)
        bad += 1
    elif m.group(1) not in anchors:
        print(f"  {name}: docs/operations.md has no section #{m.group(1)}", file=sys.stderr)
        bad += 1
print(f"  {len(blocks)} alerts, every runbook section exists" if not bad and blocks else "")
sys.exit(1 if bad or not blocks else 0)
