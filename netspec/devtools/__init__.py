"""Development-only tools: the schema generator and the docs generator (nothing at run time imports these)."""
