"""The Cypher query files of mgedb, shipped inside the wheel as ``mgedb.cypher``."""
