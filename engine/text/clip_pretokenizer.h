// CLIPTokenizer's word splitter: re.findall with the `regex` module pattern
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// compiled with IGNORECASE, applied to the BasicTokenizer output joined by spaces.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onereward::text {

/// [begin, end) code point spans of the matches, left to right.
std::vector<std::pair<size_t, size_t>> clip_pretokenize(std::u32string_view text);

}  // namespace onereward::text
