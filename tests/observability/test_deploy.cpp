// Deployment files against what the server exports: the Grafana dashboard's queries (and
// the alert rules, when present) use only exported series and labels; the Prometheus
// configuration passes promtool.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "server/metrics.h"
#include "tests/observability/obs_test_util.h"

using nlohmann::json;
using namespace obs_test;

namespace {

const std::string kDeploy = ONEREWARD_DEPLOY_DIR;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// Series names and label names the server exports (every family has series at start-up).
struct Exported {
  std::set<std::string> series;
  std::set<std::string> labels;
};

const Exported& exported() {
  static const Exported e = [] {
    onereward::server::Metrics m("");
    Exported out;
    for (const auto& s : parse_samples(m.scrape())) {
      out.series.insert(s.name);
      for (const auto& [k, v] : s.labels) out.labels.insert(k);
    }
    // Target labels Prometheus attaches to every scraped series.
    out.labels.insert({"job", "instance"});
    return out;
  }();
  return e;
}

struct ExprNames {
  std::set<std::string> metrics;
  std::set<std::string> labels;
};

// Metric and label names a PromQL expression refers to (Grafana variables removed).
ExprNames promql_names(std::string e) {
  ExprNames out;
  auto collect_labels = [&](const std::string& list) {
    static const std::regex ident(R"([A-Za-z_][A-Za-z0-9_]*)");
    for (std::sregex_iterator it(list.begin(), list.end(), ident), end; it != end; ++it) out.labels.insert(it->str());
  };
  // Label matchers {a="x", b=~"y"}: keep the label names, drop the block.
  const std::regex matchers(R"(\{([^}]*)\})");
  const std::regex matcher(R"(([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"(?:[^\"\\]|\\.)*\")");
  for (std::smatch m; std::regex_search(e, m, matchers);) {
    const std::string body = m[1].str();
    for (std::sregex_iterator it(body.begin(), body.end(), matcher), end; it != end; ++it) {
      out.labels.insert((*it)[1].str());
    }
    e = m.prefix().str() + " " + m.suffix().str();
  }
  // Grouping clauses: by (...), without (...), on (...), ignoring (...), group_left (...).
  const std::regex grouping(R"(\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\))");
  for (std::smatch m; std::regex_search(e, m, grouping);) {
    collect_labels(m[2].str());
    e = m.prefix().str() + " " + m.suffix().str();
  }
  e = std::regex_replace(e, std::regex(R"(\[[^\]]*\])"), " ");                       // ranges
  e = std::regex_replace(e, std::regex(R"(\"(?:[^\"\\]|\\.)*\")"), " ");            // strings
  e = std::regex_replace(e, std::regex(R"(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)"), " ");  // variables
  e = std::regex_replace(e, std::regex(R"((^|[^A-Za-z0-9_.])[0-9][0-9.]*(e[+-]?[0-9]+)?(ms|[smhdwy])*)"), "$1 ");  // numbers, durations
  static const std::set<std::string> keywords = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by",
                                                 "without", "on", "ignoring", "group_left", "group_right"};
  const std::regex ident(R"([A-Za-z_:][A-Za-z0-9_:]*)");
  for (std::sregex_iterator it(e.begin(), e.end(), ident), end; it != end; ++it) {
    const std::string name = it->str();
    size_t next = static_cast<size_t>(it->position() + it->length());
    while (next < e.size() && e[next] == ' ') ++next;
    if (next < e.size() && e[next] == '(') continue;  // function or aggregation
    if (keywords.count(name)) continue;
    out.metrics.insert(name);
  }
  return out;
}

void collect_panels(const json& panels, std::vector<json>* out) {
  for (const auto& p : panels) {
    out->push_back(p);
    if (p.contains("panels")) collect_panels(p["panels"], out);
  }
}

TEST(Deploy, PromqlNameExtraction) {
  const auto n = promql_names(
      R"(histogram_quantile(0.99, sum by (le, task) (rate(x_bucket{job=~"$job",code!="OK"}[$__rate_interval]))) / )"
      R"(sum without (instance) (y_total offset 5m) > bool 1e3 and on (pod) z)");
  EXPECT_EQ(n.metrics, (std::set<std::string>{"x_bucket", "y_total", "z"}));
  EXPECT_EQ(n.labels, (std::set<std::string>{"le", "task", "job", "code", "instance", "pod"}));
}

TEST(Deploy, DashboardUsesOnlyExportedSeries) {
  const json d = json::parse(read_file(kDeploy + "/grafana/onereward-dashboard.json"));
  EXPECT_GE(d.at("schemaVersion").get<int>(), 36);
  EXPECT_FALSE(d.at("title").get<std::string>().empty());
  EXPECT_FALSE(d.at("uid").get<std::string>().empty());

  // The data source is the templated variable DS_PROMETHEUS (type datasource, prometheus).
  bool ds_var = false;
  for (const auto& v : d.at("templating").at("list")) {
    if (v.at("name") == "DS_PROMETHEUS") {
      ds_var = v.at("type") == "datasource" && v.at("query") == "prometheus";
    }
  }
  EXPECT_TRUE(ds_var) << "no datasource variable DS_PROMETHEUS";

  const auto& ex = exported();
  std::vector<json> panels;
  collect_panels(d.at("panels"), &panels);
  std::set<int> ids;
  std::set<std::string> used;
  std::set<std::string> titles;
  int queries = 0;
  for (const auto& p : panels) {
    const int id = p.at("id").get<int>();
    EXPECT_TRUE(ids.insert(id).second) << "duplicate panel id " << id;
    EXPECT_TRUE(p.contains("gridPos")) << p.at("title");
    if (p.at("type") == "row") continue;
    EXPECT_TRUE(titles.insert(p.at("title").get<std::string>()).second) << "duplicate title " << p.at("title");
    EXPECT_EQ(p.at("datasource").at("uid"), "${DS_PROMETHEUS}") << p.at("title");
    ASSERT_TRUE(p.contains("targets") && !p.at("targets").empty()) << p.at("title");
    for (const auto& t : p.at("targets")) {
      EXPECT_EQ(t.at("datasource").at("uid"), "${DS_PROMETHEUS}") << p.at("title");
      const std::string expr = t.at("expr");
      const auto names = promql_names(expr);
      EXPECT_FALSE(names.metrics.empty()) << expr;
      for (const auto& m : names.metrics) {
        EXPECT_TRUE(ex.series.count(m)) << "panel '" << p.at("title").get<std::string>()
                                        << "' uses a series the server does not export: " << m << "\n  " << expr;
        used.insert(m);
      }
      for (const auto& l : names.labels) {
        EXPECT_TRUE(ex.labels.count(l)) << "panel '" << p.at("title").get<std::string>()
                                        << "' uses an unknown label: " << l << "\n  " << expr;
      }
      ++queries;
    }
  }
  EXPECT_GE(queries, 10);
  // Template variables query exported series too.
  const std::regex label_values(R"(label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*))");
  for (const auto& v : d.at("templating").at("list")) {
    if (v.at("type") != "query") continue;
    const std::string q = v.at("query").is_object() ? v.at("query").at("query").get<std::string>()
                                                     : v.at("query").get<std::string>();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(q, m, label_values)) << q;
    EXPECT_TRUE(ex.series.count(m[1].str())) << q;
  }
  // Every contract metric is on the dashboard.
  for (const auto& name : contract_names()) {
    const bool shown = std::any_of(used.begin(), used.end(), [&](const std::string& s) {
      return s == name || s == name + "_bucket" || s == name + "_sum" || s == name + "_count";
    });
    EXPECT_TRUE(shown) << name << " has no panel";
  }
  // The panels the operators asked for.
  for (const char* t : {"Throughput by task and code", "Request latency p50 / p90 / p99",
                        "Queue depth and running jobs", "Queue wait p50 / p90", "Batch rows distribution",
                        "Step time p50 / p99", "Failures by reason", "Prompt cache hit ratio", "Device memory",
                        "Model ready"}) {
    EXPECT_TRUE(titles.count(t)) << "no panel '" << t << "'";
  }
}

TEST(Deploy, PrometheusConfigPassesPromtool) {
  ASSERT_TRUE(on_path("promtool")) << "promtool not on PATH (Debian package prometheus; scripts/setup.sh)";
  // Checked in a scratch copy so that the config's rule file resolves even before
  // alerts.yml exists (then an empty rule group stands in for it).
  char dir_template[] = "/tmp/obs-promcfg-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string yml = read_file(kDeploy + "/prometheus/prometheus.yml");
  std::ofstream(dir + "/prometheus.yml") << yml;
  const std::string alerts = kDeploy + "/prometheus/alerts.yml";
  ASSERT_TRUE(file_exists(alerts)) << alerts;
  std::ofstream(dir + "/alerts.yml") << read_file(alerts);
  const auto r = run_with_input("promtool check config " + dir + "/prometheus.yml", "");
  EXPECT_EQ(r.status, 0) << r.output;
  std::system(("rm -rf " + dir).c_str());
  EXPECT_NE(yml.find("/metrics"), std::string::npos);
}

// The alert rules may only refer to exported series.
TEST(Deploy, AlertRulesUseOnlyExportedSeries) {
  const std::string path = kDeploy + "/prometheus/alerts.yml";
  ASSERT_TRUE(file_exists(path)) << path;
  const std::string text = read_file(path);
  // Series recorded by the file's own recording rules are fine too.
  std::set<std::string> recorded;
  const std::regex record(R"(record:\s*["']?([A-Za-z_:][A-Za-z0-9_:]*))");
  for (std::sregex_iterator it(text.begin(), text.end(), record), end; it != end; ++it) recorded.insert((*it)[1]);
  const std::regex name(R"(\bonereward_[a-z0-9_]+)");
  int n = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it, ++n) {
    EXPECT_TRUE(exported().series.count(it->str()) || recorded.count(it->str())) << "alerts.yml uses " << it->str();
  }
  EXPECT_GT(n, 0);
}

}  // namespace
