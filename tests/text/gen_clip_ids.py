#!/usr/bin/python3
"""DEV-TIME generator of tests/data/text/clip_ids.json. NOT run by the tests.

Run with Debian's interpreter (Python 3.11.2, unicodedata 14.0.0) and python3-regex
(2022.10.31), the reference environment's versions:

    apt-get install -y python3-regex
    /usr/bin/python3 tests/text/gen_clip_ids.py

transformers is not installable here, so this file restates, step by step, what
transformers 4.45.0.dev0's slow CLIPTokenizer does without ftfy (PreTrainedTokenizer
.tokenize's added-token Trie split, BertBasicTokenizer(strip_accents=False,
do_split_on_punc=False), CLIP's regex, byte-level BPE, vocab lookup), using Python's own
unicodedata / str.lower / str.split and the `regex` module, i.e. the very Unicode
semantics the C++ port has to reproduce through ICU. The golden case component_clip
checks the same path against real transformers.
"""
import json
import os
import sys
import unicodedata

import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import text_cases  # noqa: E402
from gen_t5_ids import Trie  # noqa: E402  (transformers' Trie.split, restated)

TOK_DIR = os.path.join(text_cases.GOLDEN, "pipeline", "tokenizer")
OUT = os.path.join(text_cases.ROOT, "tests", "data", "text", "clip_ids.json")

PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)

CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def byte_alphabet():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def basic_tokenize(text):
    kept = []
    for ch in text:
        cp = ord(ch)
        cat = unicodedata.category(ch)
        if cp in (0, 0xFFFD) or (ch not in "\t\n\r" and cat.startswith("C")):
            continue  # NUL, U+FFFD and control characters are dropped
        if ch in " \t\n\r" or cat == "Zs":
            kept.append(" ")
        elif any(lo <= cp <= hi for lo, hi in CJK_RANGES):
            kept.append(" " + ch + " ")
        else:
            kept.append(ch)
    text = unicodedata.normalize("NFC", "".join(kept))
    words = [w.lower() for w in text.strip().split()]
    return " ".join(words).strip().split()


class ClipSlow:
    def __init__(self):
        with open(os.path.join(TOK_DIR, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(TOK_DIR, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().strip().split("\n")[1:49152 - 256 - 2 + 1]
        self.ranks = {}
        for r, line in enumerate(lines):
            self.ranks[tuple(line.split())] = r
        self.bytes = byte_alphabet()
        self.added = {"<|startoftext|>": 49406, "<|endoftext|>": 49407}
        self.trie = Trie(self.added.keys())

    def bpe(self, word):
        if word in self.added:
            return [word]
        syms = list(word[:-1]) + [word[-1] + "</w>"]
        while len(syms) > 1:
            pairs = {(a, b) for a, b in zip(syms, syms[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged = []
            i = 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == best[0] and syms[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(syms[i])
                    i += 1
            syms = merged
        return syms

    def tokenize(self, text):
        out = []
        for chunk in self.trie.split(text):
            if chunk in self.added:
                out.append(chunk)
                continue
            joined = " ".join(basic_tokenize(chunk))
            for m in PATTERN.findall(joined):
                out.extend(self.bpe("".join(self.bytes[b] for b in m.encode("utf-8"))))
        return out

    def ids(self, tokens):
        unk = self.vocab["<|endoftext|>"]
        return [self.added.get(t, self.vocab.get(t, unk)) for t in tokens]


def main():
    clip = ClipSlow()
    cases = []
    for text in text_cases.all_cases():
        tokens = clip.tokenize(text)
        cases.append({"text": text, "tokens": tokens, "ids": clip.ids(tokens)})
    doc = {
        "generator": "tests/text/gen_clip_ids.py (dev-time; /usr/bin/python3 "
                     + sys.version.split()[0] + ", unicodedata " + unicodedata.unidata_version
                     + ", python3-regex 2022.10.31 (module " + regex.__version__ + "))",
        "note": "ids/tokens exclude <|startoftext|>/<|endoftext|> framing, truncation and padding",
        "cases": cases,
    }
    text_cases.write_json(OUT, doc)
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
