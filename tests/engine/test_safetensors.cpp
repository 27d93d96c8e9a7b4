// The safetensors reader and the diffusers weight layout: round trips, dtype conversion,
// sharded checkpoints, and every malformed-file case giving an error that names the
// file and the problem (never a crash or an out-of-bounds read).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/checkpoint/safetensors.h"
#include "engine/checkpoint/weights.h"
#include "golden.h"

namespace fs = std::filesystem;
using namespace onereward;
using onereward::testing::TempDir;

namespace {


void write_raw(const std::string& path, const std::string& header, const std::string& data,
               int64_t header_len_override = -1) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
}

std::string expect_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const onereward::Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kDataLoss) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "error must name the file: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripAndDtypes) {
  TempDir tmp;
  std::map<std::string, torch::Tensor> t;
  t["a"] = torch::arange(12, torch::kFloat32).view({3, 4});
  t["b"] = torch::arange(6, torch::kFloat32).to(torch::kBFloat16);
  t["c"] = torch::arange(5, torch::kFloat32).to(torch::kFloat16);
  t["i"] = torch::arange(3, torch::kInt64);
  save_tensors(tmp.file("x.safetensors"), t, {{"format", "pt"}});
  auto f = SafetensorsFile::open(tmp.file("x.safetensors"));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->info("b").dtype, StDType::kBF16);
  auto back = load_tensors(tmp.file("x.safetensors"));
  for (const auto& [k, v] : t) {
    EXPECT_TRUE(back.at(k).equal(v)) << k;
    EXPECT_EQ(back.at(k).scalar_type(), v.scalar_type()) << k;
  }
  // Loading converts floating tensors to the requested dtype.
  auto ws = WeightStore::open_file(tmp.file("x.safetensors"));
  TensorPlacement p;
  p.dtype = torch::kBFloat16;
  EXPECT_EQ(ws.get("a", p).scalar_type(), torch::kBFloat16);
  EXPECT_EQ(ws.get("i", p).scalar_type(), torch::kInt64);
  p.dtype = torch::kFloat32;
  EXPECT_TRUE(ws.get("b", p).equal(torch::arange(6, torch::kFloat32)));
}

TEST(Safetensors, GoldenShardedTransformerOpens) {
  auto ws = WeightStore::open_dir(onereward::testing::golden_path("pipeline/transformer"));
  EXPECT_EQ(ws.files().size(), 2u);
  EXPECT_TRUE(ws.contains("x_embedder.weight"));
  auto single = WeightStore::open_dir(
      onereward::testing::golden_path("variants/flux.1-fill-dev-OneRewardDynamic-transformer"));
  EXPECT_EQ(single.files().size(), 1u);
  EXPECT_EQ(single.keys(), ws.keys());
}

TEST(SafetensorsErrors, MissingFile) {
  try {
    SafetensorsFile::open("/nonexistent/x.safetensors");
    FAIL();
  } catch (const onereward::Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.safetensors"), std::string::npos);
  }
}

TEST(SafetensorsErrors, TruncatedBeforeHeaderLength) {
  TempDir tmp;
  std::ofstream(tmp.file("t.safetensors"), std::ios::binary) << "abc";
  EXPECT_NE(expect_error(tmp.file("t.safetensors")).find("truncated"), std::string::npos);
  std::ofstream(tmp.file("e.safetensors"), std::ios::binary) << "";
  expect_error(tmp.file("e.safetensors"));
}

TEST(SafetensorsErrors, HeaderLengthPastEnd) {
  TempDir tmp;
  write_raw(tmp.file("h.safetensors"), "{}", "", 1000);
  EXPECT_NE(expect_error(tmp.file("h.safetensors")).find("past the end"), std::string::npos);
  write_raw(tmp.file("h2.safetensors"), "{}", "", int64_t(1) << 62);
  expect_error(tmp.file("h2.safetensors"));
}

TEST(SafetensorsErrors, HeaderNotJson) {
  TempDir tmp;
  write_raw(tmp.file("j.safetensors"), "{not json", "");
  EXPECT_NE(expect_error(tmp.file("j.safetensors")).find("JSON"), std::string::npos);
  write_raw(tmp.file("k.safetensors"), "[1,2]", "");
  expect_error(tmp.file("k.safetensors"));
}

TEST(SafetensorsErrors, OffsetsOutsideData) {
  TempDir tmp;
  write_raw(tmp.file("o.safetensors"), R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
            std::string(8, '\0'));
  auto msg = expect_error(tmp.file("o.safetensors"));
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside the data"), std::string::npos) << msg;
}

