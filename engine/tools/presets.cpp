#include "engine/tools/presets.h"

#include "engine/util/status.h"

namespace onereward::tools {

models::FluxTransformerConfig transformer_preset(const std::string& name) {
  models::FluxTransformerConfig c = models::FluxTransformerConfig::flux_fill_dev();
  if (name == "full") return c;
  if (name == "bench") {
    c.num_layers = 2;
    c.num_single_layers = 4;
    c.num_attention_heads = 8;
    c.attention_head_dim = 128;
    return c;
  }
  if (name == "tiny") {
    c.num_layers = 2;
    c.num_single_layers = 2;
    c.num_attention_heads = 2;
    c.attention_head_dim = 16;
    c.axes_dims_rope = {4, 6, 6};
    c.joint_attention_dim = 32;
    c.pooled_projection_dim = 32;
    return c;
  }
  throw_error(StatusCode::kInvalidArgument, "unknown preset '" + name + "' (tiny, bench or full)");
}

}  // namespace onereward::tools
