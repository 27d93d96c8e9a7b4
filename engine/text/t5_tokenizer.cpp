#include "engine/text/t5_tokenizer.h"

#include <algorithm>

#include "engine/text/added_tokens.h"
#include "engine/text/file_util.h"
#include "engine/text/sentencepiece.h"
#include "engine/text/utf8.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward {

using text::AddedToken;
using text::SentencePiece;

namespace {
constexpr char32_t kSpieceUnderline = 0x2581;  // "▁"
}

T5Tokenizer::T5Tokenizer() = default;
T5Tokenizer::T5Tokenizer(T5Tokenizer&&) noexcept = default;
T5Tokenizer& T5Tokenizer::operator=(T5Tokenizer&&) noexcept = default;
T5Tokenizer::~T5Tokenizer() = default;

T5Tokenizer T5Tokenizer::load(const std::string& dir) {
  T5Tokenizer t;
  const std::string model_path = text::join_path(dir, "spiece.model");
  const std::string cfg_path = text::join_path(dir, "tokenizer_config.json");
  std::string eos = "</s>", unk = "<unk>", pad = "<pad>";
  std::vector<std::string> additional;
  std::vector<AddedToken> added;
  int64_t extra_ids = 100;
  // T5Tokenizer(legacy=None) warns and uses the legacy behaviour; FLUX's config says false.
  t.legacy_ = true;
  bool have_cfg = text::file_exists(cfg_path);
  if (have_cfg) {
    const JsonConfig cfg = JsonConfig::load(cfg_path);
    const text::SpecialTokenConfig st = text::read_special_token_config(cfg);
    if (auto it = st.named.find("eos_token"); it != st.named.end()) eos = it->second;
    if (auto it = st.named.find("unk_token"); it != st.named.end()) unk = it->second;
    if (auto it = st.named.find("pad_token"); it != st.named.end()) pad = it->second;
    additional = st.additional;
    added = st.added_tokens_decoder;
    t.legacy_ = cfg.get_bool("legacy", true);
    t.add_prefix_space_ = cfg.get_bool("add_prefix_space", true);
    extra_ids = cfg.get_int("extra_ids", 100);
    if (extra_ids < 0) cfg.fail("extra_ids", "must not be negative");
    t.model_max_length_ = cfg.get_int("model_max_length", 512);
  }
  // get_spm_processor(): legacy=False reloads the proto with add_dummy_prefix = False.
  t.sp_ = std::make_unique<SentencePiece>(
      SentencePiece::load(model_path, t.legacy_ ? std::nullopt : std::optional<bool>(false)));
  const auto sp_size = static_cast<int64_t>(t.sp_->size());

  if (additional.empty()) {
    for (int64_t i = 0; i < extra_ids; ++i) additional.push_back("<extra_id_" + std::to_string(i) + ">");
  }
  if (added.empty()) {
    // No added_tokens_decoder in the config: T5Tokenizer.__init__'s own table, sentinel
    // <extra_id_i> at sp_size + extra_ids - 1 - i (lstrip/rstrip on, as in transformers).
    for (int64_t i = 0; i < extra_ids; ++i) {
      AddedToken a;
      a.content = text::utf8_to_u32("<extra_id_" + std::to_string(i) + ">");
      a.id = sp_size + extra_ids - 1 - i;
      a.lstrip = a.rstrip = true;
      added.push_back(a);
    }
  }
  // Special tokens not listed yet are added with their sentencepiece ids.
  std::vector<std::string> special{eos, unk, pad};
  special.insert(special.end(), additional.begin(), additional.end());
  for (const auto& s : special) {
    const std::u32string content = text::utf8_to_u32(s);
    const bool listed = std::any_of(added.begin(), added.end(),
                                    [&](const AddedToken& a) { return a.content == content; });
    if (listed) continue;
    AddedToken a;
    a.content = content;
    a.id = t.sp_->piece_to_id(s);
    added.push_back(a);
  }
  t.added_ = std::make_unique<text::AddedTokenSplitter>();
  for (const auto& a : added) t.added_->add(a);
  t.all_special_tokens_ = special;
  t.unk_token_ = unk;
  // unk_token_length = len(sp_model.encode(str(unk_token)))
  t.unk_token_length_ = t.sp_->encode(unk).size();
  const auto ids = t.ids_of({eos, pad});
  t.eos_id_ = ids[0];
  t.pad_id_ = ids[1];
  return t;
}

