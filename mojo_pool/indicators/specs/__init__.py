"""Registry tables, one module per kernel family (``mojo_pool.ext.<family>``)."""
