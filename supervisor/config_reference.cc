#include "supervisor/config_reference.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace jcs::supervisor {
namespace {

using google::protobuf::DescriptorProto;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptorProto;

constexpr char kConfigFile[] = "proto/supervisor_config.proto";
constexpr char kRootMessage[] = "SupervisorConfig";
// SourceCodeInfo paths: FileDescriptorProto.message_type = 4,
// DescriptorProto.field = 2.
constexpr int kMessageTypeTag = 4;
constexpr int kFieldTag = 2;

std::string ScalarName(FieldDescriptorProto::Type type) {
  switch (type) {
    case FieldDescriptorProto::TYPE_STRING:
      return "string";
    case FieldDescriptorProto::TYPE_BOOL:
      return "bool";
    case FieldDescriptorProto::TYPE_UINT32:
      return "uint32";
    case FieldDescriptorProto::TYPE_UINT64:
      return "uint64";
    case FieldDescriptorProto::TYPE_INT32:
      return "int32";
    case FieldDescriptorProto::TYPE_INT64:
      return "int64";
    case FieldDescriptorProto::TYPE_DOUBLE:
      return "double";
    case FieldDescriptorProto::TYPE_BYTES:
      return "bytes";
    default:
      return "scalar";
  }
}

bool IsMessageOrEnum(const FieldDescriptorProto& field) {
  return field.type() == FieldDescriptorProto::TYPE_MESSAGE ||
         field.type() == FieldDescriptorProto::TYPE_ENUM;
}

// ".jcs.proto.BootProject" -> "BootProject".
std::string ShortName(const std::string& type_name) {
  const size_t dot = type_name.rfind('.');
  return dot == std::string::npos ? type_name : type_name.substr(dot + 1);
}

// The comment lines protoc kept, joined with single spaces.
std::string CleanComment(const std::string& raw) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(raw, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) lines.emplace_back(line);
  }
  return absl::StrJoin(lines, " ");
}

}  // namespace

absl::StatusOr<google::protobuf::FileDescriptorSet> ReadDescriptorSet(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromIstream(&in)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a serialized FileDescriptorSet"));
  }
  return set;
}

absl::StatusOr<std::vector<ConfigFieldDoc>> ConfigFieldDocs(
    const google::protobuf::FileDescriptorSet& set) {
  const FileDescriptorProto* file = nullptr;
  for (const FileDescriptorProto& f : set.file()) {
    if (f.name() == kConfigFile) file = &f;
  }
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("the descriptor set has no ", kConfigFile));
  }
  if (!file->has_source_code_info()) {
    return absl::FailedPreconditionError(
        "the descriptor set has no source info (protoc "
        "--include_source_info)");
  }
  // (message index, field index) -> comment.
  std::map<std::pair<int, int>, std::string> comments;
  for (const auto& location : file->source_code_info().location()) {
    const auto& path = location.path();
    if (path.size() == 4 && path[0] == kMessageTypeTag &&
        path[2] == kFieldTag && location.has_leading_comments()) {
      comments[{path[1], path[3]}] = CleanComment(location.leading_comments());
    }
  }
  std::map<std::string, int> index_of;
  for (int i = 0; i < file->message_type_size(); ++i) {
    index_of[file->message_type(i).name()] = i;
  }
  if (index_of.count(kRootMessage) == 0) {
    return absl::NotFoundError(
        absl::StrCat(kConfigFile, " has no message ", kRootMessage));
  }
  // Breadth-first from SupervisorConfig over the messages of this file.
  std::vector<std::string> order = {kRootMessage};
  std::vector<ConfigFieldDoc> docs;
  for (size_t next = 0; next < order.size(); ++next) {
    const int m = index_of[order[next]];
    const DescriptorProto& message = file->message_type(m);
    for (int f = 0; f < message.field_size(); ++f) {
      const FieldDescriptorProto& field = message.field(f);
      ConfigFieldDoc doc;
      doc.message = message.name();
      doc.name = field.name();
      const bool repeated =
          field.label() == FieldDescriptorProto::LABEL_REPEATED;
      const std::string base = IsMessageOrEnum(field)
                                   ? ShortName(field.type_name())
                                   : ScalarName(field.type());
      doc.type = repeated ? absl::StrCat("repeated ", base) : base;
      // A member of a real oneof (proto3 `optional` is a synthetic one) is
      // one choice among several: it has no default of its own.
      const bool in_oneof = field.has_oneof_index() && !field.proto3_optional();
      if (in_oneof) {
        doc.type =
            absl::StrCat(base, " (one of `",
                         message.oneof_decl(field.oneof_index()).name(), "`)");
      }
      doc.singular_scalar = !repeated && !in_oneof && !IsMessageOrEnum(field);
      auto it = comments.find({m, f});
      if (it != comments.end()) doc.comment = it->second;
      if (IsMessageOrEnum(field)) {
        const std::string type = ShortName(field.type_name());
        if (index_of.count(type) > 0 &&
            std::find(order.begin(), order.end(), type) == order.end()) {
          order.push_back(type);
        }
      }
      docs.push_back(std::move(doc));
    }
  }
  return docs;
}

absl::StatusOr<std::string> ConfigReferenceMarkdown(
    const google::protobuf::FileDescriptorSet& set) {
  absl::StatusOr<std::vector<ConfigFieldDoc>> docs = ConfigFieldDocs(set);
  if (!docs.ok()) return docs.status();
  std::ostringstream out;
  out << "# `jcs serve` configuration reference\n\n"
         "Generated from `proto/supervisor_config.proto` (its comments) by\n"
         "`bazel run //supervisor:config_reference_doc > "
         "docs/config-reference.md`;\n"
         "`//supervisor:config_reference_test` fails when it is stale.\n\n"
         "The file is protobuf text format (`jcs serve --config FILE`); an "
         "empty file, or no\n"
         "`--config`, is the embedded default. Runtime options "
         "(`default_options`,\n"
         "`projects[].options`) are listed in "
         "[runtime-options.md](runtime-options.md).\n";
  std::string current;
  for (const ConfigFieldDoc& doc : *docs) {
    if (doc.message != current) {
      current = doc.message;
      out << "\n## `" << current << "`\n\n| field | type | meaning |\n|---|---|"
          << "---|\n";
    }
    // Table cells: a '|' would end the cell, and <...> would be read as
    // HTML.
    std::string comment = absl::StrReplaceAll(
        doc.comment, {{"|", "\\|"}, {"<", "\\<"}, {">", "\\>"}});
    out << "| `" << doc.name << "` | " << doc.type << " | " << comment
        << " |\n";
  }
  return out.str();
}

}  // namespace jcs::supervisor
