"""The escape suite's tests, each run twice: as root, and rootless."""

def escape_test(name, **kwargs):
    """A cc_test, plus NAME_rootless: the same cases with every `jcs` run as an
    unprivileged user (tests/jcs_runner.h, Rootless()); cases only root can run
    are skipped there with the reason."""
    native.cc_test(name = name, **kwargs)
    native.cc_test(
        name = name + "_rootless",
        env = {"JCS_TEST_ROOTLESS": "1"},
        **kwargs
    )
