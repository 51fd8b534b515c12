"""Named errors. Every user-facing failure is one of these; the CLI maps them to exit code 2."""


class NnjitError(Exception):
    """Bad input that the user can fix: the CLI prints `<ClassName>: message` and exits 2.
    `needs_constant` names the graph input that would have to be frozen at compile time
    (`--bind NAME=...`) for the model to compile, when that is why (tools retry with it bound)."""

    exit_code = 2

    def __init__(self, message: str = "", *, needs_constant: str | None = None):
        super().__init__(message)
        self.needs_constant = needs_constant


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


class BackendError(NnjitError):
    """The device cannot run the bundle (an adapter limit), as the web runtime's BackendError."""


class KernelBuildError(Exception):
    """A template rendered invalid WAT: a compiler bug, not a user error (exit 1)."""
