// Prints docs/config-reference.md:
//   bazel run //supervisor:config_reference_doc > docs/config-reference.md
#include <cstdio>
#include <string>

#include "supervisor/config_reference.h"

int main(int argc, char** argv) {
  const std::string path =
      argc > 1 ? argv[1] : "proto/supervisor_config_descriptor_set.pb";
  absl::StatusOr<google::protobuf::FileDescriptorSet> set =
      jcs::supervisor::ReadDescriptorSet(path);
  absl::StatusOr<std::string> doc =
      set.ok() ? jcs::supervisor::ConfigReferenceMarkdown(*set)
               : absl::StatusOr<std::string>(set.status());
  if (!doc.ok()) {
    fprintf(stderr, "config_reference_doc: %s\n",
            std::string(doc.status().message()).c_str());
    return 1;
  }
  fputs(doc->c_str(), stdout);
  return 0;
}
