// Name, versions and edition of the Neo4j server.
// params: none
// returns: name, versions, edition
CALL dbms.components() YIELD name, versions, edition
RETURN name, versions, edition
