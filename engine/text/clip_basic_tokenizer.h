// The text clean-up CLIPTokenizer runs when ftfy is not installed:
// transformers' BertBasicTokenizer(do_lower_case=True, strip_accents=False,
// do_split_on_punc=False, tokenize_chinese_chars=True) (models/bert/tokenization_bert.py,
// copied into models/clip/tokenization_clip.py), as of transformers 4.45.0.dev0.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace onereward::text {

/// BasicTokenizer.tokenize(text) with the CLIP settings:
///   1. _clean_text: drop U+0000, U+FFFD and control chars (category C*, except \t \n \r);
///      map \t \n \r and category Zs to ' '.
///   2. _tokenize_chinese_chars: ' ' around CJK ideographs (BERT's code point ranges).
///   3. unicodedata.normalize("NFC").
///   4. str.split() on Python whitespace; each token str.lower()-ed (accents kept,
///      no punctuation split).
std::vector<std::u32string> clip_basic_tokenize(std::u32string_view text);

/// BERT's _is_chinese_char ranges.
bool is_bert_chinese_char(char32_t cp);

}  // namespace onereward::text
