"""streetwatch: the command line, the configuration tree and the core types shared by every stage."""