// T5Tokenizer._tokenize(chunk).
std::vector<std::string> T5Tokenizer::sp_tokenize(const std::u32string& chunk) const {
  const std::string utf8 = text::u32_to_utf8(chunk);
  const bool leading_space = !chunk.empty() && (chunk[0] == kSpieceUnderline || chunk[0] == U' ');
  std::vector<std::string> out;
  if (legacy_ || !leading_space) {
    for (auto& p : sp_->encode(utf8)) out.push_back(std::move(p.piece));
    return out;
  }
  // sp("<unk>" + chunk)[unk_token_length:]: the unk prefix keeps the leading "▁" from
  // being stripped as a leading space.
  const auto pieces = sp_->encode(unk_token_ + utf8);
  const size_t skip = pieces.size() >= unk_token_length_ ? unk_token_length_ : 0;
  for (size_t i = skip; i < pieces.size(); ++i) out.push_back(pieces[i].piece);
  return out;
}

std::vector<std::string> T5Tokenizer::tokenize(const std::string& input) const {
  std::u32string text = text::utf8_to_u32(text::sanitize_utf8(input));
  const bool plain = legacy_ || text.empty();
  if (!plain) {
    std::replace(text.begin(), text.end(), kSpieceUnderline, U' ');
    if (add_prefix_space_) text.insert(text.begin(), kSpieceUnderline);
  }
  // PreTrainedTokenizer.tokenize: added-token split, model tokenizer on the rest.
  std::vector<std::string> tokens;
  for (const auto& chunk : added_->split(text)) {
    if (chunk.added) {
      tokens.push_back(text::u32_to_utf8(chunk.text));
    } else {
      for (auto& p : sp_tokenize(chunk.text)) tokens.push_back(std::move(p));
    }
  }
  if (!plain && tokens.size() > 1 && tokens[0] == "\xe2\x96\x81" &&
      std::find(all_special_tokens_.begin(), all_special_tokens_.end(), tokens[1]) !=
          all_special_tokens_.end()) {
    tokens.erase(tokens.begin());
  }
  return tokens;
}

std::vector<int64_t> T5Tokenizer::ids_of(const std::vector<std::string>& tokens) const {
  // _convert_token_to_id_with_added_voc: added tokens first, then sp.piece_to_id.
  std::vector<int64_t> ids;
  ids.reserve(tokens.size() + 1);
  for (const auto& tok : tokens) {
    const AddedToken* a = added_->empty() ? nullptr : added_->find(text::utf8_to_u32(tok));
    ids.push_back(a ? a->id : sp_->piece_to_id(tok));
  }
  return ids;
}

std::vector<int64_t> T5Tokenizer::encode_no_pad(const std::string& text) const {
  std::vector<int64_t> ids = ids_of(tokenize(text));
  // build_inputs_with_special_tokens -> _add_eos_if_not_present.
  if (ids.empty() || ids.back() != eos_id_) ids.push_back(eos_id_);
  return ids;
}

std::vector<int64_t> T5Tokenizer::encode(const std::string& text, int64_t max_length) const {
  check_arg(max_length >= 2, "T5Tokenizer::encode: max_length must be >= 2, got " +
                                 std::to_string(max_length));
  std::vector<int64_t> ids = ids_of(tokenize(text));
  // prepare_for_model: truncate to max_length - 1 (one special token), then add </s>
  // unless the (truncated) ids already end with it, then pad right with <pad>.
  const auto keep = static_cast<size_t>(max_length - 1);
  if (ids.size() > keep) ids.resize(keep);
  if (ids.empty() || ids.back() != eos_id_) ids.push_back(eos_id_);
  ids.resize(static_cast<size_t>(max_length), pad_id_);
  return ids;
}

}  // namespace onereward
