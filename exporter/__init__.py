"""ATenSpace Serve exporter: turns a Hugging Face checkpoint into a verified TorchScript model folder.

Run from the repository root: ``python3 -m exporter --help``.
"""

__version__ = "0.1.0"

#: Version of the ``atenspace.json`` manifest layout written by this exporter.
MANIFEST_FORMAT = 1
