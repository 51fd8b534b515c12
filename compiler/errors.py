"""Named errors. Every user-facing failure is one of these; the CLI maps them to exit code 2."""


class NnjitError(Exception):
    """Bad input that the user can fix: the CLI prints `<ClassName>: message` and exits 2."""

    exit_code = 2


class ModelLoadError(NnjitError):
    """The file is not a readable ONNX model (missing, truncated, not protobuf)."""


class UnsupportedOpError(NnjitError):
    """The graph uses an op (or an op variant) the compiler cannot lower."""


class ShapeError(NnjitError):
    """A shape is unknown, unbound or inconsistent."""


class BundleError(NnjitError):
    """A bundle is missing files, has the wrong version or fails its hash check."""


class InputError(NnjitError):
    """A run got an input with the wrong name, shape or dtype."""


class KernelBuildError(Exception):
    """A template rendered invalid WAT: a compiler bug, not a user error (exit 1)."""
