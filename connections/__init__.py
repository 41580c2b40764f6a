"""Where the two databases are, and connecting to them with errors a user can act on."""
