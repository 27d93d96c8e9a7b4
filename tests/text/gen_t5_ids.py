#!/usr/bin/python3
"""DEV-TIME generator of tests/data/text/t5_ids.json. NOT run by the tests.

Run with Debian's interpreter and sentencepiece (python3-sentencepiece 0.1.97, the
version the golden reference used):

    apt-get install -y python3-sentencepiece
    /usr/bin/python3 tests/text/gen_t5_ids.py

For every string of text_cases.all_cases() (plus a few malformed UTF-8 byte strings) it
records, from the real sentencepiece library:
  sp_pieces / sp_ids        plain SentencePieceProcessor(spiece.model).encode(text)
  nodummy_pieces            the same with NormalizerSpec.add_dummy_prefix = False (what
                            transformers' T5Tokenizer(legacy=False) loads)
  t5_ids                    T5Tokenizer(legacy=False)(text)["input_ids"] (ids + </s>, no
                            padding), computed by the wrapper logic below, which restates
                            transformers 4.45.0.dev0's slow T5Tokenizer.tokenize/_tokenize,
                            PreTrainedTokenizer.tokenize (Trie split, AddedToken flags) and
                            build_inputs_with_special_tokens around the real sentencepiece.
  t5_legacy_ids             the same with legacy=True (plain sentencepiece per chunk).
transformers itself is not installable here; the golden cases (component_t5) check the
same path against the real reference.
"""
import json
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import text_cases  # noqa: E402

TOK_DIR = os.path.join(text_cases.GOLDEN, "pipeline", "tokenizer_2")
OUT = os.path.join(text_cases.ROOT, "tests", "data", "text", "t5_ids.json")
SPIECE_UNDERLINE = "\u2581"