TEST(SafetensorsErrors, OffsetsReversed) {
  TempDir tmp;
  write_raw(tmp.file("r.safetensors"), R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
            std::string(8, '\0'));
  expect_error(tmp.file("r.safetensors"));
}

TEST(SafetensorsErrors, OverlappingTensors) {
  TempDir tmp;
  write_raw(tmp.file("ov.safetensors"),
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0'));
  EXPECT_NE(expect_error(tmp.file("ov.safetensors")).find("overlap"), std::string::npos);
}

TEST(SafetensorsErrors, UnknownDtype) {
  TempDir tmp;
  write_raw(tmp.file("d.safetensors"), R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})",
            std::string(4, '\0'));
  EXPECT_NE(expect_error(tmp.file("d.safetensors")).find("unknown dtype 'F7'"), std::string::npos);
}

TEST(SafetensorsErrors, ShapeSizeMismatch) {
  TempDir tmp;
  write_raw(tmp.file("s.safetensors"), R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
            std::string(8, '\0'));
  EXPECT_NE(expect_error(tmp.file("s.safetensors")).find("shape/size mismatch"), std::string::npos);
  write_raw(tmp.file("n.safetensors"), R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
            std::string(4, '\0'));
  expect_error(tmp.file("n.safetensors"));
  write_raw(tmp.file("big.safetensors"),
            R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", std::string(4, '\0'));
  expect_error(tmp.file("big.safetensors"));
}

TEST(SafetensorsErrors, MissingFields) {
  TempDir tmp;
  write_raw(tmp.file("m.safetensors"), R"({"w":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0'));
  EXPECT_NE(expect_error(tmp.file("m.safetensors")).find("dtype"), std::string::npos);
}

TEST(SafetensorsErrors, TruncatedData) {
  // A real file cut short: the last tensor's data runs past the end.
  TempDir tmp;
  std::map<std::string, torch::Tensor> t{{"a", torch::ones({64})}, {"b", torch::ones({64})}};
  save_tensors(tmp.file("full.safetensors"), t);
  const auto size = fs::file_size(tmp.file("full.safetensors"));
  fs::copy_file(tmp.file("full.safetensors"), tmp.file("cut.safetensors"));
  fs::resize_file(tmp.file("cut.safetensors"), size - 10);
  expect_error(tmp.file("cut.safetensors"));
}

TEST(ShardedWeights, ShardMissingFromDisk) {
  TempDir tmp;
  save_tensors(tmp.file("model-00001-of-00002.safetensors"), {{"a", torch::ones({2})}});
  std::ofstream(tmp.file("model.safetensors.index.json"))
      << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  try {
    WeightStore::open_dir(tmp.path());
    FAIL();
  } catch (const onereward::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("model-00002-of-00002.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("model.safetensors.index.json"), std::string::npos) << m;
  }
}

TEST(ShardedWeights, KeyMissingFromShardAndUnlistedTensor) {
  TempDir tmp;
  save_tensors(tmp.file("s1.safetensors"), {{"a", torch::ones({2})}, {"extra", torch::ones({1})}});
  std::ofstream(tmp.file("m.safetensors.index.json")) << R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})";
  try {
    WeightStore::open_dir(tmp.path());
    FAIL();
  } catch (const onereward::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }
  std::ofstream(tmp.file("m.safetensors.index.json"), std::ios::trunc) << R"({"weight_map":{"a":"s1.safetensors"}})";
  try {
    WeightStore::open_dir(tmp.path());
    FAIL();
  } catch (const onereward::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'extra'"), std::string::npos) << e.what();
  }
  std::ofstream(tmp.file("m.safetensors.index.json"), std::ios::trunc) << R"({"weight_map":{"a":"../s1.safetensors"}})";
  EXPECT_THROW(WeightStore::open_dir(tmp.path()), onereward::Error);
}

TEST(ShardedWeights, ShapeMismatchOnLoadNamesKey) {
  TempDir tmp;
  save_tensors(tmp.file("w.safetensors"), {{"weight", torch::ones({3, 2})}, {"bias", torch::ones({3})}});
  torch::nn::Linear lin(2, 4);
  try {
    load_module_strict(*lin, WeightStore::open_dir(tmp.path()), LoadOptions{});
    FAIL();
  } catch (const onereward::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'weight'"), std::string::npos) << m;
  } catch (...) {
    FAIL();
  }
}
