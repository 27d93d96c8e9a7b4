#!/usr/bin/python3
"""DEV-TIME generator of tests/data/text/unicode_digest.json. NOT run by the tests.

    apt-get install -y python3-regex
    /usr/bin/python3 tests/text/gen_unicode_digest.py

Walks every code point (surrogates excluded) and hashes, with 64-bit FNV-1a, one line per
code point describing what the CLIP tokenizer asks of Python 3.11 (unicodedata 14.0.0)
and the regex module:

    "<hex cp> <category> <Zs?> <isspace?> <L> <N> <lower> <nfc>\\n"

where <L>/<N> are regex [\\p{L}] / [\\p{N}] matches under IGNORECASE and <lower> / <nfc>
are the code points of c.lower() / unicodedata.normalize("NFC", c) in hex joined by '.',
the last four written as "-" for unassigned (Cn) code points (the tokenizer deletes those
before asking). test_text_units.cpp recomputes the digest through py_unicode.h (ICU)."""
import json
import os
import sys
import unicodedata

import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import text_cases  # noqa: E402

OUT = os.path.join(text_cases.ROOT, "tests", "data", "text", "unicode_digest.json")
L = regex.compile(r"[\p{L}]", regex.IGNORECASE)
N = regex.compile(r"[\p{N}]", regex.IGNORECASE)


def main():
    h = 0xCBF29CE484222325
    count = 0
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        line = f"{cp:x} {cat} {int(cat == 'Zs')} {int(c.isspace())} "
        if cat == "Cn":
            line += "- - - -\n"
        else:
            low = ".".join(f"{ord(x):x}" for x in c.lower())
            nfc = ".".join(f"{ord(x):x}" for x in unicodedata.normalize("NFC", c))
            line += f"{int(bool(L.match(c)))} {int(bool(N.match(c)))} {low} {nfc}\n"
        for b in line.encode("ascii"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        count += 1
    doc = {"generator": "tests/text/gen_unicode_digest.py (dev-time; /usr/bin/python3 "
                        + sys.version.split()[0] + ", unicodedata " + unicodedata.unidata_version + ")",
           "code_points": count, "fnv1a64": f"{h:016x}"}
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(doc)


if __name__ == "__main__":
    main()