# --- protobuf: set NormalizerSpec.add_dummy_prefix = False (as get_spm_processor does) ---
def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _enc_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def without_dummy_prefix(model):
    out = bytearray()
    i = 0
    while i < len(model):
        start = i
        key, i = _varint(model, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            _, i = _varint(model, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            n, j = _varint(model, i)
            body = model[j:j + n]
            i = j + n
            if field == 3:  # normalizer_spec: append add_dummy_prefix (field 3) = 0; last wins
                body = body + bytes([0x18, 0x00])
                out += _enc_varint(key) + _enc_varint(len(body)) + body
                continue
        else:
            raise ValueError("unexpected wire type")
        out += model[start:i]
    return bytes(out)


# --- transformers' Trie.split (tokenization_utils.py), restated ---
class Trie:
    def __init__(self, words):
        self.data = {}
        for w in words:
            ref = self.data
            for ch in w:
                ref = ref.setdefault(ch, {})
            ref[""] = 1

    def split(self, text):
        states = {}
        offsets = [0]
        skip = 0
        for current, current_char in enumerate(text):
            if skip and current < skip:
                continue
            to_remove = set()
            reset = False
            for start, trie_pointer in states.items():
                if "" in trie_pointer:
                    for lookstart, looktrie_pointer in states.items():
                        if lookstart > start:
                            break
                        elif lookstart < start:
                            lookahead_index = current + 1
                            end = current + 1
                        else:
                            lookahead_index = current
                            end = current
                        next_char = text[lookahead_index] if lookahead_index < len(text) else None
                        if "" in looktrie_pointer:
                            start = lookstart
                            end = lookahead_index
                            skip = lookahead_index
                        while next_char in looktrie_pointer:
                            looktrie_pointer = looktrie_pointer[next_char]
                            lookahead_index += 1
                            if "" in looktrie_pointer:
                                start = lookstart
                                end = lookahead_index
                                skip = lookahead_index
                            if lookahead_index == len(text):
                                break
                            next_char = text[lookahead_index]
                    offsets.append(start)
                    offsets.append(end)
                    reset = True
                    break
                elif current_char in trie_pointer:
                    states[start] = trie_pointer[current_char]
                else:
                    to_remove.add(start)
            if reset:
                states = {}
            else:
                for start in to_remove:
                    del states[start]
            if current >= skip and current_char in self.data:
                states[current] = self.data[current_char]
        for start, trie_pointer in states.items():
            if "" in trie_pointer:
                offsets.append(start)
                offsets.append(len(text))
                break
        offsets.append(len(text))
        tokens = []
        start = 0
        for end in offsets:
            if start >= end:
                continue
            tokens.append(text[start:end])
            start = end
        return tokens


class T5Slow:
    """T5Tokenizer(add_prefix_space=True) from FLUX's tokenizer_config.json; legacy=False
    as in that file, or legacy=True (plain sentencepiece per chunk) for comparison."""

    def __init__(self, model_bytes, config, legacy=False):
        self.legacy = legacy
        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(model_bytes if legacy else without_dummy_prefix(model_bytes))
        self.added = {}  # content -> (id, lstrip, rstrip, single_word)
        for k, v in config["added_tokens_decoder"].items():
            self.added[v["content"]] = (int(k), v["lstrip"], v["rstrip"], v["single_word"])
        self.all_special = [config["eos_token"], config["unk_token"], config["pad_token"]] + list(
            config["additional_special_tokens"])
        self.unk_token = config["unk_token"]
        self.unk_token_length = len(self.sp.encode(self.unk_token, out_type=str))
        self.eos_id = self.added[config["eos_token"]][0]
        self.trie = Trie(self.added.keys())

    def _tokenize(self, text):
        tokens = self.sp.encode(text, out_type=str)
        if self.legacy or not text.startswith((SPIECE_UNDERLINE, " ")):
            return tokens
        tokens = self.sp.encode(self.unk_token + text, out_type=str)
        return tokens[self.unk_token_length:] if len(tokens) >= self.unk_token_length else tokens

    def _base_tokenize(self, text):
        tokens = self.trie.split(text)
        for i, token in enumerate(tokens):
            if token in self.added:
                _, lstrip, rstrip, single_word = self.added[token]
                left = tokens[i - 1] if i > 0 else None
                right = tokens[i + 1] if i < len(tokens) - 1 else None
                if rstrip and right:
                    tokens[i + 1] = right.lstrip()
                if lstrip and left:
                    tokens[i - 1] = left.rstrip()
                if single_word and left and left[-1] != " ":
                    tokens[i - 1] += token
                    tokens[i] = ""
                elif single_word and right and right[0] != " ":
                    tokens[i] += right
                    tokens[i + 1] = ""
        out = []
        for token in tokens:
            if not token:
                continue
            if token in self.added:
                out.append(token)
            else:
                out.extend(self._tokenize(token))
        return out

    def tokenize(self, text):
        if self.legacy or len(text) == 0:
            return self._base_tokenize(text)
        text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
        tokens = self._base_tokenize(text)
        if len(tokens) > 1 and tokens[0] == SPIECE_UNDERLINE and tokens[1] in self.all_special:
            tokens = tokens[1:]
        return tokens

    def __call__(self, text):
        ids = [self.added[t][0] if t in self.added else self.sp.piece_to_id(t) for t in self.tokenize(text)]
        if not ids or ids[-1] != self.eos_id:  # _add_eos_if_not_present
            ids.append(self.eos_id)
        return ids


def main():
    with open(os.path.join(TOK_DIR, "spiece.model"), "rb") as f:
        model = f.read()
    with open(os.path.join(TOK_DIR, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    plain = spm.SentencePieceProcessor()
    plain.LoadFromSerializedProto(model)
    nodummy = spm.SentencePieceProcessor()
    nodummy.LoadFromSerializedProto(without_dummy_prefix(model))
    t5 = T5Slow(model, config)
    t5_legacy = T5Slow(model, config, legacy=True)

    cases = []
    for text in text_cases.all_cases():
        cases.append({
            "text": text,
            "sp_pieces": plain.encode(text, out_type=str),
            "sp_ids": plain.encode(text),
            "nodummy_pieces": nodummy.encode(text, out_type=str),
            "t5_ids": t5(text),
            "t5_legacy_ids": t5_legacy(text),
        })
    # Malformed UTF-8 straight into sentencepiece (bytes input): each bad byte -> U+FFFD.
    byte_cases = []
    for raw in [b"\xffab\xc3 c\xe2\x82", b"\xc0\xaf overlong", b"\xed\xa0\x80 surrogate",
                b"trunc\xf0\x9f\x98", b"\xf8\x88\x80\x80\x80 five", b"ok \xe2\x82\xac euro"]:
        byte_cases.append({
            "hex": raw.hex(),
            "sp_pieces": [p.decode("utf-8") for p in plain.encode(raw, out_type=str)],
            "sp_ids": plain.encode(raw),
        })
    doc = {
        "generator": "tests/text/gen_t5_ids.py (dev-time; /usr/bin/python3, sentencepiece "
                     + spm.__version__ + ")",
        "model": "tests/data/golden/pipeline/tokenizer_2/spiece.model",
        "cases": cases,
        "byte_cases": byte_cases,
    }
    text_cases.write_json(OUT, doc)
    print(f"wrote {len(cases)} cases + {len(byte_cases)} byte cases to {OUT}")


if __name__ == "__main__":
    main()
