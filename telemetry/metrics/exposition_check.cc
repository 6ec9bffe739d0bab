#include "telemetry/metrics/exposition_check.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "telemetry/metrics/exposition.h"

namespace jcs::telemetry::metrics {
namespace {

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

absl::Status LineError(size_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

bool ParseValue(absl::string_view text, double* out) {
  if (text == "+Inf" || text == "Inf") {
    *out = INFINITY;
    return true;
  }
  if (text == "-Inf") {
    *out = -INFINITY;
    return true;
  }
  if (text == "NaN") {
    *out = NAN;
    return true;
  }
  if (text.empty()) return false;
  std::string copy(text);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && std::isfinite(*out);
}

absl::StatusOr<Sample> ParseSample(absl::string_view line, size_t n) {
  Sample sample;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  sample.name = std::string(line.substr(0, i));
  if (!ValidMetricName(sample.name)) {
    return LineError(n,
                     absl::StrCat("invalid metric name '", sample.name, "'"));
  }
  if (i < line.size() && line[i] == '{') {
    ++i;
    std::set<std::string> seen;
    while (true) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t start = i;
      while (i < line.size() && line[i] != '=') ++i;
      std::string label(line.substr(start, i - start));
      if (!ValidLabelName(label)) {
        return LineError(n, absl::StrCat("invalid label name '", label, "'"));
      }
      if (!seen.insert(label).second) {
        return LineError(n, absl::StrCat("label '", label, "' repeated"));
      }
      if (i + 1 >= line.size() || line[i + 1] != '"') {
        return LineError(n, "expected '=\"' after a label name");
      }
      i += 2;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) break;
          char e = line[i++];
          if (e == 'n') {
            value += '\n';
          } else if (e == '\\' || e == '"') {
            value += e;
          } else {
            return LineError(n, absl::StrCat("invalid escape '\\",
                                             absl::string_view(&e, 1), "'"));
          }
          continue;
        }
        if (c == '\n') break;
        value += c;
      }
      if (!closed) return LineError(n, "unterminated label value");
      sample.labels.emplace_back(label, value);
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i >= line.size() || line[i] != '}') {
        return LineError(n, "expected ',' or '}' after a label value");
      }
    }
  }
  if (i >= line.size() || line[i] != ' ') {
    return LineError(n, "expected a space before the value");
  }
  std::vector<absl::string_view> rest = absl::StrSplit(line.substr(i + 1), ' ');
  if (rest.empty() || rest.size() > 2) {
    return LineError(n, "expected VALUE [TIMESTAMP]");
  }
  if (!ParseValue(rest[0], &sample.value) && rest[0] != "NaN") {
    return LineError(n, absl::StrCat("invalid value '", rest[0], "'"));
  }
  return sample;
}

std::string SeriesKey(const Sample& s, bool skip_le) {
  std::string key = s.name + "{";
  bool first = true;
  bool any = false;
  for (const auto& [k, v] : s.labels) {
    if (skip_le && k == "le") continue;
    absl::StrAppend(&key, first ? "" : ",", k, "=\"", v, "\"");
    first = false;
    any = true;
  }
  return any ? key + "}" : s.name;
}

struct FamilyState {
  std::string type;
  bool has_help = false;
  bool has_samples = false;
  bool closed = false;  // another family's samples came after its own
};

struct HistogramSeries {
  double last_le = -INFINITY;
  double last_count = 0;
  bool has_inf = false;
  double inf_count = 0;
  bool has_sum = false;
  bool has_count = false;
  double count = 0;
};

}  // namespace

