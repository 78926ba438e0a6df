#!/usr/bin/env python3
"""Regenerates countries.tsv from Debian's iso-codes package (apt-get install iso-codes)."""
import json
import pathlib

SOURCE = "/usr/share/iso-codes/json/iso_3166-1.json"
TARGET = pathlib.Path(__file__).with_name("countries.tsv")

rows = sorted(
    (c["alpha_2"], c.get("common_name", c["name"]))
    for c in json.load(open(SOURCE, encoding="utf-8"))["3166-1"]
)
with open(TARGET, "w", encoding="utf-8") as out:
    out.write("# ISO 3166-1 alpha-2 codes and short English names.\n")
    out.write("# Generated from Debian's iso-codes package (/usr/share/iso-codes/json/iso_3166-1.json) by\n")
    out.write("# proto/accounting/data/countries.py; regenerate rather than edit.\n")
    for code, name in rows:
        out.write(f"{code}\t{name}\n")
