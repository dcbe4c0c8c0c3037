"""The ``litecls`` command line."""