absl::StatusOr<std::map<std::string, double>> CheckExposition(
    std::string_view input) {
  absl::string_view text(input.data(), input.size());
  std::map<std::string, double> samples;
  if (text.empty()) return samples;
  if (text.back() != '\n') {
    return absl::InvalidArgumentError("the last line has no newline");
  }
  text.remove_suffix(1);
  std::map<std::string, FamilyState> families;
  std::map<std::string, HistogramSeries> histograms;
  std::string current;  // the family of the previous sample
  size_t n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    if (line.empty()) return LineError(n, "empty line");
    if (line[0] == '#') {
      std::vector<absl::string_view> parts =
          absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (parts.size() < 3 || (parts[1] != "HELP" && parts[1] != "TYPE")) {
        continue;  // a comment
      }
      const std::string name(parts[2]);
      if (!ValidMetricName(name)) {
        return LineError(n, absl::StrCat("invalid metric name '", name, "'"));
      }
      FamilyState& family = families[name];
      if (parts[1] == "HELP") {
        if (family.has_help) return LineError(n, "second HELP for " + name);
        family.has_help = true;
        continue;
      }
      if (!family.type.empty()) return LineError(n, "second TYPE for " + name);
      if (family.has_samples) {
        return LineError(n, "TYPE for " + name + " after its samples");
      }
      const std::string type(parts.size() > 3 ? parts[3] : "");
      if (type != "counter" && type != "gauge" && type != "histogram" &&
          type != "summary" && type != "untyped") {
        return LineError(n, absl::StrCat("unknown type '", type, "'"));
      }
      if (type == "counter" && !absl::EndsWith(name, "_total")) {
        return LineError(n, "counter " + name + " should end in _total");
      }
      family.type = type;
      continue;
    }
    absl::StatusOr<Sample> sample = ParseSample(line, n);
    if (!sample.ok()) return sample.status();
    // The family: a histogram's samples carry a suffix.
    std::string family_name = sample->name;
    std::string suffix;
    for (const char* s : {"_bucket", "_sum", "_count"}) {
      if (absl::EndsWith(sample->name, s)) {
        std::string base =
            sample->name.substr(0, sample->name.size() - strlen(s));
        auto it = families.find(base);
        if (it != families.end() && it->second.type == "histogram") {
          family_name = base;
          suffix = s;
        }
      }
    }
    FamilyState& family = families[family_name];
    if (family.type.empty()) {
      return LineError(n, "sample of " + family_name + " before its TYPE");
    }
    if (family.closed) {
      return LineError(n, "samples of " + family_name + " are not contiguous");
    }
    if (!current.empty() && current != family_name) {
      families[current].closed = true;
    }
    current = family_name;
    family.has_samples = true;
    const std::string key = SeriesKey(*sample, false);
    if (!samples.emplace(key, sample->value).second) {
      return LineError(n, "series repeated: " + key);
    }
    if (family.type == "counter" && !(sample->value >= 0)) {
      return LineError(n, "negative or NaN counter " + key);
    }
    if (family.type != "histogram") continue;
    if (suffix.empty()) {
      return LineError(n, "histogram sample without _bucket/_sum/_count");
    }
    Sample base = *sample;
    base.name = family_name;
    HistogramSeries& h = histograms[SeriesKey(base, true)];
    if (suffix == "_sum") {
      h.has_sum = true;
    } else if (suffix == "_count") {
      h.has_count = true;
      h.count = sample->value;
    } else {
      const std::string* le = nullptr;
      for (const auto& [k, v] : sample->labels) {
        if (k == "le") le = &v;
      }
      double bound;
      if (le == nullptr || !ParseValue(*le, &bound)) {
        return LineError(n, "bucket without a numeric le: " + key);
      }
      if (h.has_inf || !(bound > h.last_le)) {
        return LineError(n, "buckets not in increasing le order: " + key);
      }
      if (sample->value < h.last_count) {
        return LineError(n, "cumulative bucket count decreases: " + key);
      }
      h.last_le = bound;
      h.last_count = sample->value;
      if (std::isinf(bound)) {
        h.has_inf = true;
        h.inf_count = sample->value;
      }
    }
  }
  for (const auto& [key, h] : histograms) {
    if (!h.has_inf) return absl::InvalidArgumentError(key + ": no +Inf bucket");
    if (!h.has_sum || !h.has_count) {
      return absl::InvalidArgumentError(key + ": missing _sum or _count");
    }
    if (h.count != h.inf_count) {
      return absl::InvalidArgumentError(absl::StrCat(
          key, ": _count ", h.count, " != +Inf bucket ", h.inf_count));
    }
  }
  return samples;
}

}  // namespace jcs::telemetry::metrics
