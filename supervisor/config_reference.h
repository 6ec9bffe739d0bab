// The supervisor config reference (docs/config-reference.md), generated from
// proto/supervisor_config.proto itself: its messages, fields, types and the
// comments above each field, read from a descriptor set that protoc wrote
// with --include_source_info (//proto:supervisor_config_descriptor_set). The
// reference cannot drift from the proto: a test regenerates it.
#ifndef JCS_SUPERVISOR_CONFIG_REFERENCE_H_
#define JCS_SUPERVISOR_CONFIG_REFERENCE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.pb.h"

namespace jcs::supervisor {

// A field of the config as the reference shows it.
struct ConfigFieldDoc {
  std::string message;  // "SupervisorConfig", "BootProject", ...
  std::string name;
  std::string type;     // "string", "repeated uint32", "BootProject", ...
  std::string comment;  // the comment above the field, lines joined
  bool singular_scalar = false;  // optional/implicit scalar: needs a default
};

// Reads a serialized FileDescriptorSet (with source info).
absl::StatusOr<google::protobuf::FileDescriptorSet> ReadDescriptorSet(
    const std::string& path);

// The fields of SupervisorConfig and of every message it reaches in
// supervisor_config.proto, in declaration order (SupervisorConfig first).
// An error when the set lacks the file or its source info.
absl::StatusOr<std::vector<ConfigFieldDoc>> ConfigFieldDocs(
    const google::protobuf::FileDescriptorSet& set);

// The Markdown document.
absl::StatusOr<std::string> ConfigReferenceMarkdown(
    const google::protobuf::FileDescriptorSet& set);

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_CONFIG_REFERENCE_H_
