#include "engine/text/sentencepiece_model.h"

#include "engine/text/proto_wire.h"
#include "engine/util/status.h"

namespace onereward::text {
namespace {

void parse_piece(std::string_view data, const std::string& path, size_t index,
                 SpModelProto::Piece* p) {
  WireReader r(data, path, "ModelProto.pieces[" + std::to_string(index) + "]");
  uint32_t f;
  WireType t;
  while (r.next(&f, &t)) {
    switch (f) {
      case 1:
        r.expect(f, t, WireType::kLengthDelimited);
        p->piece = std::string(r.bytes());
        break;
      case 2:
        r.expect(f, t, WireType::kFixed32);
        p->score = r.float32();
        break;
      case 3: {
        r.expect(f, t, WireType::kVarint);
        const uint64_t v = r.varint();
        if (v < 1 || v > 6) r.fail("unknown piece type " + std::to_string(v));
        p->type = static_cast<SpModelProto::PieceType>(v);
        break;
      }
      default:
        r.skip(t);
    }
  }
}

bool read_bool(WireReader& r, uint32_t f, WireType t) {
  r.expect(f, t, WireType::kVarint);
  return r.varint() != 0;
}

void parse_trainer_spec(std::string_view data, const std::string& path, SpModelProto* m) {
  WireReader r(data, path, "ModelProto.trainer_spec");
  uint32_t f;
  WireType t;
  while (r.next(&f, &t)) {
    switch (f) {
      case 3:
        r.expect(f, t, WireType::kVarint);
        m->model_type = static_cast<int>(r.varint());
        break;
      case 24: m->treat_whitespace_as_suffix = read_bool(r, f, t); break;
      case 35: m->byte_fallback = read_bool(r, f, t); break;
      default: r.skip(t);
    }
  }
}

void parse_normalizer_spec(std::string_view data, const std::string& path, SpModelProto* m) {
  WireReader r(data, path, "ModelProto.normalizer_spec");
  uint32_t f;
  WireType t;
  while (r.next(&f, &t)) {
    switch (f) {
      case 1:
        r.expect(f, t, WireType::kLengthDelimited);
        m->normalizer_name = std::string(r.bytes());
        break;
      case 2:
        r.expect(f, t, WireType::kLengthDelimited);
        m->precompiled_charsmap = std::string(r.bytes());
        break;
      case 3: m->add_dummy_prefix = read_bool(r, f, t); break;
      case 4: m->remove_extra_whitespaces = read_bool(r, f, t); break;
      case 5: m->escape_whitespaces = read_bool(r, f, t); break;
      default: r.skip(t);
    }
  }
}

}  // namespace

SpModelProto parse_sp_model_proto(const std::string& data, const std::string& path) {
  SpModelProto m;
  if (data.empty()) throw_error(StatusCode::kDataLoss, path + ": empty file");
  WireReader r(data, path, "ModelProto");
  uint32_t f;
  WireType t;
  while (r.next(&f, &t)) {
    switch (f) {
      case 1: {
        r.expect(f, t, WireType::kLengthDelimited);
        SpModelProto::Piece p;
        parse_piece(r.bytes(), path, m.pieces.size(), &p);
        m.pieces.push_back(std::move(p));
        break;
      }
      case 2:
        r.expect(f, t, WireType::kLengthDelimited);
        parse_trainer_spec(r.bytes(), path, &m);
        break;
      case 3:
        r.expect(f, t, WireType::kLengthDelimited);
        parse_normalizer_spec(r.bytes(), path, &m);
        break;
      default:
        r.skip(t);
    }
  }
  if (m.pieces.empty()) throw_error(StatusCode::kDataLoss, path + ": model has no pieces");
  return m;
}

}  // namespace onereward::text
