"""libFuzzer targets that also replay their seed corpus as a plain test.

jcs_fuzz_target(name = "x_fuzz", srcs = ["x_fuzz.cc"], deps = [...]) defines
  - x_fuzz: the fuzzer. Under --config=fuzz it links libFuzzer's main
    (-fsanitize=fuzzer, with ASan and UBSan from the config); in any other config
    it links the replay main, so it still builds. Tagged manual: `.ci/run` builds it
    with --config=fuzz and runs it for a bounded time from its corpus.
  - x_fuzz_corpus_test: replays every file of fuzz_corpus/x_fuzz/ through
    LLVMFuzzerTestOneInput, in the normal suite and under --config=asan, so a seed
    or a checked-in crash reproducer that breaks the parser fails `bazel test //...`.
"""

def jcs_fuzz_target(name, srcs, deps = []):
    corpus = "fuzz_corpus/" + name
    native.cc_library(
        name = name + "_entry",
        testonly = True,
        srcs = srcs,
        deps = deps,
        # LLVMFuzzerTestOneInput is only referenced from the fuzzer's main,
        # which the linker sees after this library.
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        testonly = True,
        deps = [":" + name + "_entry"] + select({
            "//sanitizers:fuzz": [],
            "//conditions:default": ["//sanitizers:fuzz_replay_main"],
        }),
        linkopts = select({
            "//sanitizers:fuzz": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual"],
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        args = [native.package_name() + "/" + corpus],
        data = native.glob([corpus + "/*"], allow_empty = False),
        deps = [
            ":" + name + "_entry",
            "//sanitizers:fuzz_replay_main",
        ],
    )
