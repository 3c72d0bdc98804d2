"""wfctl: a GitOps toolchain for workflows-as-code."""

__version__ = "0.1.0"
