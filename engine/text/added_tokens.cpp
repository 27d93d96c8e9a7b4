#include "engine/text/added_tokens.h"

#include <utility>

#include "engine/text/py_unicode.h"
#include "engine/text/utf8.h"
#include "engine/util/json_config.h"
#include "engine/util/status.h"

namespace onereward::text {
namespace {

std::u32string py_lstrip(const std::u32string& s) {
  size_t b = 0;
  while (b < s.size() && py_isspace(s[b])) ++b;
  return s.substr(b);
}

std::u32string py_rstrip(const std::u32string& s) {
  size_t e = s.size();
  while (e > 0 && py_isspace(s[e - 1])) --e;
  return s.substr(0, e);
}

}  // namespace

void AddedTokenSplitter::add(const AddedToken& token) {
  if (token.content.empty()) return;  // Trie.add ignores empty words
  tokens_[token.content] = token;
  int32_t node = 0;
  for (char32_t c : token.content) {
    auto it = nodes_[node].children.find(c);
    if (it == nodes_[node].children.end()) {
      const auto next = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace(c, next);
      nodes_.emplace_back();
      node = next;
    } else {
      node = it->second;
    }
  }
  nodes_[node].terminal = true;
}

const AddedToken* AddedTokenSplitter::find(std::u32string_view content) const {
  auto it = tokens_.find(std::u32string(content));
  return it == tokens_.end() ? nullptr : &it->second;
}

int32_t AddedTokenSplitter::child(int32_t node, char32_t c) const {
  const auto& ch = nodes_[node].children;
  auto it = ch.find(c);
  return it == ch.end() ? -1 : it->second;
}

// A line-by-line port of Trie.split (tokenization_utils.py). `states` mirrors the
// OrderedDict {start: trie node} of partial matches, in insertion (= start) order; its
// pointers are updated in place during a pass and failed ones removed after it, exactly
// as the Python does, because the lookahead reads those intermediate values.
std::vector<std::u32string> AddedTokenSplitter::trie_split(std::u32string_view text) const {
  const size_t n = text.size();
  std::vector<std::pair<size_t, int32_t>> states;
  std::vector<size_t> offsets{0};
  size_t skip = 0;
  if (!tokens_.empty()) {
    for (size_t current = 0; current < n; ++current) {
      const char32_t current_char = text[current];
      if (skip && current < skip) continue;
      std::vector<size_t> to_remove;
      bool reset = false;
      for (auto& state : states) {
        size_t start = state.first;
        const int32_t trie_pointer = state.second;
        if (nodes_[trie_pointer].terminal) {
          size_t end = 0;
          for (const auto& look : states) {
            const size_t lookstart = look.first;
            int32_t looktrie_pointer = look.second;
            size_t lookahead_index;
            if (lookstart > start) {
              break;
            } else if (lookstart < start) {
              lookahead_index = current + 1;
              end = current + 1;
            } else {
              lookahead_index = current;
              end = current;
            }
            if (nodes_[looktrie_pointer].terminal) {
              start = lookstart;
              end = lookahead_index;
              skip = lookahead_index;
            }
            while (lookahead_index < n) {
              const int32_t next = child(looktrie_pointer, text[lookahead_index]);
              if (next < 0) break;
              looktrie_pointer = next;
              lookahead_index += 1;
              if (nodes_[looktrie_pointer].terminal) {
                start = lookstart;
                end = lookahead_index;
                skip = lookahead_index;
              }
            }
          }
          offsets.push_back(start);
          offsets.push_back(end);
          reset = true;
          break;
        }
        const int32_t next = child(trie_pointer, current_char);
        if (next >= 0) {
          state.second = next;
        } else {
          to_remove.push_back(state.first);
        }
      }
      if (reset) {
        states.clear();
      } else if (!to_remove.empty()) {
        std::vector<std::pair<size_t, int32_t>> kept;
        for (const auto& s : states) {
          bool removed = false;
          for (size_t r : to_remove) removed = removed || r == s.first;
          if (!removed) kept.push_back(s);
        }
        states.swap(kept);
      }
      if (current >= skip) {
        const int32_t first = child(0, current_char);
        if (first >= 0) states.emplace_back(current, first);
      }
    }
    for (const auto& state : states) {
      if (nodes_[state.second].terminal) {
        offsets.push_back(state.first);
        offsets.push_back(n);
        break;
      }
    }
  }
  // cut_text()
  offsets.push_back(n);
  std::vector<std::u32string> out;
  size_t start = 0;
  for (size_t end : offsets) {
    if (start >= end) continue;  // (start > end is the Python's "bug, recover" branch)
    out.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return out;
}

std::vector<TextChunk> AddedTokenSplitter::split(std::u32string_view text) const {
  std::vector<std::u32string> tokens = trie_split(text);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const AddedToken* tok = find(tokens[i]);
    if (tok == nullptr) continue;
    // `left` / `right` are the neighbours as they were before this token's strips.
    const std::u32string left = i > 0 ? tokens[i - 1] : std::u32string();
    const std::u32string right = i + 1 < tokens.size() ? tokens[i + 1] : std::u32string();
    const bool has_left = !left.empty();
    const bool has_right = !right.empty();
    if (tok->rstrip && has_right) tokens[i + 1] = py_lstrip(right);
    if (tok->lstrip && has_left) tokens[i - 1] = py_rstrip(left);
    if (tok->single_word && has_left && left.back() != U' ') {
      tokens[i - 1] += tokens[i];
      tokens[i].clear();
    } else if (tok->single_word && has_right && right.front() != U' ') {
      tokens[i] += right;
      tokens[i + 1].clear();
    }
  }
  std::vector<TextChunk> out;
  for (auto& t : tokens) {
    if (t.empty()) continue;
    const AddedToken* tok = find(t);
    out.push_back(TextChunk{std::move(t), tok});
  }
  return out;
}

namespace {

std::string token_content(const JsonConfig& cfg, const std::string& key,
                          const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string())
    return v.at("content").get<std::string>();
  cfg.fail(key, "must be a string or an object with a string 'content'");
}

bool flag(const JsonConfig& cfg, const std::string& key, const nlohmann::json& obj,
          const char* name, bool def) {
  if (!obj.contains(name) || obj.at(name).is_null()) return def;
  if (!obj.at(name).is_boolean()) cfg.fail(key, std::string("has a non-boolean '") + name + "'");
  return obj.at(name).get<bool>();
}

}  // namespace

