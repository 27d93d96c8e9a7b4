#include "engine/text/bpe_model.h"

#include <nlohmann/json.hpp>

#include <climits>

#include "engine/text/file_util.h"
#include "engine/text/py_unicode.h"
#include "engine/text/utf8.h"
#include "engine/util/status.h"

namespace onereward::text {
namespace {

// CLIPTokenizer: merges.txt lines [1 : 49152 - 256 - 2 + 1].
constexpr size_t kMaxMerges = 49152 - 256 - 2;

struct ByteTable {
  char32_t map[256];
  ByteTable() {
    bool printable[256] = {};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) map[b] = printable[b] ? static_cast<char32_t>(b) : 256 + n++;
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// Python str.split() without arguments, on a UTF-8 line.
std::vector<std::string> py_split(std::string_view line) {
  std::vector<std::string> out;
  const std::u32string u = utf8_to_u32(line);
  size_t i = 0;
  while (i < u.size()) {
    while (i < u.size() && py_isspace(u[i])) ++i;
    if (i == u.size()) break;
    size_t j = i;
    while (j < u.size() && !py_isspace(u[j])) ++j;
    out.push_back(u32_to_utf8(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return out;
}

// Python str.strip() without arguments.
std::string_view py_strip(std::string_view s) {
  const std::u32string u = utf8_to_u32(s);
  size_t b = 0, e = u.size();
  while (b < e && py_isspace(u[b])) ++b;
  while (e > b && py_isspace(u[e - 1])) --e;
  // Map code point offsets back to bytes.
  size_t byte_b = 0, byte_e = 0, cp = 0, i = 0;
  while (i <= s.size()) {
    if (cp == b) byte_b = i;
    if (cp == e) {
      byte_e = i;
      break;
    }
    if (i == s.size()) break;
    size_t n = 1;
    decode_utf8(s.data() + i, s.size() - i, &n);
    i += n;
    ++cp;
  }
  return s.substr(byte_b, byte_e - byte_b);
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_table().map[b]; }

BpeModel::BpeModel(BpeModel&& o) noexcept
    : vocab_(std::move(o.vocab_)),
      symbols_(std::move(o.symbols_)),
      symbol_vocab_ids_(std::move(o.symbol_vocab_ids_)),
      symbol_index_(std::move(o.symbol_index_)),
      merges_(std::move(o.merges_)),
      special_start_(o.special_start_),
      special_end_(o.special_end_) {
  std::copy(std::begin(o.byte_symbol_), std::end(o.byte_symbol_), byte_symbol_);
  std::copy(std::begin(o.byte_symbol_end_), std::end(o.byte_symbol_end_), byte_symbol_end_);
}

int32_t BpeModel::intern(const std::string& s) {
  auto it = symbol_index_.find(s);
  if (it != symbol_index_.end()) return it->second;
  const auto id = static_cast<int32_t>(symbols_.size());
  symbols_.push_back(s);
  auto v = vocab_.find(s);
  symbol_vocab_ids_.push_back(v == vocab_.end() ? -1 : v->second);
  symbol_index_.emplace(s, id);
  return id;
}

int64_t BpeModel::vocab_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

BpeModel BpeModel::load(const std::string& vocab_path, const std::string& merges_path) {
  BpeModel m;
  {
    const std::string text = read_file(vocab_path);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw_error(StatusCode::kDataLoss, vocab_path + ": not valid JSON");
    if (!j.is_object())
      throw_error(StatusCode::kDataLoss, vocab_path + ": expected a JSON object {token: id}");
    if (j.empty()) throw_error(StatusCode::kDataLoss, vocab_path + ": empty vocabulary");
    m.vocab_.reserve(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
        throw_error(StatusCode::kDataLoss,
                    vocab_path + ": token '" + it.key() + "' has no non-negative integer id");
      m.vocab_[it.key()] = it.value().get<int64_t>();
    }
  }
  const ByteTable& bt = byte_table();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(bt.map[b], &s);
    m.byte_symbol_[b] = m.intern(s);
    m.byte_symbol_end_[b] = m.intern(s + "</w>");
  }
  m.special_start_ = m.intern("<|startoftext|>");
  m.special_end_ = m.intern("<|endoftext|>");
  {
    std::string text = read_file(merges_path);
    if (sanitize_utf8(text) != text)
      throw_error(StatusCode::kDataLoss, merges_path + ": not valid UTF-8");
    // open(..., encoding="utf-8").read() uses universal newlines: "\r\n" and "\r" -> "\n".
    std::string unified;
    unified.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r') {
        unified.push_back('\n');
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      } else {
        unified.push_back(text[i]);
      }
    }
    text.swap(unified);
    // merges_handle.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]
    const std::string_view body = py_strip(text);
    if (body.empty()) throw_error(StatusCode::kDataLoss, merges_path + ": empty merges file");
    std::vector<std::string_view> lines;
    size_t start = 0;
    while (lines.size() <= kMaxMerges) {
      const size_t nl = body.find('\n', start);
      lines.push_back(body.substr(start, nl == std::string_view::npos ? nl : nl - start));
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    if (lines[0].substr(0, 8) != "#version")
      throw_error(StatusCode::kDataLoss,
                  merges_path + ": line 1: expected a '#version' header, got '" +
                      std::string(lines[0].substr(0, 40)) + "'");
    m.merges_.reserve(lines.size());
    for (size_t i = 1; i < lines.size(); ++i) {
      const std::vector<std::string> parts = py_split(lines[i]);
      if (parts.size() != 2)
        throw_error(StatusCode::kDataLoss, merges_path + ": line " + std::to_string(i + 1) +
                                               ": expected two space-separated symbols, got " +
                                               std::to_string(parts.size()));
      const int32_t a = m.intern(parts[0]);
      const int32_t b = m.intern(parts[1]);
      const int32_t r = m.intern(parts[0] + parts[1]);
      // dict(zip(merges, range(...))): a repeated pair keeps its last rank.
      m.merges_[pair_key(a, b)] = Merge{static_cast<int32_t>(i - 1), r};
    }
  }
  return m;
}

// CLIPTokenizer.bpe(): while some adjacent pair has a rank, take the lowest-ranked pair
// and merge all its occurrences in one left-to-right scan. Pair ranks are kept in an
// array and only recomputed next to merged symbols, so a long word costs O(n) integer
// work per merge step rather than O(n) hash lookups.
void BpeModel::bpe(std::vector<int32_t>* word) const {
  std::vector<int32_t>& w = *word;
  if (w.size() < 2) return;
  auto rank_of = [this](int32_t a, int32_t b) {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? INT32_MAX : it->second.rank;
  };
  std::vector<int32_t> ranks(w.size() - 1);
  for (size_t i = 0; i + 1 < w.size(); ++i) ranks[i] = rank_of(w[i], w[i + 1]);
  std::vector<int32_t> nw, nranks, src;
  std::vector<bool> merged;
  while (w.size() >= 2) {
    size_t best = 0;
    for (size_t i = 1; i < ranks.size(); ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == INT32_MAX) break;
    const int32_t first = w[best], second = w[best + 1];
    const int32_t result = merges_.at(pair_key(first, second)).result;
    nw.clear();
    src.clear();
    merged.clear();
    for (size_t i = 0; i < w.size();) {
      if (w[i] == first && i + 1 < w.size() && w[i + 1] == second) {
        nw.push_back(result);
        src.push_back(static_cast<int32_t>(i));
        merged.push_back(true);
        i += 2;
      } else {
        nw.push_back(w[i]);
        src.push_back(static_cast<int32_t>(i));
        merged.push_back(false);
        i += 1;
      }
    }
    nranks.assign(nw.empty() ? 0 : nw.size() - 1, INT32_MAX);
    for (size_t j = 0; j + 1 < nw.size(); ++j) {
      // Two untouched neighbours were already adjacent: reuse their rank.
      nranks[j] = (!merged[j] && !merged[j + 1]) ? ranks[src[j]] : rank_of(nw[j], nw[j + 1]);
    }
    w.swap(nw);
    ranks.swap(nranks);
  }
}

void BpeModel::encode_word(std::string_view word_utf8, std::vector<int32_t>* symbols) const {
  if (word_utf8.empty()) return;
  // CLIPTokenizer seeds its cache with the two special tokens (returned without "</w>").
  if (word_utf8 == "<|startoftext|>") {
    symbols->push_back(special_start_);
    return;
  }
  if (word_utf8 == "<|endoftext|>") {
    symbols->push_back(special_end_);
    return;
  }
  const bool cacheable = word_utf8.size() <= kCacheMaxWordBytes;
  std::string key;
  if (cacheable) {
    key.assign(word_utf8);
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      symbols->insert(symbols->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> w;
  w.reserve(word_utf8.size());
  for (size_t i = 0; i < word_utf8.size(); ++i) {
    const auto b = static_cast<uint8_t>(word_utf8[i]);
    w.push_back(i + 1 == word_utf8.size() ? byte_symbol_end_[b] : byte_symbol_[b]);
  }
  bpe(&w);
  symbols->insert(symbols->end(), w.begin(), w.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::move(key), std::move(w));
  }
}

}  // namespace onereward::text
