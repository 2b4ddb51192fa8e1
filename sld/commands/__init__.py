"""One module per CLI command group; `sld.cli` registers them."""
