#include "engine/text/clip_tokenizer.h"

#include "engine/text/added_tokens.h"
#include "engine/text/bpe_model.h"
#include "engine/text/clip_basic_tokenizer.h"
#include "engine/text/clip_pretokenizer.h"
#include "engine/text/file_util.h"
#include "engine/text/utf8.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward {

using text::AddedToken;
using text::AddedTokenSplitter;
using text::BpeModel;

ClipTokenizer::ClipTokenizer() = default;
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;
ClipTokenizer::~ClipTokenizer() = default;

ClipTokenizer ClipTokenizer::load(const std::string& dir) {
  ClipTokenizer t;
  t.bpe_ = std::make_unique<BpeModel>(
      BpeModel::load(text::join_path(dir, "vocab.json"), text::join_path(dir, "merges.txt")));
  t.added_ = std::make_unique<AddedTokenSplitter>();

  // CLIPTokenizer defaults, overridden by tokenizer_config.json when present.
  std::string bos = "<|startoftext|>", eos = "<|endoftext|>", pad = "<|endoftext|>",
              unk = "<|endoftext|>";
  std::vector<AddedToken> added;
  const std::string cfg_path = text::join_path(dir, "tokenizer_config.json");
  std::string id_source = text::join_path(dir, "vocab.json");
  if (text::file_exists(cfg_path)) {
    const JsonConfig cfg = JsonConfig::load(cfg_path);
    const text::SpecialTokenConfig st = text::read_special_token_config(cfg);
    auto pick = [&](const char* key, std::string* v) {
      auto it = st.named.find(key);
      if (it != st.named.end()) *v = it->second;
    };
    pick("bos_token", &bos);
    pick("eos_token", &eos);
    pick("pad_token", &pad);
    pick("unk_token", &unk);
    t.max_length_ = cfg.get_int("model_max_length", 77);
    if (t.max_length_ < 2) cfg.fail("model_max_length", "must be at least 2");
    added = st.added_tokens_decoder;
    id_source = cfg_path + " / " + id_source;
  }
  // Special tokens not listed in added_tokens_decoder are added with their vocab ids
  // (PreTrainedTokenizer.__init__ adds all special tokens to the trie).
  for (const std::string* s : {&bos, &eos, &unk, &pad}) {
    const std::u32string content = text::utf8_to_u32(*s);
    bool listed = false;
    for (const auto& a : added) listed = listed || a.content == content;
    if (listed) continue;
    AddedToken a;
    a.content = content;
    a.id = t.bpe_->vocab_id(*s);
    if (a.id < 0)
      throw_error(StatusCode::kDataLoss, id_source + ": special token '" + *s +
                                             "' is neither an added token nor in the vocabulary");
    added.push_back(a);
  }
  for (const auto& a : added) t.added_->add(a);
  auto id_of = [&](const std::string& tok) {
    // convert_tokens_to_ids: added tokens first, then the vocabulary.
    const AddedToken* a = t.added_->find(text::utf8_to_u32(tok));
    return a ? a->id : t.bpe_->vocab_id(tok);
  };
  t.bos_id_ = id_of(bos);
  t.eos_id_ = id_of(eos);
  t.pad_id_ = id_of(pad);
  t.unk_id_ = id_of(unk);
  if (t.unk_id_ < 0)
    throw_error(StatusCode::kDataLoss, id_source + ": unk token '" + unk + "' has no id");
  // The BPE symbol table is fixed after loading, so each symbol's final id
  // (_convert_token_to_id_with_added_voc: added tokens, then vocab, then unk) is
  // resolved once here.
  t.symbol_ids_.resize(t.bpe_->num_symbols());
  for (size_t s = 0; s < t.symbol_ids_.size(); ++s) {
    const std::string& sym = t.bpe_->symbol(static_cast<int32_t>(s));
    const AddedToken* a = t.added_->find(text::utf8_to_u32(sym));
    const int64_t v = t.bpe_->symbol_vocab_id(static_cast<int32_t>(s));
    t.symbol_ids_[s] = a ? a->id : (v >= 0 ? v : t.unk_id_);
  }
  return t;
}

// PreTrainedTokenizer.tokenize + convert_tokens_to_ids. CLIPTokenizer has no
// `do_lower_case` attribute, so the base class does not lower-case before the trie split:
// the split is case-sensitive and lower-casing happens in BasicTokenizer per chunk.
void ClipTokenizer::run(const std::string& input, std::vector<int64_t>* ids,
                        std::vector<std::string>* tokens) const {
  const std::u32string text = text::utf8_to_u32(text::sanitize_utf8(input));
  std::vector<int32_t> symbols;
  std::string word;
  for (const text::TextChunk& chunk : added_->split(text)) {
    if (chunk.added) {
      if (ids) ids->push_back(chunk.added->id);
      if (tokens) tokens->push_back(text::u32_to_utf8(chunk.added->content));
      continue;
    }
    // _tokenize: " ".join(BasicTokenizer.tokenize(chunk)), then regex findall + BPE.
    std::u32string joined;
    for (const auto& w : text::clip_basic_tokenize(chunk.text)) {
      if (!joined.empty()) joined.push_back(U' ');
      joined += w;
    }
    for (const auto& span : text::clip_pretokenize(joined)) {
      word = text::u32_to_utf8(std::u32string_view(joined).substr(span.first, span.second - span.first));
      symbols.clear();
      bpe_->encode_word(word, &symbols);
      for (int32_t s : symbols) {
        if (tokens) tokens->push_back(bpe_->symbol(s));
        if (ids) ids->push_back(symbol_ids_[static_cast<size_t>(s)]);
      }
    }
  }
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  run(text, nullptr, &out);
  return out;
}

std::vector<int64_t> ClipTokenizer::encode_no_special(const std::string& text) const {
  std::vector<int64_t> out;
  run(text, &out, nullptr);
  return out;
}

size_t ClipTokenizer::untruncated_length(const std::string& text) const {
  return encode_no_special(text).size() + 2;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids = encode_no_special(text);
  // prepare_for_model: truncate to max_length - num_special_tokens_to_add (2), then
  // build_inputs_with_special_tokens, then pad right with pad_token_id.
  const auto keep = static_cast<size_t>(max_length_ - 2);
  if (ids.size() > keep) ids.resize(keep);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(max_length_));
  out.push_back(bos_id_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(eos_id_);
  out.resize(static_cast<size_t>(max_length_), pad_id_);
  return out;
}

}  // namespace onereward
