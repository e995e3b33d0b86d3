"""The `mullama` command line: commands, auto-spawn, daemon lifecycle."""
