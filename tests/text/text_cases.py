"""Shared input strings for the dev-time tokenizer id generators (gen_t5_ids.py,
gen_clip_ids.py). Not used by the C++ tests directly: the generators write the strings
together with the expected ids into tests/data/text/*.json."""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")


def golden_prompts():
    with open(os.path.join(GOLDEN, "cases", "component_t5", "case.json"), encoding="utf-8") as f:
        return json.load(f)["prompts"]


HANDPICKED = [
    # basics / whitespace
    "", " ", "  ", "a", "A", "hello world", "Hello World", "  leading and trailing  ",
    "multiple   spaces    here", "tab\tseparated\tvalues", "new\nline\r\nwindows\rmac",
    "\t\n  \u3000 mixed\u00a0spaces\u2009thin\u200bzero-width", "trailing newline\n",
    # numbers and punctuation
    "0", "42", "3.14159", "1,000,000", "100% ÜBER-cool?", "v1.2.3-rc4", "2024-08-16T12:34:56Z",
    "a+b=c; x*y/z", "(parens) [brackets] {braces} <angles>", "!!!???...", "--- *** ___",
    "don't can't won't I'm you're we've they'll he'd it's", "DON'T SHOUT 'S 'T",
    "email@example.com https://example.org/path?q=1&r=2#frag", "C:\\path\\to\\file.txt",
    "$12.50 €9,99 £5 ¥100 ₹20", "#hashtag @mention",
    # accents, NFC/NFD, ligatures, NFKC
    "Héllo WORLD!! Café — naïve façade", "e\u0301 vs \u00e9", "Cafe\u0301", "A\u030a\u00c5",
    "ﬁ ﬂ ﬀ ﬃ", "①②③ ⑴ ⒈", "½ ¼ ¾ ⅓", "™ © ®", "ＡＢＣ１２３ｘｙｚ", "ｶﾀｶﾅ ﾊﾟﾋﾟ", "㍿ ㌔ ㎏ ㎞",
    "x² x³ H₂O", "Ⅻ ⅻ", "ℌ𝔢𝔩𝔩𝔬 𝐁𝐨𝐥𝐝", "ſ long s 'ſ", "ǅ ǆ Ǆ", "İstanbul ıi", "ΣΑΣ ΟΔΟΣ σοφός",
    "Straße STRASSE", "ÆØÅ æøå", "Ꝺ ꝺ",
    # scripts
    "日本語 ok.", "東京タワー と ひらがな", "中文分词测试：你好，世界！", "한국어 텍스트 안녕하세요",
    "Привет, мир! Ёлка", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Γειά σου Κόσμε",
    "שלום עולם", "ქართული", "Հայերեն", "ሰላም", "ᚠᚢᚦ", "𐌰𐌱𐌲", "𓀀𓀁",
    # emoji
    "😀", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family", "🇩🇪🇯🇵 flags", "❤️ heart", "🫨 shaking face (Unicode 15)",
    "emoji😀inside😀words",
    # control and special characters
    "bell\x07 escape\x1b null\x00 del\x7f", "soft\u00adhyphen", "bom\ufeffhere", "rtl\u200fmark",
    "repl\ufffdchar", "private\ue000use", "\u2028line sep\u2029para sep", "nel\x85char",
    "unassigned\U000e0080x", "combining only \u0301\u0302", "ypogegrammeni a\u0345b",
    # sentencepiece / added-token edge cases
    "\u2581", "\u2581\u2581 underline", "a\u2581b", "<unk>", "<pad>", "</s>", "<s>",
    "hello</s>", "</s>hello", "</s> hello", "hello </s> world", "a</s></s>b", "<extra_id_0>",
    "<extra_id_0> fill <extra_id_1>", "<extra_id_10>x<extra_id_1>", "<extra_id_99>",
    "<extra_id_100>", "<extra_id_>", "<EXTRA_ID_0>", "x<pad>y<unk>z", " <extra_id_5> ",
    "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "<|ENDOFTEXT|>", "!<|endoftext|>",
    "<|startoftext|>hi<|endoftext|>", "<|ſtartoftext|>", "<|endoftext|><|endoftext|>",
    # long
    "a" * 300, "supercalifragilisticexpialidocious " * 5, "word " * 600,
    "The quick brown fox jumps over the lazy dog. " * 40,
    "日本" * 200, "😀" * 100, "x" * 2000,
]

# Characters the random strings draw from: a mix of everything above.
POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" \t\n\r.,;:!?'\"-_()[]{}<>/\\|@#$%^&*+=~`")
    + list("éèêëàâäöüßçñøåæœÁÉÍÓÚÑ")
    + ["\u0301", "\u0308", "\u0345", "\u200b", "\u200d", "\u00a0", "\u3000", "\u2009", "\u00ad",
       "\ufeff", "\x00", "\x07", "\x1f", "\x85", "\ufffd", "\u2581", "\u2028"]
    + list("日本語中文字東京你好世界한국어ひらがなカタカナｶﾀｶﾅＡＢＣ１２３")
    + list("ПриветмирΣΑΣσοφόςمرحباनमस्तेสวัสดี")
    + list("ﬁﬂ①½™²ℌ𝔢㍿ſİ")
    + ["😀", "👍", "🏽", "❤", "\ufe0f", "🇩", "🇪", "🫨", "\U000e0080"]
    + ["<extra_id_0>", "</s>", "<pad>", "<unk>", "<|endoftext|>", "<|startoftext|>", "'s", "'ll"]
)


def random_strings(n=300, seed=20240816):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    return out


def all_cases():
    seen = set()
    out = []
    for s in golden_prompts() + HANDPICKED + random_strings():
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def write_json(path, doc):
    """json.dump with one list element per line (readable diffs, modest size)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        items = list(doc.items())
        for k, (key, value) in enumerate(items):
            sep = ",\n" if k + 1 < len(items) else "\n"
            if isinstance(value, list):
                f.write(json.dumps(key) + ": [\n")
                f.write(",\n".join(json.dumps(v, ensure_ascii=True) for v in value))
                f.write("\n]" + sep)
            else:
                f.write(json.dumps(key) + ": " + json.dumps(value, ensure_ascii=True) + sep)
        f.write("}\n")
