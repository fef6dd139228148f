"""cnnbook: the shared code of the course "Classic CNN Architectures"."""

__version__ = "0.1.0"
