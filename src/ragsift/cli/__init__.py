"""The ``ragsift`` command. One module per subcommand group, each exposing ``register``."""
