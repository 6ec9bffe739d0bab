#include "telemetry/metrics/exposition.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace jcs::telemetry::metrics {
namespace {

bool NameChar(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
    return true;
  }
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool ValidName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!NameChar(name[i], i == 0, colon)) return false;
  }
  return true;
}

}  // namespace

bool ValidMetricName(std::string_view name) { return ValidName(name, true); }

bool ValidLabelName(std::string_view name) {
  return ValidName(name, false) && name.substr(0, 2) != "__";
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) <= 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[32];
  // %.17g round-trips every double; shorter when it already does.
  for (int precision = 6; precision <= 17; ++precision) {
    snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

Histogram::Histogram(std::vector<double> bounds) {
  for (double b : bounds) {
    if (std::isfinite(b) && (bounds_.empty() || b > bounds_.back())) {
      bounds_.push_back(b);
    }
  }
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // The first bucket whose upper bound is >= value ("le" is inclusive).
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) -
      bounds_.begin());
  ++counts_[bucket];
  ++count_;
  sum_ += value;
}

Exposition::Family* Exposition::FamilyFor(std::string_view name,
                                          std::string_view type,
                                          std::string_view help) {
  if (!ValidMetricName(name)) return nullptr;
  auto it = families_.find(name);
  if (it == families_.end()) {
    order_.emplace_back(name);
    it = families_
             .emplace(std::string(name),
                      Family{std::string(type), std::string(help), {}})
             .first;
  }
  return it->second.type == type ? &it->second : nullptr;
}

bool Exposition::Series(std::string_view name, const Labels& labels,
                        const std::pair<std::string, std::string>* extra,
                        std::string* out) {
  *out = std::string(name);
  if (labels.empty() && extra == nullptr) return true;
  *out += '{';
  bool first = true;
  auto append = [&](const std::pair<std::string, std::string>& label) {
    if (!ValidLabelName(label.first)) return false;
    absl::StrAppend(out, first ? "" : ",", label.first, "=\"",
                    EscapeLabelValue(label.second), "\"");
    first = false;
    return true;
  };
  for (const auto& label : labels) {
    if (!append(label)) return false;
  }
  if (extra != nullptr && !append(*extra)) return false;
  *out += '}';
  return true;
}

void Exposition::Declare(std::string_view name, std::string_view type,
                         std::string_view help) {
  if (FamilyFor(name, type, help) == nullptr) ++rejected_;
}

void Exposition::Counter(std::string_view name, std::string_view help,
                         const Labels& labels, double value) {
  Family* family = FamilyFor(name, "counter", help);
  std::string series;
  if (family == nullptr || !Series(name, labels, nullptr, &series)) {
    ++rejected_;
    return;
  }
  family->lines.push_back(absl::StrCat(series, " ", FormatValue(value)));
}

void Exposition::Gauge(std::string_view name, std::string_view help,
                       const Labels& labels, double value) {
  Family* family = FamilyFor(name, "gauge", help);
  std::string series;
  if (family == nullptr || !Series(name, labels, nullptr, &series)) {
    ++rejected_;
    return;
  }
  family->lines.push_back(absl::StrCat(series, " ", FormatValue(value)));
}

void Exposition::AddHistogram(std::string_view name, std::string_view help,
                              const Labels& labels,
                              const Histogram& histogram) {
  Family* family = FamilyFor(name, "histogram", help);
  if (family == nullptr) {
    ++rejected_;
    return;
  }
  for (const auto& label : labels) {
    if (label.first == "le") {  // reserved for the buckets
      ++rejected_;
      return;
    }
  }
  std::vector<std::string> lines;
  const std::string bucket_name = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= histogram.bounds().size(); ++i) {
    cumulative += histogram.bucket_counts()[i];
    const std::pair<std::string, std::string> le = {
        "le", i < histogram.bounds().size() ? FormatValue(histogram.bounds()[i])
                                            : std::string("+Inf")};
    std::string series;
    if (!Series(bucket_name, labels, &le, &series)) {
      ++rejected_;
      return;
    }
    lines.push_back(absl::StrCat(series, " ", cumulative));
  }
  std::string sum, count;
  if (!Series(std::string(name) + "_sum", labels, nullptr, &sum) ||
      !Series(std::string(name) + "_count", labels, nullptr, &count)) {
    ++rejected_;
    return;
  }
  lines.push_back(absl::StrCat(sum, " ", FormatValue(histogram.sum())));
  lines.push_back(absl::StrCat(count, " ", histogram.count()));
  for (std::string& line : lines) family->lines.push_back(std::move(line));
}

std::string Exposition::Render() const {
  std::string out;
  for (const std::string& name : order_) {
    const Family& family = families_.find(name)->second;
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(family.help), "\n",
                    "# TYPE ", name, " ", family.type, "\n");
    for (const std::string& line : family.lines) {
      absl::StrAppend(&out, line, "\n");
    }
  }
  return out;
}

}  // namespace jcs::telemetry::metrics
