"""The `acme` command line: thin click commands over the packages below."""