SpecialTokenConfig read_special_token_config(const JsonConfig& cfg) {
  SpecialTokenConfig out;
  const auto& j = cfg.json();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    if (j.contains(key) && !j.at(key).is_null())
      out.named[key] = token_content(cfg, key, j.at(key));
  }
  if (j.contains("additional_special_tokens") && !j.at("additional_special_tokens").is_null()) {
    const auto& list = j.at("additional_special_tokens");
    if (!list.is_array()) cfg.fail("additional_special_tokens", "must be a list");
    for (const auto& v : list)
      out.additional.push_back(token_content(cfg, "additional_special_tokens", v));
  }
  if (j.contains("added_tokens_decoder") && !j.at("added_tokens_decoder").is_null()) {
    const auto& dec = j.at("added_tokens_decoder");
    const std::string key = "added_tokens_decoder";
    if (!dec.is_object()) cfg.fail(key, "must be an object");
    for (auto it = dec.begin(); it != dec.end(); ++it) {
      const std::string entry = key + "." + it.key();
      AddedToken t;
      size_t used = 0;
      try {
        t.id = std::stoll(it.key(), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != it.key().size() || t.id < 0) cfg.fail(entry, "key is not a token id");
      const auto& v = it.value();
      if (!v.is_object()) cfg.fail(entry, "must be an object");
      t.content = utf8_to_u32(sanitize_utf8(token_content(cfg, entry, v)));
      if (t.content.empty()) cfg.fail(entry, "has an empty 'content'");
      t.lstrip = flag(cfg, entry, v, "lstrip", false);
      t.rstrip = flag(cfg, entry, v, "rstrip", false);
      t.single_word = flag(cfg, entry, v, "single_word", false);
      t.special = flag(cfg, entry, v, "special", false);
      out.added_tokens_decoder.push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace onereward::text
