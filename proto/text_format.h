// Parsing of protobuf text format files (jail specs, supervisor configs) with
// one error format everywhere: "<path>:<line>:<column>: <message>".
#ifndef JCS_PROTO_TEXT_FORMAT_H_
#define JCS_PROTO_TEXT_FORMAT_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace jcs::proto {

// Parses `text` into `message` (cleared first). On failure, InvalidArgument
// naming the first error's line and column (1-based).
absl::Status ParseTextProto(absl::string_view text, absl::string_view path,
                            google::protobuf::Message* message);

}  // namespace jcs::proto

#endif  // JCS_PROTO_TEXT_FORMAT_H_
